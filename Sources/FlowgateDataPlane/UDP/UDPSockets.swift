#if canImport(Glibc)
import Glibc
#endif
import CFlowgateSys
import FlowgateCore

/// Why a UDP socket could not be opened; `errno` kept for ApplyError mapping.
public struct UDPSocketError: Error, Sendable, CustomStringConvertible {
    public var operation: String
    public var errno: Int32
    public var address: String
    public var description: String {
        "\(operation) \(address): \(String(cString: strerror(errno))) (errno \(errno))"
    }

    /// The ApplyError kind of design §5 (EADDRINUSE / EACCES / EMFILE).
    public var applyKind: ApplyError.Kind {
        switch errno {
        case EADDRINUSE: return .addressInUse
        case EACCES, EPERM: return .permissionDenied
        case EMFILE, ENFILE: return .descriptorBudget
        default: return .other
        }
    }
}

/// UDP socket set-up for the relay: listener sockets (one per port per
/// worker) and per-flow upstream sockets.
public enum UDPSockets {
    /// Opens and binds one listener socket for `bind:port`: non-blocking,
    /// SO_REUSEPORT (so every worker binds its own socket and the kernel keeps
    /// a client 4-tuple on one worker, design §4), PKTINFO when `bind` is a
    /// wildcard (replies must leave from the address the client used), and
    /// `bufferBytes` send/receive buffers.
    ///
    /// Buffers: recvmmsg/sendmmsg move bursts of up to a batch of datagrams at
    /// a time, and the default 208 KB (net.core.rmem_default 212992) receive
    /// buffer overflowed in iperf3 tests (22-30% loss until 4 MiB, see
    /// shared/swift-libevent-notes.md). Tuning.udpSocketBuffer defaults to
    /// 4 MiB = net.core.rmem_max here; as root SO_RCVBUFFORCE may exceed it.
    /// The size is a cap on queued datagrams, not memory allocated up front.
    /// `::` binds dual stack (IPV6_V6ONLY off), other IPv6 addresses v6 only.
    public static func bindListener(_ bind: IPAddress, port: Int, bufferBytes: Int) throws(UDPSocketError) -> Int32 {
        let family = bind.isV4 ? AF_INET : AF_INET6
        let where_ = bind.isV4 ? "\(bind):\(port)" : "[\(bind)]:\(port)"
        let fd = fg_udp_socket(family)
        if fd < 0 { throw UDPSocketError(operation: "socket", errno: errno, address: where_) }
        func fail(_ op: String) -> UDPSocketError {
            let e = UDPSocketError(operation: op, errno: errno, address: where_)
            close(fd)
            return e
        }
        var one: Int32 = 1
        if setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<Int32>.size)) < 0 { throw fail("setsockopt(SO_REUSEPORT)") }
        if family == AF_INET6 {
            var v6only: Int32 = bind.isUnspecified ? 0 : 1
            if setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &v6only, socklen_t(MemoryLayout<Int32>.size)) < 0 { throw fail("setsockopt(IPV6_V6ONLY)") }
        }
        if bind.isUnspecified, fg_enable_pktinfo(fd, family) < 0 { throw fail("setsockopt(PKTINFO)") }
        if bufferBytes > 0 { _ = fg_set_buffers(fd, Int32(clamping: bufferBytes), Int32(clamping: bufferBytes)) }
        let addr = UDPAddress(bind, port: UInt16(port), family: family)
        let rc = addr.withSockaddr { sa, len in Glibc.bind(fd, sa, len) }
        if rc < 0 { throw fail("bind") }
        return fd
    }

    /// Opens a non-blocking UDP socket connected to `target`, so the kernel
    /// delivers only that member's replies to it (and reports its ICMP port
    /// unreachable as ECONNREFUSED, RFC 1122 §4.1.3.3). Returns -1 and sets
    /// errno on failure.
    static func openUpstream(_ target: BackendTarget, bufferBytes: Int) -> Int32 {
        let addr = UDPAddress(target.address, port: target.port)
        let fd = fg_udp_socket(addr.family)
        if fd < 0 { return -1 }
        if bufferBytes > 0 { _ = fg_set_buffers(fd, Int32(clamping: bufferBytes), Int32(clamping: bufferBytes)) }
        let rc = addr.withSockaddr { sa, len in connect(fd, sa, len) }
        if rc < 0 {
            let e = errno
            close(fd)
            errno = e
            return -1
        }
        return fd
    }

    /// The port a socket is bound to (tests bind port 0).
    public static func boundPort(_ fd: Int32) -> Int {
        var ss = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &ss) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        guard rc == 0 else { return -1 }
        return withUnsafePointer(to: &ss) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { Int(UDPAddress($0, length: len).port) }
        }
    }
}
