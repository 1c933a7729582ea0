// Log lines that a client can trigger at will (bad requests, timeouts,
// refused connections, EMFILE) go through here: at most one line per key per
// interval, and the next line says how many were suppressed in between, so a
// flood costs a few lines a minute instead of megabytes a second.
#if canImport(Glibc)
import Glibc
#endif
import FlowgateSystem

final class RateLimitedLog {
    let interval: UInt64
    private var entries: [String: (last: UInt64, suppressed: Int)] = [:]
    /// Keys are a handful of fixed strings; the bound only guards against a bug.
    private static let maxKeys = 256

    init(interval seconds: Double) { interval = UInt64(seconds * 1_000_000) }

    func warn(_ event: String, key: String, _ fields: KeyValuePairs<String, Any>) { emit(.warn, event, key, fields) }
    func info(_ event: String, key: String, _ fields: KeyValuePairs<String, Any>) { emit(.info, event, key, fields) }

    private func emit(_ level: LogLevel, _ event: String, _ key: String, _ fields: KeyValuePairs<String, Any>) {
        let now = System.monotonicMicroseconds()
        if let e = entries[key], now - e.last < interval {
            entries[key] = (e.last, e.suppressed + 1)
            return
        }
        let suppressed = entries[key]?.suppressed ?? 0
        if entries.count >= RateLimitedLog.maxKeys && entries[key] == nil { entries.removeAll() }
        entries[key] = (now, 0)
        var line = Log.format(level, event, fields)
        if suppressed > 0 { line += " suppressed=\(suppressed)" }
        guard Log.enabled(level) else { return }
        var bytes = Array(line.utf8); bytes.append(10)
        bytes.withUnsafeBytes { System.writeAll(2, $0) }
    }
}
