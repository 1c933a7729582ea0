#if canImport(Glibc)
import Glibc
#endif
import FlowgateCore

/// A socket address (sockaddr_in / sockaddr_in6) converted to and from the
/// model's pure-Swift `IPAddress` and a port.
public struct SocketAddress: Sendable, CustomStringConvertible {
    var storage: sockaddr_storage
    var length: socklen_t

    init(storage: sockaddr_storage, length: socklen_t) { self.storage = storage; self.length = length }

    public init(_ ip: IPAddress, port: Int) {
        var storage = sockaddr_storage()
        let p = UInt16(truncatingIfNeeded: port)
        let length: Int
        switch ip {
        case let .v4(a): length = storage.store(sockaddr_in(a, port: p))
        case .v6: length = storage.store(sockaddr_in6(ip, port: p))
        }
        self.init(storage: storage, length: socklen_t(length))
    }

    public var family: Int32 { Int32(storage.ss_family) }

    public var ip: IPAddress {
        var s = storage
        switch family {
        case AF_INET:
            return withUnsafeBytes(of: &s) { raw in
                let sin = raw.load(as: sockaddr_in.self)
                return .v4(UInt32(bigEndian: sin.sin_addr.s_addr))
            }
        case AF_INET6:
            return withUnsafeBytes(of: &s) { raw in IPAddress(raw.load(as: sockaddr_in6.self).sin6_addr).unmapped }
        default:
            return .v4(0)
        }
    }

    public var port: Int {
        var s = storage
        return withUnsafeBytes(of: &s) { raw in
            switch family {
            case AF_INET: return Int(UInt16(bigEndian: raw.load(as: sockaddr_in.self).sin_port))
            case AF_INET6: return Int(UInt16(bigEndian: raw.load(as: sockaddr_in6.self).sin6_port))
            default: return 0
            }
        }
    }

    func withSockaddr<R, E: Error>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws(E) -> R) throws(E) -> R {
        var s = storage
        let len = length
        return try withUnsafePointer(to: &s) { (p) throws(E) -> R in
            try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { (sa) throws(E) -> R in try body(sa, len) }
        }
    }

    public var description: String {
        ip.withPort(port)  // `ip` is unmapped: a v4-mapped peer prints as IPv4
    }
}

// The conversions between the model's `IPAddress` and the kernel's address
// structs, shared by `SocketAddress` and the UDP relay's compact `UDPAddress`.

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

extension sockaddr_storage {
    /// Copies `address` (a sockaddr_in or sockaddr_in6) in; returns its length.
    mutating func store<A>(_ address: A) -> Int {
        var a = address
        withUnsafeBytes(of: &a) { src in withUnsafeMutableBytes(of: &self) { $0.copyMemory(from: src) } }
        return MemoryLayout<A>.size
    }
}
