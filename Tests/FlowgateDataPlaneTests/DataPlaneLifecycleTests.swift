import Testing
import FlowgateCore
@testable import FlowgateDataPlane

@Suite struct DataPlaneLifecycleTests {
    @Test func invalidTransitionsAreRefusedAndChangeNothing() {
        let plane = DataPlane(workerCount: 1, tuning: .perPort)
        #expect(plane.lifecycle == .starting)
        #expect(!plane.setLifecycle(.draining))
        #expect(!plane.setLifecycle(.reloading))
        #expect(plane.lifecycle == .starting)
        #expect(plane.setLifecycle(.running))
        #expect(plane.setLifecycle(.reloading))
        #expect(plane.setLifecycle(.running))
        #expect(plane.setLifecycle(.draining))
        // A drain never goes back to serving, nor to a reload.
        #expect(!plane.setLifecycle(.running))
        #expect(!plane.setLifecycle(.reloading))
        #expect(plane.lifecycle == .draining)
        #expect(plane.setLifecycle(.stopped))
        #expect(plane.setLifecycle(.stopped))
        #expect(!plane.setLifecycle(.running))
        #expect(!plane.setLifecycle(.starting))
        #expect(plane.lifecycle == .stopped)
    }
}
