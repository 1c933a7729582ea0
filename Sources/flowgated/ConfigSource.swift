import FlowgateCore

/// The daemon's one way to read its config file: decoding and every
/// validation rule live in FlowgateCore (`ConfigLoader`, docs/architecture.md §14); this
/// turns the outcome into the located lines the daemon prints.
enum ConfigSource {
    static func load(_ path: String) -> Result<FlowgateConfig, ConfigProblems> {
        switch ConfigLoader.load(path: path) {
        case .success(let config): return .success(config)
        case .failure(let errors): return .failure(ConfigProblems(lines: errors.issues.map(\.description)))
        }
    }
}

/// Located messages, one per line: `file:line:column: path: message`.
struct ConfigProblems: Error {
    var lines: [String]
}
