import Synchronization

/// The selection state that outlives any one snapshot (docs/architecture.md §3.3, §7): member
/// counters and health, the pools' session-persistence tables and the
/// listeners' client-affinity tables. `SnapshotBuilder` carries it from the
/// previous snapshot into the next, so a config change neither forgets
/// remembered clients nor resets least-connection counts.
///
/// Every method here takes a lock: call it per new flow or per control event,
/// never per packet.
public final class SelectionState: Sendable {
    struct MemberKey: Hashable { var poolID: String; var memberID: String }

    /// The clock used when a caller gives no `now`.
    public let time: any TimeSource
    let members = Mutex<[MemberKey: MemberRuntime]>([:])
    let persistence = Mutex<[String: StickyTable<IPAddress>]>([:])
    let affinity = Mutex<[String: StickyTable<AffinityKey>]>([:])
    private let appCookies = Mutex<[String: StickyTable<String>]>([:])

    /// Choices to share with the fleet (cluster only; docs/cluster.md §7).
    public let sharedPersistence = SharedPersistenceOutbox()

    public init(time: any TimeSource = SystemTime()) { self.time = time }

    /// Another instance's persistence choice, into pool `poolID`'s table when
    /// the pool has one here. Returns whether it was taken.
    @discardableResult
    public func learnPersistence(poolID: String, client: IPAddress, memberID: String, timeout: Double, now: Double? = nil) -> Bool {
        guard let table = persistence.withLock({ $0[poolID] }) else { return false }
        table.learn(client, memberID: memberID, now: now ?? time.now(), timeout: timeout)
        return true
    }

    /// The health checker's entry point: marks a member up or down for every
    /// worker at once. A member coming back from down restarts slow start
    /// (when its pool has slow start enabled). Returns whether the state changed.
    @discardableResult
    public func setMemberUp(poolID: String, memberID: String, up: Bool, now: Double? = nil) -> Bool {
        let runtime = member(poolID: poolID, memberID: memberID)
        let wasUp = runtime.up.exchange(up, ordering: .acquiringAndReleasing)
        if !wasUp && up { runtime.startRamp(at: now ?? time.now()) }
        return wasUp != up
    }

    public func isMemberUp(poolID: String, memberID: String) -> Bool {
        existingMember(poolID: poolID, memberID: memberID)?.isUp ?? true
    }

    /// The member's shared counters, created on first use.
    public func member(poolID: String, memberID: String) -> MemberRuntime {
        let key = MemberKey(poolID: poolID, memberID: memberID)
        return members.withLock { table in
            if let m = table[key] { return m }
            let m = MemberRuntime(poolID: poolID, memberID: memberID)
            table[key] = m
            return m
        }
    }

    public func existingMember(poolID: String, memberID: String) -> MemberRuntime? {
        members.withLock { $0[MemberKey(poolID: poolID, memberID: memberID)] }
    }

    /// The pool's SOURCE_IP session-persistence table (client IP → member).
    public func persistenceTable(poolID: String, capacity: Int) -> StickyTable<IPAddress> {
        persistence.withLock { SelectionState.table(in: &$0, poolID: poolID, capacity: capacity) }
    }

    /// The ClientAffinity SOURCE_IP table ((client IP, listener IP) → member)
    /// of every SOURCE_IP listener in front of pool `poolID`. It is shared by
    /// those listeners, so a client reaching a TCP and a UDP listener (or two
    /// port ranges) on the same address lands on one member "whatever the port
    /// and protocol" (docs/architecture.md §3.3).
    public func affinityTable(poolID: String, capacity: Int) -> StickyTable<AffinityKey> {
        affinity.withLock { SelectionState.table(in: &$0, poolID: poolID, capacity: capacity) }
    }

    /// The pool's APP_COOKIE table (application cookie value → member), learnt
    /// from members' Set-Cookie; entries expire `persistence_timeout` after
    /// they were last learnt, and the oldest are evicted at capacity (counted).
    public func appCookieTable(poolID: String, capacity: Int) -> StickyTable<String> {
        appCookies.withLock { SelectionState.table(in: &$0, poolID: poolID, capacity: capacity) }
    }

    /// The pool's table, created on first use; an existing one takes the
    /// current capacity (a pool update may have changed it).
    private static func table<K: Hashable & Sendable>(in tables: inout [String: StickyTable<K>], poolID: String, capacity: Int) -> StickyTable<K> {
        if let t = tables[poolID] { t.setCapacity(capacity); return t }
        let t = StickyTable<K>(capacity: capacity)
        tables[poolID] = t
        return t
    }

    /// Sticky entries evicted at capacity, over every table.
    public var stickyEvictions: Int {
        persistence.withLock { $0.values.reduce(0) { $0 + $1.evictions } }
            + affinity.withLock { $0.values.reduce(0) { $0 + $1.evictions } }
            + appCookies.withLock { $0.values.reduce(0) { $0 + $1.evictions } }
    }

    /// Forgets what the new configuration no longer has. A removed member's
    /// counters are kept while flows still hold it, so a quick re-add does not
    /// undercount least connections.
    func prune(pools: [String: Set<String>], persistencePools: Set<String>, affinityPools: Set<String>) {
        members.withLock { table in
            table = table.filter { key, runtime in
                pools[key.poolID]?.contains(key.memberID) == true || runtime.activeFlows > 0
            }
        }
        persistence.withLock { $0 = $0.filter { persistencePools.contains($0.key) } }
        affinity.withLock { $0 = $0.filter { affinityPools.contains($0.key) } }
    }
}

/// The key of a ClientAffinity SOURCE_IP entry: the flow's 2-tuple (docs/architecture.md §3.1).
public struct AffinityKey: Sendable, Hashable {
    public var client: IPAddress
    public var listenerAddress: IPAddress
    public init(client: IPAddress, listenerAddress: IPAddress) {
        self.client = client.unmapped; self.listenerAddress = listenerAddress.unmapped
    }
}
