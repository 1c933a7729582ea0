// Request-level rules of docs/api.md §3, each answered with the AWS code boto3
// maps to its typed exception, and the mapping of shared validation issues
// and apply failures to those codes.
import FlowgateCore

enum AWSRequestRules {
    enum ArnKind { case listener, accelerator }

    static func checkArn(_ arn: String, name: String, kind: ArnKind) throws(AWSError) {
        guard !arn.isEmpty else { throw .invalidArgument("\(name) must not be empty") }
        guard arn.count <= GlobalAcceleratorAPI.maxArnLength else {
            throw .invalidArgument("\(name) is \(arn.count) characters; at most \(GlobalAcceleratorAPI.maxArnLength) are allowed")
        }
        // arn:aws:globalaccelerator::<12 digits>:accelerator/<id>[/listener/<id>] (docs/architecture.md §2).
        let parts = arn.split(separator: ":", maxSplits: 5, omittingEmptySubsequences: false)
        var ok = parts.count == 6 && parts[0] == "arn" && parts[1] == "aws" && parts[2] == "globalaccelerator" && parts[3].isEmpty
            && parts[4].count == 12 && parts[4].allSatisfy { $0.isASCII && $0.isNumber }
        if ok {
            let resource = parts[5].split(separator: "/", omittingEmptySubsequences: false)
            switch kind {
            case .accelerator: ok = resource.count == 2 && resource[0] == "accelerator" && !resource[1].isEmpty
            case .listener: ok = resource.count == 4 && resource[0] == "accelerator" && !resource[1].isEmpty && resource[2] == "listener" && !resource[3].isEmpty
            }
        }
        guard ok else {
            let form = kind == .listener ? "arn:aws:globalaccelerator::<account>:accelerator/<id>/listener/<id>" : "arn:aws:globalaccelerator::<account>:accelerator/<id>"
            throw .invalidArgument("\(name) \(arn) is not of the form \(form)")
        }
    }

    static func enumValue<E: RawRepresentable & CaseIterable>(_ v: JSONValue, _ name: String, _: E.Type) throws(AWSError) -> E where E.RawValue == String {
        guard let s = v.stringValue else { throw .invalidArgument("\(name) must be a string, not \(v.typeName)") }
        guard let e = E(rawValue: s) else {
            throw .invalidArgument("\(name) \(RuleText.notOneOf(s, E.allCases.map(\.rawValue)))")
        }
        return e
    }

    /// The request's `PortRanges`: shapes and types are checked here (they
    /// are the request's own), the ranges by the shared rules of docs/architecture.md §14
    /// (count, 1..65535, FromPort <= ToPort, no overlap), paths relative to the body.
    static func portRanges(_ v: JSONValue) throws(AWSError) -> [PortRange] {
        guard let items = v.arrayValue else { throw .invalidArgument("PortRanges must be a list, not \(v.typeName)") }
        var out: [PortRange] = []
        for (i, item) in items.enumerated() {
            guard let members = item.objectMembers else { throw .invalidArgument("PortRanges[\(i)] must be an object with FromPort and ToPort, not \(item.typeName)") }
            func port(_ name: String) throws(AWSError) -> Int {
                guard let p = members.last(where: { $0.0 == name })?.1, !p.isNull else { throw .invalidPortRange("PortRanges[\(i)].\(name) is required") }
                guard let n = p.intValue else { throw .invalidArgument("PortRanges[\(i)].\(name) must be an integer, not \(p.typeName)") }
                return n
            }
            out.append(PortRange(fromPort: try port("FromPort"), toPort: try port("ToPort")))
        }
        if let issue = ConfigValidator.validatePortRanges(out, path: "PortRanges").first { throw error(for: issue) }
        return out
    }

    /// The AWS exception for a shared rule's issue (docs/api.md §3).
    static func error(for issue: ValidationIssue) -> AWSError {
        switch issue.kind {
        case .invalidPortRange: return .invalidPortRange(issue.description)
        case .limitExceeded: return AWSError("LimitExceededException", issue.description)
        case .notFound: return AWSError("ListenerNotFoundException", issue.description)
        case .invalidArgument, .conflict: return .invalidArgument(issue.description)
        }
    }

    static func map(_ failure: UpdateFailure, listenerArn: String) -> AWSError {
        switch failure {
        case let .invalid(issues):
            guard let issue = issues.first else { return .invalidArgument("the update broke a rule") }
            return error(for: issue)
        case let .apply(e):
            switch e.kind {
            case .addressInUse, .permissionDenied: return .invalidPortRange(e.message)
            case .descriptorBudget: return AWSError("LimitExceededException", e.message)
            case .other: return AWSError("InternalServiceErrorException", e.message, status: 500)
            }
        case let .persist(e):
            return AWSError("InternalServiceErrorException", "the update was not applied: \(e.description)", status: 500)
        case let .unavailable(reason):
            return AWSError("InternalServiceErrorException", "the update was not applied: \(reason)", status: 500)
        }
    }

    static func json(_ l: Listener) -> JSONValue {
        .object([
            ("ListenerArn", .string(l.listenerArn)),
            ("PortRanges", .array(l.portRanges.map { .object([("FromPort", .int($0.fromPort)), ("ToPort", .int($0.toPort))]) })),
            ("Protocol", .string(l.protocol.rawValue)),
            ("ClientAffinity", .string(l.clientAffinity.rawValue)),
        ])
    }

    static func json(_ a: Accelerator) -> JSONValue {
        let id = a.acceleratorArn.split(separator: "/").last.map(String.init) ?? ""
        return .object([
            ("AcceleratorArn", .string(a.acceleratorArn)),
            ("Name", .string(a.name)),
            ("IpAddressType", .string("IPV4")),
            ("Enabled", .bool(true)),
            ("IpSets", .array([])),
            ("DnsName", .string("\(id).flowgate.local")),
            ("Status", .string("DEPLOYED")),
        ])
    }
}
