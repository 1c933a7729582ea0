// String to sign and MAC of both schemes (the canonical request is
// CanonicalRequest.swift): AWS SigV4 derives a signing key from the secret,
// date, region and service; SDK-HMAC-SHA256 MACs with the secret key itself.

public enum RequestSignature {
    /// The MAC over `canonical` for AWS SigV4; `amzDate` is `yyyyMMddTHHmmssZ`.
    public static func sigV4(canonical: String, amzDate: String, secret: String, region: String, service: String) -> [UInt8] {
        let date = String(amzDate.prefix(8))
        let scope = "\(date)/\(region)/\(service)/aws4_request"
        let toSign = "\(SignatureScheme.sigV4.rawValue)\n\(amzDate)\n\(scope)\n\(Hex.encode(SHA256.hash(canonical)))"
        var key = HMACSHA256.mac(key: Array("AWS4\(secret)".utf8), message: date)
        for part in [region, service, "aws4_request"] { key = HMACSHA256.mac(key: key, message: part) }
        return HMACSHA256.mac(key: key, message: toSign)
    }

    /// The MAC over `canonical` for SDK-HMAC-SHA256; `sdkDate` is `yyyyMMddTHHmmssZ`.
    public static func sdkHMAC(canonical: String, sdkDate: String, sk: String) -> [UInt8] {
        let toSign = "\(SignatureScheme.sdkHMAC.rawValue)\n\(sdkDate)\n\(Hex.encode(SHA256.hash(canonical)))"
        return HMACSHA256.mac(key: Array(sk.utf8), message: toSign)
    }
}
