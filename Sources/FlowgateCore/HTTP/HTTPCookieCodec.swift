/// HTTP_COOKIE persistence values: the cookie Flowgate inserts names the
/// member that served the response by a keyed SipHash of its id, never its
/// address. The key is derived from the pool id only, so every instance
/// loaded with the same configuration writes and accepts the same values (a
/// fleet agrees); a value that matches no current member of the pool
/// (unknown, tampered, or naming a removed member) simply finds nothing.
public struct HTTPCookieCodec: Sendable {
    /// The cookie's name, the same for every pool of one Flowgate.
    public static let cookieName = "FLOWGATE_SRV"

    private let k0: UInt64
    private let k1: UInt64
    private let memberByValue: [String: String]
    private let valueByMember: [String: String]

    // ASCII "cookiek0" / "cookiek1": the fixed keys that turn a pool id into its cookie key.
    static let seedK0: UInt64 = 0x3036_6b65_696b_6f6f
    static let seedK1: UInt64 = 0x3136_6b65_696b_6f6f

    public init(poolID: String, memberIDs: [String]) {
        k0 = SipHash24.hash(Array(poolID.utf8), k0: StableHash.commonK0, k1: HTTPCookieCodec.seedK0)
        k1 = SipHash24.hash(Array(poolID.utf8), k0: StableHash.commonK0, k1: HTTPCookieCodec.seedK1)
        var byValue: [String: String] = [:], byMember: [String: String] = [:]
        for id in memberIDs {
            let v = HTTPCookieCodec.encode(id, k0: k0, k1: k1)
            byValue[v] = id; byMember[id] = v
        }
        memberByValue = byValue; valueByMember = byMember
    }

    /// The cookie value for `memberID` (16 lowercase hex digits).
    public func value(for memberID: String) -> String {
        valueByMember[memberID] ?? HTTPCookieCodec.encode(memberID, k0: k0, k1: k1)
    }

    /// The member a cookie value names, if it names a member of the pool.
    public func member(for value: String) -> String? { memberByValue[value] }

    static func encode(_ memberID: String, k0: UInt64, k1: UInt64) -> String {
        let h = SipHash24.hash(Array(memberID.utf8), k0: k0, k1: k1)
        let s = String(h, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }
}

/// Reading cookies out of request and response heads (RFC 6265 §4.1, §5.2).
public enum HTTPCookies {
    /// The value of cookie `name` in the request's `Cookie` fields, if any.
    public static func requestCookie(_ name: String, head: HTTPHead, in buffer: UnsafeRawBufferPointer) -> String? {
        for f in head.fields where HTTPBytes.equalsLowercase(UnsafeRawBufferPointer(rebasing: buffer[f.name]), "cookie") {
            let value = head.string(f.value, in: buffer)
            for pair in value.split(separator: ";") {
                let p = pair.drop(while: { $0 == " " || $0 == "\t" })
                guard let eq = p.firstIndex(of: "=") else { continue }
                if p[..<eq] == name[...] { return String(p[p.index(after: eq)...]).trimmingQuotes() }
            }
        }
        return nil
    }

    /// The value a response's `Set-Cookie` fields give cookie `name` (the last one wins).
    public static func setCookie(_ name: String, head: HTTPHead, in buffer: UnsafeRawBufferPointer) -> String? {
        var found: String?
        for f in head.fields where HTTPBytes.equalsLowercase(UnsafeRawBufferPointer(rebasing: buffer[f.name]), "set-cookie") {
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
