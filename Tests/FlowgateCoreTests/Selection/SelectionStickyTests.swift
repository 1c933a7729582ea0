import Testing
@testable import FlowgateCore

/// Remembered choices (docs/architecture.md §3.3) on an injected clock.
@Suite("SelectionSticky") struct SelectionStickyTests {
    static let persist1min = SessionPersistence(type: .sourceIP, persistenceTimeout: 1)
    let client = IPAddress("198.51.100.7")!

    @Test func persistenceExpiresExactlyAtTimeoutAfterLastFlow() {
        let time = ManualTime()
        let snap = SnapshotBuilder(time: time).build(Fixture.config(members: Fixture.members([1, 1]), persistence: Self.persist1min), generation: 1)
        let l = snap.listeners[0], table = snap.pools[Fixture.poolID]!.persistence!
        let f1 = Fixture.flow(port: 1), f2 = Fixture.flow(port: 2)
        let t1 = l.pick(f1)!
        #expect(t1.memberID == "member-a")
        // A second flow while the first lives: same member (plain RR would say b).
        let t2 = l.pick(f2)!
        #expect(t2.memberID == "member-a")
        time.set(10); l.release(f1, target: t1, connected: true)
        time.set(1000)
        #expect(table.lookup(client, now: time.now()) == "member-a")   // a flow is still live
        l.release(f2, target: t2, connected: true)                     // last flow ends at 1000
        #expect(table.lookup(client, now: 1059.999) == "member-a")
        #expect(table.lookup(client, now: 1060) == nil)
        time.set(1060)
        #expect(Fixture.pickName(l, f1) == "b")                         // re-picked by RR
    }

    @Test func persistenceHitWithinTimeoutRefreshesIt() {
        let time = ManualTime()
        let snap = SnapshotBuilder(time: time).build(Fixture.config(members: Fixture.members([1, 1]), persistence: Self.persist1min), generation: 1)
        let l = snap.listeners[0]
        #expect(Fixture.pickName(l, Fixture.flow()) == "a")   // ends at 0: kept until 60
        time.set(59.999)
        #expect(Fixture.pickName(l, Fixture.flow()) == "a")   // ends at 59.999: kept until 119.999
        time.set(119.998)
        #expect(Fixture.pickName(l, Fixture.flow()) == "a")
        #expect(Fixture.pickName(l, Fixture.flow(IPAddress.v4(0xc633_6408).description)) == "b")
    }

    @Test func affinityKeepsClientOnOneMemberAcrossPortsUntilIdleTimeout() {
        let time = ManualTime()
        let snap = SnapshotBuilder(time: time).build(
            Fixture.config(members: Fixture.members([1, 1]), affinity: .sourceIP, idleTimeout: 30), generation: 1)
        let l = snap.listeners[0]
        let names = (1...6).map { Fixture.pickName(l, Fixture.flow(port: UInt16(1000 + $0)))! }
        #expect(names == Array(repeating: "a", count: 6))
        // Another listener address is another 2-tuple: RR's next choice.
        #expect(Fixture.pickName(l, Fixture.flow(port: 5, local: "127.0.0.2")) == "b")
        let table = l.affinityTable!
        let key = AffinityKey(client: client, listenerAddress: IPAddress("127.0.0.1")!)
        #expect(table.lookup(key, now: 29.999) == "member-a")
        #expect(table.lookup(key, now: 30) == nil)
        time.set(30)
        #expect(Fixture.pickName(l, Fixture.flow(port: 7)) == "a")     // RR: after b comes a
        #expect(Fixture.pickName(l, Fixture.flow(port: 8)) == "a")     // remembered again
    }

    @Test func noneAffinityRemembersNothing() {
        let snap = SnapshotBuilder(time: ManualTime()).build(Fixture.config(members: Fixture.members([1, 1])), generation: 1)
        #expect(snap.listeners[0].affinityTable == nil)
        #expect(snap.pools[Fixture.poolID]!.persistence == nil)
        #expect((0..<4).map { _ in Fixture.pickName(snap.listeners[0], Fixture.flow())! } == ["a", "b", "a", "b"])
    }

