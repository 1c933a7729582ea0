import Testing
@testable import FlowgateCore

/// The pure rules of health checking and connection draining: thresholds,
/// the probe schedule driven by an injected clock, the parsers, and which
/// members a commit drains; exact expected values, no sockets, no sleeping.
struct HealthRulesTests {
    @Test func fallConsecutiveFailuresTakeAMemberDownAndAPassResetsTheCount() {
        var t = HealthTracker(rise: 3, fall: 2)
        #expect(t.isUp)
        #expect(t.record(passed: false) == nil)
        #expect(t.record(passed: true) == nil)          // resets the failure count
        #expect(t.record(passed: false) == nil)
        #expect(t.consecutiveFailures == 1)
        #expect(t.record(passed: false) == .wentDown)
        #expect(!t.isUp)
        #expect(t.record(passed: false) == nil)          // already down: no second transition
    }

    @Test func riseConsecutivePassesBringItBackAndAFailureResetsThem() {
        var t = HealthTracker(rise: 3, fall: 1, isUp: false)
        #expect(t.record(passed: true) == nil)
        #expect(t.record(passed: true) == nil)
        #expect(t.record(passed: false) == nil)          // back to zero passes
        #expect(t.consecutivePasses == 0)
        #expect(t.record(passed: true) == nil)
        #expect(t.record(passed: true) == nil)
        #expect(t.record(passed: true) == .wentUp)
        #expect(t.isUp)
    }

    @Test func passiveStreakOfFallFailuresMarksDownOnlyWhileUp() {
        var t = HealthTracker(rise: 2, fall: 3)
        #expect(t.observePassive(streak: 2) == nil)
        #expect(t.observePassive(streak: 3) == .wentDown)
        #expect(t.observePassive(streak: 9) == nil)
        // Only active checks bring it back.
        #expect(t.record(passed: true) == nil)
        #expect(t.record(passed: true) == .wentUp)
    }

    /// A member dies at t = 10.3 with delay 1, timeout 1, fall 2; checks of a
    /// dead member fail at once (connection refused). Driving the schedule
    /// with an injected clock in 50 ms ticks (the checker's tick), the member
    /// goes down at the second failing check: t = 12.0, within
    /// delay × fall + timeout of its death.
    @Test func detectionTimeWithAnInjectedClock() {
        let clock = ManualTime(0)
        var schedule = ProbeSchedule(delay: 1, timeout: 1, firstAt: clock.now())
        var tracker = HealthTracker(rise: 2, fall: 2)
        let death = 10.3
        var downAt: Double?
        var checks: [Double] = []
        while clock.now() < 20 && downAt == nil {
            let now = clock.now()
            if schedule.isDue(now) {
                _ = schedule.begin(now)
                checks.append(now)
                let passed = now < death
                schedule.end(now)
                if tracker.record(passed: passed) == .wentDown { downAt = now }
            }
            clock.advance(0.05)
        }
        // Within one 50 ms tick of 12.0 (the manual clock adds 0.05 steps).
        let down = downAt ?? 99
        #expect(down >= 12.0 - 1e-9 && down < 12.05 + 1e-9)
        #expect(checks.count == 13)                          // 0, 1, ..., 12
        #expect(down - death <= ProbeSchedule.worstDetection(delay: 1, timeout: 1, fall: 2))
        #expect(ProbeSchedule.worstDetection(delay: 1, timeout: 1, fall: 2) == 3)
    }

    @Test func aCheckLongerThanDelayPushesTheNextOne() {
        var s = ProbeSchedule(delay: 1, timeout: 3, firstAt: 0)
        #expect(s.begin(0) == 3)             // deadline
        #expect(!s.isDue(1.5))               // still running
        s.end(2.5)
        #expect(s.nextStart == 2.5)
        #expect(s.isDue(2.5))
        _ = s.begin(2.5)
        s.end(2.6)
        #expect(s.nextStart == 3.5)
    }

    @Test func expectedCodesAcceptOneAListOrARange() {
        let one = ExpectedCodes("200")
        #expect(one?.contains(200) == true)
        #expect(one?.contains(201) == false)
        let list = ExpectedCodes("200,202, 204")
        #expect(list?.ranges == [200...200, 202...202, 204...204])
        let range = ExpectedCodes("200-204,301")
        #expect(range?.contains(203) == true)
        #expect(range?.contains(205) == false)
        #expect(range?.contains(301) == true)
        #expect(ExpectedCodes("") == nil)
        #expect(ExpectedCodes("204-200") == nil)
        #expect(ExpectedCodes("2xx") == nil)
        #expect(ExpectedCodes("200-") == nil)
    }

    @Test func statusLineParsing() {
        #expect(HTTPStatusLine.parse(Array("HTTP/1.1 204 No Content\r\n".utf8)) == .status(204))
        #expect(HTTPStatusLine.parse(Array("HTTP/1.0 503\r\nX: y".utf8)) == .status(503))
        #expect(HTTPStatusLine.parse(Array("HTTP/1.1 200 O".utf8)) == .incomplete)
        #expect(HTTPStatusLine.parse(Array("SSH-2.0-OpenSSH\r\n".utf8)) == .malformed)
        #expect(HTTPStatusLine.parse(Array("HTTP/1.1 20x OK\r\n".utf8)) == .malformed)
    }

    @Test func drainOrdersForRemovedZeroWeightAndAdminDownMembersOnly() {
        var before = FlowgateConfig(projectID: "p")
        let members = (0..<5).map { Member(id: "m\($0)", address: "127.0.0.1", protocolPort: 9000 + $0) }
        before.pools = [Pool(id: "drained", protocol: .tcp, connectionDrain: ConnectionDrain(enable: true, timeout: 30), members: members),
                        Pool(id: "kept", protocol: .tcp, members: members)]
        var after = before
        after.pools[0].members.removeAll { $0.id == "m0" }                  // removed
        after.pools[0].members[0].weight = 0                                 // m1 weight 0
        after.pools[0].members[1].adminStateUp = false                       // m2 admin down
        after.pools[0].members[2].weight = 5                                 // m3 still in service
        after.pools[1].members.removeAll { $0.id == "m0" }                  // drain off: nothing
        #expect(ConnectionDrainPlanner.orders(previous: before, next: after) == [
            DrainOrder(poolID: "drained", memberID: "m0", timeout: 30),
            DrainOrder(poolID: "drained", memberID: "m1", timeout: 30),
            DrainOrder(poolID: "drained", memberID: "m2", timeout: 30)])
        // Nothing drains twice: an already out-of-service member is no order.
        #expect(ConnectionDrainPlanner.orders(previous: after, next: after).isEmpty)
        // Put back before the deadline: its connections stay.
        #expect(!ConnectionDrainPlanner.stillDrained(DrainOrder(poolID: "drained", memberID: "m1", timeout: 30), in: before))
        #expect(ConnectionDrainPlanner.stillDrained(DrainOrder(poolID: "drained", memberID: "m1", timeout: 30), in: after))
        #expect(ConnectionDrainPlanner.stillDrained(DrainOrder(poolID: "drained", memberID: "m0", timeout: 30), in: after))
    }
}
