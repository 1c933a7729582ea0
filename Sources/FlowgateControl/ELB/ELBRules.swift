// Request-level rules of docs/api.md §4 (UpdatePool, members, health monitors):
// each broken rule is a 400 ELB.8902 naming the field and its allowed values.
import FlowgateCore

public struct ELBError: Error, Sendable, Equatable {
    public var status: Int
    public var code: String
    public var message: String
    public init(_ status: Int, _ code: String, _ message: String) { self.status = status; self.code = code; self.message = message }

    static func invalid(_ field: String, _ value: JSONValue?, _ rule: String) -> ELBError {
        let shown = value.map { $0.stringValue ?? $0.serialized() } ?? "null"
        return ELBError(400, "ELB.8902", "Invalid input for field/attribute \(field). Value: \(shown). \(rule)")
    }
    static func malformed(_ rule: String) -> ELBError { ELBError(400, "ELB.8902", rule) }
    static func notFound(_ kind: String, _ id: String) -> ELBError { ELBError(404, "ELB.8904", "\(kind) \(id) could not be found.") }
}

/// Typed readers over a request object: they check the JSON shape only
/// (string, integer, boolean, object) and leave every value rule to the core
/// validator (`ELBRules.check`); each error names the field.
struct ELBFields {
    let members: [(String, JSONValue)]
    let prefix: String

    init(_ members: [(String, JSONValue)], prefix: String) { self.members = members; self.prefix = prefix }

    func has(_ name: String) -> Bool { members.contains { $0.0 == name } }
    /// The field's path as errors name it: `slow_start.enable` inside an object, `name` at the top.
    func field(_ name: String) -> String { prefix.isEmpty ? name : "\(prefix).\(name)" }
    func raw(_ name: String) -> JSONValue? { members.last { $0.0 == name }?.1 }

    /// The value sent at a core field path (`session_persistence.type`), nil when absent.
    func raw(at path: String) -> JSONValue? {
        var fields = self
        let parts = path.split(separator: ".").map(String.init)
        for (i, part) in parts.enumerated() {
            guard let v = fields.raw(part) else { return nil }
            if i == parts.count - 1 { return v }
            guard let inner = v.objectMembers else { return nil }
            fields = ELBFields(inner, prefix: part)
        }
        return nil
    }

    func string(_ name: String) throws(ELBError) -> String? {
        guard let v = raw(name), !v.isNull else { return nil }
        guard let s = v.stringValue else { throw .invalid(field(name), v, "\(field(name)) must be a string.") }
        return s
    }

    /// An integer; `range` only words the error for a non-integer (the core checks the range).
    func int(_ name: String, _ range: ClosedRange<Int>) throws(ELBError) -> Int? {
        guard let v = raw(name), !v.isNull else { return nil }
        guard let n = v.intValue else { throw .invalid(field(name), v, "\(field(name)) must be an integer in \(range.lowerBound)..\(range.upperBound).") }
        return n
    }

    func bool(_ name: String) throws(ELBError) -> Bool? {
        guard let v = raw(name), !v.isNull else { return nil }
        guard let b = v.boolValue else { throw .invalid(field(name), v, "\(field(name)) must be true or false.") }
        return b
    }

    /// A string naming one of `allowed` (an enum of the model, e.g. a monitor type).
    func oneOf(_ name: String, _ allowed: [String]) throws(ELBError) -> String? {
        guard let v = raw(name), !v.isNull else { return nil }
        guard let s = v.stringValue, allowed.contains(s) else {
            throw .invalid(field(name), v, "\(field(name)) must be one of \(allowed.joined(separator: ", ")).")
        }
        return s
    }
}

/// Decodes ELB request bodies into model values, then runs the core
/// validator's rules on the changed object (docs/architecture.md §14: one set of rules for
/// the file and both APIs) and words the first broken one the ELB way.
enum ELBRules {
    typealias Rules = ConfigValidator

    /// The changed object against the core rules; throws the first broken one.
    static func check(_ issues: [ValidationIssue], _ body: ELBFields) throws(ELBError) {
        if let error = ELBIssueText.firstError(issues, sent: body) { throw error }
    }

