// Health monitor rules (ELB v3 healthmonitor fields, docs/architecture.md §10).

extension ConfigValidator {
    public static let monitorDelayRange = 1...50
    public static let monitorTimeoutRange = 1...50
    public static let monitorRetriesRange = 1...10
    public static let expectedCodeRange = 200...599
    /// The ELB v3 limits on url_path and expected_codes, for the file and the API alike.
    public static let maxURLPathLength = 80
    public static let maxExpectedCodesLength = 64

    public static func validateHealthMonitor(_ h: HealthMonitor, path: String) -> [ValidationIssue] {
        var issues = validateUUID(h.id, path: FieldPath.field(path, "id"))
        issues += validateName(h.name, path: FieldPath.field(path, "name"))
        func check(_ v: Int, _ r: ClosedRange<Int>, _ key: String, unit: String? = nil) {
            if !r.contains(v) {
                issues.append(.init(.invalidArgument, FieldPath.field(path, key), RuleText.notIn(v, r, unit: unit), rule: .outOfRange(v, r, unit: unit)))
            }
        }
        check(h.delay, monitorDelayRange, "delay", unit: "seconds")
        check(h.timeout, monitorTimeoutRange, "timeout", unit: "seconds")
        check(h.maxRetries, monitorRetriesRange, "max_retries")
        check(h.maxRetriesDown, monitorRetriesRange, "max_retries_down")
        if let port = h.monitorPort { check(port, portRange, "monitor_port") }
        let urlPath = FieldPath.field(path, "url_path")
        if h.urlPath.count > maxURLPathLength {
            issues.append(.init(.invalidArgument, urlPath, RuleText.tooLong(h.urlPath.count, max: maxURLPathLength),
                                rule: .tooLong(count: h.urlPath.count, max: maxURLPathLength)))
        }
        if !h.urlPath.hasPrefix("/") {
            issues.append(.init(.invalidArgument, urlPath, "\(RuleText.quoted(h.urlPath)) must start with \"/\"", rule: .mustStartWith("/")))
        }
        if h.expectedCodes.count > maxExpectedCodesLength {
            issues.append(.init(.invalidArgument, FieldPath.field(path, "expected_codes"),
                                RuleText.tooLong(h.expectedCodes.count, max: maxExpectedCodesLength),
                                rule: .tooLong(count: h.expectedCodes.count, max: maxExpectedCodesLength)))
        } else if !isExpectedCodes(h.expectedCodes) {
            issues.append(.init(.invalidArgument, FieldPath.field(path, "expected_codes"),
                                "\(RuleText.quoted(h.expectedCodes)) is not a list of status codes like 200, 200,202 or 200-204 within 200..599"))
        }
        return issues
    }

    /// A UDP pool is checked with UDP_CONNECT; TCP and HTTP pools with TCP or HTTP.
    public static func validateMonitorFits(_ h: HealthMonitor, poolProtocol: PoolProtocol, path: String) -> [ValidationIssue] {
        let fits = poolProtocol == .udp ? h.type == .udpConnect : h.type != .udpConnect
        if fits { return [] }
        let allowed = poolProtocol == .udp ? "UDP_CONNECT" : "TCP or HTTP"
        return [.init(.invalidArgument, path,
                      "healthmonitor \(RuleText.quoted(h.id)) is of type \(h.type.rawValue); a \(poolProtocol.rawValue) pool needs \(allowed)")]
    }

    /// "200", "200,202", "200-204" (and combinations), each code in 200..599, ranges ascending.
    static func isExpectedCodes(_ s: String) -> Bool {
        if s.isEmpty { return false }
        for item in s.split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = item.split(separator: "-", omittingEmptySubsequences: false)
            guard bounds.count == 1 || bounds.count == 2 else { return false }
            var codes: [Int] = []
            for b in bounds {
                guard b.count == 3, b.allSatisfy({ $0.isASCII && $0.isNumber }), let code = Int(b),
                      expectedCodeRange.contains(code) else { return false }
                codes.append(code)
            }
            if codes.count == 2 && codes[0] > codes[1] { return false }
        }
        return true
    }
}
