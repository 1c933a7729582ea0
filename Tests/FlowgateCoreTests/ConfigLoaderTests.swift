#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Testing
@testable import FlowgateCore

/// config/flowgate.yaml, found from this file's place in the repository.
private let shippedConfigPath: String = {
    var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)  // Tests/FlowgateCoreTests/ConfigLoaderTests.swift
    return parts.joined(separator: "/") + "/config/flowgate.yaml"
}()

@Test func shippedConfigLoadsAndSaysWhatTheREADMEPromises() throws {
    let result = ConfigLoader.load(path: shippedConfigPath)
    if case let .failure(e) = result { Issue.record("config/flowgate.yaml: \(e)") }
    let c = try result.get()
    #expect(c.workers == nil)
    #expect(c.stateFile == "/var/lib/flowgate/state.json")
    #expect(c.control.unixSocket == "/run/flowgate/control.sock")
    #expect(c.control.listen == nil)
    let listeners = c.allListeners
    #expect(listeners.map(\.protocol) == [.tcp, .udp])
    #expect(listeners.allSatisfy { $0.portRanges == [PortRange(fromPort: 8000, toPort: 8009)] && $0.bind == "127.0.0.1" })
    #expect(listeners.map(\.idleTimeout) == [340, 30])
    for l in listeners {
        let pool = try #require(c.pool(id: l.poolID))
        #expect(ConfigValidator.canFront(listener: l.protocol, pool: pool.protocol))
        #expect(pool.members.map(\.address) == ["127.0.0.1", "127.0.0.1"])
        #expect(pool.members.map(\.protocolPort) == [9001, 9002])
        #expect(pool.members.map(\.weight) == [3, 1])
    }
    #expect(ConfigValidator.validate(c) == [])
}

@Test func allErrorsAreReportedInFileOrder() {
    let yaml = edited("weight: 1}", "weight: 101}",
                      in: edited("Protocol: TCP", "Protocol: tcp",
                                 in: edited("lb_algorithm: ROUND_ROBIN", "lb_algorithm: RR")))
    #expect(errorLines(yaml) == [
        "flowgate.yaml:7:19: \(L0).Protocol: \"tcp\" is not one of TCP, UDP",
        "flowgate.yaml:14:19: pools[0].lb_algorithm: \"RR\" is not one of ROUND_ROBIN, LEAST_CONNECTIONS, SOURCE_IP",
        "flowgate.yaml:17:59: pools[0].members[1].weight: 101 is not in 0..100",
    ])
}

@Test func aValueThatCannotBeReadIsReportedOnce() {
    // The placeholder for an unreadable weight must not also fail the 0..100 rule.
    #expect(errorLines(edited("weight: 3}", "weight: [3]}")) == [
        "flowgate.yaml:16:59: pools[0].members[0].weight: expected an integer, got a list",
    ])
}

@Test func anUnreadableProtocolDoesNotAlsoFailThePoolReference() {
    // The pool's protocol placeholder (TCP) must not make the UDP listener's pool_id look wrong.
    let yaml = edited("    protocol: TCP", "    protocol: udp", in: edited("Protocol: TCP", "Protocol: UDP"))
    #expect(errorLines(yaml) == ["flowgate.yaml:13:15: pools[0].protocol: \"udp\" is not one of TCP, UDP, HTTP"])
    #expect(errorLines(edited("Protocol: TCP", "Protocol: SCTP")) == [
        "flowgate.yaml:7:19: \(L0).Protocol: \"SCTP\" is not one of TCP, UDP",
    ])
}

