/// An immutable view of the whole configuration that workers read without
/// locks; the control side builds a new one off the hot path and swaps it in
/// whole, as Envoy's thread-aware load balancers do.
public final class RuntimeSnapshot: Sendable {
    public let generation: UInt64
    public let config: FlowgateConfig
    public let listeners: [ListenerPlan]
    public let pools: [String: PoolPlan]
    /// Counters, health and sticky tables shared with the next snapshot.
    public let selection: SelectionState

    public init(generation: UInt64, config: FlowgateConfig, listeners: [ListenerPlan], pools: [String: PoolPlan],
                selection: SelectionState? = nil) {
        self.generation = generation; self.config = config; self.listeners = listeners; self.pools = pools
        self.selection = selection ?? pools.values.first?.state ?? SelectionState()
    }
}

/// A listener as the data plane needs it: expanded ports and its pool.
public final class ListenerPlan: Sendable {
    public let listener: Listener
    public let bindAddress: IPAddress
    /// Every port of every range, ascending.
    public let ports: [Int]
    public let pool: PoolPlan
    /// The ClientAffinity SOURCE_IP table of this listener (nil for NONE).
    public let affinityTable: StickyTable<AffinityKey>?

    public init(listener: Listener, bindAddress: IPAddress, pool: PoolPlan) {
        self.listener = listener; self.bindAddress = bindAddress; self.pool = pool
        self.ports = listener.portRanges.flatMap { Array($0.ports) }.sorted()
        affinityTable = listener.clientAffinity == .sourceIP
            ? pool.state.affinityTable(poolID: pool.id, capacity: pool.stickyCapacity) : nil
    }

    /// Picks a backend for a new flow on this listener (docs/architecture.md §3), applying
    /// the listener's client affinity and the pool's persistence and algorithm.
    /// `excluding` holds members already tried for this flow (connect failure).
    /// A successful pick counts the flow as active on that member until
    /// `release` is called for it (exactly once per successful pick, on the
    /// same `ListenerPlan`, even after a newer snapshot was swapped in).
    public func pick(_ flow: FlowContext, excluding: [String] = [], preferred: String? = nil) -> BackendTarget? {
        pool.pick(flow, affinity: affinityTable, excluding: excluding, preferred: preferred)
    }

    /// The connect to `target` succeeded (passive health: resets the
    /// member's failure streak). Optional: without it only active checks
    /// clear the streak.
    public func connected(_ target: BackendTarget) { pool.connected(target) }

    /// The flow given `target` ended, or its connect attempt failed
    /// (`connected == false`: counts against the member's health too).
    public func release(_ flow: FlowContext, target: BackendTarget, connected: Bool) {
        pool.release(flow, target: target, affinity: affinityTable, affinityTimeout: Double(listener.idleTimeout), connected: connected)
    }
}