    @Test func persistenceTakesPrecedenceOverAffinity() {
        let snap = SnapshotBuilder(time: ManualTime()).build(
            Fixture.config(members: Fixture.members([1, 1]), affinity: .sourceIP, persistence: Self.persist1min), generation: 1)
        let l = snap.listeners[0]
        let key = AffinityKey(client: client, listenerAddress: IPAddress("127.0.0.1")!)
        l.affinityTable!.acquire(key, memberID: "member-a", now: 0); l.affinityTable!.release(key, now: 0, timeout: 30)
        let p = snap.pools[Fixture.poolID]!.persistence!
        p.acquire(client, memberID: "member-b", now: 0); p.release(client, now: 0, timeout: 60)
        #expect(Fixture.pickName(l, Fixture.flow()) == "b")
        #expect(l.affinityTable!.lookup(key, now: 1) == "member-b")   // overwritten with the choice
    }

    @Test func ineligibleRememberedMemberIsReplacedAndOverwritten() {
        let time = ManualTime()
        let b = SnapshotBuilder(time: time)
        let cfg = Fixture.config(members: Fixture.members([1, 1, 1]), persistence: Self.persist1min)
        let snap = b.build(cfg, generation: 1)
        let l = snap.listeners[0], table = snap.pools[Fixture.poolID]!.persistence!
        #expect(Fixture.pickName(l, Fixture.flow()) == "a")
        // Health marks a down: re-picked, new choice remembered, kept when a returns.
        snap.selection.setMemberUp(poolID: Fixture.poolID, memberID: "member-a", up: false, now: 1)
        let repicked = Fixture.pickName(l, Fixture.flow())!
        #expect(repicked != "a")
        #expect(table.lookup(client, now: 2) == "member-\(repicked)")
        snap.selection.setMemberUp(poolID: Fixture.poolID, memberID: "member-a", up: true, now: 2)
        #expect(Fixture.pickName(l, Fixture.flow()) == repicked)
        // The table survives a snapshot swap; admin down in the new config replaces the entry.
        var ms = Fixture.members([1, 1, 1])
        ms[repicked == "b" ? 1 : 2].adminStateUp = false
        let next = b.build(Fixture.config(members: ms, persistence: Self.persist1min), generation: 2, previous: snap)
        #expect(next.pools[Fixture.poolID]!.persistence === table)
        let third = Fixture.pickName(next.listeners[0], Fixture.flow())!
        #expect(third != repicked)
        #expect(table.lookup(client, now: 3) == "member-\(third)")
        // Weight 0 too.
        ms = Fixture.members([1, 1, 1]); ms[third == "a" ? 0 : (third == "b" ? 1 : 2)].weight = 0
        let fourth = b.build(Fixture.config(members: ms, persistence: Self.persist1min), generation: 3, previous: next)
        #expect(Fixture.pickName(fourth.listeners[0], Fixture.flow()) != third)
    }

    @Test func fullTableEvictsOldestAndCountsIt() {
        let time = ManualTime()
        let snap = SnapshotBuilder(time: time).build(
            Fixture.config(members: Fixture.members([1, 1]), persistence: Self.persist1min, maxSticky: 3), generation: 1)
        let l = snap.listeners[0], table = snap.pools[Fixture.poolID]!.persistence!
        for i in 1...3 { time.set(Double(i)); _ = Fixture.pickName(l, Fixture.flow("203.0.113.\(i)")) }
        #expect(table.count == 3 && table.evictions == 0)
        // Touching .1 again makes .2 the oldest.
        time.set(4); _ = Fixture.pickName(l, Fixture.flow("203.0.113.1"))
        time.set(5); _ = Fixture.pickName(l, Fixture.flow("203.0.113.4"))
        #expect(table.count == 3)
        #expect(table.evictions == 1)
        #expect(table.lookup(IPAddress("203.0.113.2")!, now: 5) == nil)
        #expect(table.lookup(IPAddress("203.0.113.1")!, now: 5) != nil)
        #expect(snap.selection.stickyEvictions == 1)
        // An expired oldest entry makes room without counting as an eviction.
        time.set(1000); _ = Fixture.pickName(l, Fixture.flow("203.0.113.5"))
        #expect(table.evictions == 1)
    }

    @Test func stickyTableDirectContract() {
        let t = StickyTable<IPAddress>(capacity: 2)
        let a = IPAddress("192.0.2.1")!
        t.acquire(a, memberID: "m1", now: 0)
        t.acquire(a, memberID: "m2", now: 1)   // overwrite, two live flows
        t.release(a, now: 2, timeout: 10)
        #expect(t.lookup(a, now: 100) == "m2")  // one flow still live
        t.release(a, now: 100, timeout: 10)
        #expect(t.lookup(a, now: 109.5) == "m2")
        #expect(t.lookup(a, now: 110) == nil)
        t.release(a, now: 111, timeout: 10)    // release of a gone key is a no-op
        #expect(t.count == 0)
    }
}
