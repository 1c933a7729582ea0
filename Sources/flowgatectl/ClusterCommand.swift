// `flowgatectl cluster status` (docs/cluster.md §5): every instance of the
// fleet, the revision it applied, its lag, and what it could not apply.
import ArgumentParser
import FlowgateCore
import FlowgateSystem

struct ClusterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cluster", abstract: "The fleet this flowgated belongs to (etcd).",
                                                    subcommands: [Status.self])

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every instance, its applied revision, its lag and what it could not apply.")
        @OptionGroup var connection: Connection
        func run() throws {
            try FlowgateCtl.run {
                let target = try connection.target
                var headers: [(String, String)] = []
                if case .tcp = target, let ak = Connection.env("HUAWEICLOUD_SDK_AK"), let sk = Connection.env("HUAWEICLOUD_SDK_SK") {
                    Signing.sdkHMAC(method: "GET", path: "/flowgate/cluster/status", query: [], host: target.hostHeader, headers: &headers,
                                    body: [], ak: ak, sk: sk, now: Int64(System.wallClockSeconds()))
                }
                let reply = try ControlClient.exchange(target, method: "GET", path: "/flowgate/cluster/status", headers: headers, body: [])
                let parsed = try? JSONValue.parse(reply.body)
                guard reply.status == 200, let parsed else { throw APIError(elbReply: reply, parsed) }
                connection.emit(parsed) { Self.table(parsed) }
            }
        }

        static func table(_ v: JSONValue) -> String {
            var out = "cluster \(Tables.text(v["cluster"])) (\(Tables.text(v["prefix"]))), seen from \(Tables.text(v["instance"])): "
            out += "revision \(Tables.text(v["applied_revision"])), etcd \(v["etcd_reachable"]?.boolValue == true ? "reachable" : "unreachable: " + Tables.text(v["last_error"]))\n"
            if let error = v["instances_error"]?.stringValue { return out + "instances: unknown (\(error))\n" }
            let rows: [[String]] = (v["instances"]?.arrayValue ?? []).map { i in
                let failed = (i["not_applied"]?.arrayValue ?? []).map { "r\(Tables.text($0["revision"])): \(Tables.text($0["error"]))" }
                return [Tables.text(i["instance"]), Tables.text(i["applied_revision"]), Tables.text(i["lag"]), Tables.text(i["health"]),
                        failed.isEmpty ? "-" : failed.joined(separator: "; ")]
            }
            return out + Tables.render(["INSTANCE", "REVISION", "LAG", "HEALTH", "NOT APPLIED"], rows)
        }
    }
}
