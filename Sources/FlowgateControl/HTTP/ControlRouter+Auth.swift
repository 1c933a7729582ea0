// Authentication of TCP requests for the router (docs/control.md,
// "Authentication"): which verifier applies, the replay cache for changes,
// who may read /metrics, and each API's shape for a refusal.
import FlowgateCore

extension ControlRouter {
    /// The 401 answer for a TCP request without a valid SDK-HMAC signature
    /// (the ELB shape and /flowgate/info); nil when it may proceed.
    func refuseUnsignedELB(_ request: ControlRequest, requestID: String) -> ControlResponse? {
        guard request.overTCP, let failure = authenticate(request, verify: verifySDKHMAC, configured: !control.huaweiCredentials.isEmpty,
                                                          mutating: ControlOperations.elbIsMutating(method: request.method)) else { return nil }
        return Self.elbRefusal(failure, requestID: requestID)
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
            guard let failure = authenticate(request, verify: verifySigV4, configured: true, mutating: false) else { return nil }
            return Self.awsRefusal(failure, requestID: requestID)
        }
        if let auth, hasHuawei, auth.hasPrefix(SignatureScheme.sdkHMAC.rawValue + " ") {
            guard let failure = authenticate(request, verify: verifySDKHMAC, configured: true, mutating: false) else { return nil }
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

    /// nil when the request may proceed. With no credentials configured for
    /// an API, the start-up check has already limited TCP to loopback. A
    /// `mutating` request's signature must not have been accepted before.
    func authenticate(_ request: ControlRequest, verify: (ControlRequest, Int64) throws(AuthFailure) -> VerifiedSignature,
                      configured: Bool, mutating: Bool) -> AuthFailure? {
        guard configured else { return nil }
        if request.header("Authorization") == nil && control.allowUnsigned && tcpIsLoopback { return nil }
        let t = now()
        let signature: VerifiedSignature
        do throws(AuthFailure) { signature = try verify(request, t) } catch { return error }
        guard mutating else { return nil }
        switch replayCache.admit(signature, now: t) {
        case .fresh: return nil
        case let .replayed(firstSeen):
            return AuthFailure(.badSignature, "request replayed: this signature was already accepted at \(BasicISODate.format(firstSeen)); sign each change anew")
        case .full:
            return AuthFailure(.throttled, "too many signed changes in the last 15 minutes (at most \(replayCache.capacity)); retry later")
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
