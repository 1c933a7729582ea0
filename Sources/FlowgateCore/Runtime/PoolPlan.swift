import Synchronization

/// A member as selection needs it: parsed address and current weights.
public struct MemberPlan: Sendable, Hashable {
    public var member: Member
    public var address: IPAddress
    public init(member: Member, address: IPAddress) { self.member = member; self.address = address }
    public var id: String { member.id }
}

/// A pool inside a snapshot. Built off the hot path; `pick` is what workers
/// call once per new flow.
///
/// STUB (foundation): smooth weighted round robin under a mutex, ignoring
/// affinity and persistence. The selection work (issue 4) replaces the
/// internals with the registered algorithms, sticky tables and slow start,
/// keeping this public surface.
public final class PoolPlan: Sendable {
    public let pool: Pool
    public let members: [MemberPlan]
    private let rr: Mutex<[Int]>

    public init(pool: Pool, members: [MemberPlan]) {
        self.pool = pool; self.members = members
        self.rr = Mutex([Int](repeating: 0, count: members.count))
    }

    public var id: String { pool.id }

    func eligible(_ m: MemberPlan) -> Bool { m.member.adminStateUp && m.member.weight > 0 }

    public func pick(_ flow: FlowContext, affinity: ClientAffinity, affinityTimeout: Double, excluding: [String]) -> BackendTarget? {
        let idx: Int? = rr.withLock { current in
            var best = -1, total = 0
            for (i, m) in members.enumerated() where eligible(m) && !excluding.contains(m.id) {
                current[i] += m.member.weight; total += m.member.weight
                if best < 0 || current[i] > current[best] { best = i }
            }
            if best < 0 { return nil }
            current[best] -= total
            return best
        }
        guard let i = idx else { return nil }
        let m = members[i]
        return BackendTarget(memberID: m.id, address: m.address, port: UInt16(m.member.protocolPort ?? Int(flow.localPort)))
    }

    /// The data plane reports every flow's end, so least-connections counts
    /// and sticky-table timers stay right.
    public func release(_ flow: FlowContext, target: BackendTarget, affinity: ClientAffinity, affinityTimeout: Double, connected: Bool) {}
}