    /// The UpdatePool fields Flowgate applies. Any other field is refused, not
    /// ignored: a setting the API accepts must do what it says.
    /// `x_forwarded_headers` is Flowgate's own (docs/api.md): no ELB v3 pool field fits.
    static let poolUpdateFields = ["name", "description", "admin_state_up", "lb_algorithm", "session_persistence",
                                   "slow_start", "connection_drain", "x_forwarded_headers"]

    /// Refuses the first field of `body` outside `known` (a typo, or an ELB setting Flowgate does not implement).
    static func refuseUnknown(_ body: ELBFields, known: [String], operation: String) throws(ELBError) {
        if let (name, value) = body.members.first(where: { !known.contains($0.0) }) {
            let field = body.field(name)
            throw .invalid(field, value, "\(field) is not a field \(operation) applies in Flowgate; it takes \(known.joined(separator: ", ")).")
        }
    }

    /// Applies an UpdatePool body to `pool`; partial: only fields sent change.
    static func applyPoolUpdate(_ body: ELBFields, to pool: inout Pool) throws(ELBError) {
        try refuseUnknown(body, known: poolUpdateFields, operation: "UpdatePool")
        if let name = try body.string("name") { pool.name = name }
        if let d = try body.string("description") { pool.description = d }
        if let up = try body.bool("admin_state_up") { pool.adminStateUp = up }
        if let x = try body.bool("x_forwarded_headers") { pool.xForwardedHeaders = x }
        if let v = body.raw("lb_algorithm"), !v.isNull {
            guard let a = v.stringValue else {
                throw .invalid("lb_algorithm", v, "lb_algorithm must be one of \(LoadBalancerRegistry.names.joined(separator: ", ")).")
            }
            pool.lbAlgorithm = a
        }
        if let v = body.raw("session_persistence") {
            if v.isNull {
                pool.sessionPersistence = nil
            } else {
                guard let m = v.objectMembers else { throw .invalid("session_persistence", v, "session_persistence must be an object or null.") }
                pool.sessionPersistence = try persistence(ELBFields(m, prefix: "session_persistence"), pool: pool)
            }
        }
        if let v = body.raw("slow_start"), !v.isNull {
            guard let m = v.objectMembers else { throw .invalid("slow_start", v, "slow_start must be an object {enable, duration}.") }
            let f = ELBFields(m, prefix: "slow_start")
            try refuseUnknown(f, known: ["enable", "duration"], operation: "UpdatePool")
            if let e = try f.bool("enable") { pool.slowStart.enable = e }
            if let d = f.raw("duration"), !d.isNull {
                guard let n = d.intValue else {
                    let r = Rules.slowStartDurationRange
                    throw .invalid("slow_start.duration", d, "slow_start.duration must be an integer in \(r.lowerBound)..\(r.upperBound) seconds.")
                }
                pool.slowStart.duration = n
            }
        }
        if let v = body.raw("connection_drain"), !v.isNull {
            guard let m = v.objectMembers else { throw .invalid("connection_drain", v, "connection_drain must be an object {enable, timeout}.") }
            let f = ELBFields(m, prefix: "connection_drain")
            try refuseUnknown(f, known: ["enable", "timeout"], operation: "UpdatePool")
            if let e = try f.bool("enable") { pool.connectionDrain.enable = e }
            if let t = f.raw("timeout"), !t.isNull {
                guard let n = t.intValue else {
                    let r = Rules.connectionDrainTimeoutRange
                    throw .invalid("connection_drain.timeout", t, "connection_drain.timeout must be an integer in \(r.lowerBound)..\(r.upperBound) seconds.")
                }
                pool.connectionDrain.timeout = n
            }
        }
        try check(Rules.validatePool(pool, path: ""), body)
    }

