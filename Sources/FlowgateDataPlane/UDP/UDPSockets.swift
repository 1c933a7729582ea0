#if canImport(Glibc)
import Glibc
#endif
import FlowgateCore
import FlowgateSystem

/// UDP's plug into the data plane (see Loop/Transport.swift): how its
/// listening sockets are opened and what serves them in each worker.
public struct UDPDriver: TransportDriver {
    public init() {}
    public var transport: TransportProtocol { .udp }

    /// One listener socket for `address`: SO_REUSEPORT when several workers
    /// share the port (the kernel then keeps a client's 4-tuple on one
    /// worker, docs/architecture.md §4), dual stack for `::`, and PKTINFO on a wildcard
    /// bind (0.0.0.0 or ::) so replies leave from the address the client
    /// used. Buffers are set by the service, which knows the tuning.
    public func openListeningSocket(_ address: SocketAddress, reusePort: Bool) throws(SystemError) -> Int32 {
        let fd = try System.datagramSocket(family: address.family)
        do {
            if reusePort { try System.setOption(fd, SOL_SOCKET, SO_REUSEPORT, 1) }
            if address.family == AF_INET6 {
                try System.setOption(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, address.ip.isUnspecified ? 0 : 1)
            }
            if address.ip.isUnspecified { try System.enablePacketInfo(fd, family: address.family) }
            try System.bind(fd, address)
        } catch {
            System.close(fd)
            throw error
        }
        return fd
    }

    public func makeService(worker: Worker) -> TransportService { UDPService(worker: worker) }
}

enum UDPSockets {
    /// Opens a non-blocking UDP socket connected to `target`, so the kernel
    /// delivers only that member's replies to it and reports its ICMP port
    /// unreachable as ECONNREFUSED (RFC 1122 §4.1.3.3, udp(7)).
    static func openUpstream(_ target: BackendTarget, bufferBytes: Int) throws(SystemError) -> Int32 {
        let fd = try System.connectedDatagramSocket(SocketAddress(target.address, port: Int(target.port)))
        if bufferBytes > 0 { System.setBuffers(fd, bytes: bufferBytes) }
        return fd
    }

    /// The port a socket is bound to (tests bind port 0).
    static func boundPort(_ fd: Int32) -> Int { (try? System.localAddress(fd).port) ?? -1 }
}
