#if canImport(Glibc)
import Glibc
#endif
import FlowgateCore
import FlowgateSystem

/// Reply sockets of `port_ranges: lookup` UDP listeners (docs/architecture.md
/// §20). A lookup socket is bound to one port and receives every port of its
/// ranges, but a reply must leave from the port the client reached, which
/// IP_PKTINFO cannot set (it sets the address only). So each (address, port)
/// that has live sessions on this worker gets one unconnected socket bound
/// there (SO_REUSEADDR: other workers, the lookup group and the previous
/// process after a takeover bind it too), shared by those sessions and
/// closed with the last of them. It never receives: the kernel's UDP lookup
/// runs the sk_lookup program before it considers unconnected sockets
/// (net/ipv4/udp.c, __udp4_lib_lookup), and the program steers every port
/// of the ranges to the lookup group; a port removed from the ranges loses
/// its sessions, and so its reply socket, at the same commit.
struct UDPReplySockets {
    struct Key: Hashable { var ip: IPAddress; var port: UInt16 }
    private var byKey: [Key: (fd: Int32, refs: Int)] = [:]
    private var keyByFD: [Int32: Key] = [:]

    /// A reference to the socket bound to `local` (opened on first use).
    mutating func acquire(_ local: UDPAddress) throws(SystemError) -> Int32 {
        let key = Key(ip: local.ip, port: local.port)
        if let e = byKey[key] {
            byKey[key] = (e.fd, e.refs + 1)
            return e.fd
        }
        let address = SocketAddress(local.ip, port: Int(local.port))
        let fd = try System.datagramSocket(family: local.family)
        do {
            try System.setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1)
            if local.family == AF_INET6 { try System.setOption(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, 0) }
            try System.bind(fd, address)
        } catch {
            System.close(fd)
            throw error
        }
        byKey[key] = (fd, 1)
        keyByFD[fd] = key
        return fd
    }

    /// Drops a reference; the last one closes the socket.
    mutating func release(_ fd: Int32) {
        guard let key = keyByFD[fd], let e = byKey[key] else { return }
        if e.refs > 1 { byKey[key] = (fd, e.refs - 1); return }
        byKey[key] = nil
        keyByFD[fd] = nil
        System.close(fd)
    }

    /// The port a reply socket is bound to.
    func port(of fd: Int32) -> UInt16? { keyByFD[fd]?.port }

    /// The address and port a reply socket is bound to (a session's, for a takeover).
    func address(of fd: Int32) -> Key? { keyByFD[fd] }

    var count: Int { byKey.count }
}
