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

    public init(service: ControlService, control: ControlConfig, tcpIsLoopback: Bool) {
        self.service = service; self.control = control; self.tcpIsLoopback = tcpIsLoopback
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
            if request.overTCP, let failure = authenticate(request, verify: { r, t throws(AuthFailure) in
                try SigV4Verifier(region: control.region, credentials: control.awsCredentials).verify(r, now: t)
            }, configured: !control.awsCredentials.isEmpty) {
                let code: String
                switch failure.kind {
                case .missing: code = "MissingAuthenticationTokenException"
                case .unknownKey: code = "UnrecognizedClientException"
                case .badSignature: code = "InvalidSignatureException"
                }
                return GlobalAcceleratorAPI.errorResponse(AWSError(code, failure.message, status: 403), requestID: requestID)
            }
            return aws.handle(request, requestID: requestID)
        }
        return ControlResponse(status: 404, headers: [("Content-Type", "text/plain"), ("X-Request-Id", requestID)],
                               body: Array("no such endpoint: \(request.method) \(path); serving POST / (AWS Global Accelerator), /v3/{project_id}/elb/ (ELB v3), /healthz, /metrics\n".utf8))
    }

    /// The 401 answer for a TCP request without a valid SDK-HMAC signature
    /// (the ELB shape and /flowgate/info); nil when it may proceed.
    func refuseUnsignedELB(_ request: ControlRequest, requestID: String) -> ControlResponse? {
        guard request.overTCP, let failure = authenticate(request, verify: { r, t throws(AuthFailure) in
            try SDKHMACVerifier(credentials: control.huaweiCredentials).verify(r, now: t)
        }, configured: !control.huaweiCredentials.isEmpty) else { return nil }
        return ELBAPI.errorResponse(ELBError(401, "APIGW.0301", "Incorrect IAM authentication information: \(failure.message)"), requestID: requestID)
    }

    /// nil when the request may proceed. With no credentials configured for
    /// an API, the start-up check has already limited TCP to loopback.
    func authenticate(_ request: ControlRequest, verify: (ControlRequest, Int64) throws(AuthFailure) -> Void, configured: Bool) -> AuthFailure? {
        guard configured else { return nil }
        if request.header("Authorization") == nil && control.allowUnsigned && tcpIsLoopback { return nil }
        do throws(AuthFailure) { try verify(request, now()) } catch { return error }
        return nil
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
