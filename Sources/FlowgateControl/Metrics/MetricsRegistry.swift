// GET /metrics in the Prometheus text exposition format 0.0.4. Other parts
// register a collector that appends their own lines; the control plane adds
// its request counters. Their label set is bounded: operations are the names
// of ControlOperations (others count as `unknown`), statuses are HTTP codes
// 100-599 (others count as `other`), so at most 21 × 501 series.
import FlowgateSystem
import Synchronization

public final class MetricsRegistry: Sendable {
    public typealias Collector = @Sendable () -> String

    struct RequestKey: Hashable, Comparable {
        var operation: String
        var status: String
        static func < (a: RequestKey, b: RequestKey) -> Bool { (a.operation, a.status) < (b.operation, b.status) }
    }

    private let collectors = Mutex<[(name: String, collect: Collector)]>([])
    private let requestCounts = Mutex<[RequestKey: Int]>([:])

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
    /// `operation` may come from the request (X-Amz-Target): unknown names count as `unknown`.
    public func countRequest(operation: String, status: Int) {
        let key = RequestKey(operation: ControlOperations.label(operation), status: (100...599).contains(status) ? String(status) : "other")
        requestCounts.withLock { $0[key, default: 0] += 1 }
    }

    public func render() -> String {
        var writer = PrometheusWriter()
        let counts = requestCounts.withLock { $0 }
        writer.family("flowgate_control_requests_total", .counter, "Control API requests by operation and status.",
                      counts.keys.sorted().map { ([("operation", $0.operation), ("status", $0.status)], Double(counts[$0]!)) })
        var out = writer.text
        let list = collectors.withLock { $0 }
        for c in list {
            var text = c.collect()
            if !text.isEmpty && !text.hasSuffix("\n") { text += "\n" }
            out += text
        }
        return out
    }
}
