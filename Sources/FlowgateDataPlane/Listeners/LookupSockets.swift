// The sockets of `tuning.port_ranges: lookup` (docs/architecture.md §20): per
// listener one SO_REUSEPORT group with a socket per worker, bound to the
// listener's address and one port the kernel picks. The sk_lookup program
// hands the group every port of the listener's ranges; the kernel's
// SO_REUSEPORT selection then spreads them over the workers by 4-tuple hash,
// as it does for a port bound per worker.
#if canImport(Glibc)
import Glibc
#endif
import FlowgateCore
import FlowgateSystem

enum LookupSockets {
    /// One socket of `key`'s group at `address` (port 0 for the first: the
    /// kernel picks a port, which the rest of the group then binds).
    /// SO_REUSEADDR on UDP too: the relay's reply sockets bind the ports
    /// the clients reached, and one of those may be the group's own port.
    static func open(_ key: ListeningSocketKey, at address: SocketAddress) throws(SystemError) -> Int32 {
        let tcp = key.transport == .tcp
        let fd = tcp ? try System.streamSocket(family: address.family) : try System.datagramSocket(family: address.family)
        do {
            try System.setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1)
            try System.setOption(fd, SOL_SOCKET, SO_REUSEPORT, 1)
            if address.family == AF_INET6 {
                try System.setOption(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, address.ip.isUnspecified ? 0 : 1)
            }
            if tcp {
                // Inherited by accepted sockets, as in TCPDriver.
                System.setNoDelay(fd)
            } else {
                try System.enableOriginalDestination(fd, family: address.family)
            }
            try System.bind(fd, address)
            if tcp { try System.listen(fd, backlog: 4096) }
        } catch {
            System.close(fd)
            throw error
        }
        return fd
    }

    /// A group of `count` sockets for `key`.
    static func openGroup(_ key: ListeningSocketKey, count: Int) throws(SystemError) -> [Int32] {
        var fds: [Int32] = []
        do {
            let first = try open(key, at: SocketAddress(key.bind, port: 0))
            fds.append(first)
            let bound = try System.localAddress(first)
            for _ in 1..<max(1, count) { fds.append(try open(key, at: bound)) }
        } catch {
            for fd in fds { System.close(fd) }
            throw error
        }
        return fds
    }

    /// Another socket in the group `existing` belongs to (takeover widening).
    static func join(_ key: ListeningSocketKey, groupOf existing: Int32) throws(SystemError) -> Int32 {
        try open(key, at: try System.localAddress(existing))
    }

    /// The listener serves `port` (the port a client reached, read back from
    /// the accepted socket or the datagram): a packet can reach the group
    /// unsteered at the group's own port.
    static func serves(_ plan: ListenerPlan, port: Int) -> Bool {
        plan.listener.portRanges.contains { $0.ports.contains(port) }
    }
}
