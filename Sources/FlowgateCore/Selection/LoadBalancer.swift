/// One load-balancing algorithm, in the spirit of HAProxy's `lb_ops`
/// (src/backend.c) and nginx's `peer.get`: an instance is made per pool per
/// snapshot, off the hot path (it may build lookup tables then), and asked to
/// choose once per new flow that no remembered choice settled.
public protocol LoadBalancer: AnyObject, Sendable {
    /// The index into `members` to give `input`'s flow, or nil when no member
    /// is usable. Must only return an index for which
    /// `members.usable(i, excluding: input.excluding)` holds.
    func choose(_ members: PoolMembers, _ input: PickInput) -> Int?
}

/// What an algorithm knows about the flow it chooses for.
public struct PickInput: Sendable {
    public var flow: FlowContext
    /// The snapshot clock's time of this pick (slow start).
    public var now: Double
    /// Members this flow already failed to connect to.
    public var excluding: [String]
    public init(flow: FlowContext, now: Double, excluding: [String] = []) {
        self.flow = flow; self.now = now; self.excluding = excluding
    }
}

/// Flowgate's own algorithm switches (not in the ELB API).
public struct LoadBalancerOptions: Sendable, Hashable {
    /// SOURCE_IP ignores weights, as the ELB documents say; true makes the
    /// Maglev table give members slots in proportion to their weights.
    public var sourceIPHonoursWeights: Bool
    public init(sourceIPHonoursWeights: Bool = false) { self.sourceIPHonoursWeights = sourceIPHonoursWeights }
}

/// An algorithm's entry in the registry: its API name and how to make it.
public struct LoadBalancerFactory: Sendable {
    public let name: String
    public let make: @Sendable (PoolMembers, LoadBalancerOptions) -> any LoadBalancer
    public init(name: String, make: @escaping @Sendable (PoolMembers, LoadBalancerOptions) -> any LoadBalancer) {
        self.name = name; self.make = make
    }
}
