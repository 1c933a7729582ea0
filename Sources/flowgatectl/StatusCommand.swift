// `flowgatectl status`: the process's start time and takeover generation,
// and what its takeovers moved (docs/architecture.md §16.5), read from the
// daemon's GET /metrics.
#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import FlowgateCore
import FlowgateSystem

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "The daemon's start time, takeover generation and takeover counts.")
    @OptionGroup var connection: Connection

    func run() throws {
        try FlowgateCtl.run {
            let reply = try ControlClient.exchange(try connection.target, method: "GET", path: "/metrics", headers: [], body: [])
            guard reply.status == 200 else { throw APIError(status: reply.status, code: "HTTP\(reply.status)", message: "GET /metrics") }
            let samples = StatusCommand.samples(String(decoding: reply.body, as: UTF8.self))
            guard let started = samples["flowgate_process_start_time_seconds"],
                  let generation = samples["flowgate_takeover_generation"] else {
                throw ClientError(description: "the daemon's metrics have no process start time (a flowgated without takeover support?)")
            }
            let count = { (family: String, outcome: String) in Int(samples["\(family){outcome=\"\(outcome)\"}"] ?? 0) }
            if connection.json {
                let outcomes = ["handed_over", "adopted", "kept", "previous_kept"]
                let connections: [(String, JSONValue)] = outcomes.map { ($0, .int(count("flowgate_takeover_connections_total", $0))) }
                let sessions: [(String, JSONValue)] = outcomes.map { ($0, .int(count("flowgate_takeover_udp_sessions_total", $0))) }
                let j = JSONValue.object([
                    ("start_time", .string(StatusCommand.iso8601(started))), ("start_time_seconds", .int(Int(started))),
                    ("takeover_generation", .int(Int(generation))),
                    ("connections", .object(connections)), ("udp_sessions", .object(sessions)),
                ])
                print(j.serialized())
                return
            }
            let uptime = max(0, Double(System.wallClockSeconds()) - started)
            print("started:              \(StatusCommand.iso8601(started)) (up \(Int(uptime)) s)")
            print("takeover generation:  \(Int(generation))\(generation == 0 ? " (started without --takeover)" : "")")
            print("connections adopted:  \(count("flowgate_takeover_connections_total", "adopted")) (previous process kept \(count("flowgate_takeover_connections_total", "previous_kept")) to drain)")
            print("udp sessions adopted: \(count("flowgate_takeover_udp_sessions_total", "adopted")) (previous process kept \(count("flowgate_takeover_udp_sessions_total", "previous_kept")))")
        }
    }

    /// `name{labels} value` lines of a Prometheus text body, by `name{labels}`.
    static func samples(_ text: String) -> [String: Double] {
        var out: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let v = Double(line[line.index(after: space)...]) else { continue }
            out[String(line[..<space])] = v
        }
        return out
    }

    static func iso8601(_ seconds: Double) -> String {
        var t = time_t(seconds)
        var parts = tm()
        gmtime_r(&t, &parts)
        var buffer = [CChar](repeating: 0, count: 32)
        let n = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%SZ", &parts)
        return String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
