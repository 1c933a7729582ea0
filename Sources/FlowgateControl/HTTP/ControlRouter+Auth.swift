// Authentication of TCP requests for the router (docs/control.md,
// "Authentication"): which verifier applies, the replay cache for changes,
// who may read /metrics, and each API's shape for a refusal.
import FlowgateCore

extension ControlRouter {
    /// What authentication decided for one request.
    enum Gate {
        /// The answer in the API's shape.
        case refused(ControlResponse)
        /// May proceed; the signature of a change that entered the replay cache, if any (see `settle`).
        case allowed(VerifiedSignature?)
    }

    /// The ELB shape and /flowgate/info: SDK-HMAC-SHA256 over TCP, 401 `APIGW.0301` when it fails.
    func authorizeELB(_ request: ControlRequest, requestID: String) -> Gate {
        guard request.overTCP else { return .allowed(nil) }
        switch authenticate(request, verify: verifySDKHMAC, configured: !control.huaweiCredentials.isEmpty, credentialsField: "control.credentials.huawei",
                            mutating: ControlOperations.elbIsMutating(method: request.method)) {
        case let .failure(failure): return .refused(Self.elbRefusal(failure, requestID: requestID))
        case let .success(admitted): return .allowed(admitted)
        }
    }

    /// The AWS shape: SigV4 over TCP, 403 in the AWS shape when it fails.
    func authorizeAWS(_ request: ControlRequest, requestID: String) -> Gate {
        guard request.overTCP else { return .allowed(nil) }
        switch authenticate(request, verify: verifySigV4, configured: !control.awsCredentials.isEmpty, credentialsField: "control.credentials.aws",
                            mutating: ControlOperations.awsIsMutating(target: request.header("X-Amz-Target"))) {
        case let .failure(failure): return .refused(Self.awsRefusal(failure, requestID: requestID))
        case let .success(admitted): return .allowed(admitted)
        }
    }

    /// A change that was not applied (any answer but 2xx) leaves the replay
    /// cache again: SDKs retry throttling and 5xx answers with the very same
    /// signature (boto3 adds its retry headers after signing), and a replay of
    /// a change that did nothing is not the threat; a change that went live
    /// stays remembered.
    func settle(_ admitted: VerifiedSignature?, _ response: ControlResponse) -> ControlResponse {
        if let admitted, !(200..<300).contains(response.status) { replayCache.forget(admitted) }
        return response
    }

    /// GET /metrics names the accelerator ARNs, which the APIs give only to
    /// signed callers, so over TCP it is served unsigned only where unsigned
    /// API calls are (a loopback endpoint with `allow_unsigned`, or no
    /// credentials configured at all); otherwise it needs a valid signature of
    /// either shape, answered in that shape when it fails. The Unix socket is
    /// open to its owner (docs/control.md).
    func refuseMetrics(_ request: ControlRequest, requestID: String) -> ControlResponse? {
        guard request.overTCP else { return nil }
        let hasAWS = !control.awsCredentials.isEmpty, hasHuawei = !control.huaweiCredentials.isEmpty
        guard hasAWS || hasHuawei else { return nil }
        let auth = request.header("Authorization")
        if auth == nil && control.allowUnsigned && tcpIsLoopback { return nil }
        if let auth, hasAWS, auth.hasPrefix(SignatureScheme.sigV4.rawValue + " ") {
            guard case let .failure(failure) = authenticate(request, verify: verifySigV4, configured: true, mutating: false) else { return nil }
            return Self.awsRefusal(failure, requestID: requestID)
        }
        if let auth, hasHuawei, auth.hasPrefix(SignatureScheme.sdkHMAC.rawValue + " ") {
            guard case let .failure(failure) = authenticate(request, verify: verifySDKHMAC, configured: true, mutating: false) else { return nil }
            return Self.elbRefusal(failure, requestID: requestID)
        }
        let schemes = [hasAWS ? SignatureScheme.sigV4.rawValue : nil, hasHuawei ? SignatureScheme.sdkHMAC.rawValue : nil].compactMap { $0 }
        return Self.elbRefusal(AuthFailure(.missing, "GET /metrics over TCP needs a signature (\(schemes.joined(separator: " or "))), "
                                             + "or use the Unix socket, or a loopback endpoint with allow_unsigned"), requestID: requestID)
    }

    func verifySigV4(_ request: ControlRequest, _ now: Int64) throws(AuthFailure) -> VerifiedSignature {
        try SigV4Verifier(region: control.region, credentials: control.awsCredentials).verify(request, now: now)
    }

    func verifySDKHMAC(_ request: ControlRequest, _ now: Int64) throws(AuthFailure) -> VerifiedSignature {
        try SDKHMACVerifier(credentials: control.huaweiCredentials).verify(request, now: now)
    }

    /// Success when the request may proceed, with the signature of a change
    /// that entered the replay cache. An API without credentials is served
    /// unchecked on a loopback endpoint only: with credentials for the other
    /// API alone, a non-loopback endpoint would otherwise leave this one open
    /// to the network. A `mutating` request's signature must not have been accepted before.
    func authenticate(_ request: ControlRequest, verify: (ControlRequest, Int64) throws(AuthFailure) -> VerifiedSignature,
                      configured: Bool, credentialsField: String = "control.credentials", mutating: Bool) -> Result<VerifiedSignature?, AuthFailure> {
        guard configured else {
            if tcpIsLoopback { return .success(nil) }
            return .failure(AuthFailure(.missing, "this API has no credentials (\(credentialsField)) and is not served on a non-loopback endpoint; configure them or use the Unix socket"))
        }
        if request.header("Authorization") == nil && control.allowUnsigned && tcpIsLoopback { return .success(nil) }
        let t = now()
        let signature: VerifiedSignature
        do throws(AuthFailure) { signature = try verify(request, t) } catch { return .failure(error) }
        guard mutating else { return .success(nil) }
        switch replayCache.admit(signature, now: t) {
        case .fresh: return .success(signature)
        case let .replayed(firstSeen):
            return .failure(AuthFailure(.badSignature, "request replayed: this signature was already accepted at \(BasicISODate.format(firstSeen)); sign each change anew"))
        case .full:
            return .failure(AuthFailure(.throttled, "too many signed changes in the last 15 minutes (at most \(replayCache.capacity)); retry later"))
        }
    }

    static func awsRefusal(_ failure: AuthFailure, requestID: String) -> ControlResponse {
        let code: String
        var status = 403
        switch failure.kind {
        case .missing: code = "MissingAuthenticationTokenException"
        case .unknownKey: code = "UnrecognizedClientException"
        case .badSignature: code = "InvalidSignatureException"
        case .throttled: code = "ThrottlingException"; status = 400
        }
        return GlobalAcceleratorAPI.errorResponse(AWSError(code, failure.message, status: status), requestID: requestID)
    }

    static func elbRefusal(_ failure: AuthFailure, requestID: String) -> ControlResponse {
        if failure.kind == .throttled {
            return ELBAPI.errorResponse(ELBError(429, "APIGW.0308", "The throttling threshold has been reached: \(failure.message)"), requestID: requestID)
        }
        return ELBAPI.errorResponse(ELBError(401, "APIGW.0301", "Incorrect IAM authentication information: \(failure.message)"), requestID: requestID)
    }
}
