import Dispatch
import Testing
@testable import FlowgateCore

@Suite("SelectionConcurrency") struct SelectionConcurrencyTests {
    /// Four threads pick and release at once through one listener with
    /// persistence and affinity: every count returns to zero and every
    /// remembered entry points at a real member.
    @Test(arguments: LoadBalancerRegistry.names)
    func concurrentPickReleaseBalances(_ algorithm: String) {
        let snap = SnapshotBuilder(time: ManualTime()).build(
            Fixture.config(algorithm: algorithm, members: Fixture.members([1, 2, 3]), affinity: .sourceIP,
                           persistence: SessionPersistence(type: .sourceIP, persistenceTimeout: 1), maxSticky: 64),
            generation: 1)
        let l = snap.listeners[0]
        DispatchQueue.concurrentPerform(iterations: 4) { worker in
            for i in 0..<5000 {
                let f = Fixture.clientFlow(worker * 100_000 + i % 500)
                guard let t = l.pick(f) else { Issue.record("no member"); return }
                l.release(f, target: t, connected: true)
            }
        }
        let pool = snap.pools[Fixture.poolID]!
        for name in ["a", "b", "c"] {
            #expect(pool.runtime(of: "member-\(name)")!.activeFlows == 0)
        }
        #expect((0..<3).map { pool.runtime(of: "member-\(["a", "b", "c"][$0])")!.pickCount }.reduce(0, +) == 20_000)
        #expect(pool.persistence!.count <= 64)
        #expect(pool.persistence!.evictions > 0)
    }
}
