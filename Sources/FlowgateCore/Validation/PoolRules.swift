// Pool rules: docs/api.md §4.4, docs/architecture.md §2 and §3.

extension ConfigValidator {
    public static let maxNameLength = 255
    public static let slowStartDurationRange = 30...1200
    public static let connectionDrainTimeoutRange = 10...300
    /// Minutes, TCP and UDP pools (ELB v3).
    public static let l4PersistenceTimeoutRange = 1...60
    /// Minutes, HTTP pools (ELB v3).
    public static let httpPersistenceTimeoutRange = 1...1440
    public static let maxCookieNameLength = 1024

    /// The default `persistence_timeout` when a request or file leaves it out:
    /// 1 minute for TCP/UDP pools, 1440 for HTTP pools (ELB v3).
    public static func defaultPersistenceTimeout(for p: PoolProtocol) -> Int { p == .http ? 1440 : 1 }

    /// Every rule of one pool and its members. `healthmonitorIDs` nil skips the
    /// reference check (a caller that has no monitors list).
    public static func validatePool(_ p: Pool, path: String, healthmonitors: [HealthMonitor]? = nil) -> [ValidationIssue] {
        var issues: [ValidationIssue] = []
        issues += validateUUID(p.id, path: FieldPath.field(path, "id"))
        issues += validateName(p.name, path: FieldPath.field(path, "name"))
        issues += validateName(p.description, path: FieldPath.field(path, "description"))
        issues += validateAlgorithm(p.lbAlgorithm, path: FieldPath.field(path, "lb_algorithm"))
        if !p.adminStateUp {
            issues.append(.init(.invalidArgument, FieldPath.field(path, "admin_state_up"), "only true is supported", rule: .onlyTrue))
        }
        if let sp = p.sessionPersistence {
            issues += validateSessionPersistence(sp, poolProtocol: p.protocol, path: FieldPath.field(path, "session_persistence"))
        }
        issues += validateSlowStart(p.slowStart, path: FieldPath.field(path, "slow_start"))
        if p.xForwardedHeaders == false && p.protocol != .http {
            issues.append(.init(.invalidArgument, FieldPath.field(path, "x_forwarded_headers"),
                                "false is only allowed on an HTTP pool (a \(p.protocol.rawValue) pool adds no headers)",
                                rule: .onlyAllowedWith("protocol HTTP")))
        }
        issues += validateConnectionDrain(p.connectionDrain, path: FieldPath.field(path, "connection_drain"))
        if let hm = p.healthmonitorID, let healthmonitors {
            let hmPath = FieldPath.field(path, "healthmonitor_id")
            if let monitor = healthmonitors.first(where: { $0.id == hm }) {
                issues += validateMonitorFits(monitor, poolProtocol: p.protocol, path: hmPath)
            } else {
                issues.append(.init(.notFound, hmPath, "no healthmonitor with id \(RuleText.quoted(hm))"))
            }
        }
        let membersPath = FieldPath.field(path, "members")
        for (i, m) in p.members.enumerated() {
            issues += validateMember(m, path: FieldPath.index(membersPath, i))
        }
        issues += validateMemberSet(p.members, path: membersPath)
        return issues
    }

    public static func validateAlgorithm(_ name: String, path: String) -> [ValidationIssue] {
        LoadBalancerRegistry.names.contains(name)
            ? [] : [.init(.invalidArgument, path, RuleText.notOneOf(name, LoadBalancerRegistry.names),
                          rule: .notOneOf(name, allowed: LoadBalancerRegistry.names))]
    }

    /// ELB v3 names and descriptions: 0..255 characters (Unicode allowed, counted as Characters).
    public static func validateName(_ name: String, path: String, max: Int = maxNameLength) -> [ValidationIssue] {
        name.count > max ? [.init(.invalidArgument, path, RuleText.tooLong(name.count, max: max), rule: .tooLong(count: name.count, max: max))] : []
    }

    /// Canonical 8-4-4-4-12 hex.
    public static func validateUUID(_ id: String, path: String) -> [ValidationIssue] {
        NameUUID.isCanonical(id)
            ? [] : [.init(.invalidArgument, path, "\(RuleText.quoted(id)) is not a UUID (8-4-4-4-12 hex digits)")]
    }

