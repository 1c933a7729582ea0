// Member rules: docs/api.md §4.4.

extension ConfigValidator {
    public static let weightRange = 0...100

    /// One member on its own: id, name, address literal, port, weight.
    public static func validateMember(_ m: Member, path: String) -> [ValidationIssue] {
        var issues = validateUUID(m.id, path: FieldPath.field(path, "id"))
        issues += validateName(m.name, path: FieldPath.field(path, "name"))
        if IPAddress(m.address) == nil {
            issues.append(.init(.invalidArgument, FieldPath.field(path, "address"),
                                "\(RuleText.quoted(m.address)) is not an IPv4 or IPv6 address literal", rule: .notIPAddress))
        }
        if let port = m.protocolPort, !portRange.contains(port) {
            issues.append(.init(.invalidArgument, FieldPath.field(path, "protocol_port"), RuleText.notIn(port, portRange),
                                rule: .outOfRange(port, portRange, unit: nil)))
        }
        if !weightRange.contains(m.weight) {
            issues.append(.init(.invalidArgument, FieldPath.field(path, "weight"), RuleText.notIn(m.weight, weightRange),
                                rule: .outOfRange(m.weight, weightRange, unit: nil)))
        }
        return issues
    }

    /// The members of one pool together: ids unique, no two with the same
    /// address and protocol_port (ELB.8907). `path` is the `members` field.
    public static func validateMemberSet(_ members: [Member], path: String) -> [ValidationIssue] {
        // Dictionaries, not pairwise scans: pools may grow to thousands of
        // members through CreateMember, and this runs on every update.
        var issues: [ValidationIssue] = []
        var ids: [String: Int] = [:]
        var endpoints: [EndpointKey: Int] = [:]
        for (i, m) in members.enumerated() {
            let p = FieldPath.index(path, i)
            if let j = ids[m.id] {
                issues.append(.init(.conflict, FieldPath.field(p, "id"),
                                    "duplicate id \(RuleText.quoted(m.id)) (also \(lastComponent(path))[\(j)])"))
            } else {
                ids[m.id] = i
            }
            let key = EndpointKey(m)
            if let j = endpoints[key] {
                issues.append(.init(.conflict, p,
                                    "same address and protocol_port as \(lastComponent(path))[\(j)] (\(endpointText(m)))"))
            } else {
                endpoints[key] = i
            }
        }
        return issues
    }

    /// A member's address (as an IP value when it parses, IPv4-mapped IPv6
    /// unmapped: the data plane reaches both forms at the same IPv4 address) and port.
    struct EndpointKey: Hashable {
        var address: IPAddress?
        var text: String
        var port: Int?
        init(_ m: Member) {
            address = IPAddress(m.address)?.unmapped
            text = address == nil ? m.address : ""
            port = m.protocolPort
        }
    }

    /// The member of `existing` that `candidate` would duplicate (same address
    /// and protocol_port), for CreateMember/UpdateMember (409 ELB.8907).
    public static func conflictingMember(_ candidate: Member, in existing: [Member]) -> Member? {
        existing.first { $0.id != candidate.id && sameEndpoint($0, candidate) }
    }

    /// Same address (compared as IP values, so `::1` equals `0::1` and
    /// `::ffff:10.0.0.1` equals `10.0.0.1`) and same port.
    public static func sameEndpoint(_ a: Member, _ b: Member) -> Bool {
        guard a.protocolPort == b.protocolPort else { return false }
        if let x = IPAddress(a.address), let y = IPAddress(b.address) { return x.unmapped == y.unmapped }
        return a.address == b.address
    }

    /// `127.0.0.1:9001`, `[::1]:9001`, or the bare address when the port follows the client's.
    public static func endpointText(_ m: Member) -> String {
        let addr = IPAddress(m.address).map(\.description) ?? m.address
        guard let port = m.protocolPort else { return addr }
        return addr.contains(":") ? "[\(addr)]:\(port)" : "\(addr):\(port)"
    }
}
