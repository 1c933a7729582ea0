import ArgumentParser
import FlowgateCore
import FlowgateSystem
import FlowgateDataPlane

/// `flowgated --config FILE [--check-config] [--takeover] [--log-level LEVEL]` (docs/architecture.md §11).
@main
struct Flowgated: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flowgated",
        abstract: "Flowgate: a userspace TCP/UDP load-balancing proxy over port ranges.")

    @Option(name: .long, help: "The YAML config file (docs/architecture.md §14).")
    var config: String

    @Flag(name: .long, help: "Validate the config file, print the result and exit (0 valid, 1 invalid); binds nothing.")
    var checkConfig = false

    @Flag(name: .long, help: "Take over from the flowgated running with this config: receive its listening sockets over the takeover socket beside control.unix_socket, start, then tell it to drain and exit (docs/architecture.md §16).")
    var takeover = false

    @Option(name: .long, help: "Lowest level logged: debug, info, warn or error.")
    var logLevel: String = "info"

    func validate() throws {
        guard LogLevel(name: logLevel) != nil else {
            throw ValidationError("--log-level: \"\(logLevel)\" is not one of debug, info, warn, error")
        }
    }

    func run() throws {
        Log.level = LogLevel(name: logLevel) ?? .info
        let loaded: FlowgateConfig
        switch ConfigSource.load(config) {
        case .success(let c): loaded = c
        case .failure(let problems):
            for line in problems.lines { printError(line) }
            if !checkConfig { Log.error("config_invalid", ["file": config, "errors": problems.lines.count]) }
            throw ExitCode(1)
        }
        if checkConfig {
            print("configuration ok")
            return
        }
        let code = Daemon(configPath: config).run(loaded, takeover: takeover)
        if code != 0 { throw ExitCode(code) }
    }
}

func printError(_ line: String) {
    var bytes = Array(line.utf8)
    bytes.append(10)
    bytes.withUnsafeBytes { System.writeAll(2, $0) }
}