@Test func unreadableFileAndEmptyFile() throws {
    let missing = ConfigLoader.load(path: "/nonexistent/flowgate.yaml")
    guard case let .failure(e) = missing else { Issue.record("loaded a missing file"); return }
    #expect(e.issues.count == 1)
    #expect(e.description == "/nonexistent/flowgate.yaml: cannot read the file: no such file")
    // An empty file (or only comments and blank lines) is refused: it used to load as a
    // daemon with nothing to serve, and a SIGHUP with it stopped all forwarding.
    for text in ["", "\n  \n", "# nothing yet\n\n# still nothing\n"] {
        #expect(errorLines(text) == ["flowgate.yaml: the file is empty (no YAML document); a configuration needs at least one listener under accelerators"])
    }
    // No listener at all is refused, unless the file says so explicitly.
    #expect(errorLines("pools: []\n") == [
        "flowgate.yaml:1:1: accelerators: no listener is configured; add one under accelerators, or write `accelerators: []` to run without any",
    ])
    #expect(errorLines("accelerators:\n  - AcceleratorArn: \(accArn)\n    listeners: []\n") == [
        "flowgate.yaml:2:3: accelerators: no listener is configured; add one under accelerators, or write `accelerators: []` to run without any",
    ])
    #expect(loaded("accelerators: []\n") == FlowgateConfig(projectID: DerivedIDs.defaultProjectID))
    #expect(errorLines("- a\n- b\n") == ["flowgate.yaml:1:1: expected a mapping, got a list"])
}

@Test func defaultsFollowTheAPIs() throws {
    let yaml = """
    accelerators:
      - listeners:
          - {PortRanges: [{FromPort: 53, ToPort: 53}], Protocol: UDP, pool_id: dns}
          - {PortRanges: [{FromPort: 80, ToPort: 80}], Protocol: TCP, pool_id: web}
    pools:
      - {name: dns, protocol: UDP, session_persistence: {type: SOURCE_IP}, slow_start: {enable: true},
         members: [{address: 10.0.0.1}]}
      - {name: web, protocol: HTTP, connection_drain: {enable: true}}
    healthmonitors:
      - {type: HTTP}

    """
    let c = try #require(loaded(yaml))
    let (udp, tcp) = (c.allListeners[0], c.allListeners[1])
    #expect(udp.idleTimeout == 30 && tcp.idleTimeout == 340)
    #expect(udp.clientAffinity == .none && udp.bind == "0.0.0.0" && !udp.connectionLog)
    #expect(c.pools[0].sessionPersistence == SessionPersistence(type: .sourceIP, persistenceTimeout: 1))
    // HTTP pools take no persistence until their HTTP mode exists (issue 13; ConfigFixtureTests).
    #expect(c.pools[1].sessionPersistence == nil)
    #expect(c.pools[0].slowStart == SlowStart(enable: true, duration: 30))
    #expect(c.pools[1].connectionDrain == ConnectionDrain(enable: true, timeout: 300))
    #expect(c.pools.allSatisfy { $0.lbAlgorithm == "ROUND_ROBIN" && $0.adminStateUp })
    let m = c.pools[0].members[0]
    #expect(m.weight == 1 && m.protocolPort == nil && m.adminStateUp && m.name == "")
    let h = c.healthmonitors[0]
    #expect((h.delay, h.timeout, h.maxRetries, h.maxRetriesDown, h.urlPath, h.expectedCodes) == (5, 3, 3, 3, "/", "200"))
    #expect(c.workers == nil && c.tuning == Tuning() && c.control == ControlConfig())
}

@Test func workersAutoAndNumber() throws {
    #expect(try #require(loaded("workers: auto\naccelerators: []\n")).workers == nil)
    #expect(try #require(loaded("workers: 4\naccelerators: []\n")).workers == 4)
}

@Test func controlWithCredentialsMayListenAnywhere() throws {
    let yaml = """
    control:
      unix_socket: null
      listen: "[::]:9900"
      region: eu-west-1
      allow_unsigned: true
      credentials:
        aws: [{access_key_id: AKIDEXAMPLE, secret_access_key: secret}]
        huawei: [{ak: HWAK, sk: hwsecret}]
    accelerators: []

    """
    let c = try #require(loaded(yaml))
    #expect(c.control == ControlConfig(unixSocket: nil, listen: "[::]:9900", region: "eu-west-1", allowUnsigned: true,
                                       awsCredentials: [AWSCredential(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "secret")],
                                       huaweiCredentials: [HuaweiCredential(ak: "HWAK", sk: "hwsecret")]))
    #expect(errorLines("control:\n  credentials:\n    aws: [{access_key_id: A}]\n") == [
        "flowgate.yaml:3:11: control.credentials.aws[0].secret_access_key: required key is missing; expected a text value",
    ])
}

