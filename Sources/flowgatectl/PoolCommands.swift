import ArgumentParser
import FlowgateCore

struct PoolCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pool", abstract: "ELB v3 pools.",
                                                    subcommands: [List.self, Show.self, Update.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List pools.")
        @OptionGroup var connection: Connection
        func run() throws {
            try FlowgateCtl.run {
                var pools: [JSONValue] = []
                var marker: String?
                repeat {
                    var q: [(String, String)] = [("limit", "2000")]
                    if let marker { q.append(("marker", marker)) }
                    let page = try connection.elb("GET", "pools", query: q) ?? .null
                    pools += page["pools"]?.arrayValue ?? []
                    marker = page["page_info"]?["next_marker"]?.stringValue
                } while marker != nil
                connection.emit(.object([("pools", .array(pools))])) { Tables.pools(pools) }
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one pool.")
        @OptionGroup var connection: Connection
        @Argument(help: "Pool id") var id: String
        func run() throws {
            try FlowgateCtl.run {
                let r = try connection.elb("GET", "pools/\(id)") ?? .null
                connection.emit(r) { Tables.pools([r["pool"] ?? .null]) }
            }
        }
    }

    struct Update: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Change a pool; only the options given change.")
        @OptionGroup var connection: Connection
        @Argument(help: "Pool id") var id: String
        @Option(help: "ROUND_ROBIN, LEAST_CONNECTIONS or SOURCE_IP.") var lbAlgorithm: String?
        @Option(help: "SOURCE_IP[:MINUTES] (TCP/UDP pools), HTTP_COOKIE[:MINUTES] or APP_COOKIE:NAME[:MINUTES] (HTTP pools), or none.") var persistence: String?
        @Option(help: "Slow-start duration in seconds (30..1200), or off.") var slowStart: String?
        @Option(help: "Pool name.") var name: String?
        @Option(help: "Pool description.") var description: String?
        @Option(help: "HTTP pools: on or off, whether requests get X-Forwarded-For/-Proto/-Port (Flowgate's own field).")
        var xForwardedHeaders: String?

        func run() throws {
            var pool: [(String, JSONValue)] = []
            if let lbAlgorithm { pool.append(("lb_algorithm", .string(lbAlgorithm))) }
            if let persistence { pool.append(("session_persistence", try Self.parsePersistence(persistence))) }
            if let slowStart {
                if slowStart == "off" { pool.append(("slow_start", .object([("enable", false)]))) } else {
                    guard let d = Int(slowStart) else { throw ValidationError("--slow-start: \"\(slowStart)\" is not a number of seconds or off") }
                    pool.append(("slow_start", .object([("enable", true), ("duration", .int(d))])))
                }
            }
            if let name { pool.append(("name", .string(name))) }
            if let description { pool.append(("description", .string(description))) }
            if let xForwardedHeaders {
                guard xForwardedHeaders == "on" || xForwardedHeaders == "off" else {
                    throw ValidationError("--x-forwarded-headers: \"\(xForwardedHeaders)\" is not on or off")
                }
                pool.append(("x_forwarded_headers", .bool(xForwardedHeaders == "on")))
            }
            try FlowgateCtl.run {
                let r = try connection.elb("PUT", "pools/\(id)", body: .object([("pool", .object(pool))])) ?? .null
                connection.emit(r) { Tables.pools([r["pool"] ?? .null]) }
            }
        }

        static func parsePersistence(_ text: String) throws -> JSONValue {
            if text == "none" { return .null }
            let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            var out: [(String, JSONValue)] = [("type", .string(parts[0]))]
            var rest = parts.dropFirst()
            if parts[0] == "APP_COOKIE" {
                guard let cookie = rest.first else { throw ValidationError("--persistence APP_COOKIE needs a cookie name: APP_COOKIE:NAME") }
                out.append(("cookie_name", .string(cookie)))
                rest = rest.dropFirst()
            }
            if let minutes = rest.first {
                guard let m = Int(minutes) else { throw ValidationError("--persistence: \"\(minutes)\" is not a number of minutes") }
                out.append(("persistence_timeout", .int(m)))
            }
            return .object(out)
        }
    }
}

struct MemberCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "member", abstract: "Members of an ELB v3 pool.",
                                                    subcommands: [List.self, Add.self, Update.self, Remove.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a pool's members.")
        @OptionGroup var connection: Connection
        @Argument(help: "Pool id") var pool: String
        func run() throws {
            try FlowgateCtl.run {
                let r = try connection.elb("GET", "pools/\(pool)/members") ?? .null
                let members = r["members"]?.arrayValue ?? []
                connection.emit(.object([("members", .array(members))])) { Tables.members(members) }
            }
        }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a member to a pool.")
        @OptionGroup var connection: Connection
        @Argument(help: "Pool id") var pool: String
        @Option(help: "IPv4 or IPv6 address.") var address: String
        @Option(help: "Backend port (omit: the port the client reached).") var port: Int?
        @Option(help: "0..100 (default 1).") var weight: Int?
        @Option(help: "Member name.") var name: String?

        func run() throws {
            var m: [(String, JSONValue)] = [("address", .string(address))]
            if let port { m.append(("protocol_port", .int(port))) }
            if let weight { m.append(("weight", .int(weight))) }
            if let name { m.append(("name", .string(name))) }
            try FlowgateCtl.run {
                let r = try connection.elb("POST", "pools/\(pool)/members", body: .object([("member", .object(m))])) ?? .null
                connection.emit(r) { Tables.members([r["member"] ?? .null]) }
            }
        }
    }

    struct Update: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Change a member's weight, name or admin state.")
        @OptionGroup var connection: Connection
        @Argument(help: "Pool id") var pool: String
        @Argument(help: "Member id") var member: String
        @Option(help: "0..100.") var weight: Int?
        @Option(help: "Member name.") var name: String?
        @Option(help: "true or false.") var adminStateUp: Bool?

        func run() throws {
            var m: [(String, JSONValue)] = []
            if let weight { m.append(("weight", .int(weight))) }
            if let name { m.append(("name", .string(name))) }
            if let adminStateUp { m.append(("admin_state_up", .bool(adminStateUp))) }
            try FlowgateCtl.run {
                let r = try connection.elb("PUT", "pools/\(pool)/members/\(member)", body: .object([("member", .object(m))])) ?? .null
                connection.emit(r) { Tables.members([r["member"] ?? .null]) }
            }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a member from a pool.")
        @OptionGroup var connection: Connection
        @Argument(help: "Pool id") var pool: String
        @Argument(help: "Member id") var member: String
        func run() throws {
            try FlowgateCtl.run {
                _ = try connection.elb("DELETE", "pools/\(pool)/members/\(member)")
                if connection.json { print("{}") } else { print("removed member \(member) from pool \(pool)") }
            }
        }
    }
}

struct StateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "state", abstract: "The state file of accepted API updates.",
                                                    subcommands: [Reset.self])

    struct Reset: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete the state file and go back to the config file, live.")
        @OptionGroup var connection: Connection
        func run() throws {
            try FlowgateCtl.run {
                let target = try connection.target
                let reply = try ControlClient.exchange(target, method: "POST", path: "/flowgate/state/reset", headers: [], body: [])
                let parsed = try? JSONValue.parse(reply.body)
                guard reply.status == 200 else { throw APIError(elbReply: reply, parsed) }
                if connection.json { print(parsed?.serialized() ?? "{}") } else { print("state reset: running the config file's state") }
            }
        }
    }
}
