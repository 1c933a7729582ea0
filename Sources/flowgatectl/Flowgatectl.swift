// flowgatectl: the command line of the control API (docs/api.md §7). Talks to the
// Unix socket by default, or to `--endpoint http://host:port` with keys from
// the environment (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY for listeners,
// HUAWEICLOUD_SDK_AK/HUAWEICLOUD_SDK_SK for pools and members).
import ArgumentParser
import FlowgateCore
import FlowgateSystem

@main
struct Flowgatectl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flowgatectl",
        abstract: "Inspect and change a running flowgated through its control API.",
        subcommands: [ListenerCommand.self, PoolCommand.self, MemberCommand.self, StateCommand.self, ClusterCommand.self,
                      StatusCommand.self])
}

/// Where and how to talk; shared by every subcommand.
struct Connection: ParsableArguments {
    @Option(help: "The daemon's control Unix socket.")
    var socket: String = "/run/flowgate/control.sock"

    @Option(help: "A TCP control endpoint (http://host:port) instead of the socket; requests are signed with keys from the environment.")
    var endpoint: String?

    @Option(help: "SigV4 region for --endpoint (default: AWS_REGION, AWS_DEFAULT_REGION or us-west-2).")
    var region: String?

    @Option(help: "ELB project id (default: HUAWEICLOUD_PROJECT_ID or the daemon's own).")
    var projectId: String?

    @Flag(help: "Print the API's JSON instead of a table.")
    var json = false

    var target: Target {
        get throws { try endpoint.map { try Target.parse(endpoint: $0) } ?? .unix(socket) }
    }

    static func env(_ name: String) -> String? { System.environment(name).flatMap { $0.isEmpty ? nil : $0 } }

    /// AWS JSON 1.1 call; returns the decoded success body or exits with the API's error.
    func aws(_ operation: String, _ body: JSONValue) throws -> JSONValue {
        let target = try self.target
        let bytes = Array(body.serialized().utf8)
        var headers = [("Content-Type", "application/x-amz-json-1.1"), ("X-Amz-Target", "GlobalAccelerator_V20180706.\(operation)")]
        if case .tcp = target, let key = Connection.env("AWS_ACCESS_KEY_ID"), let secret = Connection.env("AWS_SECRET_ACCESS_KEY") {
            let region = self.region ?? Connection.env("AWS_REGION") ?? Connection.env("AWS_DEFAULT_REGION") ?? "us-west-2"
            Signing.sigV4(method: "POST", path: "/", host: target.hostHeader, headers: &headers, body: bytes,
                          keyID: key, secret: secret, region: region, now: Int64(System.wallClockSeconds()))
        }
        let reply = try ControlClient.exchange(target, method: "POST", path: "/", headers: headers, body: bytes)
        let parsed = try? JSONValue.parse(reply.body)
        guard reply.status == 200, let parsed else {
            let code = parsed?["__type"]?.stringValue ?? "HTTP\(reply.status)"
            let message = parsed?["message"]?.stringValue ?? parsed?["Message"]?.stringValue ?? String(decoding: reply.body, as: UTF8.self)
            throw APIError(status: reply.status, code: code, message: message)
        }
        return parsed
    }

    /// ELB v3 call under /v3/{project_id}/elb/; nil body for 204.
    func elb(_ method: String, _ subpath: String, query: [(String, String)] = [], body: JSONValue? = nil) throws -> JSONValue? {
        let target = try self.target
        let project = try projectID(target)
        let path = "/v3/\(project)/elb/\(subpath)"
        let bytes = body.map { Array($0.serialized().utf8) } ?? []
        var headers = [("Content-Type", "application/json;charset=utf-8"), ("X-Project-Id", project)]
        if case .tcp = target, let ak = Connection.env("HUAWEICLOUD_SDK_AK"), let sk = Connection.env("HUAWEICLOUD_SDK_SK") {
            Signing.sdkHMAC(method: method, path: path, query: query, host: target.hostHeader, headers: &headers, body: bytes,
                            ak: ak, sk: sk, now: Int64(System.wallClockSeconds()))
        }
        let q = query.map { "\(URLCoding.encode($0.0))=\(URLCoding.encode($0.1))" }.joined(separator: "&")
        let reply = try ControlClient.exchange(target, method: method, path: q.isEmpty ? path : "\(path)?\(q)", headers: headers, body: bytes)
        if reply.status == 204 { return nil }
        let parsed = try? JSONValue.parse(reply.body)
        guard (200..<300).contains(reply.status), let parsed else { throw APIError(elbReply: reply, parsed) }
        return parsed
    }

    func projectID(_ target: Target) throws -> String {
        if let p = projectId ?? Connection.env("HUAWEICLOUD_PROJECT_ID") { return p }
        var headers: [(String, String)] = []
        if case .tcp = target, let ak = Connection.env("HUAWEICLOUD_SDK_AK"), let sk = Connection.env("HUAWEICLOUD_SDK_SK") {
            Signing.sdkHMAC(method: "GET", path: "/flowgate/info", query: [], host: target.hostHeader, headers: &headers, body: [],
                            ak: ak, sk: sk, now: Int64(System.wallClockSeconds()))
        }
        let reply = try ControlClient.exchange(target, method: "GET", path: "/flowgate/info", headers: headers, body: [])
        guard reply.status == 200, let p = (try? JSONValue.parse(reply.body))?["project_id"]?.stringValue else {
            throw ClientError(description: "cannot learn the project id from the daemon (HTTP \(reply.status)); pass --project-id")
        }
        return p
    }

    func emit(_ value: JSONValue, table: () -> String) {
        print(json ? value.serialized() : table(), terminator: json ? "\n" : "")
    }
}

/// An error answer of the API: printed as `error: <code>: <message>`, exit 1.
struct APIError: Error, CustomStringConvertible {
    var status: Int
    var code: String
    var message: String
    var description: String { "\(code): \(message)" }

    init(status: Int, code: String, message: String) { self.status = status; self.code = code; self.message = message }

    /// An ELB-shaped error answer (`error_code`, `error_msg`); the raw body when it is not one.
    init(elbReply reply: HTTPReply, _ parsed: JSONValue?) {
        self.init(status: reply.status, code: parsed?["error_code"]?.stringValue ?? "HTTP\(reply.status)",
                  message: parsed?["error_msg"]?.stringValue ?? String(decoding: reply.body, as: UTF8.self))
    }
}

/// Runs a command body, printing API and connection errors the same way.
func run(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let e as APIError {
        printError("error: \(e.code): \(e.message) (HTTP \(e.status))")
        throw ExitCode(1)
    } catch let e as ClientError {
        printError("error: \(e.description)")
        throw ExitCode(2)
    }
}

func printError(_ line: String) {
    let bytes = Array((line + "\n").utf8)
    bytes.withUnsafeBytes { System.writeAll(2, $0) }
}
