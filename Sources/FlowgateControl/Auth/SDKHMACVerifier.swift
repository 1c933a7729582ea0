// Verifies Huawei Cloud's SDK-HMAC-SHA256 (AK/SK) signature as
// huaweicloudsdkcore/signer/signer.py computes it (api.md §B): no key
// derivation; canonical URI with each segment encoded and a trailing '/';
// query sorted by (key, value) and encoded with quote(safe='~').
import FlowgateCore

public struct SDKHMACVerifier: Sendable {
    public static let algorithm = "SDK-HMAC-SHA256"
    public var credentials: [HuaweiCredential]
    public init(credentials: [HuaweiCredential]) { self.credentials = credentials }

    public func verify(_ request: ControlRequest, now: Int64) throws(AuthFailure) {
        guard let auth = request.header("Authorization") else {
            throw AuthFailure(.missing, "Authorization header is missing: sign the request with SDK-HMAC-SHA256")
        }
        let prefix = SDKHMACVerifier.algorithm + " "
        guard auth.hasPrefix(prefix) else { throw AuthFailure(.badSignature, "Authorization header is not \(SDKHMACVerifier.algorithm)") }
        let fields = SignatureHeader.parse(String(auth.dropFirst(prefix.count)))
        guard let access = fields["Access"], let signedList = fields["SignedHeaders"], let signature = fields["Signature"] else {
            throw AuthFailure(.badSignature, "Authorization header requires Access, SignedHeaders and Signature")
        }
        guard let sk = credentials.first(where: { $0.ak == access })?.sk else {
            throw AuthFailure(.unknownKey, "The access key \(access) is not configured")
        }
        guard let date = request.header("X-Sdk-Date"), let t = BasicISODate.parse(date) else {
            throw AuthFailure(.badSignature, "X-Sdk-Date header is missing or not in yyyyMMddTHHmmssZ form")
        }
        if abs(now - t) > SigV4Verifier.maxSkewSeconds {
            throw AuthFailure(.badSignature, "Signature expired: X-Sdk-Date \(date) is outside 15 minutes of the server time \(BasicISODate.format(now))")
        }
        let signedHeaders = signedList.split(separator: ";").map { $0.lowercased() }
        let canonical = try SDKHMACVerifier.canonicalRequest(request, signedHeaders: signedHeaders)
        let stringToSign = "\(SDKHMACVerifier.algorithm)\n\(date)\n\(Hex.encode(SHA256.hash(canonical)))"
        let expected = HMACSHA256.mac(key: Array(sk.utf8), message: stringToSign)
        guard let given = Hex.decode(signature), constantTimeEqual(given, expected) else {
            throw AuthFailure(.badSignature, "Incorrect IAM authentication information: verify aksk signature fail")
        }
    }

    public static func canonicalRequest(_ request: ControlRequest, signedHeaders: [String]) throws(AuthFailure) -> String {
        let segments = URLCoding.decode(request.rawPath, plusIsSpace: false)
            .split(separator: "/", omittingEmptySubsequences: false).map { URLCoding.encode(String($0)) }
        var uri = segments.joined(separator: "/")
        if !uri.hasSuffix("/") { uri += "/" }
        // Python sorts (key, value) tuples by code point: UTF-8 byte order is the same order.
        let query = request.queryItems
            .sorted { a, b in a.0 == b.0 ? Array(a.1.utf8).lexicographicallyPrecedes(Array(b.1.utf8)) : Array(a.0.utf8).lexicographicallyPrecedes(Array(b.0.utf8)) }
            .map { "\(URLCoding.encode($0.0))=\(URLCoding.encode($0.1))" }.joined(separator: "&")
        var headerLines = ""
        for name in signedHeaders {
            guard let value = request.headers.last(where: { $0.name.lowercased() == name })?.value else {
                throw AuthFailure(.badSignature, "Signed header \(name) is missing from the request")
            }
            headerLines += "\(name):\(value.trimmingSpaces())\n"
        }
        let payload = request.header("X-Sdk-Content-Sha256") == "UNSIGNED-PAYLOAD" ? "UNSIGNED-PAYLOAD" : Hex.encode(SHA256.hash(request.body))
        return [request.method.uppercased(), uri, query, headerLines, signedHeaders.joined(separator: ";"), payload].joined(separator: "\n")
    }
}
