import Testing
import FlowgateCore
@testable import FlowgateDataPlane
import FlowgateSystem

/// Passive health in the data plane's own pick/release path.
struct HealthStateTests {
    /// The passive limit acts in the data plane's own release path: the
    /// failure that reaches max_retries_down marks the member down at once; a
    /// successful connect in between starts the streak over.
    @Test func passiveLimitMarksDownOnTheReleasePathAndASuccessResetsTheStreak() throws {
        var config = makeConfig(port: 8000, members: [(9001, 1), (9002, 1)])
        config.accelerators[0].listeners[0].bind = "127.0.0.1"
        let snapshot = SnapshotBuilder().build(config, generation: 1)
        let plan = try #require(snapshot.listeners.first)
        let runtime = snapshot.selection.member(poolID: "pool-1", memberID: "member-1")
        runtime.setPassiveLimit(3)
        let flow = FlowContext(transport: .tcp, client: IPAddress("127.0.0.1")!, clientPort: 40000,
                               local: IPAddress("127.0.0.1")!, localPort: 8000)
        func attempt(connected: Bool) throws {
            let t = try #require(plan.pick(flow, excluding: ["member-0"]))
            #expect(t.memberID == "member-1")
            if connected { plan.connected(t) }
            plan.release(flow, target: t, connected: connected)
        }
        try attempt(connected: false)
        try attempt(connected: false)
        try attempt(connected: true)          // streak back to 0
        #expect(runtime.connectFailureStreak == 0)
        try attempt(connected: false)
        try attempt(connected: false)
        #expect(runtime.isUp)
        try attempt(connected: false)         // third in a row
        #expect(!runtime.isUp)
        #expect(runtime.connectFailureCount == 5)
        #expect(plan.pick(flow, excluding: ["member-0"]) == nil)
        runtime.setPassiveLimit(0)            // no monitor: the streak never marks down
    }
}
