import Testing
import FlowgateSystem

struct LatchTests {
    @Test func timedWaitReturnsFalseAtTheDeadlineAndTrueOnceCountedDown() {
        let latch = Latch(1)
        let t0 = System.monotonicMicroseconds()
        #expect(latch.wait(timeout: 0.05) == false)
        let waited = System.monotonicMicroseconds() - t0
        #expect(waited >= 50_000 && waited < 1_000_000)
        latch.countDown()
        #expect(latch.wait(timeout: 5))
    }
}
