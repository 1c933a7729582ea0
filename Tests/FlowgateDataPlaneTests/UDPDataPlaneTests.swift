#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization
import Testing
import FlowgateCore
@testable import FlowgateDataPlane
import FlowgateSystem

/// A UDP member on its own thread: answers every datagram with its id
/// (or echoes it), until stopped.
final class ThreadedUDPBackend: @unchecked Sendable {
    let id: String
    let fd: Int32
    let port: Int
    let echo: Bool
    private let stopped = Atomic<Bool>(false)
    private let done = Atomic<Bool>(false)

    init(id: String, echo: Bool = false) {
        self.id = id; self.echo = echo
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        self.fd = fd
        var a = TestSocket.loopback(0)
        _ = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var tv = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        port = TestSocket.port(of: fd)
    }

    /// Starts serving (separate from init: the thread captures self).
    func start() -> Self {
        Thread { [self] in serve() }.start()
        return self
    }

    private func serve() {
        var buf = [UInt8](repeating: 0, count: 65_536)
        let name = Array(id.utf8)
        while !stopped.load(ordering: .relaxed) {
            var ss = sockaddr_storage()
            var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let n = buf.withUnsafeMutableBytes { b in
                withUnsafeMutablePointer(to: &ss) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, b.baseAddress, b.count, 0, $0, &len) } }
            }
            if n < 0 { continue }
            let reply = echo ? Array(buf[0..<n]) : name
            _ = reply.withUnsafeBytes { b in
                withUnsafePointer(to: &ss) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, b.baseAddress, b.count, 0, $0, len) } }
            }
        }
        close(fd)
        done.store(true, ordering: .relaxed)
    }

    func stop() {
        stopped.store(true, ordering: .relaxed)
        _ = waitUntil { self.done.load(ordering: .relaxed) }
    }
}

