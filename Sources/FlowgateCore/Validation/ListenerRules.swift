// Listener and accelerator rules (docs/api.md §3, docs/architecture.md §2). Each function takes
// the path of the object it checks, so the config file reports
// `accelerators[0].listeners[1].PortRanges[2].ToPort` and an API request
// body `PortRanges[2].ToPort` from the same code.

extension ConfigValidator {
    /// AWS: 10 port ranges per listener, not adjustable.
    public static let maxPortRangesPerListener = 10
    /// AWS: 10 listeners per accelerator.
    public static let maxListenersPerAccelerator = 10
    public static let portRange = 1...65535
    /// Seconds. Global Accelerator's own idle timeouts are fixed (TCP 340, UDP 30);
    /// Flowgate lets them be set within this range for either protocol (short
    /// UDP timeouts suit DNS-like traffic; tests use them to see expiry).
    public static let idleTimeoutRange = 1...4000
    /// Seconds of TCP_DEFER_ACCEPT (the kernel turns them into SYN-ACK
    /// retransmissions; past about 10 minutes a client has long given up).
    public static let tcpDeferAcceptRange = 1...600
    /// Pending TCP Fast Open connections per listening socket (the kernel
    /// caps it at net.core.somaxconn).
    public static let tcpFastOpenRange = 1...65535
    /// AWS limits accelerator names to 64 characters.
    public static let maxAcceleratorNameLength = 64

    /// `ranges` is a listener's `PortRanges`; `path` names that field.
    public static func validatePortRanges(_ ranges: [PortRange], path: String) -> [ValidationIssue] {
        var issues: [ValidationIssue] = []
        if ranges.isEmpty {
            issues.append(.init(.invalidPortRange, path, "at least 1 port range is required"))
        }
        if ranges.count > maxPortRangesPerListener {
            issues.append(.init(.limitExceeded, path,
                                "at most \(maxPortRangesPerListener) port ranges per listener, got \(ranges.count)"))
        }
        var wellFormed: [(index: Int, range: PortRange)] = []
        for (i, r) in ranges.enumerated() {
            let p = FieldPath.index(path, i)
            var ok = true
            if !portRange.contains(r.fromPort) {
                issues.append(.init(.invalidPortRange, FieldPath.field(p, "FromPort"), RuleText.notIn(r.fromPort, portRange)))
                ok = false
            }
            if !portRange.contains(r.toPort) {
                issues.append(.init(.invalidPortRange, FieldPath.field(p, "ToPort"), RuleText.notIn(r.toPort, portRange)))
                ok = false
            }
            if ok && r.fromPort > r.toPort {
                issues.append(.init(.invalidPortRange, FieldPath.field(p, "ToPort"),
                                    "ToPort \(r.toPort) is less than FromPort \(r.fromPort)"))
                ok = false
            }
            // Past the limit the request is refused anyway; skipping the
            // pairwise overlap scan keeps a huge list from costing O(n²).
            guard ok, ranges.count <= maxPortRangesPerListener else { continue }
            if let earlier = wellFormed.first(where: { $0.range.overlaps(r) }) {
                let name = lastComponent(path)
                issues.append(.init(.invalidPortRange, p,
                                    "\(RuleText.ports(r)) overlaps \(name)[\(earlier.index)] (\(RuleText.ports(earlier.range)))"))
            }
            wellFormed.append((i, r))
        }
        return issues
    }

    /// Empty, over 255 characters, or not `arn:aws:globalaccelerator::<12 digits>:accelerator/<uuid>/listener/<8 hex>`.
    public static func validateListenerArn(_ arn: String, path: String) -> [ValidationIssue] {
        validateArn(arn, path: path, parses: ArnFormat.parseListener(arn) != nil, kind: "a listener ARN", pattern: ArnFormat.listenerPattern)
    }

    public static func validateAcceleratorArn(_ arn: String, path: String) -> [ValidationIssue] {
        validateArn(arn, path: path, parses: ArnFormat.parseAccelerator(arn) != nil, kind: "an accelerator ARN", pattern: ArnFormat.acceleratorPattern)
    }

