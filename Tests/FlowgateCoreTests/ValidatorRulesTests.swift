import Foundation
import Testing
@testable import FlowgateCore

// The rule functions as the control API calls them: on one request's
// objects, with paths relative to the request body, and `kind` chosen for
// the API's error code (docs/api.md §3 and §4).

private let acc = "arn:aws:globalaccelerator::123456789012:accelerator/75702d00-f682-4895-b84d-eb47d3db0c81"
private let tcpPool = Pool(id: "161835ef-0207-4300-ab5a-cf9c48f9f5ad", protocol: .tcp)
private let udpPool = Pool(id: "5f3a4bd4-2d4e-4c3e-9a43-0c7c1b0f7e21", protocol: .udp)

private func listener(id: String = "0a1b2c3d", _ ranges: [(Int, Int)], _ p: TransportProtocol = .tcp,
                      bind: String = "0.0.0.0", pool: Pool = tcpPool) -> Listener {
    Listener(listenerArn: acc + "/listener/" + id, portRanges: ranges.map { PortRange(fromPort: $0.0, toPort: $0.1) },
             protocol: p, poolID: pool.id, bind: bind)
}

@Test func portRangeRulesAndKinds() {
    let p = "PortRanges"
    #expect(ConfigValidator.validatePortRanges([], path: p) == [.init(.invalidPortRange, p, "at least 1 port range is required")])
    #expect(ConfigValidator.validatePortRanges([PortRange(fromPort: 1, toPort: 65535)], path: p) == [])
    #expect(ConfigValidator.validatePortRanges([PortRange(fromPort: 0, toPort: 65536)], path: p) == [
        .init(.invalidPortRange, "PortRanges[0].FromPort", "0 is not in 1..65535"),
        .init(.invalidPortRange, "PortRanges[0].ToPort", "65536 is not in 1..65535"),
    ])
    #expect(ConfigValidator.validatePortRanges([PortRange(fromPort: 10, toPort: 9)], path: p) == [
        .init(.invalidPortRange, "PortRanges[0].ToPort", "ToPort 9 is less than FromPort 10"),
    ])
    #expect(ConfigValidator.validatePortRanges([PortRange(fromPort: 10, toPort: 20), PortRange(fromPort: 20, toPort: 20)], path: p) == [
        .init(.invalidPortRange, "PortRanges[1]", "20 overlaps PortRanges[0] (10-20)"),
    ])
    let eleven = (1...11).map { PortRange(fromPort: $0, toPort: $0) }
    #expect(ConfigValidator.validatePortRanges(eleven, path: p) == [
        .init(.limitExceeded, p, "at most 10 port ranges per listener, got 11"),
    ])
    #expect(ConfigValidator.validatePortRanges(Array(eleven.prefix(10)), path: p) == [])
}

@Test func listenerArnRules() {
    let p = "ListenerArn"
    #expect(ConfigValidator.validateListenerArn(acc + "/listener/0a1b2c3d", path: p) == [])
    #expect(ConfigValidator.validateListenerArn("", path: p) == [.init(.invalidArgument, p, "must not be empty")])
    #expect(ConfigValidator.validateListenerArn(String(repeating: "a", count: 256), path: p) == [
        .init(.invalidArgument, p, "256 characters, at most 255 allowed"),
    ])
    #expect(ConfigValidator.validateListenerArn(acc, path: p).map(\.kind) == [.invalidArgument])
    #expect(ConfigValidator.validateListenerArn(acc + "/listener/0a1b2c3g", path: p).map(\.kind) == [.invalidArgument])
    #expect(ConfigValidator.validateListenerArn(acc.replacingFirst("123456789012", with: "12345678901") + "/listener/0a1b2c3d", path: p).count == 1)
    let parts = ArnFormat.parseListener(acc + "/listener/0a1b2c3d")
    #expect(parts == ArnFormat.ListenerParts(account: "123456789012", acceleratorID: "75702d00-f682-4895-b84d-eb47d3db0c81",
                                             listenerID: "0a1b2c3d", acceleratorArn: acc))
}

