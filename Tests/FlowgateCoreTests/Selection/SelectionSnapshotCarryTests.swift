import Testing
@testable import FlowgateCore

/// What SnapshotBuilder carries from `previous` and what it forgets.
@Suite("SelectionSnapshotCarry") struct SelectionSnapshotCarryTests {
    @Test func removedMemberKeepsCountsWhileItsFlowsLive() {
        let time = ManualTime()
        let b = SnapshotBuilder(time: time)
        let cfg2 = Fixture.config(algorithm: "LEAST_CONNECTIONS", members: Fixture.members([1, 1]))
        let first = b.build(cfg2, generation: 1)
        let held = first.listeners[0].pick(Fixture.flow())!
        #expect(held.memberID == "member-a")
        let runtime = first.pools[Fixture.poolID]!.runtime(of: "member-a")!
        // a removed, then re-added while its flow still lives: same counters.
        let cfg1 = Fixture.config(algorithm: "LEAST_CONNECTIONS", members: [Fixture.members([1, 1])[1]])
        let second = b.build(cfg1, generation: 2, previous: first)
        #expect(second.selection.existingMember(poolID: Fixture.poolID, memberID: "member-a") === runtime)
        let third = b.build(cfg2, generation: 3, previous: second)
        #expect(third.pools[Fixture.poolID]!.runtime(of: "member-a") === runtime)
        #expect(third.listeners[0].pick(Fixture.flow())!.memberID == "member-b")
        first.listeners[0].release(Fixture.flow(), target: held, connected: true)
        #expect(runtime.activeFlows == 0)
        // Removed with no live flow: forgotten.
        let fourth = b.build(cfg1, generation: 4, previous: third)
        #expect(fourth.selection.existingMember(poolID: Fixture.poolID, memberID: "member-a") == nil)
    }

    @Test func tablesDroppedWhenTheirFeatureIsTurnedOff() {
        let b = SnapshotBuilder(time: ManualTime())
        let persist = SessionPersistence(type: .sourceIP, persistenceTimeout: 5)
        let on = b.build(Fixture.config(members: Fixture.members([1, 1]), affinity: .sourceIP, persistence: persist), generation: 1)
        _ = Fixture.pickName(on.listeners[0], Fixture.flow())
        #expect(on.pools[Fixture.poolID]!.persistence!.count == 1)
        #expect(on.listeners[0].affinityTable!.count == 1)
        let kept = b.build(Fixture.config(members: Fixture.members([1, 1]), affinity: .sourceIP, persistence: persist), generation: 2, previous: on)
        #expect(kept.pools[Fixture.poolID]!.persistence === on.pools[Fixture.poolID]!.persistence)
        #expect(kept.listeners[0].affinityTable === on.listeners[0].affinityTable)
        let off = b.build(Fixture.config(members: Fixture.members([1, 1])), generation: 3, previous: kept)
        #expect(off.pools[Fixture.poolID]!.persistence == nil && off.listeners[0].affinityTable == nil)
        let again = b.build(Fixture.config(members: Fixture.members([1, 1]), affinity: .sourceIP, persistence: persist), generation: 4, previous: off)
        #expect(again.pools[Fixture.poolID]!.persistence!.count == 0)
        #expect(again.listeners[0].affinityTable!.count == 0)
    }

    @Test func stickyCapacityFollowsTuning() {
        let b = SnapshotBuilder(time: ManualTime())
        let persist = SessionPersistence(type: .sourceIP, persistenceTimeout: 5)
        let first = b.build(Fixture.config(members: Fixture.members([1]), persistence: persist, maxSticky: 10), generation: 1)
        for i in 0..<10 { _ = Fixture.pickName(first.listeners[0], Fixture.clientFlow(i)) }
        let second = b.build(Fixture.config(members: Fixture.members([1]), persistence: persist, maxSticky: 4), generation: 2, previous: first)
        _ = Fixture.pickName(second.listeners[0], Fixture.clientFlow(99))
        #expect(second.pools[Fixture.poolID]!.persistence!.count == 4)
        #expect(second.pools[Fixture.poolID]!.persistence!.evictions == 7)
    }

    @Test func handBuiltSnapshotStillWorks() {
        // The foundation's initialisers, without any selection arguments.
        let pool = Pool(id: "p", protocol: .tcp, members: [Member(id: "m", address: "10.0.0.1", protocolPort: 80)])
        let plan = PoolPlan(pool: pool, members: [MemberPlan(member: pool.members[0], address: IPAddress("10.0.0.1")!)])
        let l = ListenerPlan(listener: Listener(listenerArn: "x", portRanges: [PortRange(fromPort: 1, toPort: 1)], protocol: .tcp, poolID: "p"),
                             bindAddress: IPAddress("0.0.0.0")!, pool: plan)
        let snap = RuntimeSnapshot(generation: 1, config: FlowgateConfig(projectID: "x"), listeners: [l], pools: ["p": plan])
        #expect(snap.selection === plan.state)
        #expect(l.pick(Fixture.flow())?.port == 80)
    }
}