    private static func validateArn(_ arn: String, path: String, parses: Bool, kind: String, pattern: String) -> [ValidationIssue] {
        if arn.isEmpty { return [.init(.invalidArgument, path, "must not be empty")] }
        if arn.count > ArnFormat.maxLength {
            return [.init(.invalidArgument, path, RuleText.tooLong(arn.count, max: ArnFormat.maxLength))]
        }
        if !parses { return [.init(.invalidArgument, path, "\(RuleText.quoted(arn)) is not \(kind) (\(pattern))")] }
        return []
    }

    /// Everything about one listener that does not depend on other listeners:
    /// ARN, port ranges, bind address, idle timeout, and (when `pools` is
    /// given) that `pool_id` names a pool of a protocol this listener can front.
    /// `checkPoolProtocol` false skips the listener/pool protocol pairing:
    /// an UpdateListener may change `Protocol` and keep its pool (docs/architecture.md §2).
    public static func validateListener(_ l: Listener, path: String, pools: [Pool]?, checkPoolProtocol: Bool = true) -> [ValidationIssue] {
        var issues = validateListenerArn(l.listenerArn, path: FieldPath.field(path, "ListenerArn"))
        issues += validatePortRanges(l.portRanges, path: FieldPath.field(path, "PortRanges"))
        if IPAddress(l.bind) == nil {
            issues.append(.init(.invalidArgument, FieldPath.field(path, "bind"),
                                "\(RuleText.quoted(l.bind)) is not an IPv4 or IPv6 address literal"))
        }
        if !idleTimeoutRange.contains(l.idleTimeout) {
            issues.append(.init(.invalidArgument, FieldPath.field(path, "idle_timeout"),
                                RuleText.notIn(l.idleTimeout, idleTimeoutRange, unit: "seconds")))
        }
        issues += validateTCPOptions(l, path: path)
        if let pools {
            issues += validatePoolReference(l, path: FieldPath.field(path, "pool_id"), pools: pools, checkProtocol: checkPoolProtocol)
        }
        return issues
    }

    /// `tcp_defer_accept` and `tcp_fastopen`: within their ranges, and only
    /// on a TCP listener (a UDP socket has neither).
    static func validateTCPOptions(_ l: Listener, path: String) -> [ValidationIssue] {
        var issues: [ValidationIssue] = []
        for (name, value, range, unit) in [("tcp_defer_accept", l.tcpDeferAccept, tcpDeferAcceptRange, "seconds"),
                                           ("tcp_fastopen", l.tcpFastOpen, tcpFastOpenRange, "pending connections")] {
            guard let value else { continue }
            let p = FieldPath.field(path, name)
            if l.protocol != .tcp {
                issues.append(.init(.invalidArgument, p, "applies only to a listener with Protocol TCP; leave it out for UDP"))
            } else if !range.contains(value) {
                issues.append(.init(.invalidArgument, p, RuleText.notIn(value, range, unit: unit)))
            }
        }
        return issues
    }

    /// `pool_id` must name an existing pool; a TCP listener fronts a TCP or
    /// HTTP pool, a UDP listener a UDP pool (docs/architecture.md §2).
    public static func validatePoolReference(_ l: Listener, path: String, pools: [Pool], checkProtocol: Bool = true) -> [ValidationIssue] {
        if l.poolID.isEmpty { return [.init(.invalidArgument, path, "must not be empty")] }
        guard let pool = pools.first(where: { $0.id == l.poolID }) else {
            return [.init(.notFound, path, "no pool with id \(RuleText.quoted(l.poolID))")]
        }
        if checkProtocol && !canFront(listener: l.protocol, pool: pool.protocol) {
            let allowed = l.protocol == .tcp ? "a TCP or HTTP pool" : "a UDP pool"
            return [.init(.invalidArgument, path,
                          "\(RuleText.quoted(l.poolID)) is a \(pool.protocol.rawValue) pool; a \(l.protocol.rawValue) listener fronts \(allowed)")]
        }
        return []
    }

    public static func canFront(listener: TransportProtocol, pool: PoolProtocol) -> Bool {
        switch listener {
        case .tcp: return pool == .tcp || pool == .http
        case .udp: return pool == .udp
        }
    }

