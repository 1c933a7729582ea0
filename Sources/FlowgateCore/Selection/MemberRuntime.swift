import Synchronization

/// The live, shared state of one member of one pool: what must be counted
/// across every worker and survive snapshot swaps (design §4: least-connection
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

    /// Restarts slow start from `now` (member added, re-enabled, weight raised
    /// from 0, or back from down).
    func startRamp(at now: Double) { rampStartBits.store(now.bitPattern, ordering: .releasing) }

    /// The slow-start multiplier of the member's weight at `now` for a ramp of
    /// `duration` seconds: max(1/duration, elapsed/duration), capped at 1
    /// (design §3 step 5; HAProxy's `slowstart` ramps the same way, starting
    /// from a small non-zero weight so the member is not starved).
    public func rampFraction(now: Double, duration: Double) -> Double {
        let start = Double(bitPattern: rampStartBits.load(ordering: .acquiring))
        if start.isNaN || duration <= 0 { return 1 }
        let elapsed = (now - start) / duration
        if elapsed >= 1 { return 1 }
        return max(1 / duration, elapsed)
    }
}
