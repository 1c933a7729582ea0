#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import FlowgateCore
@testable import FlowgateDataPlane
import FlowgateSystem

/// Health checks, draining and metrics against real sockets on 127.0.0.1.
@Suite(.serialized)
struct HealthCheckTests {
    init() { System.ignoreSIGPIPE() }

    static func monitored(_ config: FlowgateConfig, _ monitor: HealthMonitor) -> FlowgateConfig {
        var c = config
        c.healthmonitors = [monitor]
        c.pools[0].healthmonitorID = monitor.id
        return c
    }

    static func snapshot(_ config: FlowgateConfig) -> RuntimeSnapshot { SnapshotBuilder().build(config, generation: 1) }

    /// A TCP listener on 127.0.0.1:`port` (a port freed a moment ago).
    static func listen(on port: Int) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, 4)
        var a = TestSocket.loopback(port)
        let r = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard r == 0, Glibc.listen(fd, 128) == 0 else { close(fd); return nil }
        return fd
    }

    /// A bound UDP socket that never answers, and its port.
    static func udpSocket() -> (fd: Int32, port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        var a = TestSocket.loopback(0)
        _ = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        return (fd, TestSocket.port(of: fd))
    }

    /// Answers every HTTP request on `fd` with `status` until `stop` is set.
    final class HTTPStub: @unchecked Sendable {
        let fd: Int32
        let port: Int
        private let stopped = NSLock()
        private var stop = false
        init(status: String) {
            (fd, port) = TestSocket.listen()
            TestSocket.setTimeout(fd, seconds: 0)
            var tv = timeval(tv_sec: 0, tv_usec: 200_000)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            let fd = self.fd
            Thread.detachNewThread { [self] in
                while !self.isStopped {
                    let c = Glibc.accept(fd, nil, nil)
                    if c < 0 { continue }
                    var buf = [UInt8](repeating: 0, count: 4096)
                    _ = buf.withUnsafeMutableBytes { recv(c, $0.baseAddress, 4096, 0) }
                    _ = TestSocket.sendAll(c, Array("HTTP/1.1 \(status)\r\nContent-Length: 0\r\n\r\n".utf8))
                    close(c)
                }
                close(fd)
            }
        }
        var isStopped: Bool { stopped.lock(); defer { stopped.unlock() }; return stop }
        func shutdown() { stopped.lock(); stop = true; stopped.unlock() }
    }

    @Test func tcpCheckMarksAClosedPortOfflineAndBringsItBackWhenItListens() throws {
        let (up, upPort) = TestSocket.listen()
        defer { close(up) }
        let downPort = TestSocket.freePort()
        let monitor = HealthMonitor(id: "hm-tcp", type: .tcp, delay: 1, timeout: 1, maxRetries: 1, maxRetriesDown: 1)
        let config = Self.monitored(makeConfig(port: TestSocket.freePort(), members: [(upPort, 1), (downPort, 1)]), monitor)
        let checker = HealthChecker()
        defer { checker.stop() }
        checker.apply(Self.snapshot(config))
        #expect(checker.monitoredCount == 2)
        #expect(waitUntil(seconds: 3) { checker.operatingStatus(poolID: "pool-1", memberID: "member-1") == .offline })
        #expect(checker.operatingStatus(poolID: "pool-1", memberID: "member-0") == .online)
        #expect(checker.operatingStatus(poolID: "pool-1", memberID: "nobody") == .noMonitor)

        let back = try #require(Self.listen(on: downPort))
        defer { close(back) }
        #expect(waitUntil(seconds: 3) { checker.operatingStatus(poolID: "pool-1", memberID: "member-1") == .online })
        #expect(checker.operatingStatus(poolID: "pool-1", memberID: "member-0") == .online)

        // Monitor removed: NO_MONITOR, and nothing may hold a member down.
        var unmonitored = config
        unmonitored.pools[0].healthmonitorID = nil
        checker.apply(Self.snapshot(unmonitored))
        #expect(checker.operatingStatus(poolID: "pool-1", memberID: "member-1") == .noMonitor)
        #expect(checker.monitoredCount == 0)
    }

    @Test func udpConnectCheckSeesPortUnreachableAndTakesSilenceAsHealthy() throws {
        let (silent, silentPort) = Self.udpSocket()
        defer { close(silent) }
        let (closed, closedPort) = Self.udpSocket()
        close(closed)   // nothing bound: the kernel answers ICMP port unreachable
        let monitor = HealthMonitor(id: "hm-udp", type: .udpConnect, delay: 1, timeout: 1, maxRetries: 1, maxRetriesDown: 1)
        var config = Self.monitored(makeConfig(port: TestSocket.freePort(), members: [(silentPort, 1), (closedPort, 1)]), monitor)
        config.pools[0].protocol = .udp
        let checker = HealthChecker()
        defer { checker.stop() }
        checker.apply(Self.snapshot(config))
        #expect(waitUntil(seconds: 3) { checker.operatingStatus(poolID: "pool-1", memberID: "member-1") == .offline })
        // Give the silent member two full timeouts: it must stay ONLINE.
        usleep(2_200_000)
        #expect(checker.operatingStatus(poolID: "pool-1", memberID: "member-0") == .online)
        #expect(checker.operatingStatus(poolID: "pool-1", memberID: "member-1") == .offline)
        // The probe datagram reached the silent member.
        var buf = [UInt8](repeating: 0, count: 64)
        let n = buf.withUnsafeMutableBytes { recv(silent, $0.baseAddress, 64, Int32(MSG_DONTWAIT)) }
        #expect(n == HealthProbe.udpPayload.count)
    }

    @Test func httpCheckComparesTheStatusWithExpectedCodes() throws {
        let ok = HTTPStub(status: "200 OK")
        defer { ok.shutdown() }
        let failing = HTTPStub(status: "503 Service Unavailable")
        defer { failing.shutdown() }
        let monitor = HealthMonitor(id: "hm-http", type: .http, delay: 1, timeout: 1, maxRetries: 1, maxRetriesDown: 1,
                                    urlPath: "/healthz", expectedCodes: "200-204")
        var config = Self.monitored(makeConfig(port: TestSocket.freePort(), members: [(ok.port, 1), (failing.port, 1)]), monitor)
        config.pools[0].protocol = .http
        let checker = HealthChecker()
        defer { checker.stop() }
        checker.apply(Self.snapshot(config))
        #expect(waitUntil(seconds: 3) { checker.operatingStatus(poolID: "pool-1", memberID: "member-1") == .offline })
        usleep(1_200_000)
        #expect(checker.operatingStatus(poolID: "pool-1", memberID: "member-0") == .online)
    }

    /// The monitor port answers, so active checks pass; the members' own
    /// port is closed for member-1, so the data plane's connect failures
    /// (passive) must take it down after max_retries_down of them.
    @Test func passiveConnectFailuresMarkAMemberOffline() throws {
        let (backend, backendPort) = TestSocket.listen()
        defer { close(backend) }
        _ = TestSocket.startEcho(backend, connections: 8)
        let (health, healthPort) = TestSocket.listen()
        defer { close(health) }
        let deadPort = TestSocket.freePort()
        let port = TestSocket.freePort()
        let monitor = HealthMonitor(id: "hm-passive", type: .tcp, delay: 50, timeout: 1, maxRetries: 1, maxRetriesDown: 2,
                                    monitorPort: healthPort)
        let plane = DataPlane(workerCount: 2, tuning: .perPort)
        try plane.start(Self.monitored(makeConfig(port: port, members: [(backendPort, 1), (deadPort, 1)]), monitor))
        defer { plane.shutdown() }
        #expect(plane.operatingStatus(poolID: "pool-1", memberID: "member-1") == .online)
        for _ in 0..<6 {
            let c = try #require(TestSocket.connect(port))
            #expect(TestSocket.sendAll(c, [7]))
            shutdown(c, Int32(SHUT_WR))
            #expect(TestSocket.readAll(c) == [7])   // retried on member-0
            close(c)
            if plane.snapshot?.pools["pool-1"]?.runtime(of: "member-1")?.connectFailureCount ?? 0 >= 2 { break }
        }
        #expect(waitUntil(seconds: 1) { plane.operatingStatus(poolID: "pool-1", memberID: "member-1") == .offline })
        #expect(plane.operatingStatus(poolID: "pool-1", memberID: "member-0") == .online)
        let text = plane.renderMetrics()
        #expect(text.contains("flowgate_member_up{pool=\"pool-1\",member=\"member-1\"} 0\n"))
        #expect(text.contains("flowgate_member_connect_failures_total{pool=\"pool-1\",member=\"member-1\"} 2\n"))
    }

    @Test func connectionDrainClosesWhatIsLeftAfterTheTimeout() throws {
        let (backend, backendPort) = TestSocket.listen()
        defer { close(backend) }
        _ = TestSocket.startEcho(backend, connections: 1)
        let port = TestSocket.freePort()
        var config = makeConfig(port: port, members: [(backendPort, 1)])
        // The API allows 10..300 s; the data plane takes any value, and a
        // 1 s test is kinder to CI.
        config.pools[0].connectionDrain = ConnectionDrain(enable: true, timeout: 1)
        let plane = DataPlane(workerCount: 2, tuning: .perPort)
        try plane.start(config)
        defer { plane.shutdown() }
        let c = try #require(TestSocket.connect(port))
        defer { close(c) }
        #expect(TestSocket.sendAll(c, [1, 2]))
        var buf = [UInt8](repeating: 0, count: 16)
        #expect(buf.withUnsafeMutableBytes { recv(c, $0.baseAddress, 16, 0) } == 2)

        var drained = config
        drained.pools[0].members[0].weight = 0
        let started = Date()
        plane.commit(try plane.prepare(drained))
        // Still relaying before the deadline.
        usleep(300_000)
        #expect(TestSocket.sendAll(c, [3]))
        #expect(buf.withUnsafeMutableBytes { recv(c, $0.baseAddress, 16, 0) } == 1)
        // Closed at the deadline.
        let n = buf.withUnsafeMutableBytes { recv(c, $0.baseAddress, 16, 0) }
        let elapsed = Date().timeIntervalSince(started)
        #expect(n <= 0)
        #expect(elapsed >= 0.9 && elapsed < 2.5)
        #expect(waitUntil { plane.activeFlows == 0 })
        #expect(plane.renderMetrics().contains("flowgate_drain_closed_connections_total 1\n"))
    }

    @Test func metricsCountEveryByteOfOpenAndClosedFlows() throws {
        let (backend, backendPort) = TestSocket.listen()
        defer { close(backend) }
        _ = TestSocket.startEcho(backend, connections: 2)
        let port = TestSocket.freePort()
        let plane = DataPlane(workerCount: 2, tuning: .perPort)
        try plane.start(makeConfig(port: port, members: [(backendPort, 1)]))
        defer { plane.shutdown() }
        let arn = plane.current.allListeners[0].listenerArn

        let done = try #require(TestSocket.connect(port))
        let payload = TestSocket.pattern(100_000)
        let sender = Thread { _ = TestSocket.sendAll(done, payload); shutdown(done, Int32(SHUT_WR)) }
        sender.start()
        #expect(TestSocket.readAll(done).count == 100_000)
        close(done)
        #expect(waitUntil { plane.activeFlows == 0 })

        let open = try #require(TestSocket.connect(port))
        defer { close(open) }
        #expect(TestSocket.sendAll(open, Array(repeating: 9, count: 10)))
        var buf = [UInt8](repeating: 0, count: 16)
        #expect(buf.withUnsafeMutableBytes { recv(open, $0.baseAddress, 16, 0) } == 10)

        let lines = Set(plane.renderMetrics().split(separator: "\n").map(String.init))
        let member = "pool=\"pool-1\",member=\"member-0\""
        #expect(lines.contains("flowgate_listener_flows_opened_total{listener=\"\(arn)\",protocol=\"TCP\"} 2"))
        #expect(lines.contains("flowgate_listener_flows_active{listener=\"\(arn)\",protocol=\"TCP\"} 1"))
        #expect(lines.contains("flowgate_listener_bytes_total{listener=\"\(arn)\",direction=\"client_to_member\"} 100010"))
        #expect(lines.contains("flowgate_listener_bytes_total{listener=\"\(arn)\",direction=\"member_to_client\"} 100010"))
        #expect(lines.contains("flowgate_member_flows_opened_total{\(member)} 2"))
        #expect(lines.contains("flowgate_member_flows_active{\(member)} 1"))
        #expect(lines.contains("flowgate_member_bytes_total{\(member),direction=\"client_to_member\"} 100010"))
        #expect(lines.contains("flowgate_member_picks_total{\(member)} 2"))
        #expect(lines.contains("flowgate_member_up{\(member)} 1"))
        #expect(lines.contains("flowgate_pool_bytes_total{pool=\"pool-1\",direction=\"member_to_client\"} 100010"))
        #expect(lines.contains { $0.hasPrefix("flowgate_worker_loop_lag_seconds{worker=\"1\"} ") })
    }

    @Test func metricsCountUDPDatagramsAndBytesPerListenerAndMember() throws {
        let echo = ThreadedUDPBackend(id: "e", echo: true).start()
        defer { echo.stop() }
        let port = TestSocket.freePort()
        let plane = DataPlane(workerCount: 2, tuning: .perPort)
        let config = makeUDPConfig(ports: port...port, members: [echo])
        try plane.start(config)
        defer { plane.shutdown() }
        let client = BlockingUDPClient()
        defer { client.close() }
        for i in 0..<5 { #expect(client.ask(port, Array(repeating: UInt8(i), count: 100), tries: 1)?.count == 100) }
        let arn = config.allListeners[0].listenerArn
        let member = "pool=\"pool-u\",member=\"member-e\""
        var lines = Set(plane.renderMetrics().split(separator: "\n").map(String.init))
        #expect(lines.contains("flowgate_listener_flows_opened_total{listener=\"\(arn)\",protocol=\"UDP\"} 1"))
        #expect(lines.contains("flowgate_listener_flows_active{listener=\"\(arn)\",protocol=\"UDP\"} 1"))
        #expect(lines.contains("flowgate_listener_datagrams_total{listener=\"\(arn)\",direction=\"client_to_member\"} 5"))
        #expect(lines.contains("flowgate_listener_datagrams_total{listener=\"\(arn)\",direction=\"member_to_client\"} 5"))
        #expect(lines.contains("flowgate_member_bytes_total{\(member),direction=\"client_to_member\"} 500"))
        #expect(lines.contains("flowgate_member_datagrams_total{\(member),direction=\"member_to_client\"} 5"))
        #expect(lines.contains("flowgate_pool_datagrams_total{pool=\"pool-u\",direction=\"client_to_member\"} 5"))

        // Member removed: the flow's pick is released and folded in; totals stay.
        var empty = config
        empty.pools[0].members = []
        plane.commit(try plane.prepare(empty))
        #expect(client.ask(port, [1], tries: 1) == nil)   // no member: dropped
        lines = Set(plane.renderMetrics().split(separator: "\n").map(String.init))
        // The dropped datagram belongs to no flow: counted as dropped only.
        #expect(lines.contains("flowgate_listener_datagrams_total{listener=\"\(arn)\",direction=\"client_to_member\"} 5"))
        #expect(lines.contains("flowgate_listener_flows_active{listener=\"\(arn)\",protocol=\"UDP\"} 0"))
        #expect(lines.contains("flowgate_member_datagrams_total{\(member),direction=\"client_to_member\"} 5") == false)
        #expect(lines.contains("flowgate_listener_bytes_total{listener=\"\(arn)\",direction=\"member_to_client\"} 500"))
        #expect(lines.contains("flowgate_listener_flows_opened_total{listener=\"\(arn)\",protocol=\"UDP\"} 1"))
        #expect(lines.contains("flowgate_udp_datagrams_dropped_total{reason=\"no_member\"} 1"))
    }
}
