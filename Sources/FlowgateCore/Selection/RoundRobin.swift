import Synchronization

/// ROUND_ROBIN: smooth weighted round robin, nginx's
/// `ngx_http_upstream_get_peer` (src/http/ngx_http_upstream_round_robin.c):
/// on each pick every usable member adds its effective weight to its current
/// score, the highest score wins (first one on a tie), and the winner's score
/// drops by the total. Weights 5,1,1 give `a a b a c a a`, spreading the heavy
/// member's turns instead of bunching them.
///
/// The scores are shared by every worker behind one mutex, taken once per new
/// flow. Effective weights include slow start (docs/architecture.md §3.5).
public final class RoundRobin: LoadBalancer {
    public static let apiName = "ROUND_ROBIN"
    public static let registration = LoadBalancerFactory(name: apiName) { members, _ in RoundRobin(members) }

    let current: Mutex<[Int]>

    public init(_ members: PoolMembers) {
        current = Mutex([Int](repeating: 0, count: members.count))
    }

    public func choose(_ members: PoolMembers, _ input: PickInput) -> Int? {
        current.withLock { current in
            var best = -1, total = 0
            for i in 0..<members.count where members.usable(i, excluding: input.excluding) {
                let w = members.effectiveWeight(i, now: input.now)
                current[i] += w
                total += w
                if best < 0 || current[i] > current[best] { best = i }
            }
            if best < 0 { return nil }
            current[best] -= total
            return best
        }
    }
}
