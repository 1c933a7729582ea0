// Verifies AWS Signature Version 4 on the Global Accelerator shape, as botocore
// computes it (botocore/auth.py SigV4Auth; AWS "Create a signed AWS API
// request"): canonical request, string to sign, derived signing key.
import FlowgateCore

public struct AuthFailure: Error, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// No Authorization header (AWS MissingAuthenticationTokenException).
        case missing
        /// Key id / AK not configured (AWS UnrecognizedClientException).
        case unknownKey
        /// Signature, scope, date, signed headers or payload hash wrong, or the
        /// request replayed (AWS InvalidSignatureException).
        case badSignature
        /// The replay cache is full of unexpired signatures (AWS ThrottlingException, ELB APIGW.0308).
        case throttled
    }
    public var kind: Kind
    public var message: String
    public init(_ kind: Kind, _ message: String) { self.kind = kind; self.message = message }
}

public struct SigV4Verifier: Sendable {
    public static let service = "globalaccelerator"
    /// AWS allows 15 minutes of clock skew either way.
    public static let maxSkewSeconds: Int64 = 15 * 60

    public var region: String
    public var credentials: [AWSCredential]

    public init(region: String, credentials: [AWSCredential]) { self.region = region; self.credentials = credentials }

    /// Returns the verified signature (the replay cache's key) and its signing time.
    @discardableResult
    public func verify(_ request: ControlRequest, now: Int64) throws(AuthFailure) -> VerifiedSignature {
        guard let auth = request.header("Authorization") else {
            throw AuthFailure(.missing, "Missing Authentication Token")
        }
        let prefix = SignatureScheme.sigV4.rawValue + " "
        guard auth.hasPrefix(prefix) else { throw AuthFailure(.badSignature, "Authorization header is not AWS4-HMAC-SHA256") }
        let fields = SignatureHeader.parse(String(auth.dropFirst(prefix.count)))
        guard let credential = fields["Credential"], let signedList = fields["SignedHeaders"], let signature = fields["Signature"] else {
            throw AuthFailure(.badSignature, "Authorization header requires Credential, SignedHeaders and Signature")
        }
        let scopeParts = credential.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard scopeParts.count == 5 else { throw AuthFailure(.badSignature, "Credential must be <key id>/<date>/<region>/<service>/aws4_request") }
        let keyID = scopeParts[0]
        guard let secret = credentials.first(where: { $0.accessKeyID == keyID })?.secretAccessKey else {
            throw AuthFailure(.unknownKey, "The security token included in the request is invalid.")
        }
        guard scopeParts[2] == region else {
            throw AuthFailure(.badSignature, "Credential should be scoped to a valid region, not '\(scopeParts[2])'. Expected '\(region)'.")
        }
        guard scopeParts[3] == SigV4Verifier.service, scopeParts[4] == "aws4_request" else {
            throw AuthFailure(.badSignature, "Credential should be scoped to correct service: '\(SigV4Verifier.service)'.")
        }
        guard let amzDate = request.header("X-Amz-Date") ?? request.header("Date"), let t = BasicISODate.parse(amzDate) else {
            throw AuthFailure(.badSignature, "X-Amz-Date header is missing or not in yyyyMMddTHHmmssZ form")
        }
        guard amzDate.prefix(8) == scopeParts[1] else {
            throw AuthFailure(.badSignature, "Date in Credential scope does not match YYYYMMDD from X-Amz-Date")
        }
        if abs(now - t) > SigV4Verifier.maxSkewSeconds {
            throw AuthFailure(.badSignature, "Signature expired: \(amzDate) is outside 15 minutes of the server time \(BasicISODate.format(now)).")
        }
        let signedHeaders = signedList.split(separator: ";").map { $0.lowercased() }
        guard signedHeaders.contains("host") else { throw AuthFailure(.badSignature, "SignedHeaders must include host") }
        let canonical = try SigV4Verifier.canonicalRequest(request, signedHeaders: signedHeaders)
        let expected = RequestSignature.sigV4(canonical: canonical, amzDate: amzDate, secret: secret, region: region, service: SigV4Verifier.service)
        guard let given = Hex.decode(signature), constantTimeEqual(given, expected) else {
            throw AuthFailure(.badSignature, "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.")
        }
        return VerifiedSignature(scheme: .sigV4, mac: expected, signedAt: t)
    }

    public static func canonicalRequest(_ request: ControlRequest, signedHeaders: [String]) throws(AuthFailure) -> String {
        let payload = try PayloadHash.checked(request, header: "X-Amz-Content-Sha256")
        do throws(CanonicalRequest.MissingHeader) {
            return try CanonicalRequest.build(.sigV4, method: request.method, rawPath: request.rawPath, query: request.queryItems,
                                              headers: request.headers, signedHeaders: signedHeaders, payloadHash: payload)
        } catch {
            throw AuthFailure(.badSignature, "Signed header \(error.name) is missing from the request")
        }
    }
}

/// `Key=Value, Key=Value` pairs of an Authorization header.
enum SignatureHeader {
    static func parse(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        for part in text.split(separator: ",") {
            let p = String(part).trimmingSpaces()
            guard let eq = p.firstIndex(of: "=") else { continue }
            out[String(p[..<eq])] = String(p[p.index(after: eq)...])
        }
        return out
    }
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}
