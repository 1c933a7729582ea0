// Rules for the `cluster:` section (docs/cluster.md §1).

extension ConfigValidator {
    public static let clusterNameMaxLength = 64
    public static let clusterEndpointsRange = 1...16
    public static let clusterDialTimeoutRange = 1...60
    public static let clusterRequestTimeoutRange = 1...300

    /// One etcd client URL: `http://` and an IP literal with a port
    /// (`http://[::1]:2379` for IPv6). No names: nothing is looked up at start.
    public static func parseEtcdEndpoint(_ url: String) -> (host: String, port: Int)? {
        guard url.hasPrefix("http://") else { return nil }
        var rest = url.dropFirst("http://".count)
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard let (address, port) = parseHostPort(String(rest)) else { return nil }
        return (address.description, port)
    }

    /// A cluster or instance name: it becomes one path segment of an etcd key.
    static func validateClusterName(_ value: String, path: String) -> [ValidationIssue] {
        if value.isEmpty { return [.init(.invalidArgument, path, "must not be empty")] }
        if value.count > clusterNameMaxLength {
            return [.init(.invalidArgument, path, RuleText.tooLong(value.count, max: clusterNameMaxLength))]
        }
        let ok = value.utf8.allSatisfy { b in
            (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z"))
                || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) || b == UInt8(ascii: "-") || b == UInt8(ascii: "_")
                || b == UInt8(ascii: ".")
        }
        if !ok || value == "." || value == ".." {
            return [.init(.invalidArgument, path, "\(RuleText.quoted(value)) is not a name (letters, digits, '-', '_' and '.'; it becomes one segment of an etcd key)")]
        }
        return []
    }

    public static func validateCluster(_ c: ClusterConfig, path: String) -> [ValidationIssue] {
        var issues = validateClusterName(c.name, path: FieldPath.field(path, "name"))
        issues += validateClusterName(c.instance, path: FieldPath.field(path, "instance"))
        let etcd = FieldPath.field(path, "etcd")
        let ep = FieldPath.field(etcd, "endpoints")
        if !clusterEndpointsRange.contains(c.endpoints.count) {
            issues.append(.init(.invalidArgument, ep, "has \(c.endpoints.count) entries; \(clusterEndpointsRange.lowerBound)..\(clusterEndpointsRange.upperBound) allowed"))
        }
        var seen: [String: Int] = [:]
        for (i, url) in c.endpoints.enumerated() {
            let p = FieldPath.index(ep, i)
            if url.hasPrefix("https://") {
                issues.append(.init(.invalidArgument, p, "\(RuleText.quoted(url)): https is not supported (the etcd client speaks plain HTTP); use http:// on a trusted network"))
            } else if parseEtcdEndpoint(url) == nil {
                issues.append(.init(.invalidArgument, p, "\(RuleText.quoted(url)) is not http://host:port with an IP address and a port in 1..65535"))
            } else if let first = seen[url] {
                issues.append(.init(.conflict, p, "duplicate endpoint (also \(FieldPath.index(ep, first)))"))
            } else {
                seen[url] = i
            }
        }
        switch (c.username, c.password) {
        case (nil, nil): break
        case (.some(let u), .some(let pw)):
            if u.isEmpty { issues.append(.init(.invalidArgument, FieldPath.field(etcd, "username"), "must not be empty")) }
            if pw.isEmpty { issues.append(.init(.invalidArgument, FieldPath.field(etcd, "password"), "must not be empty")) }
        case (.some, nil):
            issues.append(.init(.invalidArgument, FieldPath.field(etcd, "password"), "is required with username"))
        case (nil, .some):
            issues.append(.init(.invalidArgument, FieldPath.field(etcd, "username"), "is required with password"))
        }
        if !clusterDialTimeoutRange.contains(c.dialTimeout) {
            issues.append(.init(.invalidArgument, FieldPath.field(etcd, "dial_timeout"), RuleText.notIn(c.dialTimeout, clusterDialTimeoutRange, unit: "seconds")))
        }
        if !clusterRequestTimeoutRange.contains(c.requestTimeout) {
            issues.append(.init(.invalidArgument, FieldPath.field(etcd, "request_timeout"), RuleText.notIn(c.requestTimeout, clusterRequestTimeoutRange, unit: "seconds")))
        }
        return issues
    }
}
