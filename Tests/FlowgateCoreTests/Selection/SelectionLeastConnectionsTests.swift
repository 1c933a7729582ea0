import Testing
@testable import FlowgateCore

@Suite("SelectionLeastConnections") struct SelectionLeastConnectionsTests {
    func snapshot(_ weights: [Int]) -> RuntimeSnapshot {
        SnapshotBuilder(time: ManualTime()).build(Fixture.config(algorithm: "LEAST_CONNECTIONS", members: Fixture.members(weights)), generation: 1)
    }

    func preload(_ snap: RuntimeSnapshot, _ counts: [String: Int]) {
        for (name, n) in counts { snap.pools[Fixture.poolID]!.runtime(of: "member-\(name)")!.active.store(n, ordering: .relaxed) }
    }

    func active(_ snap: RuntimeSnapshot, _ name: String) -> Int { snap.pools[Fixture.poolID]!.runtime(of: "member-\(name)")!.activeFlows }

    @Test func picksLowestLoadPerWeight() {
        let snap = snapshot([2, 1, 3])
        // (active + 1) / weight: a (4+1)/2 = 2.5, b (1+1)/1 = 2, c (3+1)/3 = 1.33.
        preload(snap, ["a": 4, "b": 1, "c": 3])
        let t = snap.listeners[0].pick(Fixture.flow())!
        #expect(t.memberID == "member-c")
        #expect(active(snap, "c") == 4)
        // Now c is (4+1)/3 = 1.67, still lowest; then (5+1)/3 = 2 ties b at 2: tie goes round robin, from after c.
        #expect(snap.listeners[0].pick(Fixture.flow())!.memberID == "member-c")
        #expect(snap.listeners[0].pick(Fixture.flow())!.memberID == "member-b")
    }

    @Test func idleHeavierMemberWinsOverIdleLighter() {
        let snap = snapshot([1, 4])
        #expect(snap.listeners[0].pick(Fixture.flow())!.memberID == "member-b")
    }

    @Test func tiesAreBrokenRoundRobin() {
        let snap = snapshot([1, 1, 1])
        // Picks released at once: every pick is a three-way tie.
        let seq = (0..<6).map { _ in Fixture.pickName(snap.listeners[0], Fixture.flow())! }
        #expect(seq == ["a", "b", "c", "a", "b", "c"])
        // a and b tied, c busier: a and b alternate.
        preload(snap, ["c": 5])
        let seq2 = (0..<4).map { _ in Fixture.pickName(snap.listeners[0], Fixture.flow())! }
        #expect(seq2 == ["a", "b", "a", "b"])
    }

    @Test func heldFlowsSpreadByWeightAndReleaseDecrements() {
        let snap = snapshot([1, 3])
        let l = snap.listeners[0]
        var held: [BackendTarget] = []
        for _ in 0..<40 { held.append(l.pick(Fixture.flow())!) }
        #expect(active(snap, "a") == 10)
        #expect(active(snap, "b") == 30)
        for t in held where t.memberID == "member-b" { l.release(Fixture.flow(), target: t, connected: true) }
        #expect(active(snap, "b") == 0)
        #expect(active(snap, "a") == 10)
        // The next 10 all go to the emptied member.
        #expect(Set((0..<10).map { _ in l.pick(Fixture.flow())!.memberID }) == ["member-b"])
    }

    @Test func countsSurviveSnapshotSwapAndFailedConnectsAreCounted() {
        let time = ManualTime()
        let cfg = Fixture.config(algorithm: "LEAST_CONNECTIONS", members: Fixture.members([1, 1]))
        let first = SnapshotBuilder(time: time).build(cfg, generation: 1)
        let t = first.listeners[0].pick(Fixture.flow())!
        #expect(t.memberID == "member-a")
        let second = SnapshotBuilder(time: time).build(cfg, generation: 2, previous: first)
        #expect(second.selection === first.selection)
        #expect(second.listeners[0].pick(Fixture.flow())!.memberID == "member-b")
        first.listeners[0].release(Fixture.flow(), target: t, connected: false)
        #expect(second.pools[Fixture.poolID]!.runtime(of: "member-a")!.activeFlows == 0)
        #expect(second.pools[Fixture.poolID]!.runtime(of: "member-a")!.connectFailureCount == 1)
    }
}
