// `port_ranges: lookup` binds no socket per port, so the kernel cannot
// answer EADDRINUSE when another program already serves a port of a range;
// the sk_lookup program would then silently take that port's traffic from
// it. Before a change adds ports to a lookup listener, this reads the
// namespace's socket tables (/proc/self/net/{tcp,tcp6,udp,udp6}, proc(5))
// and refuses the change, as a per-port bind would, when a TCP listener or
// an unconnected UDP socket that is not this process's own holds one of the
// new ports on an overlapping address (docs/architecture.md §20).
import FlowgateCore
import FlowgateSystem

enum PortConflicts {
    struct Conflict { var port: Int; var address: IPAddress; var inode: UInt64 }

    /// The first socket of another owner on `bind` (or an overlapping
    /// address) at one of `ports`, or nil.
    static func find(_ transport: TransportProtocol, bind: IPAddress, ports: (Int) -> Bool, own: Set<UInt64>) -> Conflict? {
        let files = transport == .tcp ? ["tcp", "tcp6"] : ["udp", "udp6"]
        // TCP_LISTEN (0A) for TCP; TCP_CLOSE (07), an unconnected UDP socket, for UDP.
        let state = transport == .tcp ? "0A" : "07"
        for f in files {
            guard let bytes = try? System.readFile("/proc/self/net/\(f)") else { continue }
            let text = String(decoding: bytes, as: UTF8.self)
            for line in text.split(separator: "\n").dropFirst() {
                let cols = line.split(separator: " ", omittingEmptySubsequences: true)
                guard cols.count > 9, cols[3] == state else { continue }
                let local = cols[1].split(separator: ":")
                guard local.count == 2, let port = Int(local[1], radix: 16), ports(port),
                      let address = parse(local[0]), let inode = UInt64(cols[9]), !own.contains(inode) else { continue }
                if overlaps(bind, address) { return Conflict(port: port, address: address, inode: inode) }
            }
        }
        return nil
    }

    /// /proc/net's hex address: 32-bit words in host (little-endian) order.
    static func parse(_ hex: Substring) -> IPAddress? {
        let words = stride(from: 0, to: hex.count, by: 8).compactMap { i -> UInt32? in
            let s = hex.index(hex.startIndex, offsetBy: i), e = hex.index(s, offsetBy: 8, limitedBy: hex.endIndex) ?? hex.endIndex
            return UInt32(hex[s..<e], radix: 16).map { UInt32(bigEndian: $0) }   // bytes as they lie in memory
        }
        if words.count == 1 { return .v4(words[0]) }
        guard words.count == 4 else { return nil }
        let hi = UInt64(words[0]) << 32 | UInt64(words[1]), lo = UInt64(words[2]) << 32 | UInt64(words[3])
        return IPAddress.v6(hi: hi, lo: lo).unmapped
    }

    /// Two bind addresses overlap when equal, or when either is a wildcard
    /// of the other's family (`::` overlaps everything).
    static func overlaps(_ a: IPAddress, _ b: IPAddress) -> Bool {
        let a = a.unmapped, b = b.unmapped
        if a == b { return true }
        for (x, y) in [(a, b), (b, a)] where x.isUnspecified {
            if !x.isV4 || y.isV4 { return true }
        }
        return false
    }

    /// Inodes of this process's sockets (its own groups, reply sockets and
    /// sockets received in a takeover).
    static func ownSocketInodes() -> Set<UInt64> {
        var out = Set<UInt64>()
        for fd in System.openDescriptors() {
            guard let target = System.readLink("/proc/self/fd/\(fd)"), target.hasPrefix("socket:[") else { continue }
            if let n = UInt64(target.dropFirst(8).dropLast()) { out.insert(n) }
        }
        return out
    }
}
