import FlowgateCore
import FlowgateSystem

// The data plane's hooks into WorkerMetrics, and the scrape-time walk over
// live flows. Everything here runs on the worker's own thread.

extension WorkerMetrics {
    /// A TCP connection closed (TCPConnection.close). `established`: it
    /// reached its member (a rejected or never-connected flow counts for the
    /// listener only; its failed attempts are MemberRuntime's connect failures).
    func tcpClosed(listener: String, poolID: String, target: BackendTarget?, established: Bool, bytesIn: Int, bytesOut: Int) {
        var t = FlowTotals()
        t.flowsOpened = 1
        t.bytesIn = bytesIn
        t.bytesOut = bytesOut
        let member = established ? target.map { PoolMemberKey(poolID: poolID, memberID: $0.memberID) } : nil
        flowEnded(listener: listener, member: member, t)
    }
}

/// What a UDP flow moved while it had its current member; folded into the
/// worker's totals when that pick is released (UDPRelay.releaseTarget).
struct UDPFlowTraffic {
    var datagramsIn = 0
    var datagramsOut = 0
    var bytesIn = 0
    var bytesOut = 0

    func totals(opened: Int, active: Int = 0) -> FlowTotals {
        var t = FlowTotals()
        t.flowsOpened = opened; t.flowsActive = active
        t.bytesIn = bytesIn; t.bytesOut = bytesOut
        t.datagramsIn = datagramsIn; t.datagramsOut = datagramsOut
        return t
    }
}

extension Worker {
    /// Totals of ended flows plus every flow open now, on this worker's
    /// thread (posted by `DataPlane.collectMetrics`).
    func collectMetrics() -> WorkerSample {
        var s = WorkerSample(worker: index)
        s.listeners = metrics.listeners
        s.members = metrics.members
        s.loopLag = metrics.lagLast
        s.loopLagMax = metrics.lagMax
        s.drainClosed = metrics.drainClosed
        s.http = metrics.http
        s.rejectedFlows = counters.rejectedFlows.load(ordering: .relaxed)
        for service in services.values { service.sample(into: &s) }
        return s
    }
}

extension UDPFlowTraffic {
    @inline(__always)
    mutating func countIn(_ length: Int) { datagramsIn += 1; bytesIn += length }
}

extension WorkerMetrics {
    /// A UDP flow's pick ended (expiry, eviction, re-pick, shutdown): fold
    /// what it moved for that member, and start its next pick from zero.
    func udpReleased(_ flow: UDPFlow, plan: ListenerPlan, target: BackendTarget) {
        let listenerOpened = flow.listenerCounted ? 0 : 1
        flow.listenerCounted = true
        listeners[plan.listener.listenerArn, default: FlowTotals()] += flow.traffic.totals(opened: listenerOpened)
        members[PoolMemberKey(poolID: plan.pool.id, memberID: target.memberID), default: FlowTotals()] += flow.traffic.totals(opened: 1)
        flow.traffic = UDPFlowTraffic()
    }
}

extension UDPRelay {
    /// Adds every live flow (with a member) to a scrape sample.
    func addLiveFlows(to sample: inout WorkerSample) {
        for state in listeners.values {
            var seen = Set<ObjectIdentifier>()
            for slot in state.table.slotsByRecency {
                let flow = state.table[slot].flow
                guard seen.insert(ObjectIdentifier(flow)).inserted, let t = flow.target, let p = flow.plan else { continue }
                sample.listeners[p.listener.listenerArn, default: FlowTotals()] += flow.traffic.totals(opened: flow.listenerCounted ? 0 : 1, active: 1)
                sample.members[PoolMemberKey(poolID: p.pool.id, memberID: t.memberID), default: FlowTotals()] += flow.traffic.totals(opened: 1, active: 1)
            }
        }
    }
}

/// Helpers for the per-listener connection log (`connection_log: true`).
enum ConnectionLog {
    /// Seconds since a `System.monotonicMicroseconds()` reading, to the millisecond.
    static func seconds(since start: UInt64) -> String {
        let ms = (System.monotonicMicroseconds() &- start) / 1000
        let frac = String(ms % 1000)
        return "\(ms / 1000)." + String(repeating: "0", count: 3 - frac.count) + frac
    }
}
