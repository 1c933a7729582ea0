import Synchronization

/// The live, shared state of one member of one pool: what must be counted
/// across every worker and survive snapshot swaps (docs/architecture.md §4: least-connection
/// counts are global). Owned by `SelectionState`, keyed by (pool id, member id);
/// a snapshot's plans hold direct references, so the hot path never looks it up.
public final class MemberRuntime: Sendable {
    public let poolID: String
    public let memberID: String
    /// Flows currently given to this member, by every worker.
    let active = Atomic<Int>(0)
    /// Successful picks since the member first appeared (metrics).
    let picks = Atomic<Int>(0)
    /// Connect attempts the data plane reported as failed.
    let connectFailures = Atomic<Int>(0)
    /// Connect failures since the member last proved reachable (a connect
    /// that succeeded, or a passing health check): the passive health check
    /// marks it down when this reaches the monitor's `max_retries_down`.
    let failureStreak = Atomic<Int>(0)
    /// `max_retries_down` of the pool's health monitor (0: no monitor, no
    /// passive check): the failure that makes the streak reach it marks the
    /// member down at once, on the worker that saw it.
    let passiveLimit = Atomic<Int>(0)
    /// Health: false only while the health checker says the member is down.
    let up = Atomic<Bool>(true)
    /// When the member last joined (slow start origin), as a Double's bit
    /// pattern; NaN when it never ramped.
    let rampStartBits = Atomic<UInt64>(Double.nan.bitPattern)

    init(poolID: String, memberID: String) { self.poolID = poolID; self.memberID = memberID }

    public var activeFlows: Int { active.load(ordering: .relaxed) }
    public var pickCount: Int { picks.load(ordering: .relaxed) }
    public var connectFailureCount: Int { connectFailures.load(ordering: .relaxed) }
    public var isUp: Bool { up.load(ordering: .acquiring) }
    public var connectFailureStreak: Int { failureStreak.load(ordering: .relaxed) }
    /// The health checker sets the passive threshold (0 turns it off).
    public func setPassiveLimit(_ limit: Int) {
        if passiveLimit.load(ordering: .relaxed) != limit { passiveLimit.store(limit, ordering: .relaxed) }
    }

    /// A connect to the member failed (PoolPlan.release): extend the streak
    /// and mark the member down when it reaches the passive limit.
    func connectFailed() {
        connectFailures.add(1, ordering: .relaxed)
        let streak = failureStreak.add(1, ordering: .relaxed).newValue
        let limit = passiveLimit.load(ordering: .relaxed)
        if limit > 0 && streak >= limit { up.store(false, ordering: .releasing) }
    }

    /// The member proved reachable: the passive failure streak starts over.
    public func resetFailureStreak() {
        if failureStreak.load(ordering: .relaxed) != 0 { failureStreak.store(0, ordering: .relaxed) }
    }

    /// Restarts slow start from `now` (member added, re-enabled, weight raised
    /// from 0, or back from down).
    func startRamp(at now: Double) { rampStartBits.store(now.bitPattern, ordering: .releasing) }

    /// The slow-start multiplier of the member's weight at `now` for a ramp of
    /// `duration` seconds: max(1/duration, elapsed/duration), capped at 1
    /// (docs/architecture.md §3.5; HAProxy's `slowstart` ramps the same way, starting
    /// from a small non-zero weight so the member is not starved).
    public func rampFraction(now: Double, duration: Double) -> Double {
        let start = Double(bitPattern: rampStartBits.load(ordering: .acquiring))
        if start.isNaN || duration <= 0 { return 1 }
        let elapsed = (now - start) / duration
        if elapsed >= 1 { return 1 }
        return max(1 / duration, elapsed)
    }
}
