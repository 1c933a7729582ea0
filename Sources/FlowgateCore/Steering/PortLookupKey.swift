// The port map of the sk_lookup steering (PortLookupProgram.swift), as pure
// values: a BPF_MAP_TYPE_LPM_TRIE whose key is
//
//   u32 prefixlen (host order) | u32 protocol (host order) | 16 address bytes | be16 port
//
// and whose value is a u32 slot in the socket map. The protocol and the
// address (IPv4 as ::ffff:a.b.c.d, the wildcard 0.0.0.0 as ::ffff:0.0.0.0)
// are always matched whole; a port range [from, to] becomes the few
// prefixes of the port's 16 bits that cover exactly those ports.

/// One entry of the port map.
public struct PortLookupKey: Sendable, Hashable, CustomStringConvertible {
    /// 32 protocol bits + 128 address bits + 16 port bits.
    public static let fullPrefix = 176
    public static let byteCount = 26

    public var protocolNumber: UInt32
    public var address: IPAddress
    /// First port of the prefix (its low `16 - portBits` bits are zero).
    public var port: UInt16
    /// How many leading bits of the port are matched (0...16).
    public var portBits: Int

    public init(protocolNumber: UInt32, address: IPAddress, port: UInt16, portBits: Int) {
        self.protocolNumber = protocolNumber; self.address = address; self.port = port; self.portBits = portBits
    }

    /// IPPROTO_TCP / IPPROTO_UDP.
    public static func protocolNumber(_ t: TransportProtocol) -> UInt32 { t == .tcp ? 6 : 17 }

    /// The bytes of the key (little-endian host fields, network-order address and port).
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(PortLookupKey.byteCount)
        let prefix = UInt32(32 + 128 + portBits)
        for v in [prefix, protocolNumber] { for s in stride(from: 0, to: 32, by: 8) { out.append(UInt8((v >> UInt32(s)) & 0xff)) } }
        out += address.bytes16
        out.append(UInt8(port >> 8)); out.append(UInt8(port & 0xff))
        return out
    }

    /// The ports this entry matches.
    public var ports: ClosedRange<Int> {
        let span = 1 << (16 - portBits)
        return Int(port)...(Int(port) + span - 1)
    }

    public var description: String { "\(protocolNumber) \(address) \(port)/\(portBits)" }

    /// The fewest aligned prefixes covering exactly `from...to` (within 0...65535).
    public static func prefixes(from: Int, to: Int) -> [(port: UInt16, bits: Int)] {
        var out: [(UInt16, Int)] = []
        var p = from
        while p <= to {
            // The largest aligned block starting at p that stays within `to`.
            var size = p == 0 ? 65536 : (p & -p)
            while p + size - 1 > to { size >>= 1 }
            out.append((UInt16(p), 16 - size.trailingZeroBitCount))
            p += size
        }
        return out
    }

    /// The addresses a bind address is matched under: `::` (dual stack)
    /// also takes IPv4 packets, whose wildcard is ::ffff:0.0.0.0.
    public static func addresses(forBind bind: IPAddress) -> [IPAddress] {
        if case .v6 = bind, bind.isUnspecified { return [bind, .v4(0)] }
        return [bind]
    }
}

/// What the port map must hold for a set of listeners, and the smallest
/// change from what it holds now.
public enum PortLookupTable {
    /// One listener as the steering sees it.
    public struct Listener: Sendable {
        public var transport: TransportProtocol
        public var bind: IPAddress
        public var ranges: [PortRange]
        /// The socket-map slot of its socket group.
        public var slot: UInt32
        public init(transport: TransportProtocol, bind: IPAddress, ranges: [PortRange], slot: UInt32) {
            self.transport = transport; self.bind = bind; self.ranges = ranges; self.slot = slot
        }
    }

    /// Every entry for `listeners`.
    public static func entries(_ listeners: [Listener]) -> [PortLookupKey: UInt32] {
        var out: [PortLookupKey: UInt32] = [:]
        for l in listeners {
            let proto = PortLookupKey.protocolNumber(l.transport)
            for address in PortLookupKey.addresses(forBind: l.bind) {
                for r in l.ranges {
                    for p in PortLookupKey.prefixes(from: r.fromPort, to: r.toPort) {
                        out[PortLookupKey(protocolNumber: proto, address: address, port: p.port, portBits: p.bits)] = l.slot
                    }
                }
            }
        }
        return out
    }

    /// Entries to write (new, or with another slot) and keys to delete. The
    /// writes go first: each is atomic in the kernel, so a port kept by the
    /// change is steered at every instant, and a removed port stops being
    /// steered when its prefix is deleted.
    public static func diff(current: [PortLookupKey: UInt32], desired: [PortLookupKey: UInt32])
        -> (writes: [(key: PortLookupKey, slot: UInt32)], deletes: [PortLookupKey]) {
        let writes = desired.filter { current[$0.key] != $0.value }
            .map { (key: $0.key, slot: $0.value) }
            .sorted { $0.key.bytes.lexicographicallyPrecedes($1.key.bytes) }
        let deletes = current.keys.filter { desired[$0] == nil }.sorted { $0.bytes.lexicographicallyPrecedes($1.bytes) }
        return (writes, deletes)
    }
}
