#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import FlowgateCore
@testable import FlowgateDataPlane
import FlowgateSystem

/// Real sockets on 127.0.0.1: a DataPlane with two workers relaying to
/// backends run on plain threads.
@Suite(.serialized)
struct TCPRelayTests {
    init() { System.ignoreSIGPIPE() }

    @Test func halfCloseEchoReturnsEveryByte() throws {
        let (backend, backendPort) = TestSocket.listen()
        defer { close(backend) }
        _ = TestSocket.startEcho(backend, connections: 1)
        let port = TestSocket.freePort()
        let plane = DataPlane(workerCount: 2, tuning: .perPort)
        try plane.start(makeConfig(port: port, members: [(backendPort, 1)]))
        defer { plane.shutdown() }

        let payload = TestSocket.pattern(1 << 20)
        let client = try #require(TestSocket.connect(port))
        defer { close(client) }
        // Send on another thread: the reply flows while we still send.
        let sender = Thread {
            _ = TestSocket.sendAll(client, payload)
            shutdown(client, Int32(SHUT_WR))
        }
        sender.start()
        let reply = TestSocket.readAll(client)
        #expect(reply.count == payload.count)
        #expect(reply == payload)
        #expect(waitUntil { plane.activeFlows == 0 })
        let up = plane.workers.reduce(0) { $0 + $1.counters.bytesClientToBackend.load(ordering: .relaxed) }
        let down = plane.workers.reduce(0) { $0 + $1.counters.bytesBackendToClient.load(ordering: .relaxed) }
        #expect(up == 1 << 20)
        #expect(down == 1 << 20)
    }

    /// Adaptive relay: small messages copy, a 1 MiB burst switches the
    /// direction to splice, small messages after it switch back; every byte
    /// arrives in order either way.
    @Test func smallBulkSmallOnOneConnectionEchoesEveryByte() throws {
        let (backend, backendPort) = TestSocket.listen()
        defer { close(backend) }
        _ = TestSocket.startEcho(backend, connections: 1)
        let port = TestSocket.freePort()
        let plane = DataPlane(workerCount: 1, tuning: .perPort)
        try plane.start(makeConfig(port: port, members: [(backendPort, 1)]))
        defer { plane.shutdown() }

        let client = try #require(TestSocket.connect(port))
        defer { close(client) }
        TestSocket.setTimeout(client, seconds: 5)
        func echo(_ message: [UInt8]) -> [UInt8] {
            let sender = Thread { _ = TestSocket.sendAll(client, message) }
            sender.start()
            var reply = [UInt8](repeating: 0, count: message.count)
            var got = 0
            while got < message.count {
                let n = reply.withUnsafeMutableBytes { recv(client, $0.baseAddress! + got, message.count - got, 0) }
                if n <= 0 { break }
                got += n
            }
            return Array(reply[0..<got])
        }
        let small = TestSocket.pattern(100, seed: 1)
        let bulk = TestSocket.pattern(1 << 20, seed: 2)
        #expect(echo(small) == small)
        #expect(echo(bulk) == bulk)
        for i in 0..<8 {
            let m = TestSocket.pattern(200, seed: UInt64(10 + i))
            #expect(echo(m) == m)
        }
        shutdown(client, Int32(SHUT_WR))
        #expect(TestSocket.readAll(client).isEmpty)
        #expect(waitUntil { plane.activeFlows == 0 })
        let up = plane.workers.reduce(0) { $0 + $1.counters.bytesClientToBackend.load(ordering: .relaxed) }
        #expect(up == 100 + (1 << 20) + 8 * 200)
    }

    @Test func relayModeComesFromTheEnvironmentValue() {
        #expect(TCPRelayMode(environment: nil) == .adaptive)
        #expect(TCPRelayMode(environment: "copy") == .copy)
        #expect(TCPRelayMode(environment: "splice") == .splice)
        #expect(TCPRelayMode(environment: "adaptive") == .adaptive)
    }

