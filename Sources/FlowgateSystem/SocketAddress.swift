#if canImport(Glibc)
import Glibc
#endif

/// A socket address (sockaddr_in / sockaddr_in6). The data plane converts it
/// to and from the model's `IPAddress` (FlowgateDataPlane's
/// System/SocketAddress+IPAddress.swift); this target knows only the kernel's
/// forms, so it depends on nothing but the C shims.
public struct SocketAddress: Sendable, CustomStringConvertible {
    public var storage: sockaddr_storage
    public var length: socklen_t

    @inlinable
    public init(storage: sockaddr_storage, length: socklen_t) { self.storage = storage; self.length = length }

    /// An IPv4 address, `address` and `port` in host order.
    @inlinable
    public init(ipv4 address: UInt32, port: UInt16) {
        var storage = sockaddr_storage()
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = port.bigEndian
        sin.sin_addr.s_addr = address.bigEndian
        let length = storage.store(sin)
        self.init(storage: storage, length: socklen_t(length))
    }

    /// An IPv6 address from its 16 bytes in network order (`hi` the first 8).
    @inlinable
    public init(ipv6 hi: UInt64, _ lo: UInt64, port: UInt16) {
        var storage = sockaddr_storage()
        var sin6 = sockaddr_in6()
        sin6.sin6_family = sa_family_t(AF_INET6)
        sin6.sin6_port = port.bigEndian
        withUnsafeMutableBytes(of: &sin6.sin6_addr) { b in
            for i in 0..<8 { b[i] = UInt8(truncatingIfNeeded: hi >> (56 - 8 * UInt64(i))) }
            for i in 0..<8 { b[8 + i] = UInt8(truncatingIfNeeded: lo >> (56 - 8 * UInt64(i))) }
        }
        let length = storage.store(sin6)
        self.init(storage: storage, length: socklen_t(length))
    }

    @inlinable
    public var family: Int32 { Int32(storage.ss_family) }

    /// The IPv4 address in host order, nil for another family.
    @inlinable
    public var ipv4: UInt32? {
        guard family == AF_INET else { return nil }
        return withUnsafeBytes(of: storage) { UInt32(bigEndian: $0.load(as: sockaddr_in.self).sin_addr.s_addr) }
    }

    /// The 16 bytes of an IPv6 address as two big-endian words, nil for another family.
    @inlinable
    public var ipv6: (hi: UInt64, lo: UInt64)? {
        guard family == AF_INET6 else { return nil }
        return withUnsafeBytes(of: storage) { raw in
            let a = raw.load(as: sockaddr_in6.self).sin6_addr
            var hi: UInt64 = 0, lo: UInt64 = 0
            withUnsafeBytes(of: a) { b in
                for i in 0..<8 { hi = hi << 8 | UInt64(b[i]) }
                for i in 8..<16 { lo = lo << 8 | UInt64(b[i]) }
            }
            return (hi, lo)
        }
    }

    @inlinable
    public var port: Int {
        withUnsafeBytes(of: storage) { raw in
            switch family {
            case AF_INET: return Int(UInt16(bigEndian: raw.load(as: sockaddr_in.self).sin_port))
            case AF_INET6: return Int(UInt16(bigEndian: raw.load(as: sockaddr_in6.self).sin6_port))
            default: return 0
            }
        }
    }

    @inlinable
    public func withSockaddr<R, E: Error>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws(E) -> R) throws(E) -> R {
        var s = storage
        let len = length
        return try withUnsafePointer(to: &s) { (p) throws(E) -> R in
            try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { (sa) throws(E) -> R in try body(sa, len) }
        }
    }

    /// "a.b.c.d:port" or "[v6]:port"; a v4-mapped IPv6 address prints as IPv4.
    public var description: String {
        var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        if let v6 = ipv6 {
            if v6.hi == 0, v6.lo >> 32 == 0xffff {
                return SocketAddress(ipv4: UInt32(truncatingIfNeeded: v6.lo), port: UInt16(port)).description
            }
            var s = storage
            _ = withUnsafeBytes(of: &s) { raw in
                var a = raw.load(as: sockaddr_in6.self).sin6_addr
                return inet_ntop(AF_INET6, &a, &buf, socklen_t(buf.count))
            }
            return "[\(String(cString: buf))]:\(port)"
        }
        if var a = ipv4.map({ in_addr(s_addr: $0.bigEndian) }) {
            _ = inet_ntop(AF_INET, &a, &buf, socklen_t(buf.count))
            return "\(String(cString: buf)):\(port)"
        }
        return "family \(family)"
    }
}

extension sockaddr_storage {
    /// Copies `address` (a sockaddr_in or sockaddr_in6) in; returns its length.
    @inlinable
    mutating func store<A>(_ address: A) -> Int {
        var a = address
        withUnsafeBytes(of: &a) { src in withUnsafeMutableBytes(of: &self) { $0.copyMemory(from: src) } }
        return MemoryLayout<A>.size
    }
}