    /// TCP and UDP pools: SOURCE_IP only, 1..60 minutes. HTTP pools:
    /// HTTP_COOKIE or APP_COOKIE, 1..1440 (the HTTP mode reads and writes
    /// them: Sources/FlowgateDataPlane/HTTP/HTTPConnection.swift). cookie_name: required with
    /// APP_COOKIE, refused otherwise, [A-Za-z0-9._-]{1,1024}.
    public static func validateSessionPersistence(_ sp: SessionPersistence, poolProtocol: PoolProtocol, path: String) -> [ValidationIssue] {
        var issues: [ValidationIssue] = []
        let typePath = FieldPath.field(path, "type")
        let timeoutRange: ClosedRange<Int>
        switch poolProtocol {
        case .tcp, .udp:
            timeoutRange = l4PersistenceTimeoutRange
            if sp.type != .sourceIP {
                issues.append(.init(.invalidArgument, typePath,
                                    "\(RuleText.quoted(sp.type.rawValue)) is not allowed on a \(poolProtocol.rawValue) pool; TCP and UDP pools allow only SOURCE_IP",
                                    rule: .persistenceTypeNotAllowed(sp.type, poolProtocol)))
            }
        case .http:
            timeoutRange = httpPersistenceTimeoutRange
            if sp.type == .sourceIP {
                issues.append(.init(.invalidArgument, typePath,
                                    "\"SOURCE_IP\" is not allowed on an HTTP pool; HTTP pools allow HTTP_COOKIE or APP_COOKIE",
                                    rule: .persistenceTypeNotAllowed(sp.type, poolProtocol)))
            }
        }
        if !timeoutRange.contains(sp.persistenceTimeout) {
            issues.append(.init(.invalidArgument, FieldPath.field(path, "persistence_timeout"),
                                RuleText.notIn(sp.persistenceTimeout, timeoutRange, unit: "minutes"),
                                rule: .persistenceTimeout(sp.persistenceTimeout, timeoutRange, poolProtocol)))
        }
        let cookiePath = FieldPath.field(path, "cookie_name")
        switch (sp.type, sp.cookieName) {
        case (.appCookie, nil):
            issues.append(.init(.invalidArgument, cookiePath, "required with APP_COOKIE", rule: .requiredWith("APP_COOKIE")))
        case (.appCookie, let name?):
            if !isCookieName(name) {
                issues.append(.init(.invalidArgument, cookiePath,
                                    "\(RuleText.quoted(name)) is not 1..\(maxCookieNameLength) of letters, digits, '-', '_', '.'",
                                    rule: .cookieName))
            }
        case (_, .some):
            issues.append(.init(.invalidArgument, cookiePath, "only allowed with APP_COOKIE", rule: .onlyAllowedWith("APP_COOKIE")))
        case (_, nil):
            break
        }
        return issues
    }

    /// `http_cookie_name`: an RFC 6265 §4.1.1 cookie-name, i.e. an RFC 2616
    /// token: 1..1024 visible ASCII characters other than separators.
    public static func validateHTTPCookieName(_ name: String, path: String) -> [ValidationIssue] {
        let bytes = Array(name.utf8)
        if bytes.isEmpty || bytes.count > maxCookieNameLength {
            return [.init(.invalidArgument, path, "\(RuleText.quoted(name)) is not a cookie name: it must have 1..\(maxCookieNameLength) characters (RFC 6265 token)")]
        }
        if let bad = bytes.first(where: { !HTTPBytes.isToken($0) }) {
            let shown = bad == 0x20 ? "a space" : bad == 0x09 ? "a tab"
                : bad >= 0x21 && bad <= 0x7E ? "'\(Character(Unicode.Scalar(bad)))'"
                : "byte 0x" + (bad < 16 ? "0" : "") + String(bad, radix: 16, uppercase: true)
            return [.init(.invalidArgument, path,
                          "\(RuleText.quoted(name)) is not a cookie name: \(shown) is not allowed; an RFC 6265 token is "
                          + "visible ASCII other than ()<>@,;:\\\"/[]?={} (no space, tab or control character)")]
        }
        return []
    }

    /// [A-Za-z0-9._-]{1,1024} (the ELB v3 cookie_name rule).
    public static func isCookieName(_ s: String) -> Bool {
        let bytes = Array(s.utf8)
        guard (1...maxCookieNameLength).contains(bytes.count) else { return false }
        return bytes.allSatisfy { c in
            (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
                || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9"))
                || c == UInt8(ascii: "-") || c == UInt8(ascii: "_") || c == UInt8(ascii: ".")
        }
    }

    /// duration 30..1200 seconds, checked even when disabled (the value is kept).
    public static func validateSlowStart(_ s: SlowStart, path: String) -> [ValidationIssue] {
        slowStartDurationRange.contains(s.duration) ? [] : [
            .init(.invalidArgument, FieldPath.field(path, "duration"), RuleText.notIn(s.duration, slowStartDurationRange, unit: "seconds"),
                  rule: .outOfRange(s.duration, slowStartDurationRange, unit: "seconds")),
        ]
    }

    /// timeout 10..300 seconds, checked even when disabled.
    public static func validateConnectionDrain(_ d: ConnectionDrain, path: String) -> [ValidationIssue] {
        connectionDrainTimeoutRange.contains(d.timeout) ? [] : [
            .init(.invalidArgument, FieldPath.field(path, "timeout"), RuleText.notIn(d.timeout, connectionDrainTimeoutRange, unit: "seconds"),
                  rule: .outOfRange(d.timeout, connectionDrainTimeoutRange, unit: "seconds")),
        ]
    }
}
