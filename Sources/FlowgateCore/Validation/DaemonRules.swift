// Rules for Flowgate's own settings: workers, tuning, control, project_id.

extension ConfigValidator {
    public static let workersRange = 1...1024
    /// sockaddr_un.sun_path holds 108 bytes including the terminating NUL (unix(7)).
    public static let maxUnixSocketPathBytes = 107

    /// One tuning knob: its key in the file, its allowed range and unit.
    public struct TuningBound: Sendable {
        public var key: String
        public var range: ClosedRange<Int>
        public var unit: String?
        public var value: @Sendable (Tuning) -> Int
    }

    /// Upper bounds are far above useful values; they catch unit mistakes
    /// (a buffer given in bits, a timeout in milliseconds).
    public static let tuningBounds: [TuningBound] = [
        TuningBound(key: "drain_timeout", range: 1...3600, unit: "seconds", value: { $0.drainTimeout }),
        TuningBound(key: "max_udp_flows", range: 1...16_777_216, unit: nil, value: { $0.maxUDPFlows }),
        TuningBound(key: "max_sticky_entries", range: 1...67_108_864, unit: nil, value: { $0.maxStickyEntries }),
        TuningBound(key: "udp_socket_buffer", range: 4096...268_435_456, unit: "bytes", value: { $0.udpSocketBuffer }),
        TuningBound(key: "tcp_scratch_buffer", range: 16384...67_108_864, unit: "bytes", value: { $0.tcpScratchBuffer }),
        TuningBound(key: "tcp_max_pending", range: 4096...268_435_456, unit: "bytes", value: { $0.tcpMaxPending }),
        TuningBound(key: "connect_timeout", range: 1...300, unit: "seconds", value: { $0.connectTimeout }),
    ]

    /// nil means `auto` (one worker per core).
    public static func validateWorkers(_ workers: Int?, path: String) -> [ValidationIssue] {
        guard let w = workers, !workersRange.contains(w) else { return [] }
        return [.init(.invalidArgument, path, RuleText.notIn(w, workersRange) + " (or auto)")]
    }

    public static func validateTuning(_ t: Tuning, path: String) -> [ValidationIssue] {
        tuningBounds.compactMap { b in
            let v = b.value(t)
            return b.range.contains(v) ? nil : .init(.invalidArgument, FieldPath.field(path, b.key), RuleText.notIn(v, b.range, unit: b.unit))
        }
    }

    /// ELB v3 project ids are 32 lowercase hex digits.
    public static func validateProjectID(_ id: String, path: String) -> [ValidationIssue] {
        let ok = id.utf8.count == 32 && id.utf8.allSatisfy { ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "f")) }
        return ok ? [] : [.init(.invalidArgument, path, "\(RuleText.quoted(id)) is not a project id (32 lowercase hex digits)")]
    }

    /// `host:port` or `[v6]:port`, host an IP literal (no name lookups at start).
    public static func parseHostPort(_ text: String) -> (address: IPAddress, port: Int)? {
        let host: Substring, portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            portText = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon]
            if host.contains(":") { return nil }  // bare IPv6 needs brackets
            portText = text[text.index(after: colon)...]
        }
        guard let address = IPAddress(host), !portText.isEmpty, portText.allSatisfy({ $0.isASCII && $0.isNumber }),
              let port = Int(portText), portRange.contains(port) else { return nil }
        if text.hasPrefix("[") && address.isV4 { return nil }
        return (address, port)
    }

    /// The control section: endpoints, region, credentials, and docs/api.md §2's
    /// rule that a non-loopback TCP endpoint needs credentials.
    public static func validateControl(_ c: ControlConfig, path: String) -> [ValidationIssue] {
        var issues: [ValidationIssue] = []
        if let sock = c.unixSocket {
            let p = FieldPath.field(path, "unix_socket")
            if sock.isEmpty {
                issues.append(.init(.invalidArgument, p, "must not be empty (use null for no Unix socket)"))
            } else if sock.utf8.count > maxUnixSocketPathBytes {
                issues.append(.init(.invalidArgument, p, RuleText.tooLong(sock.utf8.count, max: maxUnixSocketPathBytes, unit: "bytes")
                                    + " (sockaddr_un.sun_path)"))
            }
        }
        if let listen = c.listen {
            let p = FieldPath.field(path, "listen")
            if let (address, _) = parseHostPort(listen) {
                if !address.isLoopback && c.awsCredentials.isEmpty && c.huaweiCredentials.isEmpty {
                    issues.append(.init(.invalidArgument, p,
                                        "refuses a non-loopback control address without credentials (\(listen)); add control.credentials or listen on 127.0.0.1 or [::1]"))
                }
            } else {
                issues.append(.init(.invalidArgument, p, "\(RuleText.quoted(listen)) is not host:port or [v6]:port with an IP address and a port in 1..65535"))
            }
        }
        let regionOK = !c.region.isEmpty && c.region.utf8.allSatisfy {
            ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z")) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || $0 == UInt8(ascii: "-")
        }
        if !regionOK {
            issues.append(.init(.invalidArgument, FieldPath.field(path, "region"),
                                "\(RuleText.quoted(c.region)) is not a region name (lowercase letters, digits and '-', e.g. us-west-2)"))
        }
        let creds = FieldPath.field(path, "credentials")
        for (i, k) in c.awsCredentials.enumerated() {
            let p = FieldPath.index(FieldPath.field(creds, "aws"), i)
            if k.accessKeyID.isEmpty { issues.append(.init(.invalidArgument, FieldPath.field(p, "access_key_id"), "must not be empty")) }
            if k.secretAccessKey.isEmpty { issues.append(.init(.invalidArgument, FieldPath.field(p, "secret_access_key"), "must not be empty")) }
        }
        for (i, k) in c.huaweiCredentials.enumerated() {
            let p = FieldPath.index(FieldPath.field(creds, "huawei"), i)
            if k.ak.isEmpty { issues.append(.init(.invalidArgument, FieldPath.field(p, "ak"), "must not be empty")) }
            if k.sk.isEmpty { issues.append(.init(.invalidArgument, FieldPath.field(p, "sk"), "must not be empty")) }
        }
        return issues
    }
}
