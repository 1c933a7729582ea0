import Synchronization

/// LEAST_CONNECTIONS: the usable member with the lowest
/// (active flows + 1) / effective weight, active flows counted across every
/// worker (the shared `MemberRuntime.active` counters). The "+ 1" is the flow
/// being placed, as in HAProxy's leastconn key (inflight + 1) × SRV_EWGHT_MAX
/// / eweight (src/lb_fwlc.c, `fwlc_get_key`); unlike HAProxy, which keys every
/// idle server 0, it also applies to idle members, so an idle heavy member
/// beats an idle light one (docs/architecture.md §3.4). Ties go round robin: the scan
/// starts just after the last winner, and the first member with the lowest
/// load wins.
public final class LeastConnections: LoadBalancer {
    public static let apiName = "LEAST_CONNECTIONS"
    public static let registration = LoadBalancerFactory(name: apiName) { members, _ in LeastConnections(members) }

    /// Where the next scan starts; racing workers may share a start, which
    /// only affects which of two equally loaded members wins.
    private let cursor = Atomic<Int>(0)

    public init(_ members: PoolMembers) {}

    public func choose(_ members: PoolMembers, _ input: PickInput) -> Int? {
        let n = members.count
        if n == 0 { return nil }
        let start = cursor.load(ordering: .relaxed) % n
        var best = -1, bestLoad = 0, bestWeight = 1
        for k in 0..<n {
            let i = (start + k) % n
            guard members.usable(i, excluding: input.excluding) else { continue }
            let load = members.runtimes[i].activeFlows + 1
            let weight = members.effectiveWeight(i, now: input.now)
            // load/weight < bestLoad/bestWeight, without division.
            if best < 0 || load * bestWeight < bestLoad * weight {
                best = i; bestLoad = load; bestWeight = weight
            }
        }
        if best < 0 { return nil }
        cursor.store(best + 1, ordering: .relaxed)
        return best
    }
}
