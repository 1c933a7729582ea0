/// Builds an immutable `RuntimeSnapshot` from a validated config. Called by
/// the daemon at start, on SIGHUP and on every accepted API update, never on
/// the hot path: algorithms and their lookup tables are made here.
public struct SnapshotBuilder: Sendable {
    public var time: any TimeSource
    public var options: LoadBalancerOptions

    public init(time: any TimeSource = SystemTime(), options: LoadBalancerOptions = LoadBalancerOptions()) {
        self.time = time; self.options = options
    }

    /// `config` must already be valid (see `ConfigValidator`); unparsable
    /// addresses here are an impossible state. The selection state (counters,
    /// health, sticky tables) is carried over from `previous`.
    public func build(_ config: FlowgateConfig, generation: UInt64, previous: RuntimeSnapshot? = nil) -> RuntimeSnapshot {
        let state = previous?.selection ?? SelectionState(time: time)
        let now = time.now()
        let capacity = max(1, config.tuning.maxStickyEntries)
        var pools: [String: PoolPlan] = [:]
        for pool in config.pools {
            let members = pool.members.map { m -> MemberPlan in
                guard let a = IPAddress(m.address) else { preconditionFailure("unvalidated member address \(m.address)") }
                return MemberPlan(member: m, address: a)
            }
            if pool.slowStart.enable, let before = previous?.config.pool(id: pool.id) {
                for m in pool.members where SnapshotBuilder.joins(m, before: before) {
                    state.member(poolID: pool.id, memberID: m.id).startRamp(at: now)
                }
            }
            pools[pool.id] = PoolPlan(pool: pool, members: members, state: state, time: time,
                                      options: options, stickyCapacity: capacity, cookieName: config.effectiveHTTPCookieName)
        }
        let listeners = config.allListeners.map { l -> ListenerPlan in
            guard let pool = pools[l.poolID] else { preconditionFailure("unvalidated pool_id \(l.poolID)") }
            guard let bind = IPAddress(l.bind) else { preconditionFailure("unvalidated bind \(l.bind)") }
            return ListenerPlan(listener: l, bindAddress: bind, pool: pool)
        }
        state.prune(
            pools: Dictionary(config.pools.map { ($0.id, Set($0.members.map(\.id))) }, uniquingKeysWith: { a, _ in a }),
            persistencePools: Set(config.pools.filter { $0.sessionPersistence?.type == .sourceIP }.map(\.id)),
            affinityPools: Set(config.allListeners.filter { $0.clientAffinity == .sourceIP }.map(\.poolID)))
        return RuntimeSnapshot(generation: generation, config: config, listeners: listeners, pools: pools, selection: state)
    }

    /// Does `member` join its pool in this build (docs/architecture.md §3.5: added,
    /// re-enabled, or weight raised from 0)? Only members of a pool that
    /// existed before ramp: like HAProxy, which never applies slowstart when
    /// it starts ("otherwise it would cause trouble to running servers"), a
    /// first build or a new pool takes full weights at once.
    static func joins(_ member: Member, before: Pool) -> Bool {
        guard member.adminStateUp, member.weight > 0 else { return false }
        guard let old = before.members.first(where: { $0.id == member.id }) else { return true }
        return !old.adminStateUp || old.weight == 0
    }
}
