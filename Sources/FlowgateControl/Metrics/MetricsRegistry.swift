// GET /metrics in the Prometheus text exposition format 0.0.4. Other parts
// register a collector that appends their own lines; the control plane adds
// its request counters.
import Synchronization

public final class MetricsRegistry: Sendable {
    public typealias Collector = @Sendable () -> String

    private let collectors = Mutex<[(name: String, collect: Collector)]>([])
    private let requestCounts = Mutex<[String: Int]>([:])

    public init() {}

    /// Adds a source of metric lines (each collector returns complete
    /// `# HELP`/`# TYPE` blocks). A later registration under the same name replaces it.
    public func register(_ name: String, _ collector: @escaping Collector) {
        collectors.withLock { list in
            list.removeAll { $0.name == name }
            list.append((name: name, collect: collector))
        }
    }

    /// Counts one control request by API operation and result (HTTP status).
    public func countRequest(operation: String, status: Int) {
        requestCounts.withLock { $0["\(operation)|\(status)", default: 0] += 1 }
    }

    public func render() -> String {
        var out = "# HELP flowgate_control_requests_total Control API requests by operation and status.\n"
        out += "# TYPE flowgate_control_requests_total counter\n"
        let counts = requestCounts.withLock { $0 }
        for key in counts.keys.sorted() {
            let parts = key.split(separator: "|", maxSplits: 1).map(String.init)
            out += "flowgate_control_requests_total{operation=\"\(parts[0])\",status=\"\(parts[1])\"} \(counts[key]!)\n"
        }
        let list = collectors.withLock { $0 }
        for c in list {
            var text = c.collect()
            if !text.isEmpty && !text.hasSuffix("\n") { text += "\n" }
            out += text
        }
        return out
    }
}
