// Response bodies of the ELB v3 shape: every documented key, so SDK models
// fill every attribute (docs/api.md §4).
import FlowgateCore

enum ELBJSON {
    static func pool(_ p: Pool, config: FlowgateConfig, service: ControlService) -> JSONValue {
        let listeners = config.allListeners.filter { $0.poolID == p.id }
        let accelerators = config.accelerators.filter { a in a.listeners.contains { $0.poolID == p.id } }
        let v6 = p.members.contains { IPAddress($0.address).map { !$0.unmapped.isV4 } ?? false }
        let v4 = p.members.contains { IPAddress($0.address).map { $0.unmapped.isV4 } ?? false }
        var persistence: JSONValue = .null
        if let s = p.sessionPersistence {
            persistence = .object([("type", .string(s.type.rawValue)), ("cookie_name", s.cookieName.map { .string($0) } ?? .null),
                                   ("persistence_timeout", .int(s.persistenceTimeout))])
        }
        return .object([
            ("id", .string(p.id)),
            ("name", .string(p.name)),
            ("description", .string(p.description)),
            ("lb_algorithm", .string(p.lbAlgorithm)),
            ("protocol", .string(p.protocol.rawValue)),
            ("listeners", .array(listeners.map { .object([("id", .string($0.listenerArn))]) })),
            ("loadbalancers", .array(accelerators.map { .object([("id", .string($0.acceleratorArn))]) })),
            ("members", .array(p.members.map { .object([("id", .string($0.id))]) })),
            ("healthmonitor_id", p.healthmonitorID.map { .string($0) } ?? .null),
            ("project_id", .string(config.projectID)),
            ("ip_version", .string(v6 && v4 ? "dualstack" : (v6 ? "v6" : "v4"))),
            ("session_persistence", persistence),
            ("slow_start", .object([("enable", .bool(p.slowStart.enable)), ("duration", .int(p.slowStart.duration))])),
            ("connection_drain", .object([("enable", .bool(p.connectionDrain.enable)), ("timeout", .int(p.connectionDrain.timeout))])),
            ("admin_state_up", .bool(p.adminStateUp)),
            // Flowgate's own (docs/api.md): SDKs ignore keys they do not know.
            ("x_forwarded_headers", .bool(p.addsForwardedHeaders)),
        ])
    }

    static func member(_ m: Member, poolID: String, config: FlowgateConfig, service: ControlService) -> JSONValue {
        let v4 = IPAddress(m.address).map { $0.unmapped.isV4 } ?? true
        let status = service.memberStatus?(poolID, m.id) ?? .noMonitor
        return .object([
            ("id", .string(m.id)),
            ("name", .string(m.name)),
            ("project_id", .string(config.projectID)),
            ("admin_state_up", .bool(m.adminStateUp)),
            ("subnet_cidr_id", .null),
            ("protocol_port", m.protocolPort.map { .int($0) } ?? .null),
            ("weight", .int(m.weight)),
            ("address", .string(m.address)),
            ("ip_version", .string(v4 ? "v4" : "v6")),
            ("operating_status", .string(status.rawValue)),
        ])
    }

    static func monitor(_ h: HealthMonitor, config: FlowgateConfig) -> JSONValue {
        let pools = config.pools.filter { $0.healthmonitorID == h.id }
        return .object([
            ("id", .string(h.id)),
            ("name", .string(h.name)),
            ("type", .string(h.type.rawValue)),
            ("delay", .int(h.delay)),
            ("timeout", .int(h.timeout)),
            ("max_retries", .int(h.maxRetries)),
            ("max_retries_down", .int(h.maxRetriesDown)),
            ("monitor_port", h.monitorPort.map { .int($0) } ?? .null),
            ("url_path", .string(h.urlPath)),
            ("expected_codes", .string(h.expectedCodes)),
            ("http_method", .string("GET")),
            ("domain_name", .null),
            ("admin_state_up", .bool(h.adminStateUp)),
            ("pools", .array(pools.map { .object([("id", .string($0.id))]) })),
            ("project_id", .string(config.projectID)),
        ])
    }
}