/// `baseConfig` plus a second listener on the same accelerator.
private func withSecondListener(protocol p: String, bind: String, ports: String) -> String {
    edited("        bind: 127.0.0.1\n", """
            bind: 127.0.0.1
          - ListenerArn: \(accArn)/listener/0a1b2c3e
            PortRanges: [\(ports)]
            Protocol: \(p)
            pool_id: \(p == "UDP" ? "udp" : "web")
            bind: "\(bind)"

    """) + "  - {name: udp, protocol: UDP}\n"
}

@Test func portServedTwiceForTheSameProtocolAndBind() {
    func line(_ bind: String) -> String {
        "flowgate.yaml:11:22: accelerators[0].listeners[1].PortRanges[0]: port 8005/TCP of listener \(accArn)/listener/0a1b2c3e on \(bind) (8005-8100) "
            + "is already served by listener \(listenerArn0) on 127.0.0.1 (8000-8009)"
    }
    #expect(errorLines(withSecondListener(protocol: "TCP", bind: "127.0.0.1", ports: "{FromPort: 8005, ToPort: 8100}")) == [line("127.0.0.1")])
    // 0.0.0.0 covers 127.0.0.1, and :: (dual stack) covers everything.
    #expect(errorLines(withSecondListener(protocol: "TCP", bind: "0.0.0.0", ports: "{FromPort: 8005, ToPort: 8100}")) == [line("0.0.0.0")])
    #expect(errorLines(withSecondListener(protocol: "TCP", bind: "::", ports: "{FromPort: 8005, ToPort: 8100}")) == [line("::")])
    #expect(kinds(withSecondListener(protocol: "TCP", bind: "::", ports: "{FromPort: 8009, ToPort: 8009}")) == [.invalidPortRange])
    // Another protocol, another address of the family, or IPv6 beside IPv4: no conflict.
    #expect(errorLines(withSecondListener(protocol: "UDP", bind: "127.0.0.1", ports: "{FromPort: 8000, ToPort: 8009}")) == [])
    #expect(errorLines(withSecondListener(protocol: "TCP", bind: "127.0.0.2", ports: "{FromPort: 8000, ToPort: 8009}")) == [])
    #expect(errorLines(withSecondListener(protocol: "TCP", bind: "::1", ports: "{FromPort: 8000, ToPort: 8009}")) == [])
    #expect(errorLines(withSecondListener(protocol: "TCP", bind: "127.0.0.1", ports: "{FromPort: 8010, ToPort: 8010}")) == [])
}

@Test func duplicateListenerArn() {
    let yaml = withSecondListener(protocol: "TCP", bind: "127.0.0.2", ports: "{FromPort: 8000, ToPort: 8009}")
        .replacingFirst("listener/0a1b2c3e", with: "listener/0a1b2c3d")
    #expect(errorLines(yaml) == [
        "flowgate.yaml:10:22: accelerators[0].listeners[1].ListenerArn: duplicate ListenerArn (also accelerators[0].listeners[0])",
    ])
}

@Test func elevenListenersExceedTheLimit() {
    var listeners = ""
    for i in 0..<11 {
        listeners += "      - {PortRanges: [{FromPort: \(9000 + i), ToPort: \(9000 + i)}], Protocol: TCP, pool_id: \(poolID0)}\n"
    }
    let yaml = edited("""
          - ListenerArn: \(listenerArn0)
            PortRanges: [{FromPort: 8000, ToPort: 8009}]
            Protocol: TCP
            pool_id: 161835ef-0207-4300-ab5a-cf9c48f9f5ad
            bind: 127.0.0.1

    """, listeners)
    #expect(errorLines(yaml) == ["flowgate.yaml:5:7: accelerators[0].listeners: at most 10 listeners per accelerator, got 11"])
    #expect(kinds(yaml) == [.limitExceeded])
}

