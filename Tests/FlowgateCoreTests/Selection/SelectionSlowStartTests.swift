import Testing
@testable import FlowgateCore

/// Slow start (docs/architecture.md §3.5) with d = 100 s on an injected clock.
/// Tolerance: the ramping member's share relative to its full share is within
/// ±0.02 of elapsed/d (1/d at t = 0) for ROUND_ROBIN and LEAST_CONNECTIONS,
/// ±0.03 for SOURCE_IP (20,000 hashed clients).
@Suite("SelectionSlowStart") struct SelectionSlowStartTests {
    static let d = 100.0
    static let slow = SlowStart(enable: true, duration: 100)

    /// a and b serve; c joins at t = 0 (the builder sees it added against `previous`).
    func joined(_ algorithm: String, time: ManualTime, base: [Member] = Fixture.members([1, 1]),
                joiner: Member = Fixture.member("c", 3)) -> RuntimeSnapshot {
        let b = SnapshotBuilder(time: time)
        let first = b.build(Fixture.config(algorithm: algorithm, members: base, slowStart: Self.slow), generation: 1)
        return b.build(Fixture.config(algorithm: algorithm, members: base + [joiner], slowStart: Self.slow),
                       generation: 2, previous: first)
    }

    func expected(_ t: Double) -> Double { max(1 / Self.d, t / Self.d) }

    @Test(arguments: [0.0, 25, 50, 100])
    func roundRobinShareFollowsRamp(_ t: Double) {
        let time = ManualTime()
        let snap = joined("ROUND_ROBIN", time: time)
        time.set(t)
        var counts: [String: Int] = [:]
        for _ in 0..<6000 { counts[Fixture.pickName(snap.listeners[0], Fixture.flow())!, default: 0] += 1 }
        let ratio = Double(counts["c", default: 0]) / Double(counts["a", default: 1])
        #expect(abs(ratio - expected(t)) <= 0.02, "t=\(t) ratio=\(ratio)")
        #expect(snap.pools[Fixture.poolID]!.rampFraction(of: "member-c") == expected(t))
    }

    @Test(arguments: [0.0, 25, 50, 100])
    func leastConnectionsShareFollowsRamp(_ t: Double) {
        let time = ManualTime()
        let snap = joined("LEAST_CONNECTIONS", time: time)
        time.set(t)
        // Flows held: least connections fills members in proportion to effective weight.
        for _ in 0..<4000 { _ = snap.listeners[0].pick(Fixture.flow())! }
        let pool = snap.pools[Fixture.poolID]!
        let ratio = Double(pool.runtime(of: "member-c")!.activeFlows) / Double(pool.runtime(of: "member-a")!.activeFlows)
        #expect(abs(ratio - expected(t)) <= 0.02, "t=\(t) ratio=\(ratio)")
    }