    /// Adaptive mode splices this bulk stream; copy mode keeps the unsent
    /// remainder in a buffer that drains over several partial sends, each of
    /// which must leave the worker's pending gauge.
    @Test(arguments: ["adaptive", "copy"])
    func stalledReaderKeepsPendingWithinTheCap(mode: String) throws {
        setenv("FLOWGATE_TCP_RELAY", mode, 1)
        defer { unsetenv("FLOWGATE_TCP_RELAY") }
        let (backend, backendPort) = TestSocket.listen()
        defer { close(backend) }
        let port = TestSocket.freePort()
        var tuning = Tuning.perPort
        tuning.tcpMaxPending = 64 * 1024
        let plane = DataPlane(workerCount: 2, tuning: tuning)
        try plane.start(makeConfig(port: port, members: [(backendPort, 1)]))
        defer { plane.shutdown() }

        let client = try #require(TestSocket.connect(port))
        defer { close(client) }
        let server = TestSocket.accept(backend)
        defer { close(server) }
        // The backend does not read: push until the client's own sends block.
        var smallBuffer: Int32 = 64 * 1024
        setsockopt(server, SOL_SOCKET, SO_RCVBUF, &smallBuffer, 4)
        let flags = fcntl(client, F_GETFL)
        _ = fcntl(client, F_SETFL, flags | O_NONBLOCK)
        let chunk = TestSocket.pattern(256 * 1024)
        var sent = 0
        var idleRounds = 0
        while idleRounds < 50 && sent < 512 << 20 {
            let n = chunk.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n > 0 { sent += n; idleRounds = 0 } else { idleRounds += 1; usleep(10_000) }
        }
        let pending = plane.workers.reduce(0) { $0 + $1.counters.pendingBytes.load(ordering: .relaxed) }
        let peak = plane.workers.map { $0.counters.peakPendingPerDirection.load(ordering: .relaxed) }.max() ?? 0
        // The stalled backend stopped the client: far less than 512 MiB went out.
        #expect(sent < 64 << 20)
        #expect(pending > 0)
        #expect(pending <= 64 * 1024)
        #expect(peak <= 64 * 1024)

        // Now the reader drains: every byte the client sent arrives.
        _ = fcntl(client, F_SETFL, flags)
        shutdown(client, Int32(SHUT_WR))
        let received = TestSocket.readAll(server)
        #expect(received.count == sent)
        #expect(waitUntil { plane.workers.allSatisfy { $0.counters.pendingBytes.load(ordering: .relaxed) == 0 } })
        #expect(plane.workers.allSatisfy { ($0.service(.tcp) as? TCPService)?.relayMode == TCPRelayMode(environment: mode) })
    }

