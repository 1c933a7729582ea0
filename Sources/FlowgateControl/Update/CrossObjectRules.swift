// Whole-config rules the API needs after a change is applied to a copy: the
// ones that involve more than the object in the request (ports shared across
// listeners, limits, references). core-config's `ConfigValidator` is the
// shared set; the daemon composes it with these (duplicates are harmless:
// the first issue found is what the API reports).
import FlowgateCore

public enum CrossObjectRules {
    public static let maxListenersPerAccelerator = 10
    public static let maxPortRangesPerListener = 10

    public static func validate(_ config: FlowgateConfig) -> [ValidationIssue] {
        var issues: [ValidationIssue] = []
        for (ai, acc) in config.accelerators.enumerated() where acc.listeners.count > maxListenersPerAccelerator {
            issues.append(ValidationIssue(.limitExceeded, "accelerators[\(ai)].listeners",
                                          "\(acc.listeners.count) listeners on \(acc.acceleratorArn); at most \(maxListenersPerAccelerator) are allowed"))
        }
        let listeners = config.allListeners
        for (i, l) in listeners.enumerated() {
            if l.portRanges.count > maxPortRangesPerListener {
                issues.append(ValidationIssue(.limitExceeded, "\(l.listenerArn).PortRanges",
                                              "\(l.portRanges.count) port ranges; a listener has at most \(maxPortRangesPerListener)"))
            }
            if config.pool(id: l.poolID) == nil {
                issues.append(ValidationIssue(.notFound, "\(l.listenerArn).pool_id", "pool \(l.poolID) could not be found"))
            }
            for other in listeners[(i + 1)...] where other.protocol == l.protocol && bindsOverlap(l.bind, other.bind) {
                for a in l.portRanges {
                    for b in other.portRanges where a.overlaps(b) {
                        let port = max(a.fromPort, b.fromPort)
                        issues.append(ValidationIssue(.invalidPortRange, "\(l.listenerArn).PortRanges",
                                                      "port \(port)/\(l.protocol.rawValue) on \(l.bind) is already served by listener \(other.listenerArn)"))
                    }
                }
            }
        }
        for (pi, pool) in config.pools.enumerated() {
            var seen = Set<String>()
            for (mi, m) in pool.members.enumerated() {
                let key = "\(IPAddress(m.address)?.description ?? m.address)#\(m.protocolPort.map(String.init) ?? "*")"
                if !seen.insert(key).inserted {
                    issues.append(ValidationIssue(.conflict, "pools[\(pi)].members[\(mi)]",
                                                  "a member with address \(m.address) and protocol_port \(m.protocolPort.map(String.init) ?? "null") already exists in pool \(pool.id)"))
                }
            }
        }
        return issues
    }

    /// Two bind addresses collide when equal or when either is a wildcard of
    /// an overlapping family (`::` is dual stack, so it also covers IPv4).
    static func bindsOverlap(_ a: String, _ b: String) -> Bool {
        guard let x = IPAddress(a), let y = IPAddress(b) else { return a == b }
        if x.unmapped == y.unmapped { return true }
        if x.isUnspecified && (!x.isV4 || y.unmapped.isV4) { return true }
        if y.isUnspecified && (!y.isV4 || x.unmapped.isV4) { return true }
        return false
    }
}
