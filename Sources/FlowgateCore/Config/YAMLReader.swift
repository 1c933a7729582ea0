// Typed reads from a Yams node tree that remember where every value was, so
// that both type errors (here) and rule errors (ConfigValidator, by path)
// can name file:line:column. Yams' Codable decoder is not used: it loses
// node locations and silently ignores unknown keys.

import Yams

/// Collects located issues and a path → position table while a file is read.
final class YAMLReader {
    struct Position: Hashable { var line: Int; var column: Int }

    let file: String
    private(set) var issues: [LocatedIssue] = []
    /// Where each read value (or mapping, or list) starts, by field path.
    private(set) var positions: [String: Position] = [:]
    /// Paths whose values could not be read: rule checks on them are noise.
    private(set) var failedPaths: [String] = []

    init(file: String) { self.file = file }

    func record(_ path: String, _ node: Node) {
        if let m = node.mark { positions[path] = Position(line: m.line, column: m.column) }
    }

    /// `failedPath` is the value that could not be read (default: `path`).
    func fail(_ kind: ValidationIssue.Kind, _ path: String, _ message: String, at mark: Mark?, failedPath: String? = nil) {
        issues.append(LocatedIssue(.init(kind, path, message), file: file, line: mark?.line ?? 0, column: mark?.column ?? 0))
        failedPaths.append(failedPath ?? path)
    }

    /// Marks `path` as unreliable without an issue of its own: its rules
    /// depend on a value that could not be read elsewhere.
    func suppress(_ path: String) { failedPaths.append(path) }

    func hasFailed(_ path: String) -> Bool { failedPaths.contains(path) }

    /// The position recorded for `path` or its nearest ancestor.
    func position(of path: String) -> Position? {
        var p: String? = path
        while let current = p {
            if let pos = positions[current] { return pos }
            p = FieldPath.parent(current)
        }
        return nil
    }

    /// A mapping whose keys must all be in `allowed`; unknown keys are
    /// reported (at the key) and skipped. nil (and an issue) if not a mapping.
    func mapping(_ node: Node, path: String, allowed: [String]) -> MapReader? {
        record(path, node)
        guard case let .mapping(map) = node else {
            fail(.invalidArgument, path, "expected a mapping, got \(Self.describe(node))", at: node.mark)
            return nil
        }
        var values: [String: Node] = [:]
        for (key, value) in map {
            guard case let .scalar(k) = key else {
                fail(.invalidArgument, path, "expected a text key, got \(Self.describe(key))", at: key.mark,
                     failedPath: FieldPath.field(path, "?"))
                continue
            }
            guard allowed.contains(k.string) else {
                fail(.invalidArgument, path,
                     "unknown key \(RuleText.quoted(k.string)); allowed: \(allowed.joined(separator: ", "))", at: key.mark,
                     failedPath: FieldPath.field(path, k.string))
                continue
            }
            values[k.string] = value
        }
        return MapReader(reader: self, path: path, mark: map.mark, values: values)
    }

    /// The items of a list with their paths, or nil (and an issue) if not a list.
    func list(_ node: Node, path: String) -> [(node: Node, path: String)]? {
        record(path, node)
        guard case let .sequence(seq) = node else {
            fail(.invalidArgument, path, "expected a list, got \(Self.describe(node))", at: node.mark)
            return nil
        }
        return seq.enumerated().map { ($0.element, FieldPath.index(path, $0.offset)) }
    }

    static func isNull(_ node: Node) -> Bool {
        guard case let .scalar(s) = node, s.style == .plain else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(s.string)
    }

    /// For messages: `"abc"`, `a quoted string "8000"`, `null`, `a mapping`, `a list`.
    static func describe(_ node: Node) -> String {
        switch node {
        case let .scalar(s):
            if isNull(node) { return "null" }
            return s.style == .plain ? RuleText.quoted(s.string) : "a quoted string \(RuleText.quoted(s.string))"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        }
    }

    static func int(_ node: Node) -> Int? {
        guard case let .scalar(s) = node, s.style == .plain else { return nil }
        return Int(s.string)
    }

