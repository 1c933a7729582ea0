#if canImport(Glibc)
import Glibc
#endif
import FlowgateCore
import FlowgateSystem

/// TCP's plug into the data plane: listening sockets with SO_REUSEADDR (a
/// restart is not blocked by TIME_WAIT), SO_REUSEPORT when several workers
/// share a port, dual stack for `::`.
public struct TCPDriver: TransportDriver {
    /// Accept queue length per socket; the kernel caps it at somaxconn.
    public var backlog: Int32 = 1024
    public init() {}
    public var transport: TransportProtocol { .tcp }

    public func openListeningSocket(_ address: SocketAddress, reusePort: Bool) throws(SystemError) -> Int32 {
        let fd = try System.streamSocket(family: address.family)
        do {
            try System.setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1)
            if reusePort { try System.setOption(fd, SOL_SOCKET, SO_REUSEPORT, 1) }
            if address.family == AF_INET6 && address.ip.isUnspecified {
                try System.setOption(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, 0)
            }
            // Accepted sockets inherit TCP_NODELAY from the listener (Linux
            // copies the listener's tcp_sock into the child, net/ipv4/
            // tcp_minisocks.c), which saves a setsockopt per connection.
            System.setNoDelay(fd)
            try System.bind(fd, address)
            try System.listen(fd, backlog: backlog)
        } catch {
            System.close(fd)
            throw error
        }
        return fd
    }

    public func makeService(worker: Worker) -> TransportService { TCPService(worker: worker) }
}
