import FlowgateCore

/// HTTP pools' counters (issue 13): requests per member, responses by pool
/// and status (Flowgate's own error answers included), cookie persistence
/// outcomes. Plain dictionaries touched only by the worker's thread, like the
/// flow totals in WorkerMetrics.swift.
public struct HTTPCounters: Sendable, Equatable {
    /// (pool, member) → requests sent to that member.
    public var requests: [PoolMemberKey: Int] = [:]
    /// "pool\u{0}status" → responses sent to clients with that status.
    public var responses: [HTTPStatusKey: Int] = [:]
    /// (pool, outcome) → requests: "hit" (the cookie's member took it),
    /// "fallback" (a cookie naming no eligible member), "miss" (no cookie).
    public var cookies: [HTTPStatusKey: Int] = [:]
    public init() {}

    public static func += (a: inout HTTPCounters, b: HTTPCounters) {
        for (k, v) in b.requests { a.requests[k, default: 0] += v }
        for (k, v) in b.responses { a.responses[k, default: 0] += v }
        for (k, v) in b.cookies { a.cookies[k, default: 0] += v }
    }
}

public struct HTTPStatusKey: Sendable, Hashable {
    public var poolID: String
    public var label: String
    public init(poolID: String, label: String) { self.poolID = poolID; self.label = label }
}

extension WorkerMetrics {
    func httpRequest(poolID: String, memberID: String) {
        http.requests[PoolMemberKey(poolID: poolID, memberID: memberID), default: 0] += 1
    }

    func httpStatus(poolID: String, status: Int) {
        http.responses[HTTPStatusKey(poolID: poolID, label: String(status)), default: 0] += 1
    }

    func httpCookie(poolID: String, hit: Bool, had: Bool) {
        let outcome = hit ? "hit" : had ? "fallback" : "miss"
        http.cookies[HTTPStatusKey(poolID: poolID, label: outcome), default: 0] += 1
    }
}
