// Dispatches one request: Flowgate's own endpoints, then authentication for
// TCP requests (docs/api.md §2), then the API shape by path.
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
            if case let .refused(answer) = authorizeELB(request, requestID: requestID) { return answer }
            let config = service.config
            return ControlResponse(status: 200, headers: [("Content-Type", "application/json")],
                                   json: .object([("project_id", .string(config.projectID)),
                                                  ("accelerators", .array(config.accelerators.map { .string($0.acceleratorArn) }))]))
        }
        if path == "/flowgate/state/reset" { return stateReset(request, requestID: requestID) }
        if request.method == "GET" && path == "/flowgate/cluster/status" {
            // `flowgatectl cluster status` (docs/cluster.md §5); signed on TCP like /flowgate/info.
            if case let .refused(answer) = authorizeELB(request, requestID: requestID) { return answer }
            guard let status = service.clusterStatus else {
                return ELBAPI.errorResponse(ELBError(404, "ELB.8904", "this flowgated is standalone (no cluster section in its config file)"), requestID: requestID)
            }
            return ControlResponse(status: 200, headers: [("Content-Type", "application/json"), ("X-Request-Id", requestID)], json: status())
        }
        if path.hasPrefix("/v3/") {
            switch authorizeELB(request, requestID: requestID) {
            case let .refused(answer): return answer
            case let .allowed(admitted): return settle(admitted, elb.handle(request, requestID: requestID))
            }
        }
        if path == "/" || path.isEmpty {
            switch authorizeAWS(request, requestID: requestID) {
            case let .refused(answer): return answer
            case let .allowed(admitted): return settle(admitted, aws.handle(request, requestID: requestID))
            }
        }
        return ControlResponse(status: 404, headers: [("Content-Type", "text/plain"), ("X-Request-Id", requestID)],
                               body: Array("no such endpoint: \(request.method) \(path); serving POST / (AWS Global Accelerator), /v3/{project_id}/elb/ (ELB v3), /healthz, /metrics\n".utf8))
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