    /// No port may be served twice for the same protocol and overlapping bind
    /// addresses. `others` are the listeners already in place (a listener with
    /// the same ARN is skipped, so an update can pass the whole list).
    /// The message names both listeners by ARN: which of the two sits at
    /// `path` depends on file order, and an API client that changed either
    /// one knows listeners by ARN, not by index.
    public static func validatePortConflicts(_ l: Listener, path: String, others: [Listener]) -> [ValidationIssue] {
        var issues: [ValidationIssue] = []
        guard l.portRanges.count <= maxPortRangesPerListener else { return [] }  // refused by validatePortRanges
        let rangesPath = FieldPath.field(path, "PortRanges")
        for (i, r) in l.portRanges.enumerated() where portRange.contains(r.fromPort) && portRange.contains(r.toPort) && r.fromPort <= r.toPort {
            for other in others where other.listenerArn != l.listenerArn && other.protocol == l.protocol
                && bindsConflict(l.bind, other.bind) {
                if let hit = other.portRanges.first(where: { $0.overlaps(r) }) {
                    let port = max(hit.fromPort, r.fromPort)
                    issues.append(.init(.invalidPortRange, FieldPath.index(rangesPath, i),
                                        "port \(port)/\(l.protocol.rawValue) of listener \(l.listenerArn) on \(l.bind) (\(RuleText.ports(r))) "
                                            + "is already served by listener \(other.listenerArn) on \(other.bind) (\(RuleText.ports(hit)))"))
                    break
                }
            }
        }
        return issues
    }

    /// Two bind addresses conflict when both cannot own the same port: equal
    /// addresses, a wildcard and any address of its family, and `::`, which
    /// is dual stack, with everything. (With SO_REUSEPORT the kernel would not
    /// refuse some of these pairs; it would split traffic between them instead.)
    public static func bindsConflict(_ a: String, _ b: String) -> Bool {
        // An IPv4-mapped IPv6 address (::ffff:a.b.c.d) receives the same
        // IPv4 traffic as a.b.c.d, so compare the unmapped forms.
        guard let x = IPAddress(a)?.unmapped, let y = IPAddress(b)?.unmapped else { return a == b }
        if x == y { return true }
        if (!x.isV4 && x.isUnspecified) || (!y.isV4 && y.isUnspecified) { return true }
        if x.isV4 == y.isV4 && (x.isUnspecified || y.isUnspecified) { return true }
        return false
    }

    /// ARN form, name length, listener count, and that each listener's ARN
    /// lies under this accelerator.
    public static func validateAccelerator(_ a: Accelerator, path: String) -> [ValidationIssue] {
        var issues = validateAcceleratorArn(a.acceleratorArn, path: FieldPath.field(path, "AcceleratorArn"))
        if a.name.count > maxAcceleratorNameLength {
            issues.append(.init(.invalidArgument, FieldPath.field(path, "Name"), RuleText.tooLong(a.name.count, max: maxAcceleratorNameLength)))
        }
        let listenersPath = FieldPath.field(path, "listeners")
        if a.listeners.count > maxListenersPerAccelerator {
            issues.append(.init(.limitExceeded, listenersPath,
                                "at most \(maxListenersPerAccelerator) listeners per accelerator, got \(a.listeners.count)"))
        }
        if ArnFormat.parseAccelerator(a.acceleratorArn) != nil {
            for (i, l) in a.listeners.enumerated() {
                if let parts = ArnFormat.parseListener(l.listenerArn), parts.acceleratorArn != a.acceleratorArn {
                    issues.append(.init(.invalidArgument, FieldPath.field(FieldPath.index(listenersPath, i), "ListenerArn"),
                                        "\(RuleText.quoted(l.listenerArn)) does not belong to accelerator \(a.acceleratorArn)"))
                }
            }
        }
        return issues
    }

    /// `PortRanges` from `a.b.PortRanges`.
    static func lastComponent(_ path: String) -> String {
        if let dot = path.lastIndex(of: ".") { return String(path[path.index(after: dot)...]) }
        return path
    }
}
