// Name-based UUIDs (RFC 4122 §4.3, version 5): the same namespace and name
// always give the same UUID, which is how objects left without an id in the
// config file keep their id across restarts (docs/architecture.md §14).

public enum NameUUID {
    /// RFC 4122 Appendix C name space for URLs: 6ba7b811-9dad-11d1-80b4-00c04fd430c8.
    public static let urlNamespace: [UInt8] = [
        0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8,
    ]
    /// RFC 4122 Appendix C name space for DNS names: 6ba7b810-9dad-11d1-80b4-00c04fd430c8.
    public static let dnsNamespace: [UInt8] = [
        0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8,
    ]
    /// Flowgate's own name space: v5(URL, "https://flowgate.invalid/"), used when
    /// the parent of a derived id is not itself a UUID (e.g. an ARN).
    public static let flowgateNamespace: [UInt8] = v5Bytes(namespace: urlNamespace, name: "https://flowgate.invalid/")

    /// The 16 bytes of the version 5 UUID of `name` in `namespace`.
    public static func v5Bytes(namespace: [UInt8], name: String) -> [UInt8] {
        precondition(namespace.count == 16, "a UUID namespace is 16 bytes")
        var digest = Array(SHA1.hash(namespace + Array(name.utf8)).prefix(16))
        digest[6] = digest[6] & 0x0f | 0x50  // version 5 (RFC 4122 §4.1.3)
        digest[8] = digest[8] & 0x3f | 0x80  // variant 10x (RFC 4122 §4.1.1)
        return digest
    }

    /// Canonical lowercase 8-4-4-4-12 form.
    public static func v5(namespace: [UInt8], name: String) -> String {
        format(v5Bytes(namespace: namespace, name: name))
    }

    /// A child's id derived from its parent's id: the parent is the namespace
    /// when it is a UUID (with or without dashes, e.g. a 32-hex project_id),
    /// otherwise `flowgateNamespace` with "parent\u{0}name" as the name.
    public static func derive(parent: String, name: String) -> String {
        if let ns = parse(parent) { return v5(namespace: ns, name: name) }
        return v5(namespace: flowgateNamespace, name: parent + "\u{0}" + name)
    }

    public static func format(_ bytes: [UInt8]) -> String {
        precondition(bytes.count == 16, "a UUID is 16 bytes")
        var out: [UInt8] = []
        out.reserveCapacity(36)
        for (i, b) in bytes.enumerated() {
            if i == 4 || i == 6 || i == 8 || i == 10 { out.append(UInt8(ascii: "-")) }
            out.append(hexDigits[Int(b >> 4)]); out.append(hexDigits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func hexString(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes { out.append(hexDigits[Int(b >> 4)]); out.append(hexDigits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Parses `8-4-4-4-12` hex (either case) or 32 bare hex digits.
    public static func parse(_ text: String) -> [UInt8]? {
        let dashed = text.utf8.count == 36
        guard dashed || text.utf8.count == 32 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(16)
        var high: UInt8? = nil
        for (i, c) in text.utf8.enumerated() {
            if dashed && (i == 8 || i == 13 || i == 18 || i == 23) {
                guard c == UInt8(ascii: "-") else { return nil }
                continue
            }
            guard let v = hexValue(c) else { return nil }
            if let h = high { out.append(h << 4 | v); high = nil } else { high = v }
        }
        return out
    }

    /// True for the canonical 8-4-4-4-12 form (hex digits of either case).
    public static func isCanonical(_ text: String) -> Bool { text.utf8.count == 36 && parse(text) != nil }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