@Test func healthMonitorRulesInTheFile() {
    let base = baseConfig + "healthmonitors:\n  - {id: 00000000-0000-4000-8000-000000000000, type: TCP}\n"
    func monitor(_ fields: String) -> String {
        edited("type: TCP}", "type: TCP, \(fields)}", in: base)
    }
    #expect(errorLines(base) == [])
    #expect(errorLines(monitor("delay: 0")) == ["flowgate.yaml:19:66: healthmonitors[0].delay: 0 is not in 1..50 seconds"])
    #expect(errorLines(monitor("timeout: 51")) == ["flowgate.yaml:19:68: healthmonitors[0].timeout: 51 is not in 1..50 seconds"])
    #expect(errorLines(monitor("max_retries: 11")) == ["flowgate.yaml:19:72: healthmonitors[0].max_retries: 11 is not in 1..10"])
    #expect(errorLines(monitor("max_retries_down: 0")) == ["flowgate.yaml:19:77: healthmonitors[0].max_retries_down: 0 is not in 1..10"])
    #expect(errorLines(monitor("monitor_port: 65536")) == ["flowgate.yaml:19:73: healthmonitors[0].monitor_port: 65536 is not in 1..65535"])
    #expect(errorLines(monitor("url_path: health")) == ["flowgate.yaml:19:69: healthmonitors[0].url_path: \"health\" must start with \"/\""])
    #expect(errorLines(monitor("expected_codes: \"200-\"")) == [
        "flowgate.yaml:19:75: healthmonitors[0].expected_codes: \"200-\" is not a list of status codes like 200, 200,202 or 200-204 within 200..599",
    ])
    #expect(errorLines(monitor("type: PING")) == ["flowgate.yaml:19:48: duplicate key \"type\""])
    #expect(errorLines(edited("type: TCP}", "type: PING}", in: base)) == [
        "flowgate.yaml:19:54: healthmonitors[0].type: \"PING\" is not one of TCP, UDP_CONNECT, HTTP",
    ])
    // A UDP pool needs a UDP_CONNECT monitor.
    let udp = edited("    protocol: TCP", "    protocol: UDP\n    healthmonitor_id: 00000000-0000-4000-8000-000000000000",
                     in: edited("Protocol: TCP", "Protocol: UDP", in: base))
    #expect(errorLines(udp) == [
        "flowgate.yaml:14:23: pools[0].healthmonitor_id: healthmonitor \"00000000-0000-4000-8000-000000000000\" is of type TCP; a UDP pool needs UDP_CONNECT",
    ])
}

@Test func duplicateIdsAcrossObjects() {
    let secondPool = "  - {id: \(poolID0), protocol: TCP, members: [{id: MID, address: 10.0.0.1}]}\n"
    let mid = "806c0edb-0786-5069-84af-f3c394b37003"  // the derived id of pools[0].members[0]
    #expect(errorLines(baseConfig + secondPool.replacingFirst("MID", with: mid)) == [
        "flowgate.yaml:18:10: pools[1].id: duplicate id \"\(poolID0)\" (also pools[0])",
        "flowgate.yaml:18:78: pools[1].members[0].id: duplicate id \"\(mid)\" (also pools[0].members[0])",
    ])
    let monitors = "healthmonitors:\n  - {id: \(poolID0), type: TCP}\n  - {id: \(poolID0), type: HTTP}\n"
    #expect(errorLines(baseConfig + monitors) == [
        "flowgate.yaml:20:10: healthmonitors[1].id: duplicate id \"\(poolID0)\" (also healthmonitors[0])",
    ])
    let accelerator = "accelerators:\n  - AcceleratorArn: \(accArn)\n  - AcceleratorArn: \(accArn)\n"
    #expect(errorLines(edited("accelerators:\n  - AcceleratorArn: \(accArn)\n", accelerator)) == [
        "flowgate.yaml:4:21: accelerators[1].AcceleratorArn: duplicate AcceleratorArn (also accelerators[0])",
    ])
}

@Test func ipv6LiteralsInYAML() throws {
    // libyaml cannot read an unquoted "::" value; the error says to quote it.
    #expect(errorLines(edited("bind: 127.0.0.1", "bind: ::")) == [
        "flowgate.yaml:9:16: YAML syntax: mapping values are not allowed in this context; quote a value that contains ':' (e.g. bind: \"::\")",
    ])
    #expect(try #require(loaded(edited("bind: 127.0.0.1", "bind: \"::\""))).allListeners[0].bind == "::")
    #expect(try #require(loaded(edited("bind: 127.0.0.1", "bind: ::1"))).allListeners[0].bind == "::1")
    #expect(errorLines("control:\n  listen: [::1]:9900\n") == [
        "flowgate.yaml:2:12: YAML syntax: did not find expected node content (while parsing a flow node at 2:12)",
    ])
    #expect(try #require(loaded("control:\n  listen: \"[::1]:9900\"\naccelerators: []\n")).control.listen == "[::1]:9900")
}
