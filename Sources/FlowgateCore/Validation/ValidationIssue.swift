/// One rule broken by a config file or an API request. One set of validators
/// produces these; the config loader adds file:line:column from the YAML node
/// at `path`, and each API maps `kind` to its own error code (docs/api.md §6).
public struct ValidationIssue: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable {
        /// AWS InvalidPortRangeException; ELB.8902.
        case invalidPortRange
        /// AWS InvalidArgumentException; ELB.8902.
        case invalidArgument
        /// AWS LimitExceededException; ELB.8902.
        case limitExceeded
        /// Unknown referenced object (e.g. pool_id): ListenerNotFound / ELB.8904.
        case notFound
        /// Duplicate (member address+port): ELB.8907.
        case conflict
    }
    public var kind: Kind
    /// Field path as in the file, e.g. `pools[0].members[1].weight`.
    public var path: String
    /// What is wrong, naming the allowed values or range.
    public var message: String
    /// The rule as data, for front ends that word it their own way; nil for
    /// rules that only the whole config can break (references, duplicates).
    public var rule: ValidationRule?

    public init(_ kind: Kind, _ path: String, _ message: String, rule: ValidationRule? = nil) {
        self.kind = kind; self.path = path; self.message = message; self.rule = rule
    }
    public var description: String { path.isEmpty ? message : "\(path): \(message)" }

    // Two issues are the same when they say the same thing at the same place:
    // `rule` is the data `message` was worded from.
    public static func == (a: ValidationIssue, b: ValidationIssue) -> Bool {
        a.kind == b.kind && a.path == b.path && a.message == b.message
    }
    public func hash(into h: inout Hasher) { h.combine(kind); h.combine(path); h.combine(message) }
}
