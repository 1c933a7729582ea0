// UDP-specific calls next to System.swift's wrappers: the socket options the
// relay needs. The recvmmsg/sendmmsg batches are DatagramBatch.swift's.
#if canImport(Glibc)
import Glibc
#endif
import CFlowgateSys

extension System {
    /// IP_PKTINFO (and IPV6_RECVPKTINFO on AF_INET6): each received datagram
    /// carries the local address it was sent to, so a wildcard-bound socket
    /// can answer from that address (the kernel would pick one by route).
    public static func enablePacketInfo(_ fd: Int32, family: Int32) throws(SystemError) {
        _ = try retrying("setsockopt(PKTINFO)") { fg_enable_pktinfo(fd, family) }
    }

    /// SO_RCVBUF/SO_SNDBUF, with the *FORCE variants first (root may exceed
    /// net.core.rmem_max/wmem_max). Returns the receive buffer the kernel
    /// granted (it reports twice the request, for its bookkeeping overhead).
    @discardableResult
    public static func setBuffers(_ fd: Int32, bytes: Int) -> Int {
        _ = fg_set_buffers(fd, Int32(clamping: bytes), Int32(clamping: bytes))
        return Int((try? getOption(fd, SOL_SOCKET, SO_RCVBUF)) ?? 0)
    }

    /// CLOCK_MONOTONIC_COARSE (vDSO, no syscall), nanoseconds.
    public static func monotonicCoarseNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC_COARSE, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// A non-blocking datagram socket connected to `address`.
    public static func connectedDatagramSocket(_ address: SocketAddress) throws(SystemError) -> Int32 {
        let fd = try datagramSocket(family: address.family)
        do {
            _ = try connect(fd, address)   // UDP connect completes at once
        } catch {
            close(fd)
            throw error
        }
        return fd
    }
}
