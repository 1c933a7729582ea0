// A pure-Swift IP address (no Glibc inet_pton), so that model, validation and
// hashing stay testable without any C library.

public enum IPAddress: Sendable, Hashable, CustomStringConvertible {
    /// IPv4 in host order (a.b.c.d = a<<24 | b<<16 | c<<8 | d).
    case v4(UInt32)
    /// IPv6 as 16 bytes, network order, packed into two big-endian halves.
    case v6(hi: UInt64, lo: UInt64)

    public var isV4: Bool { if case .v4 = self { return true } else { return false } }

    /// An IPv4-mapped IPv6 address (::ffff:a.b.c.d) becomes its IPv4 form, so a
    /// dual-stack listener hashes a v4 client the same as a v4 listener does.
    public var unmapped: IPAddress {
        if case let .v6(hi, lo) = self, hi == 0, lo >> 32 == 0xffff { return .v4(UInt32(truncatingIfNeeded: lo)) }
        return self
    }

    /// `10.0.0.5:80` or `[::1]:80`: an IPv6 literal goes in brackets before
    /// a port (RFC 3986 §3.2.2), or its last group would read as the port.
    public func withPort(_ port: some CustomStringConvertible) -> String {
        isV4 ? "\(self):\(port)" : "[\(self)]:\(port)"
    }

    public var isLoopback: Bool {
        switch unmapped {
        case let .v4(a): return a >> 24 == 127
        case let .v6(hi, lo): return hi == 0 && lo == 1
        }
    }

    public var isUnspecified: Bool {
        switch self {
        case let .v4(a): return a == 0
        case let .v6(hi, lo): return hi == 0 && lo == 0
        }
    }

    /// 16 bytes in network order (IPv4 as ::ffff:a.b.c.d).
    public var bytes16: [UInt8] {
        var out = [UInt8](repeating: 0, count: 16)
        let (hi, lo): (UInt64, UInt64)
        switch self {
        case let .v4(a): hi = 0; lo = 0xffff_0000_0000 | UInt64(a)
        case let .v6(h, l): hi = h; lo = l
        }
        for i in 0..<8 { out[i] = UInt8(truncatingIfNeeded: hi >> (56 - 8 * UInt64(i))) }
        for i in 0..<8 { out[8 + i] = UInt8(truncatingIfNeeded: lo >> (56 - 8 * UInt64(i))) }
        return out
    }

    public init?(_ text: Substring) { self.init(String(text)) }

    public init?(_ text: String) {
        if let v4 = IPAddress.parseV4(text[...]) { self = .v4(v4); return }
        guard let (hi, lo) = IPAddress.parseV6(text) else { return nil }
        self = .v6(hi: hi, lo: lo)
    }

    static func parseV4(_ s: Substring) -> UInt32? {
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for p in parts {
            guard !p.isEmpty, p.count <= 3, p.allSatisfy({ $0.isASCII && $0.isNumber }),
                  let n = UInt32(p), n <= 255, !(p.count > 1 && p.first == "0") else { return nil }
            value = value << 8 | n
        }
        return value
    }

    static func parseV6(_ s: String) -> (UInt64, UInt64)? {
        guard s.contains(":"), !s.contains("%") else { return nil }
        var groups: [UInt16] = []
        var tailGroups: [UInt16] = []
        var sawDouble = false
        let halves = s.components(separatedByDoubleColon: ())
        guard halves.count <= 2 else { return nil }
        sawDouble = halves.count == 2
        func parseGroups(_ part: Substring, allowV4Tail: Bool) -> [UInt16]? {
            if part.isEmpty { return [] }
            let items = part.split(separator: ":", omittingEmptySubsequences: false)
            var out: [UInt16] = []
            for (i, item) in items.enumerated() {
                if allowV4Tail, i == items.count - 1, item.contains(".") {
                    guard let v4 = parseV4(item) else { return nil }
                    out.append(UInt16(v4 >> 16)); out.append(UInt16(v4 & 0xffff))
                    continue
                }
                guard !item.isEmpty, item.count <= 4, let g = UInt16(item, radix: 16) else { return nil }
                out.append(g)
            }
            return out
        }
        if sawDouble {
            guard let a = parseGroups(halves[0], allowV4Tail: false),
                  let b = parseGroups(halves[1], allowV4Tail: true), a.count + b.count <= 7 else { return nil }
            groups = a; tailGroups = b
            groups += [UInt16](repeating: 0, count: 8 - a.count - b.count) + tailGroups
        } else {
            guard let a = parseGroups(halves[0], allowV4Tail: true), a.count == 8 else { return nil }
            groups = a
        }
        var hi: UInt64 = 0, lo: UInt64 = 0
        for i in 0..<4 { hi = hi << 16 | UInt64(groups[i]) }
        for i in 4..<8 { lo = lo << 16 | UInt64(groups[i]) }
        return (hi, lo)
    }

    public var description: String {
        switch self {
        case let .v4(a): return "\(a >> 24).\(a >> 16 & 255).\(a >> 8 & 255).\(a & 255)"
        case let .v6(hi, lo):
            var g = [UInt16]()
            for i in 0..<4 { g.append(UInt16(truncatingIfNeeded: hi >> (48 - 16 * UInt64(i)))) }
            for i in 0..<4 { g.append(UInt16(truncatingIfNeeded: lo >> (48 - 16 * UInt64(i)))) }
            // RFC 5952: compress the longest run (>= 2) of zero groups.
            var bestStart = -1, bestLen = 0, i = 0
            while i < 8 {
                if g[i] == 0 {
                    var j = i; while j < 8 && g[j] == 0 { j += 1 }
                    if j - i > bestLen && j - i >= 2 { bestStart = i; bestLen = j - i }
                    i = j
                } else { i += 1 }
            }
            func hex(_ r: ArraySlice<UInt16>) -> String { r.map { String($0, radix: 16) }.joined(separator: ":") }
            if bestStart < 0 { return hex(g[...]) }
            return hex(g[0..<bestStart]) + "::" + hex(g[(bestStart + bestLen)...])
        }
    }
}

extension String {
    /// Splits on the first "::" only; more than one yields 3+ parts (invalid).
    fileprivate func components(separatedByDoubleColon _: Void) -> [Substring] {
        var parts: [Substring] = []
        var rest = self[...]
        while let r = rest.range(of: "::") {
            parts.append(rest[..<r.lowerBound]); rest = rest[r.upperBound...]
        }
        parts.append(rest)
        return parts
    }
}

extension Substring {
    fileprivate func range(of needle: String) -> Range<Substring.Index>? {
        var i = startIndex
        while i < endIndex {
            if self[i...].hasPrefix(needle) { return i..<index(i, offsetBy: needle.count) }
            i = index(after: i)
        }
        return nil
    }
}