@Test func tcpListenerOptionsHaveRangesAndOnlyTCP() {
    var l = listener([(80, 80)], .tcp, bind: "::1", pool: tcpPool)
    l.tcpDeferAccept = 1; l.tcpFastOpen = 65535
    #expect(ConfigValidator.validateListener(l, path: "", pools: [tcpPool]) == [])
    l.tcpDeferAccept = 0; l.tcpFastOpen = 65536
    #expect(ConfigValidator.validateListener(l, path: "L", pools: [tcpPool]) == [
        .init(.invalidArgument, "L.tcp_defer_accept", "0 is not in 1..600 seconds"),
        .init(.invalidArgument, "L.tcp_fastopen", "65536 is not in 1..65535 pending connections"),
    ])
    var u = listener([(80, 80)], .udp, bind: "::1", pool: udpPool)
    u.tcpFastOpen = 16
    #expect(ConfigValidator.validateListener(u, path: "", pools: [udpPool]) == [
        .init(.invalidArgument, "tcp_fastopen", "applies only to a listener with Protocol TCP; leave it out for UDP"),
    ])
    // Absent from a state file written before the options existed: off.
    let old = try! JSONDecoder().decode(Listener.self, from: Data(#"{"ListenerArn":"a","PortRanges":[],"Protocol":"TCP","ClientAffinity":"NONE","pool_id":"p","bind":"::","idle_timeout":340,"connection_log":false}"#.utf8))
    #expect(old.tcpDeferAccept == nil && old.tcpFastOpen == nil)
}

@Test func listenerRulesWithEmptyBasePath() {
    var l = listener([(80, 80)], .udp, bind: "::1", pool: tcpPool)
    l.idleTimeout = 4001
    #expect(ConfigValidator.validateListener(l, path: "", pools: [tcpPool, udpPool]) == [
        .init(.invalidArgument, "idle_timeout", "4001 is not in 1..4000 seconds"),
        .init(.invalidArgument, "pool_id", "\"\(tcpPool.id)\" is a TCP pool; a UDP listener fronts a UDP pool"),
    ])
    l.poolID = "missing"
    #expect(ConfigValidator.validatePoolReference(l, path: "pool_id", pools: [tcpPool]) == [
        .init(.notFound, "pool_id", "no pool with id \"missing\""),
    ])
    l.poolID = tcpPool.id
    l.idleTimeout = 10
    // UpdateListener may change the protocol and keep the pool (docs/architecture.md §2).
    #expect(ConfigValidator.validateListener(l, path: "", pools: [tcpPool], checkPoolProtocol: false) == [])
    var c = FlowgateConfig(projectID: DerivedIDs.defaultProjectID, accelerators: [Accelerator(acceleratorArn: acc, listeners: [l])],
                           pools: [tcpPool])
    #expect(ConfigValidator.validate(c, checkListenerPoolProtocol: false) == [])
    #expect(ConfigValidator.validate(c).map(\.path) == ["accelerators[0].listeners[0].pool_id"])
    c.pools = []
    #expect(ConfigValidator.validate(c, checkListenerPoolProtocol: false).map(\.kind) == [.notFound])
    l.poolID = "missing"
    // Without a pools list (an UpdateListener that does not touch pool_id) the reference is not checked.
    l.idleTimeout = 10
    #expect(ConfigValidator.validateListener(l, path: "", pools: nil) == [])
    #expect(ConfigValidator.canFront(listener: .tcp, pool: .http))
    #expect(!ConfigValidator.canFront(listener: .udp, pool: .http))
}

@Test func bindAddressConflictMatrix() {
    let conflicts: [(String, String, Bool)] = [
        ("127.0.0.1", "127.0.0.1", true), ("0.0.0.0", "127.0.0.1", true), ("127.0.0.1", "0.0.0.0", true),
        ("::", "127.0.0.1", true), ("::", "::1", true), ("0.0.0.0", "::", true), ("::1", "0::1", true),
        ("::ffff:127.0.0.1", "127.0.0.1", true), ("0.0.0.0", "::ffff:10.0.0.1", true),
        ("127.0.0.1", "127.0.0.2", false), ("0.0.0.0", "::1", false), ("127.0.0.1", "::1", false), ("::1", "::2", false),
    ]
    for (a, b, expected) in conflicts {
        #expect(ConfigValidator.bindsConflict(a, b) == expected, "\(a) vs \(b)")
    }
}

@Test func updateListenerSkipsItselfWhenCheckingConflicts() {
    let current = listener(id: "0a1b2c3d", [(8000, 8009)])
    let other = listener(id: "0a1b2c3e", [(9000, 9009)], bind: "127.0.0.1")
    // Moving the listener onto other's ports conflicts; keeping its own ports does not.
    var update = current
    update.portRanges = [PortRange(fromPort: 8000, toPort: 9000)]
    #expect(ConfigValidator.validatePortConflicts(update, path: "", others: [current, other]) == [
        .init(.invalidPortRange, "PortRanges[0]",
              "port 9000/TCP of listener \(acc)/listener/0a1b2c3d on 0.0.0.0 (8000-9000) is already served by listener \(acc)/listener/0a1b2c3e on 127.0.0.1 (9000-9009)"),
    ])
    #expect(ConfigValidator.validatePortConflicts(current, path: "", others: [current, other]) == [])
    // Changing the protocol to UDP removes the conflict with a TCP listener.
    update.protocol = .udp
    #expect(ConfigValidator.validatePortConflicts(update, path: "", others: [current, other]) == [])
}

