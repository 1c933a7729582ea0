// The request methods an HTTP pool forwards: the HTTP/1.1 methods registered
// with IANA that llhttp (the parser behind Node, and the reference in
// Tests/IntegrationTests/test_http_parser_differential.py) also knows. Any
// other token is answered 501 (RFC 9110 §9.1: a method the server does not
// recognise), so a backend never sees a method the proxy could not frame.

public enum HTTPMethod: String, Sendable, CaseIterable {
    case get = "GET", head = "HEAD", post = "POST", put = "PUT", delete = "DELETE", connect = "CONNECT"
    case options = "OPTIONS", trace = "TRACE", patch = "PATCH"
    case copy = "COPY", lock = "LOCK", mkcol = "MKCOL", move = "MOVE", propfind = "PROPFIND"
    case proppatch = "PROPPATCH", search = "SEARCH", unlock = "UNLOCK", bind = "BIND", rebind = "REBIND"
    case unbind = "UNBIND", acl = "ACL", report = "REPORT", mkactivity = "MKACTIVITY", checkout = "CHECKOUT"
    case merge = "MERGE", msearch = "M-SEARCH", notify = "NOTIFY", subscribe = "SUBSCRIBE"
    case unsubscribe = "UNSUBSCRIBE", purge = "PURGE", mkcalendar = "MKCALENDAR", link = "LINK"
    case unlink = "UNLINK", source = "SOURCE", query = "QUERY"

    /// The method spelled by `bytes` (case-sensitive, RFC 9110 §9.1), nil when unknown.
    @inlinable
    public static func lookup(_ bytes: UnsafeRawBufferPointer) -> HTTPMethod? {
        // The common methods first, without touching the table.
        switch bytes.count {
        case 3 where bytes[0] == 0x47 && bytes[1] == 0x45 && bytes[2] == 0x54: return .get
        case 4 where bytes[0] == 0x50 && bytes[1] == 0x4F && bytes[2] == 0x53 && bytes[3] == 0x54: return .post
        default: break
        }
        for m in byLength[min(bytes.count, byLength.count - 1)] where m.bytes.elementsEqual(bytes) { return m.method }
        return nil
    }

    @usableFromInline
    static let byLength: [[(method: HTTPMethod, bytes: [UInt8])]] = {
        var table = [[(method: HTTPMethod, bytes: [UInt8])]](repeating: [], count: 13)
        for m in HTTPMethod.allCases { table[m.rawValue.utf8.count].append((m, Array(m.rawValue.utf8))) }
        return table
    }()
}

/// Byte classes of RFC 9110 §5.6.2 and §5.5 and RFC 3986 §3.2, as bit masks
/// over the ASCII range (constants: no table to load, no bounds check).
public enum HTTPBytes {
    static func mask(_ chars: String, alnum: Bool) -> (UInt64, UInt64) {
        var lo: UInt64 = 0, hi: UInt64 = 0
        var all = Array(chars.utf8)
        if alnum { all += Array("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8) }
        for c in all { if c < 64 { lo |= 1 << UInt64(c) } else { hi |= 1 << UInt64(c - 64) } }
        return (lo, hi)
    }
    // tchar: "!#$%&'*+-.^_`|~" and alphanumerics (computed once by mask(_:alnum:), checked in the tests).
    @usableFromInline static let tokenLo: UInt64 = 0x03FF_6CFA_0000_0000
    @usableFromInline static let tokenHi: UInt64 = 0x57FF_FFFF_C7FF_FFFE
    // RFC 3986 authority: unreserved, sub-delims, pct-encoded, ':' '@' and IP-literal brackets.
    @usableFromInline static let authorityLo: UInt64 = 0x2FFF_7FF2_0000_0000
    @usableFromInline static let authorityHi: UInt64 = 0x47FF_FFFE_AFFF_FFFF

    @inlinable static func inMask(_ b: UInt8, _ lo: UInt64, _ hi: UInt64) -> Bool {
        b < 64 ? (lo >> UInt64(b)) & 1 != 0 : b < 128 && (hi >> UInt64(b &- 64)) & 1 != 0
    }
    @inlinable public static func isToken(_ b: UInt8) -> Bool { inMask(b, tokenLo, tokenHi) }
    /// field-vchar, obs-text, SP and HTAB: what a field value may hold.
    @inlinable public static func isFieldValue(_ b: UInt8) -> Bool { (b >= 0x20 && b != 0x7F) || b == 0x09 }
    /// The request target: visible ASCII only (llhttp passes the same set).
    @inlinable public static func isTarget(_ b: UInt8) -> Bool { b >= 0x21 && b <= 0x7E }
    @inlinable public static func isAuthority(_ b: UInt8) -> Bool { inMask(b, authorityLo, authorityHi) }

    /// True when every byte of `bytes` is a field-value byte; eight at a time while no byte needs a closer look.
    @inlinable
    public static func allFieldValue(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        let n = bytes.count
        while i + 8 <= n {
            let x = bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            // A byte < 0x20 (hasless) or equal to 0x7F (haszero of x ^ 0x7F..): check these eight one by one.
            let less = (x &- 0x2020_2020_2020_2020) & ~x & 0x8080_8080_8080_8080
            let y = x ^ 0x7F7F_7F7F_7F7F_7F7F
            let del = (y &- 0x0101_0101_0101_0101) & ~y & 0x8080_8080_8080_8080
            if less | del != 0 {
                for j in i..<(i + 8) where !isFieldValue(bytes[j]) { return false }
            }
            i += 8
        }
        while i < n {
            if !isFieldValue(bytes[i]) { return false }
            i += 1
        }
        return true
    }

    /// ASCII case-insensitive comparison with a lower-case literal.
    @inlinable
    public static func equalsLowercase(_ bytes: UnsafeRawBufferPointer, _ lower: StaticString) -> Bool {
        guard bytes.count == lower.utf8CodeUnitCount else { return false }
        let l = lower.utf8Start
        for i in 0..<bytes.count {
            let b = bytes[i]
            let folded = (b >= 0x41 && b <= 0x5A) ? b | 0x20 : b
            if folded != l[i] { return false }
        }
        return true
    }
}
