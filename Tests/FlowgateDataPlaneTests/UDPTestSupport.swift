#if canImport(Glibc)
import Glibc
#endif
import FlowgateSystem
import FlowgateCore
@testable import FlowgateDataPlane

/// A UDP socket for tests: non-blocking, bound to `ip:0` (or a given port).
struct TestUDPSocket {
    let fd: Int32
    let port: UInt16
    let ip: IPAddress

    init(_ ip: String = "127.0.0.1", port: UInt16 = 0) {
        let addr = IPAddress(ip)!
        let a = UDPAddress(addr, port: port)
        let fd = socket(a.family, Int32(SOCK_DGRAM.rawValue), 0)
        self.fd = fd
        precondition(fd >= 0)
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        if !addr.isV4 {
            var v6only: Int32 = addr.isUnspecified ? 0 : 1
            setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &v6only, socklen_t(MemoryLayout<Int32>.size))
        }
        var big: Int32 = 4 << 20
        setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, socklen_t(MemoryLayout<Int32>.size))
        let rc = a.withSockaddr { Glibc.bind(fd, $0, $1) }
        precondition(rc == 0, "bind \(ip): errno \(errno)")
        self.port = UInt16(UDPSockets.boundPort(fd))
        self.ip = addr
    }

    func send(_ bytes: [UInt8], to ip: IPAddress, port: UInt16) {
        let a = UDPAddress(ip, port: port)
        let r = bytes.withUnsafeBytes { b in a.withSockaddr { sendto(fd, b.baseAddress, b.count, 0, $0, $1) } }
        precondition(r == bytes.count, "sendto errno \(errno)")
    }

    /// One datagram and its source, or nil if none is waiting.
    func receive() -> (bytes: [UInt8], from: IPAddress, port: UInt16)? {
        var buf = [UInt8](repeating: 0, count: 65_536)
        var ss = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let n = buf.withUnsafeMutableBytes { b in
            withUnsafeMutablePointer(to: &ss) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, b.baseAddress, b.count, 0, $0, &len) }
            }
        }
        if n < 0 { return nil }
        let from = withUnsafePointer(to: &ss) { p in p.withMemoryRebound(to: sockaddr.self, capacity: 1) { UDPAddress($0, length: len) } }
        return (Array(buf[0..<n]), from.ip.unmapped, from.port)
    }

    func close() { _ = Glibc.close(fd) }
}

/// A member: echoes each datagram, or answers with its id.
final class TestBackend {
    let id: String
    let socket: TestUDPSocket
    let answersWithID: Bool
    var received = 0
    var clientsSeen: Set<UInt16> = []
    /// (source port, payload) of every datagram, in arrival order.
    var log: [(port: UInt16, bytes: [UInt8])] = []
    init(id: String, answersWithID: Bool, ip: String = "127.0.0.1") {
        self.id = id; self.answersWithID = answersWithID; socket = TestUDPSocket(ip)
    }
    func serve() {
        while let d = socket.receive() {
            received += 1
            clientsSeen.insert(d.port)
            log.append((d.port, d.bytes))
            socket.send(answersWithID ? Array(id.utf8) : d.bytes, to: d.from, port: d.port)
        }
    }
    var member: Member { Member(id: id, address: socket.ip.description, protocolPort: Int(socket.port)) }
}

/// One relay on a private event_base, pumped from the test thread.
final class UDPRelayHarness {
    let base: EventBase
    let relay: UDPRelay
    var backends: [TestBackend]
    let clock: ManualTime?
    var plan: ListenerPlan
    let listenerPort: UInt16
    let bindIP: IPAddress

    init(bind: String = "127.0.0.1", affinity: ClientAffinity = .none, backends: [TestBackend],
         maxFlows: Int = 1024, idleTimeout: Int = 30, clock: ManualTime? = nil) throws {
        base = try EventBase()
        self.backends = backends
        self.clock = clock
        relay = UDPRelay(base: base, maxFlows: maxFlows, bufferBytes: 4 << 20, time: clock ?? SystemTime())
        bindIP = IPAddress(bind)!
        let fd = try UDPDriver().openListeningSocket(SocketAddress(bindIP, port: 0), reusePort: true)
        listenerPort = UInt16(UDPSockets.boundPort(fd))
        plan = UDPRelayHarness.makePlan(bind: bind, port: Int(listenerPort), affinity: affinity, idle: idleTimeout, members: backends.map(\.member))
        relay.attach(ListeningSocketKey(transport: .udp, bind: bindIP, port: Int(listenerPort)), fd: fd, plan: plan)
    }

    static let arn = "arn:aws:globalaccelerator::123456789012:accelerator/75702d00-f682-4895-b84d-eb47d3db0c81/listener/0a1b2c3d"

    static func makePlan(bind: String, port: Int, affinity: ClientAffinity, idle: Int, members: [Member]) -> ListenerPlan {
        let pool = Pool(id: "161835ef-0207-4300-ab5a-cf9c48f9f5ad", protocol: .udp, members: members)
        let pp = PoolPlan(pool: pool, members: members.map { MemberPlan(member: $0, address: IPAddress($0.address)!) })
        let l = Listener(listenerArn: arn, portRanges: [PortRange(fromPort: port, toPort: port)], protocol: .udp,
                         clientAffinity: affinity, poolID: pool.id, bind: bind, idleTimeout: idle)
        return ListenerPlan(listener: l, bindAddress: IPAddress(bind)!, pool: pp)
    }

    /// Replaces the pool's members (a config change).
    func update(members: [Member]) {
        plan = UDPRelayHarness.makePlan(bind: bindIP.description, port: Int(listenerPort), affinity: plan.listener.clientAffinity,
                                        idle: plan.listener.idleTimeout, members: members)
        relay.updateListener(plan)
    }

    /// Runs the loop and the backends until `done` or `seconds` pass.
    @discardableResult
    func pump(seconds: Double = 2, until done: () -> Bool = { false }) -> Bool {
        let deadline = SystemTime().now() + seconds
        while SystemTime().now() < deadline {
            base.runReady()
            for b in backends { b.serve() }
            base.runReady()
            if done() { return true }
            usleep(200)
        }
        return done()
    }

    /// Sends `bytes` from `client` to the listener and waits for one reply.
    func roundTrip(_ client: TestUDPSocket, _ bytes: [UInt8], to dest: IPAddress? = nil, seconds: Double = 2) -> (bytes: [UInt8], from: IPAddress, port: UInt16)? {
        client.send(bytes, to: dest ?? (bindIP.isUnspecified ? IPAddress("127.0.0.1")! : bindIP), port: listenerPort)
        var got: (bytes: [UInt8], from: IPAddress, port: UInt16)?
        pump(seconds: seconds) { got = client.receive(); return got != nil }
        return got
    }

    func close() {
        relay.shutdown()
        for b in backends { b.socket.close() }
        base.free()
    }
}
