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
        switch ip {
        case let .v4(a):
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = UInt16(truncatingIfNeeded: port).bigEndian
            sin.sin_addr.s_addr = a.bigEndian
            withUnsafeBytes(of: &sin) { src in
                withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: src) }
            }
            self.init(storage: storage, length: socklen_t(MemoryLayout<sockaddr_in>.size))
        case .v6:
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = UInt16(truncatingIfNeeded: port).bigEndian
            let b = ip.bytes16
            withUnsafeMutableBytes(of: &sin6.sin6_addr) { for i in 0..<16 { $0[i] = b[i] } }
            withUnsafeBytes(of: &sin6) { src in
                withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: src) }
            }
            self.init(storage: storage, length: socklen_t(MemoryLayout<sockaddr_in6>.size))
        }
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
            return withUnsafeBytes(of: &s) { raw in
                let sin6 = raw.load(as: sockaddr_in6.self)
                var hi: UInt64 = 0, lo: UInt64 = 0
                withUnsafeBytes(of: sin6.sin6_addr) { a in
                    for i in 0..<8 { hi = hi << 8 | UInt64(a[i]) }
                    for i in 8..<16 { lo = lo << 8 | UInt64(a[i]) }
                }
                return IPAddress.v6(hi: hi, lo: lo).unmapped
            }
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
        family == AF_INET6 && !ip.isV4 ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }
}
