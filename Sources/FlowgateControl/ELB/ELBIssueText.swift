// The ELB v3 shape's wording of a core rule (Sources/FlowgateCore/Validation):
// "Invalid input for field/attribute <field>. Value: <as sent>. <rule>", as
// huaweicloudsdkelb callers and Tests/FlowgateControlTests/ELBValidationTests.swift
// expect it. The decision is the core validator's; this only words it.
import FlowgateCore

enum ELBIssueText {
    /// The first issue that has a rule, as a 400 ELB.8902 naming the field
    /// and the value the request sent there. Issues without a rule (e.g.
    /// references) are left to the whole-config validation of the update.
    static func firstError(_ issues: [ValidationIssue], sent body: ELBFields) -> ELBError? {
        for issue in issues {
            guard let rule = issue.rule else { continue }
            return .invalid(issue.path, body.raw(at: issue.path), text(rule, field: issue.path))
        }
        return nil
    }

    static func text(_ rule: ValidationRule, field: String) -> String {
        switch rule {
        case let .outOfRange(_, r, unit):
            // A nested field (slow_start.duration) names its unit; a top-level one does not.
            if field.contains(".") { return "\(field) must be an integer in \(r.lowerBound)..\(r.upperBound)\(unit.map { " " + $0 } ?? "")." }
            return "\(field) must be in \(r.lowerBound)..\(r.upperBound)."
        case let .tooLong(count, max):
            return "\(field) must be 0..\(max) characters, not \(count)."
        case let .notOneOf(_, allowed):
            return "\(field) must be one of \(allowed.joined(separator: ", "))."
        case .onlyTrue:
            return "\(field) can only be true."
        case .notIPAddress:
            return "\(field) must be an IPv4 or IPv6 address."
        case let .mustStartWith(prefix):
            return "\(field) must start with '\(prefix)'."
        case let .persistenceTypeNotAllowed(type, proto):
            if proto == .http {
                return "An HTTP pool supports only HTTP_COOKIE or APP_COOKIE session persistence."
            }
            return "A \(proto.rawValue) pool supports only SOURCE_IP session persistence; \(type.rawValue) needs an HTTP pool."
        case let .persistenceTimeout(_, r, proto):
            return persistenceTimeoutText(r, proto)
        case let .requiredWith(other):
            return "\(field) is required with \(other)."
        case let .onlyAllowedWith(other):
            return "\(field) is allowed only with \(other)."
        case .cookieName:
            return "\(field) must be 1..\(ConfigValidator.maxCookieNameLength) letters, digits, '-', '_' or '.'."
        }
    }

    static func persistenceTimeoutText(_ r: ClosedRange<Int>, _ proto: PoolProtocol) -> String {
        "session_persistence.persistence_timeout must be an integer in \(r.lowerBound)..\(r.upperBound) minutes for a \(proto.rawValue) pool."
    }
}
