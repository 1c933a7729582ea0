// Request-level rules of api.md §B (UpdatePool, members, health monitors):
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

/// Typed readers over a request object; each error names the field.
struct ELBFields {
    let members: [(String, JSONValue)]
    let prefix: String

    init(_ members: [(String, JSONValue)], prefix: String) { self.members = members; self.prefix = prefix }

    func has(_ name: String) -> Bool { members.contains { $0.0 == name } }
    func raw(_ name: String) -> JSONValue? { members.last { $0.0 == name }?.1 }

    func string(_ name: String, maxLength: Int) throws(ELBError) -> String? {
        guard let v = raw(name), !v.isNull else { return nil }
        guard let s = v.stringValue else { throw .invalid(name, v, "\(name) must be a string.") }
        guard s.count <= maxLength else { throw .invalid(name, v, "\(name) must be 0..\(maxLength) characters, not \(s.count).") }
        return s
    }

    func int(_ name: String, _ range: ClosedRange<Int>) throws(ELBError) -> Int? {
        guard let v = raw(name), !v.isNull else { return nil }
        guard let n = v.intValue else { throw .invalid(name, v, "\(name) must be an integer in \(range.lowerBound)..\(range.upperBound).") }
        guard range.contains(n) else { throw .invalid(name, v, "\(name) must be in \(range.lowerBound)..\(range.upperBound).") }
        return n
    }

    func bool(_ name: String) throws(ELBError) -> Bool? {
        guard let v = raw(name), !v.isNull else { return nil }
        guard let b = v.boolValue else { throw .invalid(name, v, "\(name) must be true or false.") }
        return b
    }

    func oneOf(_ name: String, _ allowed: [String]) throws(ELBError) -> String? {
        guard let v = raw(name), !v.isNull else { return nil }
        guard let s = v.stringValue, allowed.contains(s) else {
            throw .invalid(name, v, "\(name) must be one of \(allowed.joined(separator: ", ")).")
        }
        return s
    }
}

enum ELBRules {
    // Ranges and names come from the shared validators (design §9), so a
    // request and the config file accept the same values.
    static let algorithms = LoadBalancerRegistry.names
    typealias Rules = ConfigValidator

    /// Applies an UpdatePool body to `pool`; partial: only fields sent change.
    static func applyPoolUpdate(_ body: ELBFields, to pool: inout Pool) throws(ELBError) {
        if let name = try body.string("name", maxLength: Rules.maxNameLength) { pool.name = name }
        if let d = try body.string("description", maxLength: Rules.maxNameLength) { pool.description = d }
        if let up = try body.bool("admin_state_up") {
            guard up else { throw .invalid("admin_state_up", .bool(up), "admin_state_up can only be true.") }
        }
        if let a = try body.oneOf("lb_algorithm", algorithms) { pool.lbAlgorithm = a }
        if body.has("session_persistence") {
            let v = body.raw("session_persistence")!
            if v.isNull {
                pool.sessionPersistence = nil
            } else {
                guard let m = v.objectMembers else { throw .invalid("session_persistence", v, "session_persistence must be an object or null.") }
                pool.sessionPersistence = try persistence(ELBFields(m, prefix: "session_persistence"), pool: pool)
            }
        }
        if body.has("slow_start"), let v = body.raw("slow_start"), !v.isNull {
            guard let m = v.objectMembers else { throw .invalid("slow_start", v, "slow_start must be an object {enable, duration}.") }
            let f = ELBFields(m, prefix: "slow_start")
            if let e = try f.bool("enable") { pool.slowStart.enable = e }
            do throws(ELBError) {
                if let d = try f.int("duration", Rules.slowStartDurationRange) { pool.slowStart.duration = d }
            } catch {
                throw .invalid("slow_start.duration", f.raw("duration"), "slow_start.duration must be an integer in \(Rules.slowStartDurationRange.lowerBound)..\(Rules.slowStartDurationRange.upperBound) seconds.")
            }
        }
    }