    /// The session_persistence object as a model value; its rules are the core's.
    static func persistence(_ f: ELBFields, pool: Pool) throws(ELBError) -> SessionPersistence {
        guard let typeValue = f.raw("type"), !typeValue.isNull else {
            throw .invalid("session_persistence.type", nil, "session_persistence.type is required: one of SOURCE_IP, HTTP_COOKIE, APP_COOKIE.")
        }
        guard let s = typeValue.stringValue, let type = PersistenceType(rawValue: s) else {
            throw .invalid("session_persistence.type", typeValue, "session_persistence.type must be one of SOURCE_IP, HTTP_COOKIE, APP_COOKIE.")
        }
        var timeout = Rules.defaultPersistenceTimeout(for: pool.protocol)
        if let v = f.raw("persistence_timeout"), !v.isNull {
            guard let n = v.intValue else {
                let range = pool.protocol == .http ? Rules.httpPersistenceTimeoutRange : Rules.l4PersistenceTimeoutRange
                throw .invalid("session_persistence.persistence_timeout", v, ELBIssueText.persistenceTimeoutText(range, pool.protocol))
            }
            timeout = n
        }
        var cookie: String?
        if let v = f.raw("cookie_name"), !v.isNull {
            guard let c = v.stringValue else {
                // Not a string: worded as the rule the core would apply to a string there.
                let rule: ValidationRule = type == .appCookie ? .cookieName : .onlyAllowedWith("APP_COOKIE")
                throw .invalid("session_persistence.cookie_name", v, ELBIssueText.text(rule, field: "session_persistence.cookie_name"))
            }
            cookie = c
        }
        return SessionPersistence(type: type, cookieName: cookie, persistenceTimeout: timeout)
    }

    static func newMember(_ f: ELBFields, id: String) throws(ELBError) -> Member {
        guard let av = f.raw("address"), !av.isNull else { throw .invalid("address", nil, "address is required: an IPv4 or IPv6 address.") }
        guard let address = av.stringValue else { throw .invalid("address", av, "address must be an IPv4 or IPv6 address.") }
        let port = try f.int("protocol_port", Rules.portRange)
        let weight = try f.int("weight", Rules.weightRange) ?? 1
        let name = try f.string("name") ?? ""
        let up = try f.bool("admin_state_up") ?? true
        let member = Member(id: id, name: name, address: address, protocolPort: port, weight: weight, adminStateUp: up)
        try check(Rules.validateMember(member, path: ""), f)
        return member
    }

    static func applyMemberUpdate(_ f: ELBFields, to m: inout Member) throws(ELBError) {
        for fixed in ["address", "protocol_port", "subnet_cidr_id"] where f.has(fixed) {
            throw .invalid(fixed, f.raw(fixed), "\(fixed) cannot be updated; delete the member and create a new one.")
        }
        if let w = try f.int("weight", Rules.weightRange) { m.weight = w }
        if let n = try f.string("name") { m.name = n }
        if let up = try f.bool("admin_state_up") { m.adminStateUp = up }
        try check(Rules.validateMember(m, path: ""), f)
    }

    static func applyMonitor(_ f: ELBFields, to h: inout HealthMonitor) throws(ELBError) {
        if let t = try f.oneOf("type", HealthMonitor.Kind.allCases.map(\.rawValue)), let kind = HealthMonitor.Kind(rawValue: t) { h.type = kind }
        if let v = try f.int("delay", Rules.monitorDelayRange) { h.delay = v }
        if let v = try f.int("timeout", Rules.monitorTimeoutRange) { h.timeout = v }
        if let v = try f.int("max_retries", Rules.monitorRetriesRange) { h.maxRetries = v }
        if let v = try f.int("max_retries_down", Rules.monitorRetriesRange) { h.maxRetriesDown = v }
        if f.has("monitor_port") { h.monitorPort = try f.int("monitor_port", Rules.portRange) }
        if let v = try f.string("name") { h.name = v }
        if let v = try f.string("url_path") { h.urlPath = v }
        if let v = try f.string("expected_codes") { h.expectedCodes = v }
        if let v = try f.bool("admin_state_up") { h.adminStateUp = v }
        try check(Rules.validateHealthMonitor(h, path: ""), f)
    }
}
