// The ELB v3 REST shape (docs/api.md §4) under `/v3/{project_id}/elb/`: pools,
// members and health monitors. Every answer carries `X-Request-Id`, the only
// place huaweicloudsdkcore reads an exception's request id from.
import FoundationEssentials
import FlowgateCore

public final class ELBAPI: @unchecked Sendable {
    let service: ControlService
    /// Member and monitor ids; injectable so tests get fixed ids.
    public var newID: @Sendable () -> String = { UUID().uuidString.lowercased() }

    public init(service: ControlService) { self.service = service }

    public func handle(_ request: ControlRequest, requestID: String) -> ControlResponse {
        let seg = request.pathSegments
        var operation = "ELB"
        let result: Result<(Int, JSONValue?), ELBError>
        do throws(ELBError) {
            guard seg.count >= 4, seg[0] == "v3", seg[2] == "elb" else { throw ELBError.notFound("resource", request.rawPath) }
            guard seg[1] == service.config.projectID else {
                throw ELBError(403, "ELB.8905", "project_id \(seg[1]) is not this load balancer's project.")
            }
            let rest = Array(seg[3...])
            let m = request.method
            switch (m, rest.count, rest[0]) {
            case ("GET", 1, "pools"): operation = "ListPools"; result = .success((200, try listPools(request)))
            case ("GET", 2, "pools"): operation = "ShowPool"; result = .success((200, try showPool(rest[1], requestID)))
            case ("PUT", 2, "pools"): operation = "UpdatePool"; result = .success((200, try updatePool(rest[1], request, requestID)))
            case ("GET", 3, "pools") where rest[2] == "members":
                operation = "ListMembers"; result = .success((200, try listMembers(rest[1], request)))
            case ("POST", 3, "pools") where rest[2] == "members":
                operation = "CreateMember"; result = .success((201, try createMember(rest[1], request, requestID)))
            case ("GET", 4, "pools") where rest[2] == "members":
                operation = "ShowMember"; result = .success((200, try showMember(rest[1], rest[3], requestID)))
            case ("PUT", 4, "pools") where rest[2] == "members":
                operation = "UpdateMember"; result = .success((200, try updateMember(rest[1], rest[3], request, requestID)))
            case ("DELETE", 4, "pools") where rest[2] == "members":
                operation = "DeleteMember"; result = .success((204, try deleteMember(rest[1], rest[3])))
            case ("GET", 1, "healthmonitors"): operation = "ListHealthMonitors"; result = .success((200, try listMonitors(request)))
            case ("POST", 1, "healthmonitors"): operation = "CreateHealthMonitor"; result = .success((201, try createMonitor(request, requestID)))
            case ("GET", 2, "healthmonitors"): operation = "ShowHealthMonitor"; result = .success((200, try showMonitor(rest[1], requestID)))
            case ("PUT", 2, "healthmonitors"): operation = "UpdateHealthMonitor"; result = .success((200, try updateMonitor(rest[1], request, requestID)))
            case ("DELETE", 2, "healthmonitors"): operation = "DeleteHealthMonitor"; result = .success((204, try deleteMonitor(rest[1])))
            default:
                throw ELBError(404, "ELB.8904", "\(m) \(request.rawPath) is not an operation of this API.")
            }
        } catch {
            result = .failure(error)
        }
        switch result {
        case let .success((status, body)):
            service.metrics.countRequest(operation: operation, status: status)
            guard var body else { return ControlResponse(status: status, headers: [("X-Request-Id", requestID)]) }
            if case var .object(members) = body { members.append(("request_id", .string(requestID))); body = .object(members) }
            return ControlResponse(status: status, headers: [("X-Request-Id", requestID), ("Content-Type", "application/json;charset=utf-8")], json: body)
        case let .failure(e):
            service.metrics.countRequest(operation: operation, status: e.status)
            return ELBAPI.errorResponse(e, requestID: requestID)
        }
    }

    public static func errorResponse(_ e: ELBError, requestID: String) -> ControlResponse {
        ControlResponse(status: e.status, headers: [("X-Request-Id", requestID), ("Content-Type", "application/json;charset=utf-8")],
                        json: .object([("error_code", .string(e.code)), ("error_msg", .string(e.message)), ("request_id", .string(requestID))]))
    }

    // MARK: pools

