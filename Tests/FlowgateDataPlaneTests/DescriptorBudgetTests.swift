#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import FlowgateCore
@testable import FlowgateDataPlane
import FlowgateSystem

/// How many sockets each new port gets under the open-files limit, and the
/// error when even one per port does not fit.
struct DescriptorBudgetTests {
    @Test func oneSocketPerWorkerWhenItFits() {
        let b = DescriptorBudget(limit: 20000, openNow: 20)
        #expect(b.reserve == 2500)
        #expect(b.socketsPerPort(ports: 1024, workers: 2) == 2)
    }

    @Test func bigRangesFallBackToOneSocketPerPort() {
        let b = DescriptorBudget(limit: 20000, openNow: 20)
        #expect(b.socketsPerPort(ports: 11024, workers: 2) == 1)
        #expect(b.socketsPerPort(ports: 5000, workers: 4) == 3)
    }

    @Test func theWholePortSpaceDoesNotFit() {
        let b = DescriptorBudget(limit: 20000, openNow: 20)
        #expect(b.socketsPerPort(ports: 65535, workers: 2) == nil)
    }

    @Test func portsRotateOverWorkers() {
        #expect((0..<4).map { DescriptorBudget.owner(portIndex: $0, socket: 0, socketsPerPort: 1, workers: 2) } == [0, 1, 0, 1])
        #expect((0..<2).map { DescriptorBudget.owner(portIndex: 7, socket: $0, socketsPerPort: 2, workers: 2) } == [0, 1])
    }

    @Test func budgetErrorIsClearAndNothingIsBound() throws {
        let plane = DataPlane(workerCount: 2, tuning: .perPort)
        var config = makeConfig(port: 1, members: [(9, 1)])
        config.accelerators[0].listeners[0].portRanges = [PortRange(fromPort: 1, toPort: 65535)]
        do {
            try plane.start(config)
            Issue.record("65535 ports fit a 20000 descriptor limit")
        } catch {
            #expect(error.kind == .descriptorBudget)
            #expect(error.message.contains("65535 new ports need at least 65535 descriptors"))
        }
        #expect(plane.boundPortCount == 0)
    }
}
