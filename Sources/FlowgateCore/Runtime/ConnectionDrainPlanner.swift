/// One member whose live TCP connections must end `timeout` seconds after a
/// commit took it out of service (ELB `connection_drain`).
public struct DrainOrder: Sendable, Hashable {
    public var poolID: String
    public var memberID: String
    public var timeout: Int
    public init(poolID: String, memberID: String, timeout: Int) { self.poolID = poolID; self.memberID = memberID; self.timeout = timeout }
}

/// Which members a commit drains (weight 0, admin down or removal keep live
/// TCP connections; `connection_drain` {enable, timeout} bounds how long).
/// Pure, so the rules are tested without sockets.
public enum ConnectionDrainPlanner {
    static func inService(_ m: Member) -> Bool { m.adminStateUp && m.weight > 0 }

    /// Members in service before and not after (removed, weight 0 or admin
    /// down), in pools whose drain is enabled: the new pool's setting, or
    /// the old one's when the pool itself was removed.
    public static func orders(previous: FlowgateConfig, next: FlowgateConfig) -> [DrainOrder] {
        var out: [DrainOrder] = []
        for old in previous.pools {
            let new = next.pool(id: old.id)
            let drain = (new ?? old).connectionDrain
            guard drain.enable else { continue }
            for m in old.members where inService(m) {
                if let now = new?.members.first(where: { $0.id == m.id }), inService(now) { continue }
                out.append(DrainOrder(poolID: old.id, memberID: m.id, timeout: drain.timeout))
            }
        }
        return out
    }

    /// At the deadline, is the member still out of service in `config`?
    /// (It may have been put back meanwhile: then its connections stay.)
    public static func stillDrained(_ order: DrainOrder, in config: FlowgateConfig?) -> Bool {
        guard let m = config?.pool(id: order.poolID)?.members.first(where: { $0.id == order.memberID }) else { return true }
        return !inService(m)
    }
}
