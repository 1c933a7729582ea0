/// The Prometheus text exposition format 0.0.4
/// (prometheus.io/docs/instrumenting/exposition_formats): one `# HELP` and
/// `# TYPE` per family, its samples together, label values escaped. The one
/// writer of metric text in Flowgate: the data plane's families and the
/// control plane's request counters both go through it.
public struct PrometheusWriter: Sendable {
    public enum Kind: String, Sendable { case counter, gauge }

    public private(set) var text = ""
    public init() {}

    /// One family: its HELP and TYPE lines, then one line per sample.
    public mutating func family(_ name: String, _ kind: Kind, _ help: String, _ samples: [([(String, String)], Double)]) {
        text += "# HELP \(name) \(PrometheusWriter.escapeHelp(help))\n# TYPE \(name) \(kind.rawValue)\n"
        for (l, v) in samples { text += "\(name)\(PrometheusWriter.labels(l)) \(PrometheusWriter.number(v))\n" }
    }

    /// A label value: `\`, `"` and newline escaped, so any string (a
    /// caller-supplied header, an ARN) stays one well-formed sample.
    public static func escape(_ value: String) -> String {
        escaping(value, quote: true)
    }

    /// HELP text escapes `\` and newline only.
    static func escapeHelp(_ value: String) -> String {
        escaping(value, quote: false)
    }

    /// By Unicode scalar, not Character: "\r\n" is one Character, and a line
    /// feed hidden in it must still be escaped.
    private static func escaping(_ value: String, quote: Bool) -> String {
        var out = ""
        out.reserveCapacity(value.utf8.count)
        for ch in value.unicodeScalars {
            switch ch {
            case "\\": out += "\\\\"
            case "\"" where quote: out += "\\\""
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }

    public static func labels(_ pairs: [(String, String)]) -> String {
        pairs.isEmpty ? "" : "{" + pairs.map { "\($0.0)=\"\(escape($0.1))\"" }.joined(separator: ",") + "}"
    }

    public static func number(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v == v.rounded() && abs(v) < 1e15 { return String(Int(v)) }
        return "\(v)"
    }
}