    @Test func sourceIPRampMovesKeysOnlyToTheJoinerAndNeverBack() {
        let time = ManualTime()
        let ten = Fixture.members(Array(repeating: 1, count: 10))
        let joiner = Fixture.member("k", 11)
        let clients = 20_000
        let before = SnapshotBuilder(time: time).build(Fixture.config(algorithm: "SOURCE_IP", members: ten), generation: 1)
        let beforeMap = (0..<clients).map { Fixture.pickName(before.listeners[0], Fixture.clientFlow($0))! }
        let snap = joined("SOURCE_IP", time: time, base: ten, joiner: joiner)
        var previous: [String]? = nil
        var fullShare = 0.0
        var shares: [Double] = []
        for t in [0.0, 25, 50, 75, 100] {
            time.set(t)
            let now = (0..<clients).map { Fixture.pickName(snap.listeners[0], Fixture.clientFlow($0))! }
            if let previous {
                for i in 0..<clients where now[i] != previous[i] {
                    #expect(now[i] == "k", "key \(i) moved \(previous[i]) -> \(now[i]) at t=\(t)")
                }
                for i in 0..<clients where previous[i] == "k" { #expect(now[i] == "k", "key \(i) left k at t=\(t)") }
            } else {
                // At t = 0 the joiner's keys still go where they went before it
                // joined (Maglev's own reshuffle of other slots aside: < 0.5%).
                let moved = (0..<clients).filter { now[$0] != beforeMap[$0] }.count
                #expect(moved * 200 < clients, "\(moved)")
            }
            let share = Double(now.filter { $0 == "k" }.count) / Double(clients)
            shares.append(share)
            if t == 100 { fullShare = share }
            previous = now
        }
        #expect(abs(fullShare - 1.0 / 11) < 0.01)
        for (t, share) in zip([0.0, 25, 50, 75, 100], shares) {
            #expect(abs(share / fullShare - expected(t)) <= 0.03, "t=\(t) share=\(share)")
        }
    }

    @Test func joinTriggersRampAndFirstBuildDoesNot() {
        let time = ManualTime(500)
        let b = SnapshotBuilder(time: time)
        var ms = Fixture.members([1, 0, 1, 1])
        ms[2].adminStateUp = false
        let first = b.build(Fixture.config(members: ms, slowStart: Self.slow), generation: 1)
        // A first build takes full weights at once (HAProxy never slow-starts at boot).
        #expect(first.pools[Fixture.poolID]!.rampFraction(of: "member-a") == 1)
        #expect(first.pools[Fixture.poolID]!.rampFraction(of: "member-d") == 1)
        ms[1].weight = 2             // weight raised from 0
        ms[2].adminStateUp = true    // re-enabled
        ms[3].weight = 5             // weight changed, not from 0: no ramp
        let second = b.build(Fixture.config(members: ms, slowStart: Self.slow), generation: 2, previous: first)
        let pool = second.pools[Fixture.poolID]!
        #expect(pool.rampFraction(of: "member-a") == 1)
        #expect(pool.rampFraction(of: "member-b") == 0.01)
        #expect(pool.rampFraction(of: "member-c") == 0.01)
        #expect(pool.rampFraction(of: "member-d") == 1)
        time.advance(60)
        #expect(pool.rampFraction(of: "member-b") == 0.6)
        // Back from down restarts the ramp.
        second.selection.setMemberUp(poolID: Fixture.poolID, memberID: "member-a", up: false, now: time.now())
        #expect(pool.rampFraction(of: "member-a") == 1)
        time.advance(10)
        second.selection.setMemberUp(poolID: Fixture.poolID, memberID: "member-a", up: true)
        time.advance(30)
        #expect(pool.rampFraction(of: "member-a") == 0.3)
        time.advance(70)
        #expect(pool.rampFraction(of: "member-a") == 1)
        #expect(pool.rampFraction(of: "member-b") == 1)
    }

    @Test func disabledSlowStartNeverRamps() {
        let time = ManualTime()
        let b = SnapshotBuilder(time: time)
        let first = b.build(Fixture.config(members: Fixture.members([1])), generation: 1)
        let second = b.build(Fixture.config(members: Fixture.members([1, 1])), generation: 2, previous: first)
        #expect(second.pools[Fixture.poolID]!.rampFraction(of: "member-b") == 1)
    }
}

@Suite("SelectionSlowStartSourceIPEdge") struct SelectionSlowStartSourceIPEdgeTests {
    /// When every member is ramping (the pool was empty), keys are still
    /// served, and spread over the members rather than piled on the first.
    @Test func allMembersRampingStillServesEveryKey() {
        let time = ManualTime()
        let b = SnapshotBuilder(time: time)
        let slow = SlowStart(enable: true, duration: 100)
        let first = b.build(Fixture.config(algorithm: "SOURCE_IP", members: [], slowStart: slow), generation: 1)
        let snap = b.build(Fixture.config(algorithm: "SOURCE_IP", members: Fixture.members([1, 1, 1]), slowStart: slow),
                           generation: 2, previous: first)
        let names = (0..<3000).map { Fixture.pickName(snap.listeners[0], Fixture.clientFlow($0))! }
        for n in ["a", "b", "c"] { #expect(names.filter { $0 == n }.count > 800, "\(n)") }
    }
}
