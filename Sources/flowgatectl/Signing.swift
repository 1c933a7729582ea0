// Signs requests for a TCP control endpoint the way the real SDKs do:
// AWS Signature V4 (botocore's SigV4Auth) for the AWS shape and Huawei's
// SDK-HMAC-SHA256 (huaweicloudsdkcore's Signer) for the ELB shape.
import FlowgateCore

enum Signing {
    /// Every header of the request plus `host`, lower-cased and sorted, as
    /// both schemes sign them: the `SignedHeaders` list and the canonical lines.
    static func canonicalHeaders(_ headers: [(String, String)], host: String) -> (signed: String, lines: String) {
        var all = headers.map { ($0.0.lowercased(), $0.1) }
        all.append(("host", host))
        all.sort { $0.0 < $1.0 }
        return (all.map(\.0).joined(separator: ";"), all.map { "\($0.0):\($0.1)\n" }.joined())
    }

    /// Adds X-Amz-Date and Authorization.
    static func sigV4(method: String, path: String, host: String, headers: inout [(String, String)], body: [UInt8],
                      keyID: String, secret: String, region: String, now: Int64) {
        let amzDate = BasicISODate.format(now)
        let date = String(amzDate.prefix(8))
        headers.append(("X-Amz-Date", amzDate))
        let (signed, canonicalHeaders) = canonicalHeaders(headers, host: host)
        let canonical = [method, path, "", canonicalHeaders, signed, Hex.encode(SHA256.hash(body))].joined(separator: "\n")
        let scope = "\(date)/\(region)/globalaccelerator/aws4_request"
        let toSign = "AWS4-HMAC-SHA256\n\(amzDate)\n\(scope)\n\(Hex.encode(SHA256.hash(canonical)))"
        var key = HMACSHA256.mac(key: Array("AWS4\(secret)".utf8), message: date)
        for part in [region, "globalaccelerator", "aws4_request"] { key = HMACSHA256.mac(key: key, message: part) }
        let signature = Hex.encode(HMACSHA256.mac(key: key, message: toSign))
        headers.append(("Authorization", "AWS4-HMAC-SHA256 Credential=\(keyID)/\(scope), SignedHeaders=\(signed), Signature=\(signature)"))
    }

    /// Adds X-Sdk-Date and Authorization. `query` is decoded pairs.
    static func sdkHMAC(method: String, path: String, query: [(String, String)], host: String, headers: inout [(String, String)],
                        body: [UInt8], ak: String, sk: String, now: Int64) {
        let sdkDate = BasicISODate.format(now)
        headers.append(("X-Sdk-Date", sdkDate))
        let (signed, canonicalHeaders) = canonicalHeaders(headers, host: host)
        var uri = path.split(separator: "/", omittingEmptySubsequences: false).map { URLCoding.encode(String($0)) }.joined(separator: "/")
        if !uri.hasSuffix("/") { uri += "/" }
        let q = query.sorted { $0.0 == $1.0 ? $0.1 < $1.1 : $0.0 < $1.0 }.map { "\(URLCoding.encode($0.0))=\(URLCoding.encode($0.1))" }.joined(separator: "&")
        let canonical = [method, uri, q, canonicalHeaders, signed, Hex.encode(SHA256.hash(body))].joined(separator: "\n")
        let toSign = "SDK-HMAC-SHA256\n\(sdkDate)\n\(Hex.encode(SHA256.hash(canonical)))"
        let signature = Hex.encode(HMACSHA256.mac(key: Array(sk.utf8), message: toSign))
        headers.append(("Authorization", "SDK-HMAC-SHA256 Access=\(ak), SignedHeaders=\(signed), Signature=\(signature)"))
    }
}