    func listPools(_ request: ControlRequest) throws(ELBError) -> JSONValue {
        let q = request.queryItems
        let config = service.config
        let pools = filtered(config.pools, q, by: [("id", \.id), ("name", \.name), ("protocol", { $0.protocol.rawValue }),
                                                   ("lb_algorithm", \.lbAlgorithm), ("description", \.description)])
        let (page, info) = try paginate(pools, q, id: \.id)
        return .object([("pools", .array(page.map { ELBJSON.pool($0, config: config, service: service) })), ("page_info", info)])
    }

    func showPool(_ id: String, _ requestID: String) throws(ELBError) -> JSONValue {
        let config = service.config
        guard let pool = config.pool(id: id) else { throw .notFound("pool", id) }
        return .object([("pool", ELBJSON.pool(pool, config: config, service: service))])
    }

    func updatePool(_ id: String, _ request: ControlRequest, _ requestID: String) throws(ELBError) -> JSONValue {
        let body = try wrapped(request, "pool")
        let (updated, pool) = try commit { (config: inout FlowgateConfig) throws(ELBError) -> Pool in
            let i = try ELBAPI.poolIndex(id, in: config)
            try ELBRules.applyPoolUpdate(body, to: &config.pools[i])
            return config.pools[i]
        }
        return .object([("pool", ELBJSON.pool(pool, config: updated, service: service))])
    }

    // MARK: members

    func listMembers(_ poolID: String, _ request: ControlRequest) throws(ELBError) -> JSONValue {
        let config = service.config
        guard let pool = config.pool(id: poolID) else { throw .notFound("pool", poolID) }
        let q = request.queryItems
        let members = filtered(pool.members, q, by: [("id", \.id), ("name", \.name), ("address", \.address),
                                                     ("protocol_port", { $0.protocolPort.map(String.init) ?? "" }),
                                                     ("weight", { String($0.weight) })])
        let (page, info) = try paginate(members, q, id: \.id)
        return .object([("members", .array(page.map { ELBJSON.member($0, poolID: poolID, config: config, service: service) })), ("page_info", info)])
    }

    func showMember(_ poolID: String, _ memberID: String, _ requestID: String) throws(ELBError) -> JSONValue {
        let config = service.config
        guard let pool = config.pool(id: poolID) else { throw .notFound("pool", poolID) }
        guard let m = pool.members.first(where: { $0.id == memberID }) else { throw .notFound("member", memberID) }
        return .object([("member", ELBJSON.member(m, poolID: poolID, config: config, service: service))])
    }

    func createMember(_ poolID: String, _ request: ControlRequest, _ requestID: String) throws(ELBError) -> JSONValue {
        let body = try wrapped(request, "member")
        // A missing pool answers 404 before the body's rules, as ELB does.
        guard service.config.pool(id: poolID) != nil else { throw .notFound("pool", poolID) }
        let member = try ELBRules.newMember(body, id: newID())
        let (updated, _) = try commit { (config: inout FlowgateConfig) throws(ELBError) in
            let i = try ELBAPI.poolIndex(poolID, in: config)
            if let dup = ConfigValidator.conflictingMember(member, in: config.pools[i].members) {
                throw ELBError(409, "ELB.8907", "A member with address \(member.address) and protocol_port \(member.protocolPort.map(String.init) ?? "null") already exists in pool \(poolID) (member \(dup.id)).")
            }
            config.pools[i].members.append(member)
        }
        return .object([("member", ELBJSON.member(member, poolID: poolID, config: updated, service: service))])
    }

    func updateMember(_ poolID: String, _ memberID: String, _ request: ControlRequest, _ requestID: String) throws(ELBError) -> JSONValue {
        let body = try wrapped(request, "member")
        let (updated, m) = try commit { (config: inout FlowgateConfig) throws(ELBError) -> Member in
            let (i, j) = try ELBAPI.memberIndex(poolID, memberID, in: config)
            try ELBRules.applyMemberUpdate(body, to: &config.pools[i].members[j])
            return config.pools[i].members[j]
        }
        return .object([("member", ELBJSON.member(m, poolID: poolID, config: updated, service: service))])
    }

    func deleteMember(_ poolID: String, _ memberID: String) throws(ELBError) -> JSONValue? {
        _ = try commit { (config: inout FlowgateConfig) throws(ELBError) in
            let (i, j) = try ELBAPI.memberIndex(poolID, memberID, in: config)
            config.pools[i].members.remove(at: j)
        }
        return nil
    }

