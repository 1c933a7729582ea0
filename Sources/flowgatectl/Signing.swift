// Signs requests for a TCP control endpoint the way the real SDKs do:
// AWS Signature V4 (botocore's SigV4Auth) for the AWS shape and Huawei's
// SDK-HMAC-SHA256 (huaweicloudsdkcore's Signer) for the ELB shape. The
// canonical request and the MAC are FlowgateCore's (Signing/), the same code
// the daemon verifies with.
import FlowgateCore

enum Signing {
    /// A random signed header: the daemon refuses a change whose signature it
    /// has already accepted (a replay), and two identical commands run within
    /// the same second would otherwise carry the same signature.
    static func nonce() -> (String, String) {
        var rng = SystemRandomNumberGenerator()
        let bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &rng) }
        return ("X-Flowgate-Nonce", Hex.encode(bytes))
    }

    /// Every header of the request plus Host: all of them are signed.
    static func canonical(_ scheme: SignatureScheme, method: String, path: String, query: [(String, String)], host: String,
                          headers: [(String, String)], body: [UInt8]) -> (canonical: String, signed: String) {
        let all = (headers + [("Host", host)]).map { (name: $0.0, value: $0.1) }
        let signed = CanonicalRequest.signedHeaderNames(all)
        // Every name in `signed` comes from `all`: the builder cannot miss one.
        let canonical = (try? CanonicalRequest.build(scheme, method: method, rawPath: path, query: query, headers: all, signedHeaders: signed,
                                                     payloadHash: CanonicalRequest.payloadHash(body))) ?? ""
        return (canonical, signed.joined(separator: ";"))
    }

    /// Adds X-Amz-Date, the nonce and Authorization.
    static func sigV4(method: String, path: String, host: String, headers: inout [(String, String)], body: [UInt8],
                      keyID: String, secret: String, region: String, now: Int64) {
        let amzDate = BasicISODate.format(now)
        headers.append(("X-Amz-Date", amzDate))
        headers.append(nonce())
        let (canonical, signed) = canonical(.sigV4, method: method, path: path, query: [], host: host, headers: headers, body: body)
        let signature = RequestSignature.sigV4(canonical: canonical, amzDate: amzDate, secret: secret, region: region, service: "globalaccelerator")
        let scope = "\(amzDate.prefix(8))/\(region)/globalaccelerator/aws4_request"
        headers.append(("Authorization", "\(SignatureScheme.sigV4.rawValue) Credential=\(keyID)/\(scope), SignedHeaders=\(signed), Signature=\(Hex.encode(signature))"))
    }

    /// Adds X-Sdk-Date, the nonce and Authorization. `query` is decoded pairs.
    static func sdkHMAC(method: String, path: String, query: [(String, String)], host: String, headers: inout [(String, String)],
                        body: [UInt8], ak: String, sk: String, now: Int64) {
        let sdkDate = BasicISODate.format(now)
        headers.append(("X-Sdk-Date", sdkDate))
        headers.append(nonce())
        let (canonical, signed) = canonical(.sdkHMAC, method: method, path: path, query: query, host: host, headers: headers, body: body)
        let signature = RequestSignature.sdkHMAC(canonical: canonical, sdkDate: sdkDate, sk: sk)
        headers.append(("Authorization", "\(SignatureScheme.sdkHMAC.rawValue) Access=\(ak), SignedHeaders=\(signed), Signature=\(Hex.encode(signature))"))
    }
}
