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

/// Byte classes of RFC 9110 §5.6.2 and §5.5, as one table lookup each.
public enum HTTPBytes {
    @usableFromInline static let classes: [UInt8] = {
        var t = [UInt8](repeating: 0, count: 256)
        for b in 0..<256 {
            let c = UInt8(b)
            var v: UInt8 = 0
            let alnum = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
            if alnum || "!#$%&'*+-.^_`|~".utf8.contains(c) { v |= token }
            // field-vchar / obs-text, SP and HTAB: what a field value may hold.
            if c == 0x09 || c == 0x20 || (c >= 0x21 && c != 0x7F) { v |= fieldValue }
            // The request target: visible ASCII only (RFC 3986 plus the characters llhttp also passes).
            if c >= 0x21 && c <= 0x7E { v |= target }
            // RFC 3986 authority: unreserved, sub-delims, pct-encoded, ':' '@' and IP-literal brackets.
            if alnum || "-._~!$&'()*+,;=%:@[]".utf8.contains(c) { v |= authority }
            t[b] = v
        }
        return t
    }()
    public static let token: UInt8 = 1
    public static let fieldValue: UInt8 = 2
    public static let target: UInt8 = 4
    public static let authority: UInt8 = 8

    @inlinable public static func isToken(_ b: UInt8) -> Bool { classes[Int(b)] & token != 0 }
    @inlinable public static func isFieldValue(_ b: UInt8) -> Bool { classes[Int(b)] & fieldValue != 0 }
    @inlinable public static func isTarget(_ b: UInt8) -> Bool { classes[Int(b)] & target != 0 }
    @inlinable public static func isAuthority(_ b: UInt8) -> Bool { classes[Int(b)] & authority != 0 }

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
