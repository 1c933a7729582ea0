// The payload line of a canonical request is always the SHA-256 of the body
// that arrived. A client may also send the hash in a header (AWS
// X-Amz-Content-Sha256, Huawei X-Sdk-Content-Sha256) and signers then put that
// header's text in the canonical request; it is accepted only when it equals
// the body's hash, so it can never stand in for a body the signature did not
// cover (the bypass of issue 11 §1: a captured signature replayed with another
// body and the original hash header).
import FlowgateCore

enum PayloadHash {
    static let unsigned = "UNSIGNED-PAYLOAD"

    /// The text for the canonical request's payload line.
    /// - Parameter headerIgnoredWhenEmpty: huaweicloudsdkcore's signer hashes an
    ///   empty body as the empty string whatever the header says
    ///   (signer.py `_process_hash_payload`), so for an empty body the header
    ///   claims nothing and is ignored.
    static func checked(_ request: ControlRequest, header: String, headerIgnoredWhenEmpty: Bool = false) throws(AuthFailure) -> String {
        let actual = CanonicalRequest.payloadHash(request.body)
        guard let claimed = request.header(header) else { return actual }
        if headerIgnoredWhenEmpty && request.body.isEmpty { return actual }
        if claimed == unsigned {
            throw AuthFailure(.badSignature, "\(header): \(unsigned) is not accepted by this endpoint; sign the SHA-256 of the body")
        }
        guard claimed.lowercased() == actual else {
            throw AuthFailure(.badSignature, "\(header) does not match the SHA-256 of the request body")
        }
        // The signer put the header's own text (possibly upper-case hex) in its canonical request.
        return claimed
    }
}
