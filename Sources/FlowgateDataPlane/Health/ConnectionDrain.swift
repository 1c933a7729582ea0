import FlowgateCore
import FlowgateSystem

// The data plane's side of ELB `connection_drain`: the rules (which members
// a commit drains, whether one is still drained at its deadline) are pure,
// in FlowgateCore's Runtime/ConnectionDrainPlanner.swift.

extension Worker {
    /// Worker thread: arm one timer per distinct timeout; when it fires,
    /// close this worker's flows to members still drained.
    func scheduleDrain(_ orders: [DrainOrder]) {
        let byTimeout = Dictionary(grouping: orders, by: \.timeout)
        for (timeout, group) in byTimeout {
            loop.after(Double(timeout)) { [unowned self] in self.drainDeadlineReached(group) }
        }
    }

    private func drainDeadlineReached(_ orders: [DrainOrder]) {
        let config = snapshotIndex?.snapshot.config
        for order in orders where ConnectionDrainPlanner.stillDrained(order, in: config) {
            var closed = 0
            for service in services.values {
                closed += service.closeFlows(pool: order.poolID, member: order.memberID, reason: "drain_timeout")
            }
            metrics.drainClosed += closed
            if closed > 0 {
                Log.info("drain_closed", ["worker": index, "pool": order.poolID, "member": order.memberID,
                                          "connections": closed, "timeout_s": order.timeout])
            }
        }
    }
}