    // MARK: health monitors

    func listMonitors(_ request: ControlRequest) throws(ELBError) -> JSONValue {
        let q = request.queryItems
        let config = service.config
        let monitors = filtered(config.healthmonitors, q, by: [("id", \.id)])
        let (page, info) = try paginate(monitors, q, id: \.id)
        return .object([("healthmonitors", .array(page.map { ELBJSON.monitor($0, config: config) })), ("page_info", info)])
    }

    func showMonitor(_ id: String, _ requestID: String) throws(ELBError) -> JSONValue {
        let config = service.config
        guard let h = config.healthmonitors.first(where: { $0.id == id }) else { throw .notFound("healthmonitor", id) }
        return .object([("healthmonitor", ELBJSON.monitor(h, config: config))])
    }

    func createMonitor(_ request: ControlRequest, _ requestID: String) throws(ELBError) -> JSONValue {
        let body = try wrapped(request, "healthmonitor")
        guard let pv = body.raw("pool_id"), !pv.isNull else { throw .invalid("pool_id", nil, "pool_id is required.") }
        guard let poolID = pv.stringValue else { throw .invalid("pool_id", pv, "pool_id must be a string.") }
        guard let tv = body.raw("type"), !tv.isNull else { throw .invalid("type", nil, "type is required: one of TCP, UDP_CONNECT, HTTP.") }
        // The pool's checks come before the body's rules, as ELB answers;
        // they run again under the gate, where they decide.
        try ELBAPI.checkMonitorFree(poolID, in: service.config)
        var h = HealthMonitor(id: newID(), type: .tcp)
        try ELBRules.applyMonitor(body, to: &h)
        let monitor = h
        let (updated, _) = try commit { (config: inout FlowgateConfig) throws(ELBError) in
            let i = try ELBAPI.checkMonitorFree(poolID, in: config)
            config.healthmonitors.append(monitor)
            config.pools[i].healthmonitorID = monitor.id
        }
        return .object([("healthmonitor", ELBJSON.monitor(monitor, config: updated))])
    }

    func updateMonitor(_ id: String, _ request: ControlRequest, _ requestID: String) throws(ELBError) -> JSONValue {
        let body = try wrapped(request, "healthmonitor")
        guard service.config.healthmonitors.contains(where: { $0.id == id }) else { throw .notFound("healthmonitor", id) }
        if body.has("pool_id") { throw .invalid("pool_id", body.raw("pool_id"), "pool_id cannot be updated.") }
        let (updated, monitor) = try commit { (config: inout FlowgateConfig) throws(ELBError) -> HealthMonitor in
            guard let i = config.healthmonitors.firstIndex(where: { $0.id == id }) else { throw .notFound("healthmonitor", id) }
            try ELBRules.applyMonitor(body, to: &config.healthmonitors[i])
            return config.healthmonitors[i]
        }
        return .object([("healthmonitor", ELBJSON.monitor(monitor, config: updated))])
    }

    func deleteMonitor(_ id: String) throws(ELBError) -> JSONValue? {
        _ = try commit { (config: inout FlowgateConfig) throws(ELBError) in
            guard config.healthmonitors.contains(where: { $0.id == id }) else { throw .notFound("healthmonitor", id) }
            config.healthmonitors.removeAll { $0.id == id }
            for i in config.pools.indices where config.pools[i].healthmonitorID == id { config.pools[i].healthmonitorID = nil }
        }
        return nil
    }

    // MARK: shared parts

    /// Parses `{"<key>": {...}}`.
    func wrapped(_ request: ControlRequest, _ key: String) throws(ELBError) -> ELBFields {
        let value: JSONValue
        do throws(JSONValue.ParseError) { value = try JSONValue.parse(request.body) } catch {
            throw .malformed("The request body is not valid JSON: \(error.description)")
        }
        guard let top = value.objectMembers else { throw .malformed("The request body must be a JSON object {\"\(key)\": {...}}.") }
        guard let inner = top.last(where: { $0.0 == key })?.1 else { throw .malformed("The request body must hold \"\(key)\".") }
        guard let members = inner.objectMembers else { throw .invalid(key, inner, "\(key) must be an object.") }
        return ELBFields(members, prefix: "") // fields of the wrapper object are named without it (`name`, not `pool.name`)
    }

