// One validator, two front ends (docs/architecture.md §14): the config loader runs
// `validate` over the whole model; the control API calls the same rule
// functions (validatePortRanges, validateListener, validatePool, ...) on
// the objects a request would produce, with paths relative to its body.

public enum ConfigValidator {
    /// Every issue of a whole configuration, paths as in the config file.
    /// `checkListenerPoolProtocol` false accepts a listener whose protocol
    /// differs from its pool's, which UpdateListener may produce (docs/architecture.md §2:
    /// the listener then forwards its protocol to the same members); the
    /// config file keeps the pairing rule.
    public static func validate(_ c: FlowgateConfig, checkListenerPoolProtocol: Bool = true) -> [ValidationIssue] {
        var issues: [ValidationIssue] = []
        issues += validateWorkers(c.workers, path: "workers")
        if c.stateFile.isEmpty { issues.append(.init(.invalidArgument, "state_file", "must not be empty")) }
        issues += validateControl(c.control, path: "control")
        issues += validateTuning(c.tuning, path: "tuning")
        issues += validateProjectID(c.projectID, path: "project_id")
        if let cluster = c.cluster { issues += validateCluster(cluster, path: "cluster") }
        if let name = c.httpCookieName { issues += validateHTTPCookieName(name, path: "http_cookie_name") }

        var seenAccelerators: [String: Int] = [:]
        var seenListeners: [String: String] = [:]
        var placed: [Listener] = []
        for (a, acc) in c.accelerators.enumerated() {
            let ap = FieldPath.index("accelerators", a)
            issues += validateAccelerator(acc, path: ap)
            if let first = seenAccelerators[acc.acceleratorArn] {
                issues.append(.init(.conflict, FieldPath.field(ap, "AcceleratorArn"),
                                    "duplicate AcceleratorArn (also accelerators[\(first)])"))
            } else {
                seenAccelerators[acc.acceleratorArn] = a
            }
            for (i, l) in acc.listeners.enumerated() {
                let lp = FieldPath.index(FieldPath.field(ap, "listeners"), i)
                issues += validateListener(l, path: lp, pools: c.pools, checkPoolProtocol: checkListenerPoolProtocol)
                if let first = seenListeners[l.listenerArn] {
                    issues.append(.init(.conflict, FieldPath.field(lp, "ListenerArn"), "duplicate ListenerArn (also \(first))"))
                } else {
                    seenListeners[l.listenerArn] = lp
                    issues += validatePortConflicts(l, path: lp, others: placed)
                }
                placed.append(l)
            }
        }

        var seenPools: [String: Int] = [:]
        for (i, pool) in c.pools.enumerated() {
            let pp = FieldPath.index("pools", i)
            issues += validatePool(pool, path: pp, healthmonitors: c.healthmonitors)
            if let first = seenPools[pool.id] {
                issues.append(.init(.conflict, FieldPath.field(pp, "id"), "duplicate id \(RuleText.quoted(pool.id)) (also pools[\(first)])"))
            } else {
                seenPools[pool.id] = i
            }
        }
        // Member ids are unique across pools too: the ELB API addresses a
        // member by pool id and member id, but metrics and logs use the id alone.
        var seenMembers: [String: String] = [:]
        for (i, pool) in c.pools.enumerated() {
            for (j, m) in pool.members.enumerated() {
                let mp = "pools[\(i)].members[\(j)]"
                if let first = seenMembers[m.id] {
                    if !first.hasPrefix("pools[\(i)].") {
                        issues.append(.init(.conflict, FieldPath.field(mp, "id"), "duplicate id \(RuleText.quoted(m.id)) (also \(first))"))
                    }
                } else {
                    seenMembers[m.id] = mp
                }
            }
        }

        var seenMonitors: [String: Int] = [:]
        for (i, h) in c.healthmonitors.enumerated() {
            let hp = FieldPath.index("healthmonitors", i)
            issues += validateHealthMonitor(h, path: hp)
            if let first = seenMonitors[h.id] {
                issues.append(.init(.conflict, FieldPath.field(hp, "id"), "duplicate id \(RuleText.quoted(h.id)) (also healthmonitors[\(first)])"))
            } else {
                seenMonitors[h.id] = i
            }
        }
        return issues
    }

    /// The typed value of an API enum spelled exactly (case-sensitive), or
    /// `"tcp" is not one of TCP, UDP`.
    public static func enumValue<E: RawRepresentable & CaseIterable>(_ raw: String, as _: E.Type, path: String) -> Result<E, ValidationIssue>
    where E.RawValue == String {
        if let v = E(rawValue: raw) { return .success(v) }
        return .failure(.init(.invalidArgument, path, RuleText.notOneOf(raw, E.allCases.map(\.rawValue))))
    }
}