    static func bool(_ node: Node) -> Bool? {
        guard case let .scalar(s) = node, s.style == .plain else { return nil }
        switch s.string {
        case "true", "True", "TRUE": return true
        case "false", "False", "FALSE": return false
        default: return nil
        }
    }

    static func string(_ node: Node) -> String? {
        guard case let .scalar(s) = node, !isNull(node) else { return nil }
        return s.string
    }
}

/// The checked keys of one mapping, read with their types and defaults.
struct MapReader {
    let reader: YAMLReader
    let path: String
    let mark: Mark?
    let values: [String: Node]

    func fieldPath(_ key: String) -> String { FieldPath.field(path, key) }

    /// The value at `key`, recorded; nil when absent or null.
    func node(_ key: String) -> Node? {
        guard let n = values[key] else { return nil }
        reader.record(fieldPath(key), n)
        return YAMLReader.isNull(n) ? nil : n
    }

    func has(_ key: String) -> Bool { node(key) != nil }

    func missing(_ key: String, expected: String? = nil, kind: ValidationIssue.Kind = .invalidArgument) {
        reader.fail(kind, fieldPath(key), "required key is missing" + (expected.map { "; expected \($0)" } ?? ""), at: mark)
    }

    private func typeError(_ key: String, _ n: Node, expected: String) {
        reader.fail(.invalidArgument, fieldPath(key), "expected \(expected), got \(YAMLReader.describe(n))", at: n.mark)
    }

    func optionalInt(_ key: String) -> Int? {
        guard let n = node(key) else { return nil }
        if let v = YAMLReader.int(n) { return v }
        typeError(key, n, expected: "an integer")
        return nil
    }

    func int(_ key: String, default d: Int) -> Int { optionalInt(key) ?? d }

    func requiredInt(_ key: String, kind: ValidationIssue.Kind = .invalidArgument) -> Int? {
        guard values[key] != nil, node(key) != nil else { missing(key, expected: "an integer", kind: kind); return nil }
        return optionalInt(key)
    }

    func bool(_ key: String, default d: Bool) -> Bool {
        guard let n = node(key) else { return d }
        if let v = YAMLReader.bool(n) { return v }
        typeError(key, n, expected: "true or false")
        return d
    }

    func optionalString(_ key: String) -> String? {
        guard let n = node(key) else { return nil }
        if let s = YAMLReader.string(n) { return s }
        typeError(key, n, expected: "a text value")
        return nil
    }

    func string(_ key: String, default d: String) -> String { optionalString(key) ?? d }

    func requiredString(_ key: String) -> String? {
        guard node(key) != nil else { missing(key, expected: "a text value"); return nil }
        return optionalString(key)
    }

    /// An API enum spelled exactly; `default` nil makes the key required.
    func enumValue<E: RawRepresentable & CaseIterable>(_ key: String, _ type: E.Type, default d: E?) -> E?
    where E.RawValue == String {
        let allowed = E.allCases.map(\.rawValue)
        guard let n = node(key) else {
            if d == nil { missing(key, expected: "one of " + allowed.joined(separator: ", ")) }
            return d
        }
        guard let raw = YAMLReader.string(n), case .scalar = n else {
            typeError(key, n, expected: "one of " + allowed.joined(separator: ", "))
            return d
        }
        switch ConfigValidator.enumValue(raw, as: E.self, path: fieldPath(key)) {
        case let .success(v): return v
        case let .failure(issue):
            reader.fail(issue.kind, issue.path, issue.message, at: n.mark)
            return d
        }
    }

    func mapping(_ key: String, allowed: [String]) -> MapReader? {
        guard let n = node(key) else { return nil }
        return reader.mapping(n, path: fieldPath(key), allowed: allowed)
    }

    /// The items of a list; absent or null is an empty list.
    func list(_ key: String) -> [(node: Node, path: String)] {
        guard let n = node(key) else { return [] }
        return reader.list(n, path: fieldPath(key)) ?? []
    }
}