@Test func poolRulesAndKinds() {
    var p = Pool(id: "not-a-uuid", name: String(repeating: "名", count: 255), description: String(repeating: "x", count: 256),
                 protocol: .udp, lbAlgorithm: "least_connections", adminStateUp: false, healthmonitorID: "hm")
    #expect(ConfigValidator.validatePool(p, path: "pool", healthmonitors: []) == [
        .init(.invalidArgument, "pool.id", "\"not-a-uuid\" is not a UUID (8-4-4-4-12 hex digits)"),
        .init(.invalidArgument, "pool.description", "256 characters, at most 255 allowed"),
        .init(.invalidArgument, "pool.lb_algorithm", "\"least_connections\" is not one of ROUND_ROBIN, LEAST_CONNECTIONS, SOURCE_IP"),
        .init(.invalidArgument, "pool.admin_state_up", "only true is supported"),
        .init(.notFound, "pool.healthmonitor_id", "no healthmonitor with id \"hm\""),
    ])
    p = Pool(id: tcpPool.id, protocol: .tcp, slowStart: SlowStart(enable: false, duration: 1201),
             connectionDrain: ConnectionDrain(enable: false, timeout: 301))
    #expect(ConfigValidator.validatePool(p, path: "pool") == [
        .init(.invalidArgument, "pool.slow_start.duration", "1201 is not in 30..1200 seconds"),
        .init(.invalidArgument, "pool.connection_drain.timeout", "301 is not in 10..300 seconds"),
    ])
    #expect(ConfigValidator.defaultPersistenceTimeout(for: .udp) == 1)
    #expect(ConfigValidator.defaultPersistenceTimeout(for: .http) == 1440)
}

@Test func sessionPersistenceRules() {
    func check(_ sp: SessionPersistence, _ proto: PoolProtocol) -> [String] {
        ConfigValidator.validateSessionPersistence(sp, poolProtocol: proto, path: "session_persistence").map(\.description)
    }
    #expect(check(SessionPersistence(type: .sourceIP, persistenceTimeout: 60), .udp) == [])
    #expect(check(SessionPersistence(type: .sourceIP, persistenceTimeout: 0), .tcp) == [
        "session_persistence.persistence_timeout: 0 is not in 1..60 minutes",
    ])
    #expect(check(SessionPersistence(type: .appCookie, persistenceTimeout: 1), .udp) == [
        "session_persistence.type: \"APP_COOKIE\" is not allowed on a UDP pool; TCP and UDP pools allow only SOURCE_IP",
        "session_persistence.cookie_name: required with APP_COOKIE",
    ])
    // HTTP pools: both cookie types are accepted (the HTTP mode reads and writes them),
    // 1..1440 minutes, cookie_name required with APP_COOKIE only.
    #expect(check(SessionPersistence(type: .httpCookie, persistenceTimeout: 1440), .http) == [])
    #expect(check(SessionPersistence(type: .appCookie, cookieName: "JSESSION-id_1.x", persistenceTimeout: 1440), .http) == [])
    #expect(check(SessionPersistence(type: .appCookie, cookieName: String(repeating: "c", count: 1025), persistenceTimeout: 1), .http).count == 1)
    #expect(check(SessionPersistence(type: .appCookie, cookieName: "", persistenceTimeout: 1), .http) == [
        "session_persistence.cookie_name: \"\" is not 1..1024 of letters, digits, '-', '_', '.'",
    ])
    #expect(check(SessionPersistence(type: .httpCookie, cookieName: "sid", persistenceTimeout: 1441), .http) == [
        "session_persistence.persistence_timeout: 1441 is not in 1..1440 minutes",
        "session_persistence.cookie_name: only allowed with APP_COOKIE",
    ])
    #expect(ConfigValidator.validateSessionPersistence(SessionPersistence(type: .appCookie, persistenceTimeout: 1), poolProtocol: .http, path: "sp")
        .map(\.rule) == [.requiredWith("APP_COOKIE")])
    #expect(check(SessionPersistence(type: .sourceIP, persistenceTimeout: 1), .http) == [
        "session_persistence.type: \"SOURCE_IP\" is not allowed on an HTTP pool; HTTP pools allow HTTP_COOKIE or APP_COOKIE",
    ])
}

