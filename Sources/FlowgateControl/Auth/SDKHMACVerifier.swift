// Verifies Huawei Cloud's SDK-HMAC-SHA256 (AK/SK) signature as
// huaweicloudsdkcore/signer/signer.py computes it (docs/api.md §4): no key
// derivation; canonical URI with each segment encoded and a trailing '/';
// query sorted by (key, value) and encoded with quote(safe='~')
// (FlowgateCore/Signing/CanonicalRequest.swift builds it).
import FlowgateCore

public struct SDKHMACVerifier: Sendable {
    public static let algorithm = SignatureScheme.sdkHMAC.rawValue
    public var credentials: [HuaweiCredential]
    public init(credentials: [HuaweiCredential]) { self.credentials = credentials }

    /// Returns the verified signature (the replay cache's key) and its signing time.
    @discardableResult
    public func verify(_ request: ControlRequest, now: Int64) throws(AuthFailure) -> VerifiedSignature {
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
        let expected = RequestSignature.sdkHMAC(canonical: canonical, sdkDate: date, sk: sk)
        guard let given = Hex.decode(signature), constantTimeEqual(given, expected) else {
            throw AuthFailure(.badSignature, "Incorrect IAM authentication information: verify aksk signature fail")
        }
        return VerifiedSignature(scheme: .sdkHMAC, mac: expected, signedAt: t)
    }

    public static func canonicalRequest(_ request: ControlRequest, signedHeaders: [String]) throws(AuthFailure) -> String {
        let payload = try PayloadHash.checked(request, header: "X-Sdk-Content-Sha256", headerIgnoredWhenEmpty: true)
        do throws(CanonicalRequest.MissingHeader) {
            return try CanonicalRequest.build(.sdkHMAC, method: request.method, rawPath: request.rawPath, query: request.queryItems,
                                              headers: request.headers, signedHeaders: signedHeaders, payloadHash: payload)
        } catch {
            throw AuthFailure(.badSignature, "Signed header \(error.name) is missing from the request")
        }
    }
}
