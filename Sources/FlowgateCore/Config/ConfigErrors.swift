// Config errors with their place in the file: `file:line:column: path: message`.

/// A `ValidationIssue` plus where it is in a file. Line and column are
/// 1-based (column counted in Unicode scalars, as libyaml does); line 0 means
/// the whole file (e.g. it cannot be read).
public struct LocatedIssue: Error, Sendable, Hashable, CustomStringConvertible {
    public var issue: ValidationIssue
    public var file: String
    public var line: Int
    public var column: Int

    public init(_ issue: ValidationIssue, file: String, line: Int, column: Int) {
        self.issue = issue; self.file = file; self.line = line; self.column = column
    }

    /// `flowgate.yaml:14:9: pools[0].lb_algorithm: "ROUND-ROBIN" is not one of ROUND_ROBIN, LEAST_CONNECTIONS, SOURCE_IP`
    public var description: String {
        line > 0 ? "\(file):\(line):\(column): \(issue)" : "\(file): \(issue)"
    }
}

/// Every problem of a config file, in file order.
public struct ConfigErrors: Error, Sendable, Hashable, CustomStringConvertible {
    public var issues: [LocatedIssue]
    public init(_ issues: [LocatedIssue]) { self.issues = issues }
    /// One issue per line.
    public var description: String { issues.map(\.description).joined(separator: "\n") }
}
