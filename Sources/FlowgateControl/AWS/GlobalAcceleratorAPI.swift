// The AWS Global Accelerator shape (docs/api.md §3): JSON 1.1 at `POST /` with
// `X-Amz-Target: GlobalAccelerator_V20180706.<Operation>`. Error bodies carry
// `__type`, the only place boto3 reads the exception class from.
import FlowgateCore

public struct AWSError: Error, Sendable, Equatable {
    public var code: String
    public var message: String
    public var status: Int
    public init(_ code: String, _ message: String, status: Int = 400) { self.code = code; self.message = message; self.status = status }

    static func invalidArgument(_ m: String) -> AWSError { AWSError("InvalidArgumentException", m) }
    static func invalidPortRange(_ m: String) -> AWSError { AWSError("InvalidPortRangeException", m) }
}

public final class GlobalAcceleratorAPI: @unchecked Sendable {
    public static let targetPrefix = "GlobalAccelerator_V20180706."
    public static let maxArnLength = ArnFormat.maxLength
    let service: ControlService

    public init(service: ControlService) { self.service = service }

    /// Answers an already authenticated request. `requestID` goes into `x-amzn-RequestId`.
    public func handle(_ request: ControlRequest, requestID: String) -> ControlResponse {
        let headers = [("x-amzn-RequestId", requestID), ("Content-Type", "application/x-amz-json-1.1")]
        let target = request.header("X-Amz-Target") ?? ""
        let operation = target.hasPrefix(GlobalAcceleratorAPI.targetPrefix) ? String(target.dropFirst(GlobalAcceleratorAPI.targetPrefix.count)) : target
        let result: Result<JSONValue, AWSError>
        do throws(AWSError) {
            guard request.method == "POST" else { throw AWSError("UnknownOperationException", "the AWS shape is served at POST /", status: 400) }
            switch operation {
            case "UpdateListener": result = .success(try updateListener(try body(request)))
            case "DescribeListener": result = .success(try describeListener(try body(request)))
            case "ListListeners": result = .success(try listListeners(try body(request)))
            case "ListAccelerators": result = .success(try listAccelerators(try body(request)))
            case "DescribeAccelerator": result = .success(try describeAccelerator(try body(request)))
            default: throw AWSError("UnknownOperationException", "unknown operation \(target.isEmpty ? "(no X-Amz-Target)" : target)")
            }
        } catch {
            result = .failure(error)
        }
        let name = operation.isEmpty ? "unknown" : operation
        switch result {
        case let .success(json):
            service.metrics.countRequest(operation: name, status: 200)
            return ControlResponse(status: 200, headers: headers, json: json)
        case let .failure(e):
            service.metrics.countRequest(operation: name, status: e.status)
            return GlobalAcceleratorAPI.errorResponse(e, requestID: requestID)
        }
    }

    public static func errorResponse(_ e: AWSError, requestID: String) -> ControlResponse {
        ControlResponse(status: e.status,
                        headers: [("x-amzn-RequestId", requestID), ("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", e.code)],
                        json: .object([("__type", .string(e.code)), ("message", .string(e.message))]))
    }

    // MARK: operations

    func updateListener(_ body: [(String, JSONValue)]) throws(AWSError) -> JSONValue {
        let arn = try listenerArn(body)
        let portRanges = try field(body, "PortRanges").map { v throws(AWSError) in try AWSRequestRules.portRanges(v) }
        let proto = try field(body, "Protocol").map { v throws(AWSError) in try AWSRequestRules.enumValue(v, "Protocol", TransportProtocol.self) }
        let affinity = try field(body, "ClientAffinity").map { v throws(AWSError) in try AWSRequestRules.enumValue(v, "ClientAffinity", ClientAffinity.self) }
        // The lookup runs with the update gate held (ControlService.update):
        // a reload that removed the listener makes this a 404, not a crash.
        do throws(ChangeFailure<AWSError>) {
            let listener = try service.update { (config: inout FlowgateConfig) throws(AWSError) -> Listener in
                var found: Listener?
                for a in config.accelerators.indices {
                    for l in config.accelerators[a].listeners.indices where config.accelerators[a].listeners[l].listenerArn == arn {
                        if let portRanges { config.accelerators[a].listeners[l].portRanges = portRanges }
                        if let proto, proto != config.accelerators[a].listeners[l].protocol {
                            // Keep a customised idle timeout; a default follows the protocol (docs/architecture.md §2).
                            let old = config.accelerators[a].listeners[l]
                            if old.idleTimeout == Listener.defaultIdleTimeout(for: old.protocol) {
                                config.accelerators[a].listeners[l].idleTimeout = Listener.defaultIdleTimeout(for: proto)
                            }
                            config.accelerators[a].listeners[l].protocol = proto
                            // The TCP socket options (config file only) have no meaning on UDP.
                            if proto != .tcp {
                                config.accelerators[a].listeners[l].tcpDeferAccept = nil
                                config.accelerators[a].listeners[l].tcpFastOpen = nil
                            }
                        }
                        if let affinity { config.accelerators[a].listeners[l].clientAffinity = affinity }
                        found = config.accelerators[a].listeners[l]
                    }
                }
                guard let found else { throw listenerNotFound(arn) }
                return found
            }.value
            return .object([("Listener", AWSRequestRules.json(listener))])
        } catch {
            switch error {
            case let .refused(e): throw e
            case let .failed(f): throw AWSRequestRules.map(f, listenerArn: arn)
            }
        }
    }

