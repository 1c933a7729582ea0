/// A pool's members as the algorithms see them: fixed per snapshot (plans,
/// configured weights, static eligibility) plus the shared live state (health,
/// active counts, slow-start origin) through `MemberRuntime`.
public final class PoolMembers: Sendable {
    /// Fixed-point scale of effective weights, so a ramping member's fraction
    /// of its weight stays an integer for smooth WRR and least connections.
    public static let weightScale = 1000

    public let plans: [MemberPlan]
    public let runtimes: [MemberRuntime]
    /// Admin up and weight > 0 (docs/architecture.md §3.2); health is checked per pick.
    public let configEligible: [Bool]
    public let weights: [Int]
    /// Slow-start ramp length in seconds; nil when the pool has it off.
    public let slowStart: Double?
    /// When the snapshot was built (lookup tables use it to know who ramps).
    public let builtAt: Double
    let indexByID: [String: Int]

    public init(plans: [MemberPlan], runtimes: [MemberRuntime], slowStart: Double?, builtAt: Double) {
        precondition(plans.count == runtimes.count, "one runtime per member")
        self.plans = plans; self.runtimes = runtimes; self.slowStart = slowStart; self.builtAt = builtAt
        weights = plans.map(\.member.weight)
        configEligible = plans.map { $0.member.adminStateUp && $0.member.weight > 0 }
        var index: [String: Int] = [:]
        for (i, p) in plans.enumerated() where index[p.id] == nil { index[p.id] = i }
        indexByID = index
    }

    public var count: Int { plans.count }
    public func index(of memberID: String) -> Int? { indexByID[memberID] }

    /// May member `i` take a new flow now, this flow not having tried it yet?
    @inline(__always)
    public func usable(_ i: Int, excluding: [String]) -> Bool {
        configEligible[i] && runtimes[i].isUp && (excluding.isEmpty || !excluding.contains(plans[i].id))
    }

    /// The slow-start multiplier of member `i` at `now` (1 when not ramping).
    @inline(__always)
    public func rampFraction(_ i: Int, now: Double) -> Double {
        guard let d = slowStart else { return 1 }
        return runtimes[i].rampFraction(now: now, duration: d)
    }

    /// weight × ramp fraction, in units of 1/`weightScale`, at least 1.
    @inline(__always)
    public func effectiveWeight(_ i: Int, now: Double) -> Int {
        let full = weights[i] * PoolMembers.weightScale
        guard slowStart != nil else { return full }
        let f = rampFraction(i, now: now)
        if f >= 1 { return full }
        return max(1, Int((Double(full) * f).rounded()))
    }
}