    @Test func backendResetClosesTheClient() throws {
        let (backend, backendPort) = TestSocket.listen()
        defer { close(backend) }
        let port = TestSocket.freePort()
        let plane = DataPlane(workerCount: 2, tuning: .perPort)
        try plane.start(makeConfig(port: port, members: [(backendPort, 1)]))
        defer { plane.shutdown() }

        let client = try #require(TestSocket.connect(port))
        defer { close(client) }
        let server = TestSocket.accept(backend)
        #expect(TestSocket.sendAll(client, Array("hello".utf8)))
        var buf = [UInt8](repeating: 0, count: 16)
        let n = buf.withUnsafeMutableBytes { recv(server, $0.baseAddress, 16, 0) }
        #expect(n == 5)
        var l = linger(l_onoff: 1, l_linger: 0)
        setsockopt(server, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
        close(server)
        // The client sees its connection end (RST passed on, or EOF), never a hang.
        let r = buf.withUnsafeMutableBytes { recv(client, $0.baseAddress, 16, 0) }
        let e = errno
        #expect(r == 0 || (r < 0 && e == ECONNRESET))
        #expect(waitUntil { plane.activeFlows == 0 })
    }

    @Test func refusedMemberIsSkipped() throws {
        let (backend, backendPort) = TestSocket.listen()
        defer { close(backend) }
        _ = TestSocket.startEcho(backend, connections: 6)
        let refused = TestSocket.freePort()
        let port = TestSocket.freePort()
        let plane = DataPlane(workerCount: 2, tuning: .perPort)
        try plane.start(makeConfig(port: port, members: [(refused, 1), (backendPort, 1)]))
        defer { plane.shutdown() }

        for i in 0..<6 {
            let client = try #require(TestSocket.connect(port))
            let msg = Array("ping \(i)".utf8)
            #expect(TestSocket.sendAll(client, msg))
            shutdown(client, Int32(SHUT_WR))
            #expect(TestSocket.readAll(client) == msg)
            close(client)
        }
        let failures = plane.workers.reduce(0) { $0 + $1.counters.connectFailures.load(ordering: .relaxed) }
        let rejected = plane.workers.reduce(0) { $0 + $1.counters.rejectedFlows.load(ordering: .relaxed) }
        #expect(failures >= 3)
        #expect(rejected == 0)
    }

    @Test func connectTimeoutMovesToTheNextMember() throws {
        // A member whose accept queue is full drops SYNs: connect() hangs.
        let stuck = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(stuck) }
        var a = TestSocket.loopback(0)
        _ = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(stuck, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        _ = listen(stuck, 0)
        let stuckPort = TestSocket.port(of: stuck)
        let fillers = (0..<3).compactMap { _ in nonBlockingConnect(stuckPort) }
        defer { fillers.forEach { close($0) } }
        usleep(100_000)
        let (backend, backendPort) = TestSocket.listen()
        defer { close(backend) }
        _ = TestSocket.startEcho(backend, connections: 1)
        let port = TestSocket.freePort()
        var tuning = Tuning.perPort
        tuning.connectTimeout = 1
        let plane = DataPlane(workerCount: 1, tuning: tuning)
        try plane.start(makeConfig(port: port, members: [(stuckPort, 100), (backendPort, 1)]))
        defer { plane.shutdown() }
        let began = Date()
        let client = try #require(TestSocket.connect(port))
        defer { close(client) }
        #expect(TestSocket.sendAll(client, [42]))
        shutdown(client, Int32(SHUT_WR))
        #expect(TestSocket.readAll(client) == [42])
        let waited = Date().timeIntervalSince(began)
        #expect(waited >= 0.9 && waited < 3)
        #expect(plane.workers[0].counters.connectFailures.load(ordering: .relaxed) == 1)
    }

    @Test func idleTimeoutClosesAQuietConnection() throws {
        let (backend, backendPort) = TestSocket.listen()
        defer { close(backend) }
        _ = TestSocket.startEcho(backend, connections: 1)
        let port = TestSocket.freePort()
        let plane = DataPlane(workerCount: 1, tuning: .perPort)
        try plane.start(makeConfig(port: port, members: [(backendPort, 1)], idleTimeout: 1))
        defer { plane.shutdown() }
        let client = try #require(TestSocket.connect(port))
        defer { close(client) }
        #expect(TestSocket.sendAll(client, [7]))
        var one = [UInt8](repeating: 0, count: 1)
        #expect(one.withUnsafeMutableBytes { recv(client, $0.baseAddress, 1, 0) } == 1)
        let began = Date()
        // Nothing more is sent: the proxy closes at the idle timeout (1-2 s,
        // the clock is whole seconds).
        #expect(one.withUnsafeMutableBytes { recv(client, $0.baseAddress, 1, 0) } == 0)
        let waited = Date().timeIntervalSince(began)
        #expect(waited >= 0.5 && waited < 3)
        #expect(waitUntil { plane.activeFlows == 0 })
    }

    @Test func noReachableMemberResetsTheClient() throws {
        let port = TestSocket.freePort()
        let plane = DataPlane(workerCount: 1, tuning: .perPort)
        try plane.start(makeConfig(port: port, members: [(TestSocket.freePort(), 1), (TestSocket.freePort(), 1)]))
        defer { plane.shutdown() }
        // On loopback the RST can beat connect() back to user space.
        if let client = TestSocket.connect(port) {
            defer { close(client) }
            var buf = [UInt8](repeating: 0, count: 4)
            let r = buf.withUnsafeMutableBytes { recv(client, $0.baseAddress, 4, 0) }
            let e = errno
            #expect(r < 0 && e == ECONNRESET)
        } else {
            #expect(errno == ECONNRESET)
        }
        #expect(waitUntil { plane.activeFlows == 0 })
        #expect(plane.workers[0].counters.connectFailures.load(ordering: .relaxed) == 2)
        #expect(plane.workers[0].counters.rejectedFlows.load(ordering: .relaxed) == 1)
    }

    @Test func portHeldByAnotherSocketFailsNamingListenerAndPort() throws {
        let (held, port) = TestSocket.listen()
        defer { close(held) }
        let plane = DataPlane(workerCount: 2, tuning: .perPort)
        let config = makeConfig(port: port, members: [(9, 1)])
        #expect(throws: ApplyError.self) { try plane.start(config) }
        do {
            try DataPlane(workerCount: 1, tuning: .perPort).start(config)
            Issue.record("start succeeded on a held port")
        } catch {
            #expect(error.kind == .addressInUse)
            #expect(error.message == "listener \(config.allListeners[0].listenerArn) port \(port): cannot bind TCP 127.0.0.1:\(port): Address already in use")
        }
    }

    @Test func updateAddsAndRemovesPortsWhileFlowsContinue() throws {
        let (backend, backendPort) = TestSocket.listen()
        defer { close(backend) }
        _ = TestSocket.startEcho(backend, connections: 2)
        let first = TestSocket.freePort()
        let second = TestSocket.freePort()
        let plane = DataPlane(workerCount: 2, tuning: .perPort)
        try plane.start(makeConfig(port: first, members: [(backendPort, 1)]))
        defer { plane.shutdown() }
        let early = try #require(TestSocket.connect(first))
        defer { close(early) }
        #expect(TestSocket.sendAll(early, [1, 2, 3]))
        var echoed = [UInt8](repeating: 0, count: 3)
        #expect(echoed.withUnsafeMutableBytes { recv(early, $0.baseAddress, 3, Int32(MSG_WAITALL)) } == 3)
        #expect(echoed == [1, 2, 3])

        let prepared = try plane.prepare(makeConfig(port: second, members: [(backendPort, 1)]))
        #expect(prepared.socketsOpened == 2)
        plane.commit(prepared)
        #expect(plane.boundPortCount == 1)
        #expect(TestSocket.connect(first) == nil)
        let late = try #require(TestSocket.connect(second))
        defer { close(late) }
        #expect(TestSocket.sendAll(late, [4]))
        shutdown(late, Int32(SHUT_WR))
        #expect(TestSocket.readAll(late) == [4])
        // The connection accepted before the update still relays.
        #expect(TestSocket.sendAll(early, [5]))
        shutdown(early, Int32(SHUT_WR))
        #expect(TestSocket.readAll(early) == [5])
    }

    @Test func abortClosesWhatPrepareOpened() throws {
        let port = TestSocket.freePort()
        let plane = DataPlane(workerCount: 2, tuning: .perPort)
        try plane.start(makeConfig(port: TestSocket.freePort(), members: [(9, 1)]))
        defer { plane.shutdown() }
        let prepared = try plane.prepare(makeConfig(port: port, members: [(9, 1)]))
        plane.abort(prepared)
        // Nothing listens there any more: a fresh plain socket can bind it.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var a = TestSocket.loopback(port)
        let r = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        #expect(r == 0)
    }
}

/// Starts a connect without waiting for it (fills a member's accept queue).
func nonBlockingConnect(_ port: Int) -> Int32? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
    var a = TestSocket.loopback(port)
    _ = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    return fd
}
