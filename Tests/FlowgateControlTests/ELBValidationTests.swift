// Every UpdatePool and member rule of docs/api.md §4: status, error_code,
// error_msg, X-Request-Id, and that nothing changed.
import Testing
@testable import FlowgateControl
import FlowgateCore

@Suite struct ELBValidationTests {
    struct Case: Sendable, CustomStringConvertible {
        var method = "PUT"
        var path = "pools/\(Fixture.tcpPool)"
        var body: String
        var status = 400
        var code = "ELB.8902"
        var message: String
        var description: String { "\(method) \(path) \(body)" }
    }

    static func pool(_ inner: String, _ id: String = Fixture.tcpPool) -> (String, String) { ("pools/\(id)", #"{"pool": {\#(inner)}}"#) }

    static let cases: [Case] = [
        Case(body: "{oops", message: "The request body is not valid JSON: malformed JSON at byte 1: expected a member name"),
        Case(body: "{}", message: "The request body must hold \"pool\"."),
        Case(body: #"{"pool": 3}"#, message: "Invalid input for field/attribute pool. Value: 3. pool must be an object."),
        Case(body: #"{"pool": {"name": "\#(String(repeating: "n", count: 256))"}}"#,
             message: "Invalid input for field/attribute name. Value: \(String(repeating: "n", count: 256)). name must be 0..255 characters, not 256."),
        Case(body: #"{"pool": {"name": 7}}"#, message: "Invalid input for field/attribute name. Value: 7. name must be a string."),
        Case(body: #"{"pool": {"description": "\#(String(repeating: "é", count: 256))"}}"#,
             message: "Invalid input for field/attribute description. Value: \(String(repeating: "é", count: 256)). description must be 0..255 characters, not 256."),
        Case(body: #"{"pool": {"admin_state_up": false}}"#, message: "Invalid input for field/attribute admin_state_up. Value: false. admin_state_up can only be true."),
        Case(body: #"{"pool": {"admin_state_up": "yes"}}"#, message: "Invalid input for field/attribute admin_state_up. Value: yes. admin_state_up must be true or false."),
        // Fields Flowgate does not apply are refused, never ignored (a typo, or an ELB setting it does not implement).
        Case(body: #"{"pool": {"name": "x", "lb_algorithim": "SOURCE_IP"}}"#,
             message: "Invalid input for field/attribute lb_algorithim. Value: SOURCE_IP. lb_algorithim is not a field UpdatePool applies in Flowgate; it takes name, description, admin_state_up, lb_algorithm, session_persistence, slow_start, connection_drain, x_forwarded_headers."),
        Case(body: #"{"pool": {"member_deletion_protection_enable": true}}"#,
             message: "Invalid input for field/attribute member_deletion_protection_enable. Value: true. member_deletion_protection_enable is not a field UpdatePool applies in Flowgate; it takes name, description, admin_state_up, lb_algorithm, session_persistence, slow_start, connection_drain, x_forwarded_headers."),
        // Flowgate's own switch: a boolean, and false only on an HTTP pool (this one is TCP).
        Case(body: #"{"pool": {"x_forwarded_headers": "no"}}"#,
             message: "Invalid input for field/attribute x_forwarded_headers. Value: no. x_forwarded_headers must be true or false."),
        Case(body: #"{"pool": {"x_forwarded_headers": false}}"#, message: "Invalid input for field/attribute x_forwarded_headers. Value: false. x_forwarded_headers is allowed only with protocol HTTP."),
        Case(body: #"{"pool": {"slow_start": {"enable": true, "duratoin": 60}}}"#,
             message: "Invalid input for field/attribute slow_start.duratoin. Value: 60. slow_start.duratoin is not a field UpdatePool applies in Flowgate; it takes enable, duration."),
        Case(body: #"{"pool": {"connection_drain": {"enable": true, "timeout": 5}}}"#,
             message: "Invalid input for field/attribute connection_drain.timeout. Value: 5. connection_drain.timeout must be an integer in 10..300 seconds."),
        Case(body: #"{"pool": {"connection_drain": {"enable": "yes"}}}"#,
             message: "Invalid input for field/attribute connection_drain.enable. Value: yes. connection_drain.enable must be true or false."),
        Case(body: #"{"pool": {"lb_algorithm": "ROUND-ROBIN"}}"#,
             message: "Invalid input for field/attribute lb_algorithm. Value: ROUND-ROBIN. lb_algorithm must be one of ROUND_ROBIN, LEAST_CONNECTIONS, SOURCE_IP."),
        Case(body: #"{"pool": {"lb_algorithm": "round_robin"}}"#,
             message: "Invalid input for field/attribute lb_algorithm. Value: round_robin. lb_algorithm must be one of ROUND_ROBIN, LEAST_CONNECTIONS, SOURCE_IP."),
        Case(body: #"{"pool": {"session_persistence": {"persistence_timeout": 5}}}"#,
             message: "Invalid input for field/attribute session_persistence.type. Value: null. session_persistence.type is required: one of SOURCE_IP, HTTP_COOKIE, APP_COOKIE."),
        Case(body: #"{"pool": {"session_persistence": {"type": "COOKIE"}}}"#,
             message: "Invalid input for field/attribute session_persistence.type. Value: COOKIE. session_persistence.type must be one of SOURCE_IP, HTTP_COOKIE, APP_COOKIE."),
        Case(body: #"{"pool": {"session_persistence": {"type": "HTTP_COOKIE"}}}"#,
             message: "Invalid input for field/attribute session_persistence.type. Value: HTTP_COOKIE. A TCP pool supports only SOURCE_IP session persistence; HTTP_COOKIE needs an HTTP pool."),
        Case(body: #"{"pool": {"session_persistence": {"type": "APP_COOKIE", "cookie_name": "s"}}}"#,
             message: "Invalid input for field/attribute session_persistence.type. Value: APP_COOKIE. A TCP pool supports only SOURCE_IP session persistence; APP_COOKIE needs an HTTP pool."),
        Case(path: "pools/\(Fixture.udpPool)", body: #"{"pool": {"session_persistence": {"type": "HTTP_COOKIE"}}}"#,
             message: "Invalid input for field/attribute session_persistence.type. Value: HTTP_COOKIE. A UDP pool supports only SOURCE_IP session persistence; HTTP_COOKIE needs an HTTP pool."),
        Case(body: #"{"pool": {"session_persistence": {"type": "SOURCE_IP", "persistence_timeout": 61}}}"#,
             message: "Invalid input for field/attribute session_persistence.persistence_timeout. Value: 61. session_persistence.persistence_timeout must be an integer in 1..60 minutes for a TCP pool."),
        Case(body: #"{"pool": {"session_persistence": {"type": "SOURCE_IP", "persistence_timeout": 0}}}"#,
             message: "Invalid input for field/attribute session_persistence.persistence_timeout. Value: 0. session_persistence.persistence_timeout must be an integer in 1..60 minutes for a TCP pool."),
        Case(body: #"{"pool": {"session_persistence": {"type": "SOURCE_IP", "cookie_name": "c"}}}"#,
             message: "Invalid input for field/attribute session_persistence.cookie_name. Value: c. session_persistence.cookie_name is allowed only with APP_COOKIE."),
        Case(path: "pools/\(Fixture.httpPool)", body: #"{"pool": {"session_persistence": {"type": "SOURCE_IP"}}}"#,
             message: "Invalid input for field/attribute session_persistence.type. Value: SOURCE_IP. An HTTP pool supports only HTTP_COOKIE or APP_COOKIE session persistence."),
        // Cookie persistence on an HTTP pool: accepted; its other fields are checked.
        Case(path: "pools/\(Fixture.httpPool)", body: #"{"pool": {"session_persistence": {"type": "HTTP_COOKIE", "persistence_timeout": 1441}}}"#,
             message: "Invalid input for field/attribute session_persistence.persistence_timeout. Value: 1441. session_persistence.persistence_timeout must be an integer in 1..1440 minutes for a HTTP pool."),
        Case(path: "pools/\(Fixture.httpPool)", body: #"{"pool": {"session_persistence": {"type": "HTTP_COOKIE", "persistence_timeout": "long"}}}"#,
             message: "Invalid input for field/attribute session_persistence.persistence_timeout. Value: long. session_persistence.persistence_timeout must be an integer in 1..1440 minutes for a HTTP pool."),
        Case(path: "pools/\(Fixture.httpPool)", body: #"{"pool": {"session_persistence": {"type": "APP_COOKIE"}}}"#,
             message: "Invalid input for field/attribute session_persistence.cookie_name. Value: null. session_persistence.cookie_name is required with APP_COOKIE."),
        Case(path: "pools/\(Fixture.httpPool)", body: #"{"pool": {"session_persistence": {"type": "APP_COOKIE", "cookie_name": 7}}}"#,
             message: "Invalid input for field/attribute session_persistence.cookie_name. Value: 7. session_persistence.cookie_name must be 1..1024 letters, digits, '-', '_' or '.'."),
        Case(path: "pools/\(Fixture.httpPool)", body: #"{"pool": {"session_persistence": {"type": "APP_COOKIE", "cookie_name": "bad cookie"}}}"#,
             message: "Invalid input for field/attribute session_persistence.cookie_name. Value: bad cookie. session_persistence.cookie_name must be 1..1024 letters, digits, '-', '_' or '.'."),
        Case(path: "pools/\(Fixture.httpPool)", body: #"{"pool": {"session_persistence": {"type": "HTTP_COOKIE", "cookie_name": "c"}}}"#,
             message: "Invalid input for field/attribute session_persistence.cookie_name. Value: c. session_persistence.cookie_name is allowed only with APP_COOKIE."),
        Case(body: #"{"pool": {"session_persistence": 5}}"#,
             message: "Invalid input for field/attribute session_persistence. Value: 5. session_persistence must be an object or null."),
        Case(body: #"{"pool": {"slow_start": {"enable": true, "duration": 29}}}"#,
             message: "Invalid input for field/attribute slow_start.duration. Value: 29. slow_start.duration must be an integer in 30..1200 seconds."),
        Case(body: #"{"pool": {"slow_start": {"enable": true, "duration": 1201}}}"#,
             message: "Invalid input for field/attribute slow_start.duration. Value: 1201. slow_start.duration must be an integer in 30..1200 seconds."),
        Case(body: #"{"pool": {"slow_start": {"enable": 1}}}"#,
             message: "Invalid input for field/attribute slow_start.enable. Value: 1. slow_start.enable must be true or false."),
        Case(path: "pools/00000000-0000-4000-8000-000000000000", body: #"{"pool": {"name": "x"}}"#, status: 404, code: "ELB.8904",
             message: "pool 00000000-0000-4000-8000-000000000000 could not be found."),
        // Members.
        Case(method: "POST", path: "pools/\(Fixture.tcpPool)/members", body: #"{"member": {"protocol_port": 80}}"#,
             message: "Invalid input for field/attribute address. Value: null. address is required: an IPv4 or IPv6 address."),
        Case(method: "POST", path: "pools/\(Fixture.tcpPool)/members", body: #"{"member": {"address": "10.0.0.256"}}"#,
             message: "Invalid input for field/attribute address. Value: 10.0.0.256. address must be an IPv4 or IPv6 address."),
        Case(method: "POST", path: "pools/\(Fixture.tcpPool)/members", body: #"{"member": {"address": "example.com"}}"#,
             message: "Invalid input for field/attribute address. Value: example.com. address must be an IPv4 or IPv6 address."),
        Case(method: "POST", path: "pools/\(Fixture.tcpPool)/members", body: #"{"member": {"address": "10.0.0.1", "protocol_port": 0}}"#,
             message: "Invalid input for field/attribute protocol_port. Value: 0. protocol_port must be in 1..65535."),
        Case(method: "POST", path: "pools/\(Fixture.tcpPool)/members", body: #"{"member": {"address": "10.0.0.1", "protocol_port": 65536}}"#,
             message: "Invalid input for field/attribute protocol_port. Value: 65536. protocol_port must be in 1..65535."),
        Case(method: "POST", path: "pools/\(Fixture.tcpPool)/members", body: #"{"member": {"address": "10.0.0.1", "weight": 101}}"#,
             message: "Invalid input for field/attribute weight. Value: 101. weight must be in 0..100."),
        Case(method: "POST", path: "pools/\(Fixture.tcpPool)/members", body: #"{"member": {"address": "10.0.0.1", "weight": -1}}"#,
             message: "Invalid input for field/attribute weight. Value: -1. weight must be in 0..100."),
        Case(method: "POST", path: "pools/\(Fixture.tcpPool)/members", body: #"{"member": {"address": "10.0.0.1", "weight": "3"}}"#,
             message: "Invalid input for field/attribute weight. Value: 3. weight must be an integer in 0..100."),
        Case(method: "POST", path: "pools/\(Fixture.tcpPool)/members", body: #"{"member": {"address": "10.0.0.1", "name": "\#(String(repeating: "m", count: 256))"}}"#,
             message: "Invalid input for field/attribute name. Value: \(String(repeating: "m", count: 256)). name must be 0..255 characters, not 256."),
        Case(method: "POST", path: "pools/\(Fixture.tcpPool)/members", body: #"{"member": {"address": "127.0.0.1", "protocol_port": 9001}}"#, status: 409, code: "ELB.8907",
             message: "A member with address 127.0.0.1 and protocol_port 9001 already exists in pool \(Fixture.tcpPool) (member \(Fixture.member1))."),
        Case(method: "POST", path: "pools/00000000-0000-4000-8000-000000000000/members", body: #"{"member": {"address": "10.0.0.1"}}"#, status: 404, code: "ELB.8904",
             message: "pool 00000000-0000-4000-8000-000000000000 could not be found."),
        Case(method: "PUT", path: "pools/\(Fixture.tcpPool)/members/\(Fixture.member1)", body: #"{"member": {"weight": 200}}"#,
             message: "Invalid input for field/attribute weight. Value: 200. weight must be in 0..100."),
        Case(method: "PUT", path: "pools/\(Fixture.tcpPool)/members/\(Fixture.member1)", body: #"{"member": {"address": "10.0.0.9"}}"#,
             message: "Invalid input for field/attribute address. Value: 10.0.0.9. address cannot be updated; delete the member and create a new one."),
        Case(method: "PUT", path: "pools/\(Fixture.tcpPool)/members/cccccccc-0000-4000-8000-000000000000", body: #"{"member": {"weight": 2}}"#, status: 404, code: "ELB.8904",
             message: "member cccccccc-0000-4000-8000-000000000000 could not be found."),
        Case(method: "DELETE", path: "pools/\(Fixture.tcpPool)/members/cccccccc-0000-4000-8000-000000000000", body: "", status: 404, code: "ELB.8904",
             message: "member cccccccc-0000-4000-8000-000000000000 could not be found."),
        Case(method: "GET", path: "pools/\(Fixture.tcpPool)/members/cccccccc-0000-4000-8000-000000000000", body: "", status: 404, code: "ELB.8904",
             message: "member cccccccc-0000-4000-8000-000000000000 could not be found."),
        Case(method: "GET", path: "pools?limit=0", body: "", message: "Invalid input for field/attribute limit. Value: 0. limit must be an integer in 1..2000."),
        Case(method: "GET", path: "pools?marker=nope", body: "", message: "Invalid input for field/attribute marker. Value: nope. marker must be the id of an item of this list."),
        // Health monitors.
        Case(method: "POST", path: "healthmonitors", body: #"{"healthmonitor": {"pool_id": "\#(Fixture.tcpPool)", "type": "TCP", "delay": 51}}"#,
             message: "Invalid input for field/attribute delay. Value: 51. delay must be in 1..50."),
        Case(method: "POST", path: "healthmonitors", body: #"{"healthmonitor": {"pool_id": "\#(Fixture.tcpPool)", "type": "ICMP"}}"#,
             message: "Invalid input for field/attribute type. Value: ICMP. type must be one of TCP, UDP_CONNECT, HTTP."),
        Case(method: "POST", path: "healthmonitors", body: #"{"healthmonitor": {"type": "TCP"}}"#,
             message: "Invalid input for field/attribute pool_id. Value: null. pool_id is required."),
        // The core's url_path and expected_codes limits, worded the ELB way (the file refuses the same values).
        Case(method: "POST", path: "healthmonitors", body: #"{"healthmonitor": {"pool_id": "\#(Fixture.tcpPool)", "type": "HTTP", "url_path": "/\#(String(repeating: "u", count: 80))"}}"#,
             message: "Invalid input for field/attribute url_path. Value: /\(String(repeating: "u", count: 80)). url_path must be 0..80 characters, not 81."),
        Case(method: "POST", path: "healthmonitors", body: #"{"healthmonitor": {"pool_id": "\#(Fixture.tcpPool)", "type": "HTTP", "url_path": "health"}}"#,
             message: "Invalid input for field/attribute url_path. Value: health. url_path must start with '/'."),
        Case(method: "POST", path: "healthmonitors", body: #"{"healthmonitor": {"pool_id": "\#(Fixture.tcpPool)", "type": "HTTP", "expected_codes": "\#((200...216).map(String.init).joined(separator: ","))"}}"#,
             message: "Invalid input for field/attribute expected_codes. Value: \((200...216).map(String.init).joined(separator: ",")). expected_codes must be 0..64 characters, not 67."),
        Case(method: "POST", path: "healthmonitors", body: #"{"healthmonitor": {"pool_id": "\#(Fixture.tcpPool)", "type": "TCP", "monitor_port": 0}}"#,
             message: "Invalid input for field/attribute monitor_port. Value: 0. monitor_port must be in 1..65535."),
    ]

    @Test(arguments: cases) func rejected(_ c: Case) {
        let (router, applier) = Fixture.router()
        let before = applier.current
        let r = Fixture.elb(router, c.method, c.path, c.body)
        #expect(r.status == c.status)
        #expect(r.json?["error_code"] == .string(c.code))
        #expect(r.json?["error_msg"] == .string(c.message))
        #expect(r.json?["request_id"] == "11111111-2222-4333-8444-555555555555")
        #expect(r.header("X-Request-Id") == "11111111-2222-4333-8444-555555555555")
        #expect(applier.commits.isEmpty)
        #expect(applier.current == before)
    }

    @Test func otherProjectIsForbidden() {
        let (router, applier) = Fixture.router()
        let r = router.route(ControlRequest(method: "PUT", path: "/v3/0000000000000000000000000000000a/elb/pools/\(Fixture.tcpPool)",
                                            body: Array(#"{"pool":{"name":"x"}}"#.utf8)))
        #expect(r.status == 403)
        #expect(r.json?["error_code"] == "ELB.8905")
        #expect(applier.commits.isEmpty)
    }

    @Test func updatePoolIsPartialAndEchoesEveryKey() {
        let (router, applier) = Fixture.router()
        let r = Fixture.elb(router, "PUT", "pools/\(Fixture.tcpPool)",
                            #"{"pool": {"lb_algorithm": "SOURCE_IP", "session_persistence": {"type": "SOURCE_IP"}, "slow_start": {"enable": true, "duration": 60}, "description": "ünïcode"}}"#)
        #expect(r.status == 200)
        let p = applier.current.pool(id: Fixture.tcpPool)!
        #expect(p.lbAlgorithm == "SOURCE_IP")
        #expect(p.sessionPersistence == SessionPersistence(type: .sourceIP, persistenceTimeout: 1))
        #expect(p.slowStart == SlowStart(enable: true, duration: 60))
        #expect(p.name == "web")
        #expect(p.description == "ünïcode")
        let keys = r.json?["pool"]?.objectMembers?.map(\.0)
        #expect(keys == ["id", "name", "description", "lb_algorithm", "protocol", "listeners", "loadbalancers", "members", "healthmonitor_id",
                         "project_id", "ip_version", "session_persistence", "slow_start", "connection_drain", "admin_state_up", "x_forwarded_headers"])
        #expect(r.json?["pool"]?["session_persistence"] == .object([("type", "SOURCE_IP"), ("cookie_name", nil), ("persistence_timeout", 1)]))
        #expect(r.json?["pool"]?["listeners"] == .array([.object([("id", .string(Fixture.listenerA))])]))
        // connection_drain: applied, not ignored, and shown.
        #expect(Fixture.elb(router, "PUT", "pools/\(Fixture.tcpPool)", #"{"pool": {"connection_drain": {"enable": true, "timeout": 30}}}"#).status == 200)
        #expect(applier.current.pool(id: Fixture.tcpPool)!.connectionDrain == ConnectionDrain(enable: true, timeout: 30))
        // Only slow_start.enable sent: duration kept; null persistence removes it.
        _ = Fixture.elb(router, "PUT", "pools/\(Fixture.tcpPool)", #"{"pool": {"slow_start": {"enable": false}, "session_persistence": null}}"#)
        let q = applier.current.pool(id: Fixture.tcpPool)!
        #expect(q.slowStart == SlowStart(enable: false, duration: 60))
        #expect(q.sessionPersistence == nil)
        // An HTTP pool takes cookie persistence (its HTTP mode reads and writes
        // the cookies): APP_COOKIE is applied with the default 1440 minutes,
        // HTTP_COOKIE replaces it, null removes it.
        #expect(Fixture.elb(router, "PUT", "pools/\(Fixture.httpPool)", #"{"pool": {"session_persistence": {"type": "APP_COOKIE", "cookie_name": "JSESSIONID"}}}"#).status == 200)
        #expect(applier.current.pool(id: Fixture.httpPool)!.sessionPersistence
                == SessionPersistence(type: .appCookie, cookieName: "JSESSIONID", persistenceTimeout: 1440))
        #expect(Fixture.elb(router, "PUT", "pools/\(Fixture.httpPool)", #"{"pool": {"session_persistence": {"type": "HTTP_COOKIE", "persistence_timeout": 30}}}"#).status == 200)
        #expect(applier.current.pool(id: Fixture.httpPool)!.sessionPersistence == SessionPersistence(type: .httpCookie, persistenceTimeout: 30))
        #expect(Fixture.elb(router, "PUT", "pools/\(Fixture.httpPool)", #"{"pool": {"session_persistence": null}}"#).status == 200)
        #expect(applier.current.pool(id: Fixture.httpPool)!.sessionPersistence == nil)
    }

    @Test func memberLifecycle() {
        let (router, applier) = Fixture.router()
        let c = Fixture.elb(router, "POST", "pools/\(Fixture.tcpPool)/members", #"{"member": {"address": "::1", "protocol_port": 9002, "name": "b"}}"#)
        #expect(c.status == 201)
        #expect(c.bodyText == #"{"member":{"id":"bbbbbbbb-0000-4000-8000-000000000001","name":"b","project_id":"\#(Fixture.project)","admin_state_up":true,"subnet_cidr_id":null,"protocol_port":9002,"weight":1,"address":"::1","ip_version":"v6","operating_status":"NO_MONITOR"},"request_id":"11111111-2222-4333-8444-555555555555"}"#)
        let id = "bbbbbbbb-0000-4000-8000-000000000001"
        // No port: forwards to the client's destination port.
        #expect(Fixture.elb(router, "POST", "pools/\(Fixture.tcpPool)/members", #"{"member": {"address": "10.0.0.2"}}"#).json?["member"]?["protocol_port"] == .null)
        let u = Fixture.elb(router, "PUT", "pools/\(Fixture.tcpPool)/members/\(id)", #"{"member": {"weight": 0, "admin_state_up": false}}"#)
        #expect(u.status == 200)
        #expect(applier.current.pool(id: Fixture.tcpPool)!.members[1].weight == 0)
        #expect(applier.current.pool(id: Fixture.tcpPool)!.members[1].adminStateUp == false)
        let list = Fixture.elb(router, "GET", "pools/\(Fixture.tcpPool)/members?limit=2")
        #expect(list.json?["members"]?.arrayValue?.count == 2)
        #expect(list.json?["page_info"]?["next_marker"] == .string(id))
        let filtered = Fixture.elb(router, "GET", "pools/\(Fixture.tcpPool)/members?address=::1")
        #expect(filtered.json?["members"]?.arrayValue?.map { $0["id"] } == [.string(id)])
        let d = Fixture.elb(router, "DELETE", "pools/\(Fixture.tcpPool)/members/\(id)")
        #expect(d.status == 204)
        #expect(d.body.isEmpty)
        #expect(d.header("X-Request-Id") == "11111111-2222-4333-8444-555555555555")
        #expect(applier.current.pool(id: Fixture.tcpPool)!.members.map(\.address) == ["127.0.0.1", "10.0.0.2"])
        #expect(applier.commits.count == 4)
    }

    @Test func listPoolsFiltersAndPages() {
        let (router, _) = Fixture.router()
        let byID = Fixture.elb(router, "GET", "pools?id=\(Fixture.udpPool)&id=\(Fixture.tcpPool)")
        #expect(byID.json?["pools"]?.arrayValue?.map { $0["id"] } == [.string(Fixture.tcpPool), .string(Fixture.udpPool)])
        #expect(Fixture.elb(router, "GET", "pools?protocol=HTTP").json?["pools"]?.arrayValue?.map { $0["name"] } == ["api"])
        #expect(Fixture.elb(router, "GET", "pools?name=dns").json?["pools"]?.arrayValue?.map { $0["id"] } == [.string(Fixture.udpPool)])
        let p1 = Fixture.elb(router, "GET", "pools?limit=2")
        #expect(p1.json?["page_info"] == .object([("previous_marker", .string(Fixture.tcpPool)), ("current_count", 2), ("next_marker", .string(Fixture.httpPool))]))
        let p2 = Fixture.elb(router, "GET", "pools?limit=2&marker=\(Fixture.httpPool)")
        #expect(p2.json?["pools"]?.arrayValue?.map { $0["id"] } == [.string(Fixture.udpPool)])
        #expect(p2.json?["page_info"]?["next_marker"] == nil)
    }

    @Test func healthMonitorLinksPool() {
        let (router, applier) = Fixture.router()
        let c = Fixture.elb(router, "POST", "healthmonitors", #"{"healthmonitor": {"pool_id": "\#(Fixture.tcpPool)", "type": "TCP", "delay": 2, "timeout": 1, "max_retries": 2}}"#)
        #expect(c.status == 201)
        let id = "bbbbbbbb-0000-4000-8000-000000000001"
        #expect(c.json?["healthmonitor"]?["pools"] == .array([.object([("id", .string(Fixture.tcpPool))])]))
        #expect(applier.current.pool(id: Fixture.tcpPool)?.healthmonitorID == id)
        #expect(Fixture.elb(router, "GET", "pools/\(Fixture.tcpPool)").json?["pool"]?["healthmonitor_id"] == .string(id))
        let dup = Fixture.elb(router, "POST", "healthmonitors", #"{"healthmonitor": {"pool_id": "\#(Fixture.tcpPool)", "type": "TCP"}}"#)
        #expect(dup.status == 409)
        #expect(dup.json?["error_msg"] == .string("pool \(Fixture.tcpPool) already has health monitor \(id)."))
        #expect(Fixture.elb(router, "PUT", "healthmonitors/\(id)", #"{"healthmonitor": {"delay": 9}}"#).json?["healthmonitor"]?["delay"] == 9)
        #expect(Fixture.elb(router, "GET", "healthmonitors").json?["healthmonitors"]?.arrayValue?.count == 1)
        #expect(Fixture.elb(router, "DELETE", "healthmonitors/\(id)").status == 204)
        #expect(applier.current.pool(id: Fixture.tcpPool)?.healthmonitorID == nil)
        #expect(applier.current.healthmonitors.isEmpty)
    }

    @Test func persistFailureAbortsAndChangesNothing() throws {
        let config = Fixture.config()
        let applier = RecordingApplier(config)
        let store = StateStore(path: "/proc/flowgate-cannot-write-here/state.json")
        let service = ControlService(applier: AnyApplier(applier), store: store)
        let router = ControlRouter(service: service, control: ControlConfig(), tcpIsLoopback: true)
        let r = Fixture.elb(router, "PUT", "pools/\(Fixture.tcpPool)", #"{"pool": {"name": "new"}}"#)
        #expect(r.status == 500)
        #expect(r.json?["error_code"] == "ELB.8906")
        #expect(applier.aborts == 1)
        #expect(applier.commits.isEmpty)
        #expect(applier.current == config)
    }
}
