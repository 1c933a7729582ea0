/// Builds an immutable `RuntimeSnapshot` from a validated config. Called by
/// the daemon at start, on SIGHUP and on every accepted API update, never on
/// the hot path.
public struct SnapshotBuilder: Sendable {
    public init() {}

    /// `config` must already be valid (see `ConfigValidator`); unparsable
    /// addresses here are an impossible state.
    public func build(_ config: FlowgateConfig, generation: UInt64, previous: RuntimeSnapshot? = nil) -> RuntimeSnapshot {
        var pools: [String: PoolPlan] = [:]
        for pool in config.pools {
            let members = pool.members.map { m -> MemberPlan in
                guard let a = IPAddress(m.address) else { preconditionFailure("unvalidated member address \(m.address)") }
                return MemberPlan(member: m, address: a)
            }
            pools[pool.id] = PoolPlan(pool: pool, members: members)
        }
        let listeners = config.allListeners.map { l -> ListenerPlan in
            guard let pool = pools[l.poolID] else { preconditionFailure("unvalidated pool_id \(l.poolID)") }
            guard let bind = IPAddress(l.bind) else { preconditionFailure("unvalidated bind \(l.bind)") }
            return ListenerPlan(listener: l, bindAddress: bind, pool: pool)
        }
        return RuntimeSnapshot(generation: generation, config: config, listeners: listeners, pools: pools)
    }
}
