// Dispatches one request: Flowgate's own endpoints, then authentication for
// TCP requests (design §7), then the API shape by path.
import FoundationEssentials
import FlowgateCore

public final class ControlRouter: @unchecked Sendable {
    public let service: ControlService
    public let aws: GlobalAcceleratorAPI
    public let elb: ELBAPI
    public let control: ControlConfig
    /// The TCP endpoint is a loopback address: `allow_unsigned` is honoured only then.
    public let tcpIsLoopback: Bool
    /// Seconds since 1970; injectable so signature tests are deterministic.
    public var now: @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970) }
    public var newRequestID: @Sendable () -> String = { UUID().uuidString.lowercased() }
    /// Signatures of accepted changes over TCP (Auth/ReplayCache.swift).
    public let replayCache: ReplayCache

    public init(service: ControlService, control: ControlConfig, tcpIsLoopback: Bool, replayCache: ReplayCache = ReplayCache()) {
        self.service = service; self.control = control; self.tcpIsLoopback = tcpIsLoopback; self.replayCache = replayCache
        aws = GlobalAcceleratorAPI(service: service)
        elb = ELBAPI(service: service)
    }

    public func route(_ request: ControlRequest) -> ControlResponse {
        let requestID = newRequestID()
        let path = request.rawPath
        if request.method == "GET" && path == "/healthz" {
            return ControlResponse(status: 200, headers: [("Content-Type", "text/plain")], body: Array("ok\n".utf8))
        }
        if request.method == "GET" && path == "/metrics" {
            if let refused = refuseMetrics(request, requestID: requestID) { return refused }
            return ControlResponse(status: 200, headers: [("Content-Type", "text/plain; version=0.0.4")], body: Array(service.metrics.render().utf8))
        }
        if request.method == "GET" && path == "/flowgate/info" {
            // What flowgatectl needs to address the ELB shape; on TCP it is
            // signed like an ELB request (it names the project and accelerators).
            if let refused = refuseUnsignedELB(request, requestID: requestID) { return refused }
            let config = service.config
            return ControlResponse(status: 200, headers: [("Content-Type", "application/json")],
                                   json: .object([("project_id", .string(config.projectID)),
                                                  ("accelerators", .array(config.accelerators.map { .string($0.acceleratorArn) }))]))
        }
        if path == "/flowgate/state/reset" { return stateReset(request, requestID: requestID) }
        if path.hasPrefix("/v3/") {
            if let refused = refuseUnsignedELB(request, requestID: requestID) { return refused }
            return elb.handle(request, requestID: requestID)
        }
        if path == "/" || path.isEmpty {
            if request.overTCP, let failure = authenticate(request, verify: verifySigV4,
                                                          configured: !control.awsCredentials.isEmpty,
                                                          mutating: ControlOperations.awsIsMutating(target: request.header("X-Amz-Target"))) {
                return Self.awsRefusal(failure, requestID: requestID)
            }
            return aws.handle(request, requestID: requestID)
        }
        return ControlResponse(status: 404, headers: [("Content-Type", "text/plain"), ("X-Request-Id", requestID)],
                               body: Array("no such endpoint: \(request.method) \(path); serving POST / (AWS Global Accelerator), /v3/{project_id}/elb/ (ELB v3), /healthz, /metrics\n".utf8))
    }

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
        let aws = !control.awsCredentials.isEmpty, huawei = !control.huaweiCredentials.isEmpty
        guard aws || huawei else { return nil }
        let auth = request.header("Authorization")
        if auth == nil && control.allowUnsigned && tcpIsLoopback { return nil }
        if let auth, aws, auth.hasPrefix(SignatureScheme.sigV4.rawValue + " ") {
            guard let failure = authenticate(request, verify: verifySigV4, configured: true, mutating: false) else { return nil }
            return Self.awsRefusal(failure, requestID: requestID)
        }
        if let auth, huawei, auth.hasPrefix(SignatureScheme.sdkHMAC.rawValue + " ") {
            guard let failure = authenticate(request, verify: verifySDKHMAC, configured: true, mutating: false) else { return nil }
            return Self.elbRefusal(failure, requestID: requestID)
        }
        let schemes = [aws ? SignatureScheme.sigV4.rawValue : nil, huawei ? SignatureScheme.sdkHMAC.rawValue : nil].compactMap { $0 }
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

    /// `flowgatectl state reset`: Unix socket only (or an unsigned loopback endpoint).
    func stateReset(_ request: ControlRequest, requestID: String) -> ControlResponse {
        // Answered in the ELB shape (error_code, error_msg, request_id), which flowgatectl reads.
        guard request.method == "POST" else {
            return ELBAPI.errorResponse(ELBError(405, "MethodNotAllowed", "use POST"), requestID: requestID)
        }
        if request.overTCP && !(control.allowUnsigned && tcpIsLoopback) {
            return ELBAPI.errorResponse(ELBError(403, "Forbidden", "state reset is served on the Unix control socket only"), requestID: requestID)
        }
        let headers = [("X-Request-Id", requestID), ("Content-Type", "application/json")]
        do throws(UpdateFailure) {
            _ = try service.reset()
            service.metrics.countRequest(operation: "StateReset", status: 200)
            return ControlResponse(status: 200, headers: headers, json: .object([("reset", true), ("request_id", .string(requestID))]))
        } catch {
            let e = ELBAPI.map(error)
            service.metrics.countRequest(operation: "StateReset", status: e.status)
            return ELBAPI.errorResponse(e, requestID: requestID)
        }
    }
}
