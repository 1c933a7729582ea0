#if canImport(Glibc)
import Glibc
#endif
import FlowgateCore
@testable import FlowgateDataPlane
import FlowgateSystem

/// Whether this kernel takes UDP_SEGMENT, found once per test process and
/// independently of the code under test: the socket-option form of GSO
/// (udp(7)) on a loopback pair, two segments in one send. The GSO tests
/// assert that the batch senders used GSO whenever this says the kernel
/// can; they never ask the shim (whose `gsoAvailable` flips off after a
/// refusal, so a sender that provokes EINVAL would otherwise excuse itself).
enum GSOProbe {
    enum Outcome: Equatable {
        /// Two datagrams arrived from one segmented send.
        case supported
        /// The kernel does not know UDP_SEGMENT (ENOPROTOOPT) or cannot
        /// offload it on this route (EIO): the GSO assertions do not apply.
        case unsupported(String)
        /// Anything else, EINVAL above all: a well-formed segmented send on
        /// loopback must not fail that way, so the suite fails.
        case broken(String)
    }

    static let outcome: Outcome = probe()

    /// True when the GSO assertions apply.
    static var kernelTakesGSO: Bool { outcome == .supported }

    // linux/udp.h; Swift's Glibc module does not export them.
    private static let solUDP: Int32 = 17
    private static let udpSegment: Int32 = 103

    private static func probe() -> Outcome {
        let receiver = TestUDPSocket()
        defer { receiver.close() }
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { return .broken("socket: errno \(errno)") }
        defer { _ = Glibc.close(fd) }
        let a = UDPAddress(receiver.ip, port: receiver.port)
        guard a.withSockaddr({ Glibc.connect(fd, $0, $1) }) == 0 else { return .broken("connect: errno \(errno)") }
        var segment: Int32 = 100
        if setsockopt(fd, solUDP, udpSegment, &segment, socklen_t(MemoryLayout<Int32>.size)) != 0 {
            let e = errno
            return e == ENOPROTOOPT ? .unsupported("setsockopt(UDP_SEGMENT): ENOPROTOOPT") : .broken("setsockopt(UDP_SEGMENT): errno \(e)")
        }
        let payload = [UInt8](repeating: 7, count: 200)
        let n = payload.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) }
        if n < 0 {
            let e = errno
            return e == EIO ? .unsupported("send with UDP_SEGMENT: EIO (no offload on this route)") : .broken("send with UDP_SEGMENT: errno \(e)")
        }
        var got: [Int] = []
        for _ in 0..<1_000 where got.count < 2 {
            if let d = receiver.receive() { got.append(d.bytes.count) } else { usleep(1_000) }
        }
        return got == [100, 100] ? .supported : .broken("one 200-byte send with UDP_SEGMENT 100 arrived as \(got)")
    }
}
