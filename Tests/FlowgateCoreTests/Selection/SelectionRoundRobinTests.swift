import Testing
@testable import FlowgateCore

@Suite("SelectionRoundRobin") struct SelectionRoundRobinTests {
    func plan(_ members: [Member]) -> ListenerPlan {
        SnapshotBuilder(time: ManualTime()).build(Fixture.config(members: members), generation: 1).listeners[0]
    }

    @Test func registryMapsEveryNameToItsAlgorithm() {
        #expect(LoadBalancerRegistry.names == ["ROUND_ROBIN", "LEAST_CONNECTIONS", "SOURCE_IP"])
        #expect(LoadBalancerRegistry.factory(named: "ROUND-ROBIN") == nil)
        let cases: [(String, any LoadBalancer.Type)] = [
            ("ROUND_ROBIN", RoundRobin.self), ("LEAST_CONNECTIONS", LeastConnections.self), ("SOURCE_IP", SourceIPHash.self),
        ]
        for (name, type) in cases {
            let snap = SnapshotBuilder(time: ManualTime()).build(Fixture.config(algorithm: name, members: Fixture.members([1])), generation: 1)
            #expect(Swift.type(of: snap.pools[Fixture.poolID]!.balancer) == type)
        }
    }

    /// nginx's documented order for weights 5, 1, 1 (ngx_http_upstream_round_robin.c).
    @Test func smoothWeightedOrderFor511() {
        let p = plan(Fixture.members([5, 1, 1]))
        let seq = (0..<14).map { _ in Fixture.pickName(p, Fixture.flow())! }
        #expect(seq == ["a", "a", "b", "a", "c", "a", "a", "a", "a", "b", "a", "c", "a", "a"])
    }

    @Test func sixtyThousandPicksFollowWeights123() {
        let p = plan(Fixture.members([1, 2, 3]))
        var counts: [String: Int] = [:]
        for _ in 0..<60_000 { counts[Fixture.pickName(p, Fixture.flow())!, default: 0] += 1 }
        for (name, ideal) in [("a", 10_000.0), ("b", 20_000.0), ("c", 30_000.0)] {
            #expect(abs(Double(counts[name] ?? 0) - ideal) <= ideal * 0.01, "\(name): \(counts[name] ?? 0)")
        }
    }

    @Test func weightZeroAndAdminDownTakeNoNewFlows() {
        var ms = Fixture.members([1, 0, 1])
        ms[2].adminStateUp = false
        let p = plan(ms)
        let seq = Set((0..<10).map { _ in Fixture.pickName(p, Fixture.flow())! })
        #expect(seq == ["a"])
    }

    @Test func excludedMembersAreSkippedAndNothingLeftIsNil() {
        let p = plan(Fixture.members([1, 1]))
        #expect(Fixture.pickName(p, Fixture.flow(), excluding: ["member-a"]) == "b")
        #expect(Fixture.pickName(p, Fixture.flow(), excluding: ["member-a"]) == "b")
        #expect(p.pick(Fixture.flow(), excluding: ["member-a", "member-b"]) == nil)
    }

    @Test func healthDownMemberIsSkippedUntilBackUp() {
        let snap = SnapshotBuilder(time: ManualTime()).build(Fixture.config(members: Fixture.members([1, 1])), generation: 1)
        let p = snap.listeners[0]
        #expect(snap.selection.setMemberUp(poolID: Fixture.poolID, memberID: "member-a", up: false, now: 0))
        #expect(Set((0..<4).map { _ in Fixture.pickName(p, Fixture.flow())! }) == ["b"])
        snap.selection.setMemberUp(poolID: Fixture.poolID, memberID: "member-a", up: true, now: 0)
        #expect(Set((0..<4).map { _ in Fixture.pickName(p, Fixture.flow())! }) == ["a", "b"])
    }

    @Test func pickTargetsPortAndClientPortWhenUnset() {
        let ms = [Fixture.member("a", 1, port: nil)]
        let t = plan(ms).pick(Fixture.flow())!
        #expect(t.address == IPAddress("10.1.0.1")!)
        #expect(t.port == 8000)
    }
}
