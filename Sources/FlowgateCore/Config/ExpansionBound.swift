// A bound on the size of the document after alias expansion. Yams composes
// an alias as a shared reference to its anchored node, so a small file can
// describe an enormous tree ("billion laughs": one pool of 1,000 members
// aliased 1,000 times is 45 KB of YAML and a million members); decoding and
// validating that tree took gigabytes and minutes (issue 11 §4). This walk
// counts nodes as the decoder would see them and stops at the bound, so the
// refusal costs at most `maxNodes` steps and no memory beyond the composed file.

import Yams

enum ExpansionBound {
    /// Every scalar, list and mapping counts one (a member written as
    /// `{address: a, protocol_port: p, weight: w}` is 7). 250,000 is ~35,000
    /// members written out: far beyond any file written by hand, and decoded
    /// and validated in about a second.
    static let maxNodes = 250_000

    /// nil when the expanded tree has at most `maxNodes` nodes; else the issue,
    /// located at the anchored node whose repetition crossed the bound (or at
    /// the node where the count crossed it, when no alias is involved).
    static func check(_ root: Node, fileName: String, maxNodes: Int = maxNodes) -> LocatedIssue? {
        var walk = Walk(limit: maxNodes)
        walk.visit(root)
        guard walk.exceeded else { return nil }
        let mark = walk.repeatedAt ?? walk.crossedAt
        let message = walk.repeatedAt != nil
            ? "the document expands to more than \(maxNodes) YAML nodes through aliases (the anchored node here is repeated by its aliases); at most \(maxNodes) are allowed"
            : "the document has more than \(maxNodes) YAML nodes; at most \(maxNodes) are allowed"
        return LocatedIssue(.init(.limitExceeded, "", message), file: fileName, line: mark?.line ?? 1, column: mark?.column ?? 1)
    }

    private struct Position: Hashable { var line: Int; var column: Int }

    private struct Walk {
        let limit: Int
        var count = 0
        var exceeded = false
        var crossedAt: Mark?
        /// The outermost container being visited again (an alias of it) when the bound was crossed.
        var repeatedAt: Mark?
        /// Containers already visited once: a second visit is an alias expansion.
        var seen = Set<Position>()
        var repeating: [Mark] = []

        init(limit: Int) { self.limit = limit }

        mutating func visit(_ node: Node) {
            guard !exceeded else { return }
            count += 1
            if count > limit {
                exceeded = true
                crossedAt = node.mark
                repeatedAt = repeating.first
                return
            }
            var pushed = false
            switch node {
            case .scalar, .alias: return
            case .sequence, .mapping:
                if let m = node.mark, !seen.insert(Position(line: m.line, column: m.column)).inserted {
                    repeating.append(m); pushed = true
                }
            }
            if case let .sequence(seq) = node {
                for child in seq { visit(child); if exceeded { return } }
            } else if case let .mapping(map) = node {
                for (k, v) in map { visit(k); visit(v); if exceeded { return } }
            }
            if pushed && !exceeded { repeating.removeLast() }
        }
    }
}