    /// Runs the change through the shared update path, with the gate held
    /// (`ControlService.update`), so every lookup inside `change` sees the
    /// config it replaces; maps failures to ELB codes.
    func commit<Value>(_ change: (inout FlowgateConfig) throws(ELBError) -> Value) throws(ELBError) -> (FlowgateConfig, Value) {
        do throws(ChangeFailure<ELBError>) {
            let committed = try service.update(change)
            return (committed.config, committed.value)
        } catch {
            switch error {
            case let .refused(e): throw e
            case let .failed(f): throw ELBAPI.map(f)
            }
        }
    }

    static func poolIndex(_ id: String, in config: FlowgateConfig) throws(ELBError) -> Int {
        guard let i = config.pools.firstIndex(where: { $0.id == id }) else { throw .notFound("pool", id) }
        return i
    }

    static func memberIndex(_ poolID: String, _ memberID: String, in config: FlowgateConfig) throws(ELBError) -> (Int, Int) {
        let i = try poolIndex(poolID, in: config)
        guard let j = config.pools[i].members.firstIndex(where: { $0.id == memberID }) else { throw .notFound("member", memberID) }
        return (i, j)
    }

    /// The pool's index when it exists and has no health monitor yet.
    @discardableResult
    static func checkMonitorFree(_ poolID: String, in config: FlowgateConfig) throws(ELBError) -> Int {
        let i = try poolIndex(poolID, in: config)
        if let existing = config.pools[i].healthmonitorID {
            throw ELBError(409, "ELB.8907", "pool \(poolID) already has health monitor \(existing).")
        }
        return i
    }

    static func map(_ failure: UpdateFailure) -> ELBError {
        switch failure {
        case let .invalid(issues):
            guard let issue = issues.first else { return ELBError(400, "ELB.8902", "the update broke a rule") }
            switch issue.kind {
            case .notFound: return ELBError(404, "ELB.8904", issue.description)
            case .conflict: return ELBError(409, "ELB.8907", issue.description)
            default: return ELBError(400, "ELB.8902", issue.description)
            }
        case let .apply(e):
            switch e.kind {
            case .other: return ELBError(500, "ELB.8906", e.message)
            default: return ELBError(400, "ELB.8902", e.message)
            }
        case let .persist(e): return ELBError(500, "ELB.8906", "the update was not applied: \(e.description)")
        case let .unavailable(reason): return ELBError(503, "ELB.8906", "the update was not applied: \(reason)")
        }
    }

    /// The items matching every filter the query names: a key given more
    /// than once matches any of its values (`?name=a&name=b`), as ELB v3 lists do.
    func filtered<T>(_ items: [T], _ q: [(String, String)], by fields: [(String, (T) -> String)]) -> [T] {
        var out = items
        for (key, value) in fields {
            let wanted = q.filter { $0.0 == key }.map(\.1)
            guard !wanted.isEmpty else { continue }
            out = out.filter { wanted.contains(value($0)) }
        }
        return out
    }

    /// `limit` 1..2000 (default 2000) and `marker` (the id of the last item of
    /// the previous page). page_info as the ELB v3 API returns it.
    func paginate<T>(_ items: [T], _ q: [(String, String)], id: KeyPath<T, String>) throws(ELBError) -> ([T], JSONValue) {
        var limit = 2000
        if let l = q.last(where: { $0.0 == "limit" })?.1 {
            guard let n = Int(l), (1...2000).contains(n) else { throw .invalid("limit", .string(l), "limit must be an integer in 1..2000.") }
            limit = n
        }
        var start = 0
        if let marker = q.last(where: { $0.0 == "marker" })?.1 {
            guard let i = items.firstIndex(where: { $0[keyPath: id] == marker }) else {
                throw .invalid("marker", .string(marker), "marker must be the id of an item of this list.")
            }
            start = i + 1
        }
        let end = min(items.count, start + limit)
        let page = Array(items[start..<end])
        var info: [(String, JSONValue)] = []
        info.append(("previous_marker", page.first.map { .string($0[keyPath: id]) } ?? .null))
        info.append(("current_count", .int(page.count)))
        if end < items.count, let last = page.last { info.append(("next_marker", .string(last[keyPath: id]))) }
        return (page, .object(info))
    }
}
