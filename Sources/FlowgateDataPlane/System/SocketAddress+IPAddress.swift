#if canImport(Glibc)
import Glibc
#endif
import FlowgateCore
import FlowgateSystem

// The conversions between the model's `IPAddress` and the kernel's address
// structs, shared by `SocketAddress` (FlowgateSystem, which does not know
// the model) and the UDP relay's compact `UDPAddress`.

extension SocketAddress {
    public init(_ ip: IPAddress, port: Int) {
        let p = UInt16(truncatingIfNeeded: port)
        switch ip {
        case let .v4(a): self.init(ipv4: a, port: p)
        case let .v6(hi, lo): self.init(ipv6: hi, lo, port: p)
        }
    }

    /// The address as the model sees it: a v4-mapped peer of a dual-stack
    /// socket becomes IPv4.
    public var ip: IPAddress {
        if let a = ipv4 { return .v4(a) }
        if let (hi, lo) = ipv6 { return IPAddress.v6(hi: hi, lo: lo).unmapped }
        return .v4(0)
    }
}

extension sockaddr_in {
    /// `a` in host order, `port` in host order.
    init(_ a: UInt32, port: UInt16) {
        self.init()
        sin_family = sa_family_t(AF_INET)
        sin_port = port.bigEndian
        sin_addr.s_addr = a.bigEndian
    }
}

extension sockaddr_in6 {
    /// An IPv4 `ip` becomes v4-mapped (::ffff:a.b.c.d), for dual-stack sockets.
    init(_ ip: IPAddress, port: UInt16) {
        self.init()
        sin6_family = sa_family_t(AF_INET6)
        sin6_port = port.bigEndian
        let b = ip.bytes16
        withUnsafeMutableBytes(of: &sin6_addr) { for i in 0..<16 { $0[i] = b[i] } }
    }
}

extension IPAddress {
    /// The 16 bytes as they are, so a v4-mapped address stays IPv6 (`.unmapped` converts).
    init(_ a: in6_addr) {
        var hi: UInt64 = 0, lo: UInt64 = 0
        withUnsafeBytes(of: a) { b in
            for i in 0..<8 { hi = hi << 8 | UInt64(b[i]) }
            for i in 8..<16 { lo = lo << 8 | UInt64(b[i]) }
        }
        self = .v6(hi: hi, lo: lo)
    }
}