    static func persistence(_ f: ELBFields, pool: Pool) throws(ELBError) -> SessionPersistence {
        guard f.has("type"), let typeValue = f.raw("type"), !typeValue.isNull else {
            throw .invalid("session_persistence.type", nil, "session_persistence.type is required: one of SOURCE_IP, HTTP_COOKIE, APP_COOKIE.")
        }
        guard let s = typeValue.stringValue, let type = PersistenceType(rawValue: s) else {
            throw .invalid("session_persistence.type", typeValue, "session_persistence.type must be one of SOURCE_IP, HTTP_COOKIE, APP_COOKIE.")
        }
        let isHTTP = pool.protocol == .http
        if isHTTP && type == .sourceIP {
            throw .invalid("session_persistence.type", typeValue, "An HTTP pool supports only HTTP_COOKIE or APP_COOKIE session persistence.")
        }
        if !isHTTP && type != .sourceIP {
            throw .invalid("session_persistence.type", typeValue, "A \(pool.protocol.rawValue) pool supports only SOURCE_IP session persistence; \(s) needs an HTTP pool.")
        }
        let range = isHTTP ? Rules.httpPersistenceTimeoutRange : Rules.l4PersistenceTimeoutRange
        let timeout: Int
        do throws(ELBError) {
            timeout = try f.int("persistence_timeout", range) ?? Rules.defaultPersistenceTimeout(for: pool.protocol)
        } catch {
            throw .invalid("session_persistence.persistence_timeout", f.raw("persistence_timeout"),
                           "session_persistence.persistence_timeout must be an integer in \(range.lowerBound)..\(range.upperBound) minutes for a \(pool.protocol.rawValue) pool.")
        }
        var cookie: String?
        if let v = f.raw("cookie_name"), !v.isNull {
            guard type == .appCookie else {
                throw .invalid("session_persistence.cookie_name", v, "session_persistence.cookie_name is allowed only with APP_COOKIE.")
            }
            guard let c = v.stringValue, Rules.isCookieName(c) else {
                throw .invalid("session_persistence.cookie_name", v, "session_persistence.cookie_name must be 1..\(Rules.maxCookieNameLength) letters, digits, '-', '_' or '.'.")
            }
            cookie = c
        } else if type == .appCookie {
            throw .invalid("session_persistence.cookie_name", nil, "session_persistence.cookie_name is required with APP_COOKIE.")
        }
        return SessionPersistence(type: type, cookieName: cookie, persistenceTimeout: timeout)
    }

    static func newMember(_ f: ELBFields, id: String) throws(ELBError) -> Member {
        guard let av = f.raw("address"), !av.isNull else { throw .invalid("address", nil, "address is required: an IPv4 or IPv6 address.") }
        guard let address = av.stringValue, let ip = IPAddress(address) else {
            throw .invalid("address", av, "address must be an IPv4 or IPv6 address.")
        }
        _ = ip
        let port = try f.int("protocol_port", Rules.portRange)
        let weight = try f.int("weight", Rules.weightRange) ?? 1
        let name = try f.string("name", maxLength: Rules.maxNameLength) ?? ""
        let up = try f.bool("admin_state_up") ?? true
        return Member(id: id, name: name, address: address, protocolPort: port, weight: weight, adminStateUp: up)
    }

    static func applyMemberUpdate(_ f: ELBFields, to m: inout Member) throws(ELBError) {
        for fixed in ["address", "protocol_port", "subnet_cidr_id"] where f.has(fixed) {
            throw .invalid(fixed, f.raw(fixed), "\(fixed) cannot be updated; delete the member and create a new one.")
        }
        if let w = try f.int("weight", Rules.weightRange) { m.weight = w }
        if let n = try f.string("name", maxLength: Rules.maxNameLength) { m.name = n }
        if let up = try f.bool("admin_state_up") { m.adminStateUp = up }
    }

    static func applyMonitor(_ f: ELBFields, to h: inout HealthMonitor) throws(ELBError) {
        if let t = try f.oneOf("type", HealthMonitor.Kind.allCases.map(\.rawValue)) { h.type = HealthMonitor.Kind(rawValue: t)! }
        if let v = try f.int("delay", Rules.monitorDelayRange) { h.delay = v }
        if let v = try f.int("timeout", Rules.monitorTimeoutRange) { h.timeout = v }
        if let v = try f.int("max_retries", Rules.monitorRetriesRange) { h.maxRetries = v }
        if let v = try f.int("max_retries_down", Rules.monitorRetriesRange) { h.maxRetriesDown = v }
        if f.has("monitor_port") { h.monitorPort = try f.int("monitor_port", Rules.portRange) }
        if let v = try f.string("name", maxLength: Rules.maxNameLength) { h.name = v }
        if let v = try f.string("url_path", maxLength: 80) {
            guard v.hasPrefix("/") else { throw .invalid("url_path", .string(v), "url_path must start with '/'.") }
            h.urlPath = v
        }
        if let v = try f.string("expected_codes", maxLength: 64) { h.expectedCodes = v }
        if let v = try f.bool("admin_state_up") { h.adminStateUp = v }
    }
}
