import ArgumentParser
import FlowgateCore

struct ListenerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "listener", abstract: "Global Accelerator listeners.",
                                                    subcommands: [List.self, Show.self, Update.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List listeners (every accelerator's, or one's).")
        @OptionGroup var connection: Connection
        @Option(help: "Only this accelerator's listeners.") var accelerator: String?

        func run() throws {
            try FlowgateCtl.run {
                var accelerators: [String] = []
                if let a = accelerator { accelerators = [a] } else {
                    accelerators = try connection.aws("ListAccelerators", .object([]))["Accelerators"]?.arrayValue?.compactMap { $0["AcceleratorArn"]?.stringValue } ?? []
                }
                var listeners: [JSONValue] = []
                for arn in accelerators {
                    var token: String?
                    repeat {
                        var body: [(String, JSONValue)] = [("AcceleratorArn", .string(arn)), ("MaxResults", 100)]
                        if let token { body.append(("NextToken", .string(token))) }
                        let page = try connection.aws("ListListeners", .object(body))
                        listeners += page["Listeners"]?.arrayValue ?? []
                        token = page["NextToken"]?.stringValue
                    } while token != nil
                }
                connection.emit(.object([("Listeners", .array(listeners))])) { Tables.listeners(listeners) }
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Describe one listener.")
        @OptionGroup var connection: Connection
        @Argument(help: "ListenerArn") var arn: String

        func run() throws {
            try FlowgateCtl.run {
                let r = try connection.aws("DescribeListener", .object([("ListenerArn", .string(arn))]))
                connection.emit(r) { Tables.listeners([r["Listener"] ?? .null]) }
            }
        }
    }

    struct Update: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Change a listener's port ranges, protocol or client affinity.")
        @OptionGroup var connection: Connection
        @Argument(help: "ListenerArn") var arn: String
        @Option(help: "Ranges and single ports, e.g. 8000-8009,9000.") var portRanges: String?
        @Option(name: .customLong("protocol"), help: "TCP or UDP.") var proto: String?
        @Option(help: "NONE or SOURCE_IP.") var clientAffinity: String?

        func run() throws {
            var body: [(String, JSONValue)] = [("ListenerArn", .string(arn))]
            if let portRanges { body.append(("PortRanges", try Self.parseRanges(portRanges))) }
            if let proto { body.append(("Protocol", .string(proto))) }
            if let clientAffinity { body.append(("ClientAffinity", .string(clientAffinity))) }
            try FlowgateCtl.run {
                let r = try connection.aws("UpdateListener", .object(body))
                connection.emit(r) { Tables.listeners([r["Listener"] ?? .null]) }
            }
        }

        /// "8000-8009,9000" → [{FromPort:8000,ToPort:8009},{FromPort:9000,ToPort:9000}];
        /// range rules themselves are the daemon's (it answers with the API's code).
        static func parseRanges(_ text: String) throws -> JSONValue {
            var out: [JSONValue] = []
            for part in text.split(separator: ",") {
                let bounds = part.split(separator: "-", omittingEmptySubsequences: false)
                guard (1...2).contains(bounds.count), let from = Int(bounds[0]), let to = Int(bounds.last!) else {
                    throw ValidationError("--port-ranges: \"\(part)\" is not a port or FROM-TO range")
                }
                out.append(.object([("FromPort", .int(from)), ("ToPort", .int(to))]))
            }
            return .array(out)
        }
    }
}

enum FlowgateCtl {
    static func run(_ body: () throws -> Void) throws { try flowgatectl.run(body) }
}
