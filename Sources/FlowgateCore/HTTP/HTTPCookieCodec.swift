/// HTTP_COOKIE persistence values: the cookie Flowgate inserts names the
/// member that served the response by a keyed SipHash of its id, never its
/// address. The key is derived from the pool id only, so every instance
/// loaded with the same configuration writes and accepts the same values (a
/// fleet agrees); a value that matches no current member of the pool
/// (unknown, tampered, or naming a removed member) simply finds nothing.
///
/// Everything a request or response needs is made here, once per snapshot:
/// the member a value names is found from the value's bytes (16 hex digits
/// read as a number, no string), and each member's whole `Set-Cookie` line
/// is ready to copy into the response head.
public struct HTTPCookieCodec: Sendable {
    /// The cookie's name unless the config file sets `http_cookie_name`; one
    /// name for every pool of one Flowgate.
    public static let defaultCookieName = "FLOWGATE_SRV"
    public static var cookieName: String { defaultCookieName }

    /// This codec's cookie name.
    public let name: String
    public let nameBytes: [UInt8]
    private let k0: UInt64
    private let k1: UInt64
    private let memberByHash: [UInt64: String]
    private let valueByMember: [String: String]
    private let lineByMember: [String: [UInt8]]

    // ASCII "cookiek0" / "cookiek1": the fixed keys that turn a pool id into its cookie key.
    static let seedK0: UInt64 = 0x3036_6b65_696b_6f6f
    static let seedK1: UInt64 = 0x3136_6b65_696b_6f6f

    /// `maxAge`: seconds, written into each Set-Cookie line.
    public init(poolID: String, memberIDs: [String], name: String = HTTPCookieCodec.defaultCookieName, maxAge: Int = 3600) {
        self.name = name
        nameBytes = Array(name.utf8)
        k0 = SipHash24.hash(Array(poolID.utf8), k0: StableHash.commonK0, k1: HTTPCookieCodec.seedK0)
        k1 = SipHash24.hash(Array(poolID.utf8), k0: StableHash.commonK0, k1: HTTPCookieCodec.seedK1)
        var byHash: [UInt64: String] = [:], byMember: [String: String] = [:], lines: [String: [UInt8]] = [:]
        for id in memberIDs {
            let h = SipHash24.hash(Array(id.utf8), k0: k0, k1: k1)
            let v = HTTPCookieCodec.hex(h)
            byHash[h] = id; byMember[id] = v
            lines[id] = Array("Set-Cookie: \(name)=\(v); Path=/; HttpOnly; Max-Age=\(maxAge)\r\n".utf8)
        }
        memberByHash = byHash; valueByMember = byMember; lineByMember = lines
    }

    /// The cookie value for `memberID` (16 lowercase hex digits).
    public func value(for memberID: String) -> String {
        valueByMember[memberID] ?? HTTPCookieCodec.encode(memberID, k0: k0, k1: k1)
    }

    /// `Set-Cookie: NAME=VALUE; Path=/; HttpOnly; Max-Age=N` and CRLF, for a member of the pool.
    public func setCookieLine(for memberID: String) -> [UInt8]? { lineByMember[memberID] }

    /// The member a cookie value names, if it names a member of the pool.
    public func member(for value: String) -> String? {
        var v = value
        return v.withUTF8 { member(forValue: UnsafeRawBufferPointer($0)) }
    }

    /// The member named by the value bytes (exactly 16 lowercase hex digits, as `value(for:)` writes them).
    public func member(forValue v: UnsafeRawBufferPointer) -> String? {
        guard v.count == 16 else { return nil }
        var h: UInt64 = 0
        for b in v {
            let d: UInt8
            switch b {
            case 0x30...0x39: d = b - 0x30
            case 0x61...0x66: d = b - 0x57
            default: return nil
            }
            h = h << 4 | UInt64(d)
        }
        return memberByHash[h]
    }

    static func encode(_ memberID: String, k0: UInt64, k1: UInt64) -> String {
        hex(SipHash24.hash(Array(memberID.utf8), k0: k0, k1: k1))
    }

    static func hex(_ h: UInt64) -> String {
        let s = String(h, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }
}

/// Reading cookies out of request and response heads (RFC 6265 §4.1, §5.2).
public enum HTTPCookies {
    /// The value of cookie `name` in the request's `Cookie` fields, if any.
    public static func requestCookie(_ name: String, head: HTTPHead, in buffer: UnsafeRawBufferPointer) -> String? {
        var n = name
        let range = n.withUTF8 { requestCookieValue(UnsafeRawBufferPointer($0), head: head, in: buffer) }
        return range.map { head.string($0, in: buffer) }
    }

    /// Where the value of cookie `name` is in the request's `Cookie` fields
    /// (the first pair of that name; surrounding whitespace and one pair of
    /// double quotes excluded), read in place.
    public static func requestCookieValue(_ name: UnsafeRawBufferPointer, head: HTTPHead,
                                          in buffer: UnsafeRawBufferPointer) -> Range<Int>? {
        for f in head.fields where f.name.count == 6
            && HTTPBytes.equalsLowercase(UnsafeRawBufferPointer(rebasing: buffer[f.name]), "cookie") {
            var i = f.value.lowerBound
            let end = f.value.upperBound
            while i < end {
                var pairEnd = i
                while pairEnd < end && buffer[pairEnd] != 0x3B { pairEnd += 1 }
                var s = i
                while s < pairEnd && (buffer[s] == 32 || buffer[s] == 9) { s += 1 }
                var eq = s
                while eq < pairEnd && buffer[eq] != 0x3D { eq += 1 }
                if eq < pairEnd && eq - s == name.count
                    && UnsafeRawBufferPointer(rebasing: buffer[s..<eq]).elementsEqual(name) {
                    var a = eq + 1, b = pairEnd
                    while a < b && (buffer[a] == 32 || buffer[a] == 9) { a += 1 }
                    while b > a && (buffer[b - 1] == 32 || buffer[b - 1] == 9) { b -= 1 }
                    if b - a >= 2 && buffer[a] == 0x22 && buffer[b - 1] == 0x22 { a += 1; b -= 1 }
                    return a..<b
                }
                i = pairEnd + 1
            }
        }
        return nil
    }

    /// The value a response's `Set-Cookie` fields give cookie `name` (the last one wins).
    public static func setCookie(_ name: String, head: HTTPHead, in buffer: UnsafeRawBufferPointer) -> String? {
        var found: String?
        for f in head.fields where f.name.count == 10
            && HTTPBytes.equalsLowercase(UnsafeRawBufferPointer(rebasing: buffer[f.name]), "set-cookie") {
            let value = head.string(f.value, in: buffer)
            let first = value.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            guard let eq = first.firstIndex(of: "=") else { continue }
            if first[..<eq].trimmingCharacters() == name {
                found = String(first[first.index(after: eq)...]).trimmingQuotes()
            }
        }
        return found
    }
}

extension Substring {
    func trimmingCharacters() -> Substring {
        var s = self
        while s.first == " " || s.first == "\t" { s.removeFirst() }
        while s.last == " " || s.last == "\t" { s.removeLast() }
        return s
    }
}

extension String {
    func trimmingQuotes() -> String {
        var s = Substring(self).trimmingCharacters()
        if s.count >= 2 && s.first == "\"" && s.last == "\"" { s = s.dropFirst().dropLast() }
        return String(s)
    }
}
