// The config file front end (docs/architecture.md §14): YAML → model → ConfigValidator,
// every issue located at file:line:column and reported in file order.

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Yams

public enum ConfigLoader {
    /// Reads and checks the file at `path`; errors name the file as given.
    public static func load(path: String) -> Result<FlowgateConfig, ConfigErrors> {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            return .failure(ConfigErrors([fileIssue(path, "cannot read the file: \(readError(error))")]))
        }
        guard let text = String(validating: data, as: UTF8.self) else {
            return .failure(ConfigErrors([fileIssue(path, "is not UTF-8 text")]))
        }
        return parse(yaml: text, fileName: path)
    }

    /// Checks YAML text; `fileName` is what error lines start with.
    public static func parse(yaml: String, fileName: String) -> Result<FlowgateConfig, ConfigErrors> {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            return .failure(ConfigErrors([syntaxIssue(error, fileName: fileName)]))
        }
        // An empty file (or only comments) used to load as a config without
        // listeners: `--check-config` said ok and a SIGHUP with it stopped all forwarding.
        guard let root else {
            return .failure(ConfigErrors([fileIssue(fileName, "the file is empty (no YAML document); a configuration needs at least one listener under accelerators")]))
        }
        if let tooBig = ExpansionBound.check(root, fileName: fileName) { return .failure(ConfigErrors([tooBig])) }
        let reader = YAMLReader(file: fileName)
        let config = ConfigDecoder(reader: reader).decode(root)
        var issues = reader.issues
        if issues.isEmpty, config.allListeners.isEmpty, let issue = noListener(root, fileName: fileName) { issues.append(issue) }
        for issue in ConfigValidator.validate(config) {
            // A value that could not be read has a placeholder in the model;
            // what the rules say about it would only repeat the first error.
            if reader.failedPaths.contains(where: { FieldPath.related($0, issue.path) }) { continue }
            let pos = reader.position(of: issue.path)
            issues.append(LocatedIssue(issue, file: fileName, line: pos?.line ?? 1, column: pos?.column ?? 1))
        }
        if issues.isEmpty { return .success(config) }
        let ordered = issues.enumerated().sorted { a, b in
            (a.element.line, a.element.column, a.offset) < (b.element.line, b.element.column, b.offset)
        }.map(\.element)
        return .failure(ConfigErrors(ordered))
    }

    /// A file without any listener would run a daemon that forwards nothing
    /// (or, on SIGHUP, empty a running one): it must say so with `accelerators: []`.
    static func noListener(_ root: Node, fileName: String) -> LocatedIssue? {
        let accelerators = root.mapping?.first { $0.key.string == "accelerators" }
        if case let .sequence(list)? = accelerators?.value, list.isEmpty { return nil }
        let mark = accelerators?.value.mark ?? root.mark
        return LocatedIssue(.init(.invalidArgument, "accelerators",
                                  "no listener is configured; add one under accelerators, or write `accelerators: []` to run without any"),
                            file: fileName, line: mark?.line ?? 1, column: mark?.column ?? 1)
    }

    /// "no such file" rather than Foundation's NSCocoaErrorDomain dump.
    static func readError(_ error: Error) -> String {
        if let e = error as? CocoaError {
            switch e.code {
            case .fileReadNoSuchFile: return "no such file"
            case .fileReadNoPermission: return "permission denied"
            default: break
            }
            if let posix = e.userInfo["NSUnderlyingError"] as? POSIXError {
                switch posix.code {
                case .EISDIR: return "is a directory"
                case .EACCES: return "permission denied"
                case .ENOENT: return "no such file"
                default: return "error \(posix.code.rawValue)"
                }
            }
        }
        return "\(error)"
    }

    static func fileIssue(_ file: String, _ message: String) -> LocatedIssue {
        LocatedIssue(.init(.invalidArgument, "", message), file: file, line: 0, column: 0)
    }

    /// libyaml's scanner/parser errors and Yams' duplicate-key check, at their mark.
    static func syntaxIssue(_ error: Error, fileName: String) -> LocatedIssue {
        func located(_ message: String, _ mark: Mark) -> LocatedIssue {
            LocatedIssue(.init(.invalidArgument, "", message), file: fileName, line: mark.line, column: mark.column)
        }
        func withContext(_ problem: String, _ context: YamlError.Context?) -> String {
            // libyaml reads an unquoted `bind: ::` as a nested mapping; IPv6
            // literals are the likeliest cause in this file, so say how to fix it.
            let hint = problem == "mapping values are not allowed in this context"
                ? "; quote a value that contains ':' (e.g. bind: \"::\")" : ""
            guard let context else { return "YAML syntax: \(problem)\(hint)" }
            return "YAML syntax: \(problem) (\(context.text) at \(context.mark.line):\(context.mark.column))\(hint)"
        }
        switch error as? YamlError {
        case let .scanner(context, problem, mark, _)?: return located(withContext(problem, context), mark)
        case let .parser(context, problem, mark, _)?: return located(withContext(problem, context), mark)
        case let .composer(context, problem, mark, _)?: return located(withContext(problem, context), mark)
        case let .duplicatedKeysInMapping(duplicates, context)?:
            return located("duplicate key " + duplicates.map(RuleText.quoted).joined(separator: ", "), context.mark)
        case let .reader(problem, _, _, _)?:
            return fileIssue(fileName, "cannot read YAML: \(problem)")
        default:
            return fileIssue(fileName, "cannot read YAML: \(error)")
        }
    }
}
