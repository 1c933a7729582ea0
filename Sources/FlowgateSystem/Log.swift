#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Severity of a log line; lines below the logger's minimum are dropped.
public enum LogLevel: Int, Sendable, Comparable, CaseIterable {
    case debug = 0, info, warn, error
    public var name: String { ["debug", "info", "warn", "error"][rawValue] }
    public init?(name: String) {
        guard let l = LogLevel.allCases.first(where: { $0.name == name.lowercased() }) else { return nil }
        self = l
    }
    public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rawValue < b.rawValue }
}

/// One event per line on stderr, `level=info event=listener_bound key=value ...`,
/// a form journald keeps as is (docs/architecture.md §13). Each line is one write(2), so
/// lines from different threads never interleave; no lock is taken.
public enum Log {
    @usableFromInline static let minimum = Atomic<Int>(LogLevel.info.rawValue)

    public static var level: LogLevel {
        get { LogLevel(rawValue: minimum.load(ordering: .relaxed)) ?? .info }
        set { minimum.store(newValue.rawValue, ordering: .relaxed) }
    }

    @inlinable @inline(__always)
    public static func enabled(_ l: LogLevel) -> Bool { l.rawValue >= minimum.load(ordering: .relaxed) }

    public static func debug(_ event: String, _ fields: KeyValuePairs<String, Any> = [:]) { emit(.debug, event, fields) }
    public static func info(_ event: String, _ fields: KeyValuePairs<String, Any> = [:]) { emit(.info, event, fields) }
    public static func warn(_ event: String, _ fields: KeyValuePairs<String, Any> = [:]) { emit(.warn, event, fields) }
    public static func error(_ event: String, _ fields: KeyValuePairs<String, Any> = [:]) { emit(.error, event, fields) }

    public static func emit(_ l: LogLevel, _ event: String, _ fields: KeyValuePairs<String, Any>) {
        guard enabled(l) else { return }
        write(format(l, event, fields))
    }

    /// The exact line (without newline) `emit` writes; tests check it.
    public static func format(_ l: LogLevel, _ event: String, _ fields: KeyValuePairs<String, Any>) -> String {
        var line = "level=\(l.name) event=\(quoted(event))"
        for (k, v) in fields { line += " \(k)=\(quoted(String(describing: v)))" }
        return line
    }

    /// Values with spaces, quotes, '=' or nothing at all are double-quoted
    /// with `"` and `\` escaped; newlines become `\n` so one event stays one line.
    static func quoted(_ s: String) -> String {
        let needs = s.isEmpty || s.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" || $0 == "\n" || $0 == "\\" || $0 == "\t" })
        guard needs else { return s }
        var out = "\""
        for c in s {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            default: out.append(c)
            }
        }
        return out + "\""
    }

    static func write(_ line: String) {
        var bytes = Array(line.utf8)
        bytes.append(10)
        bytes.withUnsafeBytes { System.writeAll(2, $0) }
    }
}
