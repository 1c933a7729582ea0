// The canonical request of both request-signature schemes, built in one place
// so the signer (flowgatectl) and the verifiers (FlowgateControl/Auth) cannot
// drift apart:
// - AWS Signature V4 as botocore/auth.py SigV4Auth builds it: path quoted with
//   '/' safe, query pairs encoded then sorted, each signed header's values
//   (spaces collapsed) joined with ','.
// - Huawei SDK-HMAC-SHA256 as huaweicloudsdkcore/signer/signer.py builds it:
//   every path segment encoded and a trailing '/', query pairs sorted by
//   (key, value) in code-point order then encoded, each signed header's last
//   value trimmed.

public enum SignatureScheme: String, Sendable {
    case sigV4 = "AWS4-HMAC-SHA256"
    case sdkHMAC = "SDK-HMAC-SHA256"
}

public enum CanonicalRequest {
    /// A header named in SignedHeaders that the request does not carry.
    public struct MissingHeader: Error, Sendable, Equatable { public var name: String }

    /// The lower-cased, de-duplicated, sorted names a signer lists in
    /// SignedHeaders when it signs every header it sends (`headers` includes Host).
    public static func signedHeaderNames(_ headers: [(name: String, value: String)]) -> [String] {
        Array(Set(headers.map { $0.name.lowercased() })).sorted(by: utf8Less)
    }

    /// Hex SHA-256 of a body: the payload line both schemes end with.
    public static func payloadHash(_ body: [UInt8]) -> String { Hex.encode(SHA256.hash(body)) }

    /// - Parameters:
    ///   - rawPath: the path as sent on the wire (percent-encoded, no query).
    ///   - query: decoded (key, value) pairs in any order.
    ///   - signedHeaders: lower-cased names, in the order of the SignedHeaders field.
    ///   - payloadHash: hex SHA-256 of the body (or the header value that was checked to equal it).
    public static func build(_ scheme: SignatureScheme, method: String, rawPath: String, query: [(String, String)],
                             headers: [(name: String, value: String)], signedHeaders: [String],
                             payloadHash: String) throws(MissingHeader) -> String {
        var headerLines = ""
        for name in signedHeaders {
            let values = headers.filter { $0.name.lowercased() == name }.map(\.value)
            guard let last = values.last else { throw MissingHeader(name: name) }
            switch scheme {
            case .sigV4: headerLines += "\(name):\(values.map(collapseSpaces).joined(separator: ","))\n"
            case .sdkHMAC: headerLines += "\(name):\(trimSpaces(last))\n"
            }
        }
        let parts: [String]
        switch scheme {
        case .sigV4:
            parts = [method, sigV4Path(rawPath), sigV4Query(query), headerLines, signedHeaders.joined(separator: ";"), payloadHash]
        case .sdkHMAC:
            parts = [method.uppercased(), sdkHMACPath(rawPath), sdkHMACQuery(query), headerLines,
                     signedHeaders.joined(separator: ";"), payloadHash]
        }
        return parts.joined(separator: "\n")
    }

    static func sigV4Path(_ rawPath: String) -> String {
        rawPath.isEmpty ? "/" : URLCoding.encode(URLCoding.decode(rawPath, plusIsSpace: false), extraSafe: "/")
    }

    static func sigV4Query(_ query: [(String, String)]) -> String {
        // Encoded text is ASCII, so String order is byte order here.
        let encoded: [(key: String, value: String)] = query.map { (key: URLCoding.encode($0.0), value: URLCoding.encode($0.1)) }
        let sorted = encoded.sorted { (a: (key: String, value: String), b: (key: String, value: String)) -> Bool in
            a.key == b.key ? a.value < b.value : a.key < b.key
        }
        return sorted.map { (p: (key: String, value: String)) -> String in p.key + "=" + p.value }.joined(separator: "&")
    }

    static func sdkHMACPath(_ rawPath: String) -> String {
        var uri = URLCoding.decode(rawPath, plusIsSpace: false)
            .split(separator: "/", omittingEmptySubsequences: false).map { URLCoding.encode(String($0)) }
            .joined(separator: "/")
        if !uri.hasSuffix("/") { uri += "/" }
        return uri
    }

    static func sdkHMACQuery(_ query: [(String, String)]) -> String {
        // Python sorts (key, value) tuples by code point: UTF-8 byte order is the same order.
        let sorted = query.sorted { (a: (String, String), b: (String, String)) -> Bool in
            a.0 == b.0 ? utf8Less(a.1, b.1) : utf8Less(a.0, b.0)
        }
        return sorted.map { (p: (String, String)) -> String in URLCoding.encode(p.0) + "=" + URLCoding.encode(p.1) }.joined(separator: "&")
    }

    static func utf8Less(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }

    static func collapseSpaces(_ s: String) -> String {
        trimSpaces(s.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " "))
    }

    static func trimSpaces(_ s: String) -> String {
        var t = Substring(s)
        while let f = t.first, f == " " || f == "\t" { t = t.dropFirst() }
        while let l = t.last, l == " " || l == "\t" { t = t.dropLast() }
        return String(t)
    }
}