    func describeListener(_ body: [(String, JSONValue)]) throws(AWSError) -> JSONValue {
        let arn = try listenerArn(body)
        guard let listener = service.config.allListeners.first(where: { $0.listenerArn == arn }) else { throw listenerNotFound(arn) }
        return .object([("Listener", AWSRequestRules.json(listener))])
    }

    func listListeners(_ body: [(String, JSONValue)]) throws(AWSError) -> JSONValue {
        let arn = try acceleratorArn(body)
        guard let acc = service.config.accelerators.first(where: { $0.acceleratorArn == arn }) else {
            throw AWSError("AcceleratorNotFoundException", "Accelerator \(arn) could not be found")
        }
        let (page, next) = try paginate(acc.listeners, body, scope: arn)
        var members: [(String, JSONValue)] = [("Listeners", .array(page.map(AWSRequestRules.json)))]
        if let next { members.append(("NextToken", .string(next))) }
        return .object(members)
    }

    func listAccelerators(_ body: [(String, JSONValue)]) throws(AWSError) -> JSONValue {
        let (page, next) = try paginate(service.config.accelerators, body, scope: "accelerators")
        var members: [(String, JSONValue)] = [("Accelerators", .array(page.map(AWSRequestRules.json)))]
        if let next { members.append(("NextToken", .string(next))) }
        return .object(members)
    }

    func describeAccelerator(_ body: [(String, JSONValue)]) throws(AWSError) -> JSONValue {
        let arn = try acceleratorArn(body)
        guard let acc = service.config.accelerators.first(where: { $0.acceleratorArn == arn }) else {
            throw AWSError("AcceleratorNotFoundException", "Accelerator \(arn) could not be found")
        }
        return .object([("Accelerator", AWSRequestRules.json(acc))])
    }

    // MARK: request parts

    func body(_ request: ControlRequest) throws(AWSError) -> [(String, JSONValue)] {
        let text = request.body.isEmpty ? Array("{}".utf8) : request.body
        let value: JSONValue
        do throws(JSONValue.ParseError) { value = try JSONValue.parse(text) } catch {
            throw .invalidArgument("The request body is not valid JSON: \(error.description)")
        }
        guard let members = value.objectMembers else { throw .invalidArgument("The request body must be a JSON object, not \(value.typeName)") }
        return members
    }

    func field(_ body: [(String, JSONValue)], _ name: String) throws(AWSError) -> JSONValue? {
        guard let v = body.last(where: { $0.0 == name })?.1 else { return nil }
        // awsJson1_1 serializers omit unset members; an explicit null means the same.
        return v.isNull ? nil : v
    }

    func listenerArn(_ body: [(String, JSONValue)]) throws(AWSError) -> String {
        guard let v = try field(body, "ListenerArn") else { throw .invalidArgument("ListenerArn is required") }
        guard let arn = v.stringValue else { throw .invalidArgument("ListenerArn must be a string, not \(v.typeName)") }
        try AWSRequestRules.checkArn(arn, name: "ListenerArn", kind: .listener)
        return arn
    }

    func acceleratorArn(_ body: [(String, JSONValue)]) throws(AWSError) -> String {
        guard let v = try field(body, "AcceleratorArn") else { throw .invalidArgument("AcceleratorArn is required") }
        guard let arn = v.stringValue else { throw .invalidArgument("AcceleratorArn must be a string, not \(v.typeName)") }
        try AWSRequestRules.checkArn(arn, name: "AcceleratorArn", kind: .accelerator)
        return arn
    }

    func listenerNotFound(_ arn: String) -> AWSError { AWSError("ListenerNotFoundException", "Listener \(arn) could not be found") }

    /// MaxResults 1..100 (default 100) and NextToken, a token this server
    /// issued for the same list: `<offset>.<first 16 hex of sha256(scope)>`.
    func paginate<T>(_ items: [T], _ body: [(String, JSONValue)], scope: String) throws(AWSError) -> ([T], String?) {
        var maxResults = 100
        if let v = try field(body, "MaxResults") {
            guard let n = v.intValue else { throw .invalidArgument("MaxResults must be an integer, not \(v.typeName)") }
            guard (1...100).contains(n) else { throw .invalidArgument("MaxResults \(n) is outside 1..100") }
            maxResults = n
        }
        var offset = 0
        let tag = String(Hex.encode(SHA256.hash(scope)).prefix(16))
        if let v = try field(body, "NextToken") {
            guard let token = v.stringValue else { throw .invalidArgument("NextToken must be a string, not \(v.typeName)") }
            let parts = token.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 2, let n = Int(parts[0]), n > 0, n < items.count, parts[1] == tag else {
                throw AWSError("InvalidNextTokenException", "NextToken \(token) was not issued for this list")
            }
            offset = n
        }
        let end = min(items.count, offset + maxResults)
        let next = end < items.count ? "\(end).\(tag)" : nil
        return (Array(items[offset..<end]), next)
    }
}
