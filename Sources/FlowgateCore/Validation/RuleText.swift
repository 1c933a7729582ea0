// The wording every rule uses, so a config file error and an API error for
// the same mistake read the same: `"X" is not one of A, B`, `N is not in a..b`.

public enum RuleText {
    /// `"value"` with JSON escapes, so control characters and quotes stay visible.
    public static func quoted(_ s: String) -> String {
        var out = ""
        JSONValue.writeString(s, into: &out)
        return out
    }

    /// `"ROUND-ROBIN" is not one of ROUND_ROBIN, LEAST_CONNECTIONS, SOURCE_IP`
    public static func notOneOf(_ value: String, _ allowed: [String]) -> String {
        "\(quoted(value)) is not one of \(allowed.joined(separator: ", "))"
    }

    /// `70000 is not in 1..65535` (with an optional unit: `5 is not in 10..4000 seconds`).
    public static func notIn(_ value: Int, _ range: ClosedRange<Int>, unit: String? = nil) -> String {
        "\(value) is not in \(range.lowerBound)..\(range.upperBound)" + (unit.map { " " + $0 } ?? "")
    }

    /// `300 characters, at most 255 allowed`
    public static func tooLong(_ count: Int, max: Int, unit: String = "characters") -> String {
        "\(count) \(unit), at most \(max) allowed"
    }

    /// `8000-8009`, or `8000` for a one-port range.
    public static func ports(_ r: PortRange) -> String {
        r.fromPort == r.toPort ? "\(r.fromPort)" : "\(r.fromPort)-\(r.toPort)"
    }
}

/// Field paths as the config file and the API spell them: `a.b[2].c`.
public enum FieldPath {
    /// `base.name`, or `name` when base is empty (an API request body's top level).
    public static func field(_ base: String, _ name: String) -> String { base.isEmpty ? name : base + "." + name }
    /// `base[i]`
    public static func index(_ base: String, _ i: Int) -> String { base + "[\(i)]" }

    /// True when `a` equals `b` or one is an ancestor of the other (`x` and `x.y`, `x` and `x[0]`).
    public static func related(_ a: String, _ b: String) -> Bool {
        if a == b { return true }
        let (short, long) = a.count < b.count ? (a, b) : (b, a)
        if short.isEmpty { return true }
        guard long.hasPrefix(short) else { return false }
        let next = long[long.index(long.startIndex, offsetBy: short.count)]
        return next == "." || next == "["
    }

    /// `a.b[2].c` → `a.b[2]` → `a.b` → `a` → `` (nil after the root).
    public static func parent(_ path: String) -> String? {
        if path.isEmpty { return nil }
        if path.hasSuffix("]"), let open = path.lastIndex(of: "[") { return String(path[..<open]) }
        if let dot = path.lastIndex(of: ".") {
            // A dot inside brackets never occurs: indices are integers.
            return String(path[..<dot])
        }
        return ""
    }
}
