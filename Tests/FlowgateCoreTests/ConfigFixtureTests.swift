import Testing
@testable import FlowgateCore

/// One rule broken in one spot of `baseConfig`.
struct ConfigFixture: Sendable, CustomTestStringConvertible {
    var name: String
    var old: String
    var new: String
    var expected: [String]
    var testDescription: String { name }
    init(_ name: String, _ old: String, _ new: String, _ expected: String...) {
        self.name = name; self.old = old; self.new = new; self.expected = expected
    }
}

let configFixtures: [ConfigFixture] = [
    // Listener: port ranges.
    ConfigFixture("ToPort above 65535", "ToPort: 8009}", "ToPort: 70000}",
            "flowgate.yaml:6:47: \(L0).PortRanges[0].ToPort: 70000 is not in 1..65535"),
    ConfigFixture("FromPort 0", "FromPort: 8000,", "FromPort: 0,",
            "flowgate.yaml:6:33: \(L0).PortRanges[0].FromPort: 0 is not in 1..65535"),
    ConfigFixture("FromPort above ToPort", "[{FromPort: 8000, ToPort: 8009}]", "[{FromPort: 8009, ToPort: 8000}]",
            "flowgate.yaml:6:47: \(L0).PortRanges[0].ToPort: ToPort 8000 is less than FromPort 8009"),
    ConfigFixture("overlapping ranges", "[{FromPort: 8000, ToPort: 8009}]",
            "[{FromPort: 8000, ToPort: 8009}, {FromPort: 8005, ToPort: 8010}]",
            "flowgate.yaml:6:54: \(L0).PortRanges[1]: 8005-8010 overlaps PortRanges[0] (8000-8009)"),
    ConfigFixture("duplicate range", "[{FromPort: 8000, ToPort: 8009}]",
            "[{FromPort: 8000, ToPort: 8009}, {FromPort: 8000, ToPort: 8009}]",
            "flowgate.yaml:6:54: \(L0).PortRanges[1]: 8000-8009 overlaps PortRanges[0] (8000-8009)"),
    ConfigFixture("empty PortRanges", "[{FromPort: 8000, ToPort: 8009}]", "[]",
            "flowgate.yaml:6:21: \(L0).PortRanges: at least 1 port range is required"),
    ConfigFixture("11 port ranges", "[{FromPort: 8000, ToPort: 8009}]",
            "[" + (0..<11).map { "{FromPort: \(8000 + $0), ToPort: \(8000 + $0)}" }.joined(separator: ", ") + "]",
            "flowgate.yaml:6:21: \(L0).PortRanges: at most 10 port ranges per listener, got 11"),
    ConfigFixture("range without ToPort", "[{FromPort: 8000, ToPort: 8009}]", "[{FromPort: 8000}]",
            "flowgate.yaml:6:22: \(L0).PortRanges[0].ToPort: required key is missing; expected an integer"),
    ConfigFixture("PortRanges missing", "        PortRanges: [{FromPort: 8000, ToPort: 8009}]\n", "",
            "flowgate.yaml:5:9: \(L0).PortRanges: required key is missing; expected a list of {FromPort, ToPort}"),
    // Listener: enums, ARN, bind, idle timeout, pool reference.
    ConfigFixture("lowercase Protocol", "Protocol: TCP", "Protocol: tcp",
            "flowgate.yaml:7:19: \(L0).Protocol: \"tcp\" is not one of TCP, UDP"),
    ConfigFixture("bad ClientAffinity", "Protocol: TCP", "Protocol: TCP\n        ClientAffinity: SOURCE",
            "flowgate.yaml:8:25: \(L0).ClientAffinity: \"SOURCE\" is not one of NONE, SOURCE_IP"),
    ConfigFixture("ListenerArn not of listener form", "listener/0a1b2c3d", "listener/0a1b2c3",
            "flowgate.yaml:5:22: \(L0).ListenerArn: \"\(accArn)/listener/0a1b2c3\" is not a listener ARN (arn:aws:globalaccelerator::<12 digits>:accelerator/<uuid>/listener/<8 hex>)"),
    ConfigFixture("ListenerArn of another accelerator", "eb47d3db0c81/listener", "eb47d3db0c82/listener",
            "flowgate.yaml:5:22: \(L0).ListenerArn: \"arn:aws:globalaccelerator::123456789012:accelerator/75702d00-f682-4895-b84d-eb47d3db0c82/listener/0a1b2c3d\" does not belong to accelerator \(accArn)"),
    ConfigFixture("bind not an IP", "bind: 127.0.0.1", "bind: 127.0.0.256",
            "flowgate.yaml:9:15: \(L0).bind: \"127.0.0.256\" is not an IPv4 or IPv6 address literal"),
    ConfigFixture("idle_timeout too small", "bind: 127.0.0.1", "bind: 127.0.0.1\n        idle_timeout: 0",
            "flowgate.yaml:10:23: \(L0).idle_timeout: 0 is not in 1..4000 seconds"),
    ConfigFixture("tcp_defer_accept too long", "bind: 127.0.0.1", "bind: 127.0.0.1\n        tcp_defer_accept: 601",
            "flowgate.yaml:10:27: \(L0).tcp_defer_accept: 601 is not in 1..600 seconds"),
    ConfigFixture("tcp_fastopen 0", "bind: 127.0.0.1", "bind: 127.0.0.1\n        tcp_fastopen: 0",
            "flowgate.yaml:10:23: \(L0).tcp_fastopen: 0 is not in 1..65535 pending connections"),
    ConfigFixture("unknown pool_id", "pool_id: 161835ef-0207-4300-ab5a-cf9c48f9f5ad", "pool_id: 161835ef-0207-4300-ab5a-cf9c48f9f5ae",
            "flowgate.yaml:8:18: \(L0).pool_id: no pool with id \"161835ef-0207-4300-ab5a-cf9c48f9f5ae\""),
    ConfigFixture("UDP listener on a TCP pool", "Protocol: TCP", "Protocol: UDP",
            "flowgate.yaml:8:18: \(L0).pool_id: \"\(poolID0)\" is a TCP pool; a UDP listener fronts a UDP pool"),
    ConfigFixture("pool_id missing", "        pool_id: 161835ef-0207-4300-ab5a-cf9c48f9f5ad\n", "",
            "flowgate.yaml:5:9: \(L0).pool_id: required key is missing; expected a text value"),
    // Pools.
    ConfigFixture("lb_algorithm misspelt", "lb_algorithm: ROUND_ROBIN", "lb_algorithm: ROUND-ROBIN",
            "flowgate.yaml:14:19: pools[0].lb_algorithm: \"ROUND-ROBIN\" is not one of ROUND_ROBIN, LEAST_CONNECTIONS, SOURCE_IP"),
    ConfigFixture("pool protocol missing", "    protocol: TCP\n", "",
            "flowgate.yaml:11:5: pools[0].protocol: required key is missing; expected one of TCP, UDP, HTTP"),
    ConfigFixture("pool id not a UUID", "  - id: 161835ef-0207-4300-ab5a-cf9c48f9f5ad", "  - id: web-pool",
            "flowgate.yaml:8:18: \(L0).pool_id: no pool with id \"\(poolID0)\"",
            "flowgate.yaml:11:9: pools[0].id: \"web-pool\" is not a UUID (8-4-4-4-12 hex digits)"),
    ConfigFixture("pool name too long", "    name: web", "    name: " + String(repeating: "é", count: 256),
            "flowgate.yaml:12:11: pools[0].name: 256 characters, at most 255 allowed"),
    ConfigFixture("admin_state_up false", "    lb_algorithm: ROUND_ROBIN", "    lb_algorithm: ROUND_ROBIN\n    admin_state_up: false",
            "flowgate.yaml:15:21: pools[0].admin_state_up: only true is supported"),
    ConfigFixture("cookie persistence on a TCP pool", "    lb_algorithm: ROUND_ROBIN",
            "    lb_algorithm: ROUND_ROBIN\n    session_persistence: {type: HTTP_COOKIE}",
            "flowgate.yaml:15:33: pools[0].session_persistence.type: \"HTTP_COOKIE\" is not allowed on a TCP pool; TCP and UDP pools allow only SOURCE_IP"),
    ConfigFixture("persistence timeout above 60 on TCP", "    lb_algorithm: ROUND_ROBIN",
            "    lb_algorithm: ROUND_ROBIN\n    session_persistence: {type: SOURCE_IP, persistence_timeout: 61}",
            "flowgate.yaml:15:65: pools[0].session_persistence.persistence_timeout: 61 is not in 1..60 minutes"),
    ConfigFixture("SOURCE_IP persistence on an HTTP pool", "    protocol: TCP\n    lb_algorithm: ROUND_ROBIN",
            "    protocol: HTTP\n    lb_algorithm: ROUND_ROBIN\n    session_persistence: {type: SOURCE_IP}",
            "flowgate.yaml:15:33: pools[0].session_persistence.type: \"SOURCE_IP\" is not allowed on an HTTP pool; HTTP pools allow HTTP_COOKIE or APP_COOKIE"),
    ConfigFixture("APP_COOKIE without cookie_name", "    protocol: TCP\n    lb_algorithm: ROUND_ROBIN",
            "    protocol: HTTP\n    lb_algorithm: ROUND_ROBIN\n    session_persistence: {type: APP_COOKIE}",
            "flowgate.yaml:15:26: pools[0].session_persistence.cookie_name: required with APP_COOKIE"),
    ConfigFixture("cookie_name with SOURCE_IP", "    lb_algorithm: ROUND_ROBIN",
            "    lb_algorithm: ROUND_ROBIN\n    session_persistence: {type: SOURCE_IP, cookie_name: sid}",
            "flowgate.yaml:15:57: pools[0].session_persistence.cookie_name: only allowed with APP_COOKIE"),
    ConfigFixture("cookie_name with a space", "    protocol: TCP\n    lb_algorithm: ROUND_ROBIN",
            "    protocol: HTTP\n    lb_algorithm: ROUND_ROBIN\n    session_persistence: {type: APP_COOKIE, cookie_name: \"my sid\"}",
            "flowgate.yaml:15:58: pools[0].session_persistence.cookie_name: \"my sid\" is not 1..1024 of letters, digits, '-', '_', '.'"),
    ConfigFixture("HTTP persistence timeout above 1440", "    protocol: TCP\n    lb_algorithm: ROUND_ROBIN",
            "    protocol: HTTP\n    lb_algorithm: ROUND_ROBIN\n    session_persistence: {type: HTTP_COOKIE, persistence_timeout: 1441}",
            "flowgate.yaml:15:67: pools[0].session_persistence.persistence_timeout: 1441 is not in 1..1440 minutes"),
    ConfigFixture("slow_start duration below 30", "    lb_algorithm: ROUND_ROBIN",
            "    lb_algorithm: ROUND_ROBIN\n    slow_start: {enable: true, duration: 20}",
            "flowgate.yaml:15:42: pools[0].slow_start.duration: 20 is not in 30..1200 seconds"),
    ConfigFixture("connection_drain timeout below 10", "    lb_algorithm: ROUND_ROBIN",
            "    lb_algorithm: ROUND_ROBIN\n    connection_drain: {enable: true, timeout: 5}",
            "flowgate.yaml:15:47: pools[0].connection_drain.timeout: 5 is not in 10..300 seconds"),
    ConfigFixture("unknown healthmonitor_id", "    lb_algorithm: ROUND_ROBIN",
            "    lb_algorithm: ROUND_ROBIN\n    healthmonitor_id: 00000000-0000-4000-8000-000000000000",
            "flowgate.yaml:15:23: pools[0].healthmonitor_id: no healthmonitor with id \"00000000-0000-4000-8000-000000000000\""),
    // Members.
    ConfigFixture("member address not an IP", "{address: 127.0.0.1, protocol_port: 9001", "{address: localhost, protocol_port: 9001",
            "flowgate.yaml:16:19: pools[0].members[0].address: \"localhost\" is not an IPv4 or IPv6 address literal"),
    ConfigFixture("member protocol_port 0", "protocol_port: 9001", "protocol_port: 0",
            "flowgate.yaml:16:45: pools[0].members[0].protocol_port: 0 is not in 1..65535"),
    ConfigFixture("weight above 100", "weight: 1}", "weight: 101}",
            "flowgate.yaml:17:59: pools[0].members[1].weight: 101 is not in 0..100"),
    ConfigFixture("duplicate member address and port", "protocol_port: 9002", "protocol_port: 9001",
            "flowgate.yaml:17:9: pools[0].members[1]: same address and protocol_port as members[0] (127.0.0.1:9001)"),
    ConfigFixture("same IPv6 member spelt twice",
            "{address: 127.0.0.1, protocol_port: 9001, weight: 3}\n      - {address: 127.0.0.1, protocol_port: 9002",
            "{address: \"::1\", protocol_port: 9001, weight: 3}\n      - {address: \"0::1\", protocol_port: 9001",
            "flowgate.yaml:17:9: pools[0].members[1]: same address and protocol_port as members[0] ([::1]:9001)"),
    // Types and keys.
    ConfigFixture("unknown pool key", "    name: web", "    nmae: web",
            "flowgate.yaml:12:5: pools[0]: unknown key \"nmae\"; allowed: id, name, description, protocol, lb_algorithm, session_persistence, slow_start, connection_drain, admin_state_up, healthmonitor_id, members, x_forwarded_headers"),
    ConfigFixture("unknown top-level key", "project_id:", "foo: 1\nproject_id:",
            "flowgate.yaml:1:1: unknown key \"foo\"; allowed: workers, state_file, control, tuning, http_cookie_name, accelerators, project_id, pools, healthmonitors, cluster"),
    ConfigFixture("weight not an integer", "weight: 3}", "weight: heavy}",
            "flowgate.yaml:16:59: pools[0].members[0].weight: expected an integer, got \"heavy\""),
    ConfigFixture("quoted port", "protocol_port: 9001", "protocol_port: \"9001\"",
            "flowgate.yaml:16:45: pools[0].members[0].protocol_port: expected an integer, got a quoted string \"9001\""),
    ConfigFixture("members not a list", "    members:\n      - {address: 127.0.0.1, protocol_port: 9001, weight: 3}\n      - {address: 127.0.0.1, protocol_port: 9002, weight: 1}",
            "    members: 127.0.0.1",
            "flowgate.yaml:15:14: pools[0].members: expected a list, got \"127.0.0.1\""),
    ConfigFixture("pool not a mapping", "    members:\n      - {address: 127.0.0.1, protocol_port: 9001, weight: 3}\n      - {address: 127.0.0.1, protocol_port: 9002, weight: 1}",
            "    members: []\n  - web",
            "flowgate.yaml:16:5: pools[1]: expected a mapping, got \"web\""),
    ConfigFixture("boolean spelt yes", "bind: 127.0.0.1", "bind: 127.0.0.1\n        connection_log: yes",
            "flowgate.yaml:10:25: \(L0).connection_log: expected true or false, got \"yes\""),
    // Daemon settings.
    ConfigFixture("workers 0", "project_id:", "workers: 0\nproject_id:",
            "flowgate.yaml:1:10: workers: 0 is not in 1..1024 (or auto)"),
    ConfigFixture("workers many", "project_id:", "workers: many\nproject_id:",
            "flowgate.yaml:1:10: workers: expected an integer or auto, got \"many\""),
    ConfigFixture("tuning out of range", "project_id:", "tuning:\n  max_udp_flows: 0\n  connect_timeout: 3000\nproject_id:",
            "flowgate.yaml:2:18: tuning.max_udp_flows: 0 is not in 1..16777216",
            "flowgate.yaml:3:20: tuning.connect_timeout: 3000 is not in 1..300 seconds"),
    ConfigFixture("port_ranges misspelt", "project_id:", "tuning:\n  port_ranges: per-port\nproject_id:",
            "flowgate.yaml:2:16: tuning.port_ranges: \"per-port\" is not one of auto, per_port, lookup"),
    ConfigFixture("port_ranges not text", "project_id:", "tuning:\n  port_ranges: [lookup]\nproject_id:",
            "flowgate.yaml:2:16: tuning.port_ranges: expected one of auto, per_port, lookup, got a list"),
    ConfigFixture("non-loopback control without credentials", "project_id:", "control:\n  listen: 0.0.0.0:9900\nproject_id:",
            "flowgate.yaml:2:11: control.listen: refuses a non-loopback control address without credentials (0.0.0.0:9900); add control.credentials or listen on 127.0.0.1 or [::1]"),
    ConfigFixture("control listen without port", "project_id:", "control:\n  listen: \"[::1]\"\nproject_id:",
            "flowgate.yaml:2:11: control.listen: \"[::1]\" is not host:port or [v6]:port with an IP address and a port in 1..65535"),
    ConfigFixture("unix socket path too long", "project_id:", "control:\n  unix_socket: /" + String(repeating: "s", count: 110) + "\nproject_id:",
            "flowgate.yaml:2:16: control.unix_socket: 111 bytes, at most 107 allowed (sockaddr_un.sun_path)"),
    ConfigFixture("project_id uppercase", "project_id: ac80359381a34f04b39a333b0ea5117a", "project_id: AC80359381A34F04B39A333B0EA5117A",
            "flowgate.yaml:1:13: project_id: \"AC80359381A34F04B39A333B0EA5117A\" is not a project id (32 lowercase hex digits)"),
    // YAML itself.
    ConfigFixture("unclosed flow sequence", "[{FromPort: 8000, ToPort: 8009}]", "[{FromPort: 8000, ToPort: 8009}",
            "flowgate.yaml:7:9: YAML syntax: did not find expected ',' or ']' (while parsing a flow sequence at 6:21)"),
    ConfigFixture("duplicate key", "    name: web", "    name: web\n    name: api",
            "flowgate.yaml:12:5: duplicate key \"name\""),
]

@Test(arguments: configFixtures)
func fixtureReportsExactLocatedMessage(_ f: ConfigFixture) {
    #expect(errorLines(edited(f.old, f.new)) == f.expected)
}

@Test func baseConfigLoads() {
    #expect(errorLines(baseConfig) == [])
}