@Test func memberRulesAndConflicts() {
    let a = Member(id: "806c0edb-0786-5069-84af-f3c394b37003", address: "127.0.0.1", protocolPort: 9001)
    #expect(ConfigValidator.validateMember(a, path: "member") == [])
    let bad = Member(id: "x", name: String(repeating: "n", count: 256), address: "1.2.3", protocolPort: 65536, weight: -1)
    #expect(ConfigValidator.validateMember(bad, path: "member").map(\.description) == [
        "member.id: \"x\" is not a UUID (8-4-4-4-12 hex digits)",
        "member.name: 256 characters, at most 255 allowed",
        "member.address: \"1.2.3\" is not an IPv4 or IPv6 address literal",
        "member.protocol_port: 65536 is not in 1..65535",
        "member.weight: -1 is not in 0..100",
    ])
    var b = a
    b.id = "47f87143-1e2a-5631-938a-d9c3048648d9"
    #expect(ConfigValidator.conflictingMember(b, in: [a]) == a)
    b.protocolPort = nil
    #expect(ConfigValidator.conflictingMember(b, in: [a]) == nil)
    #expect(ConfigValidator.validateMemberSet([a, a], path: "members").map(\.kind) == [.conflict, .conflict])
    // The IPv4-mapped form of the same address is the same endpoint.
    var mapped = b
    mapped.address = "::ffff:" + a.address
    mapped.protocolPort = a.protocolPort
    #expect(ConfigValidator.conflictingMember(mapped, in: [a]) == a)
    #expect(ConfigValidator.validateMemberSet([a, mapped], path: "members") == [
        .init(.conflict, "members[1]", "same address and protocol_port as members[0] ([::ffff:7f00:1]:9001)"),
    ])
}

@Test func healthMonitorExpectedCodes() {
    for ok in ["200", "200,202", "200-204", "200-204,301,500-599"] {
        #expect(ConfigValidator.isExpectedCodes(ok), "\(ok)")
    }
    for bad in ["", "199", "600", "204-200", "200,", "2000", "abc", "200-202-204"] {
        #expect(!ConfigValidator.isExpectedCodes(bad), "\(bad)")
    }
}

@Test func hostPortParsing() {
    #expect(ConfigValidator.parseHostPort("127.0.0.1:9900")?.port == 9900)
    #expect(ConfigValidator.parseHostPort("[::1]:9900")?.address == IPAddress("::1"))
    for bad in ["::1:9900", "localhost:9900", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "[127.0.0.1]:80", "[::1]", "127.0.0.1:+80"] {
        #expect(ConfigValidator.parseHostPort(bad) == nil, "\(bad)")
    }
}

@Test func enumValuesAreExact() throws {
    #expect(try ConfigValidator.enumValue("UDP", as: TransportProtocol.self, path: "Protocol").get() == .udp)
    #expect(ConfigValidator.enumValue("SCTP", as: TransportProtocol.self, path: "Protocol")
        == .failure(.init(.invalidArgument, "Protocol", "\"SCTP\" is not one of TCP, UDP")))
    #expect(ConfigValidator.enumValue("source_ip", as: ClientAffinity.self, path: "ClientAffinity")
        == .failure(.init(.invalidArgument, "ClientAffinity", "\"source_ip\" is not one of NONE, SOURCE_IP")))
}

@Test func fieldPaths() {
    #expect(FieldPath.field("", "PortRanges") == "PortRanges")
    #expect(FieldPath.parent("accelerators[0].listeners[1].PortRanges[2].ToPort") == "accelerators[0].listeners[1].PortRanges[2]")
    #expect(FieldPath.parent("accelerators[0]") == "accelerators")
    #expect(FieldPath.parent("workers") == "")
    #expect(FieldPath.parent("") == nil)
    #expect(FieldPath.related("pools[1]", "pools[1].members[0]"))
    #expect(!FieldPath.related("pools[1]", "pools[10].name"))
    #expect(RuleText.quoted("a\"b\n") == "\"a\\\"b\\n\"")
}

@Test func memberSetChecksScaleToLargePools() {
    // 20000 members with distinct endpoints plus one duplicate at the end.
    var members = (0..<20000).map { i in
        Member(id: "00000000-0000-4000-8000-" + String(repeating: "0", count: 12 - "\(i)".count) + "\(i)",
               address: "10.0.\(i / 256).\(i % 256)", protocolPort: 80)
    }
    members.append(Member(id: "47f87143-1e2a-5631-938a-d9c3048648d9", address: "10.0.0.5", protocolPort: 80))
    let issues = ConfigValidator.validateMemberSet(members, path: "members")
    #expect(issues == [.init(.conflict, "members[20000]", "same address and protocol_port as members[5] (10.0.0.5:80)")])
}
