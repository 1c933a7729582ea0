#if canImport(Glibc)
import Glibc
#endif
import FlowgateCore
import FlowgateSystem

/// A socket address of either family held in a `sockaddr_in6`-sized value
/// (28 bytes; a `sockaddr_in` fits in its first 16), so a flow stores its
/// client and local addresses without a 128-byte `sockaddr_storage` each.
struct UDPAddress {
    var raw = sockaddr_in6()
    var length: socklen_t = 0

    init() {}

    /// Copies `len` bytes of a received address (AF_INET or AF_INET6).
    init(_ sa: UnsafePointer<sockaddr>, length len: socklen_t) {
        let n = min(Int(len), MemoryLayout<sockaddr_in6>.size)
        withUnsafeMutableBytes(of: &raw) { dst in
            dst.copyMemory(from: UnsafeRawBufferPointer(start: sa, count: n))
        }
        length = socklen_t(n)
    }

    /// The socket address of `ip:port`; an IPv4 address becomes v4-mapped
    /// when `family` is AF_INET6 (dual-stack sockets).
    init(_ ip: IPAddress, port: UInt16, family: Int32? = nil) {
        let fam = family ?? (ip.isV4 ? AF_INET : AF_INET6)
        if fam == AF_INET, case let .v4(a) = ip.unmapped {
            var sin = sockaddr_in(a, port: port)
            withUnsafeMutableBytes(of: &raw) { dst in withUnsafeBytes(of: &sin) { dst.copyMemory(from: $0) } }
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
        } else {
            raw = sockaddr_in6(ip, port: port)
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        }
    }

    var family: Int32 { Int32(raw.sin6_family) }

    /// Port in host order.
    var port: UInt16 { UInt16(bigEndian: raw.sin6_port) }  // sin_port and sin6_port share offset 2

    /// The IP (v4-mapped v6 stays v6 here; FlowContext unmaps).
    var ip: IPAddress {
        if family == AF_INET {
            return withUnsafeBytes(of: raw) { b in
                let s = b.load(fromByteOffset: 4, as: UInt32.self)
                return .v4(UInt32(bigEndian: s))
            }
        }
        return IPAddress(raw.sin6_addr)
    }

    /// Calls `body` with a `sockaddr` pointer to this address.
    func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        withUnsafeBytes(of: raw) { b in body(b.baseAddress!.assumingMemoryBound(to: sockaddr.self), length) }
    }
}

extension DatagramBatch {
    /// Slot `i` goes to `address`, from the socket's own address.
    func setDestination(_ i: Int, _ address: UDPAddress) {
        address.withSockaddr { setAddress(UInt32(i), $0, $1) }
        setSource(UInt32(i), nil)
    }
}