/// A blocking UDP client with a receive timeout.
struct BlockingUDPClient {
    let fd: Int32
    init() {
        fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        var a = TestSocket.loopback(0)
        _ = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var tv = timeval(tv_sec: 0, tv_usec: 300_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Sends to 127.0.0.1:port until a reply comes (up to `tries`).
    func ask(_ port: Int, _ bytes: [UInt8] = [1], tries: Int = 5) -> [UInt8]? {
        var a = TestSocket.loopback(port)
        for _ in 0..<tries {
            _ = bytes.withUnsafeBytes { b in
                withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, b.baseAddress, b.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            }
            var buf = [UInt8](repeating: 0, count: 65_536)
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n >= 0 { return Array(buf[0..<n]) }
        }
        return nil
    }

    func askID(_ port: Int) -> String? { ask(port).map { String(decoding: $0, as: UTF8.self) } }
    func close() { _ = Glibc.close(fd) }
}

func makeUDPConfig(ports: ClosedRange<Int>, members: [ThreadedUDPBackend], weights: [Int]? = nil,
                   affinity: ClientAffinity = .none, alsoTCP: Bool = false) -> FlowgateConfig {
    let arn = "arn:aws:globalaccelerator::123456789012:accelerator/00000000-0000-4000-8000-000000000002"
    var listeners = [Listener(listenerArn: arn + "/listener/0000udp1", portRanges: [PortRange(fromPort: ports.lowerBound, toPort: ports.upperBound)],
                              protocol: .udp, clientAffinity: affinity, poolID: "pool-u", bind: "127.0.0.1")]
    let ms = members.enumerated().map { i, m in
        Member(id: "member-\(m.id)", address: "127.0.0.1", protocolPort: m.port, weight: weights?[i] ?? 1)
    }
    var pools = [Pool(id: "pool-u", protocol: .udp, members: ms)]
    if alsoTCP {
        listeners.append(Listener(listenerArn: arn + "/listener/0000tcp1", portRanges: [PortRange(fromPort: ports.lowerBound, toPort: ports.upperBound)],
                                  protocol: .tcp, poolID: "pool-t", bind: "127.0.0.1"))
        pools.append(Pool(id: "pool-t", protocol: .tcp, members: ms))
    }
    return FlowgateConfig(workers: 2, projectID: "ac80359381a34f04b39a333b0ea5117a",
                          accelerators: [Accelerator(acceleratorArn: arn, listeners: listeners)], pools: pools)
}

/// The UDP relay inside the real DataPlane: two workers, prepare/commit.
@Suite(.serialized)
struct UDPDataPlaneTests {
    @Test func relaysThroughTwoWorkersAndSurvivesLiveUpdates() throws {
        let a = ThreadedUDPBackend(id: "a").start(), b = ThreadedUDPBackend(id: "b").start()
        defer { a.stop(); b.stop() }
        let p1 = TestSocket.freePort(), p2 = TestSocket.freePort()
        let plane = DataPlane(workerCount: 2, tuning: .perPort)
        try plane.start(makeUDPConfig(ports: p1...p1, members: [a, b]))
        defer { plane.shutdown() }
        #expect(plane.boundPortCount == 1)

        // Find one client on a and one on b (round robin, whichever worker).
        var onA: BlockingUDPClient?, onB: BlockingUDPClient?
        var spare: [BlockingUDPClient] = []
        for _ in 0..<8 where onA == nil || onB == nil {
            let c = BlockingUDPClient()
            switch c.askID(p1) {
            case "a" where onA == nil: onA = c
            case "b" where onB == nil: onB = c
            default: spare.append(c)
            }
        }
        defer { onA?.close(); onB?.close(); spare.forEach { $0.close() } }
        let ca = try #require(onA), cb = try #require(onB)

        // Update: add a port, remove member a. b's flow stays; a's flow moves to b.
        let prepared = try plane.prepare(makeUDPConfig(ports: p1...p1, members: [b]))
        plane.commit(prepared)
        #expect(cb.askID(p1) == "b")
        #expect(ca.askID(p1) == "b")

        let moved = try plane.prepare(makeUDPConfig(ports: p2...p2, members: [b]))
        plane.commit(moved)
        #expect(plane.boundPortCount == 1)
        #expect(ca.askID(p2) == "b")
        // The old port is closed: nothing answers there any more.
        #expect(ca.ask(p1, tries: 1) == nil)
    }

    @Test func tcpAndUDPShareOnePort() throws {
        let echo = ThreadedUDPBackend(id: "e", echo: true).start()
        defer { echo.stop() }
        let (tcpBackend, tcpPort) = TestSocket.listen()
        defer { close(tcpBackend) }
        _ = TestSocket.startEcho(tcpBackend, connections: 1)
        // The TCP listener's pool points at the TCP echo, the UDP one at the UDP echo.
        var config = makeUDPConfig(ports: 0...0, members: [echo], alsoTCP: true)
        let port = TestSocket.freePort()
        for i in config.accelerators[0].listeners.indices {
            config.accelerators[0].listeners[i].portRanges = [PortRange(fromPort: port, toPort: port)]
        }
        config.pools[1].members = [Member(id: "tcp-echo", address: "127.0.0.1", protocolPort: tcpPort)]
        let plane = DataPlane(workerCount: 2, tuning: .perPort)
        try plane.start(config)
        defer { plane.shutdown() }
        #expect(plane.boundPortCount == 2)
        let c = BlockingUDPClient()
        defer { c.close() }
        let big = (0..<65_507).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        #expect(c.ask(port, big) == big)
        #expect(c.ask(port, []) == [])
        // Published for other threads after each batch.
        #expect(waitUntil { plane.udpTotals.datagramsOut == 2 })
        let totals = plane.udpTotals
        #expect(totals.sessions == 1)
        #expect(totals.flowsStarted == 1)
        #expect(totals.datagramsIn == 2)
        #expect(totals.dropped == 0)
        let bytesIn = plane.workers.reduce(0) { $0 + $1.counters.udp.bytesClientToBackend.load(ordering: .relaxed) }
        #expect(bytesIn == 65_507)
        let t = try #require(TestSocket.connect(port))
        defer { close(t) }
        #expect(TestSocket.sendAll(t, [7, 8]))
        shutdown(t, Int32(SHUT_WR))
        #expect(TestSocket.readAll(t) == [7, 8])
    }
}
