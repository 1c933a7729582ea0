import FlowgateCore
import FlowgateSystem
import Synchronization

// Health and metrics as the control plane sees them: `operatingStatus`
// (ELB ShowMember/ListMembers) and `renderMetrics` (GET /metrics).
extension DataPlane {
    /// ELB `operating_status` of a member: NO_MONITOR, ONLINE or OFFLINE.
    public func operatingStatus(poolID: String, memberID: String) -> OperatingStatus {
        health.operatingStatus(poolID: poolID, memberID: memberID)
    }

    /// Each worker's sample, taken on its own thread; a worker that does not
    /// answer within `timeout` seconds (stopped) is left out.
    public func collectWorkerSamples(timeout: Double = 1) -> [WorkerSample] {
        let results = Mutex<[WorkerSample]>([])
        let answered = Latch(workers.count)
        for w in workers {
            w.post { w in
                let s = w.collectMetrics()
                results.withLock { $0.append(s) }
                answered.countDown()
            }
        }
        _ = answered.wait(timeout: timeout)
        return results.withLock { $0 }.sorted { $0.worker < $1.worker }
    }

    /// Sums worker samples and reads the shared member state of the current
    /// snapshot.
    public func metricsInput() -> MetricsInput {
        var m = MetricsInput()
        m.activeTCPConnections = activeFlows
        m.boundPorts = boundPortCount
        let samples = collectWorkerSamples()
        guard let snapshot = snapshot else { return m }
        var listeners: [String: FlowTotals] = [:]
        var members: [PoolMemberKey: FlowTotals] = [:]
        for s in samples {
            for (k, v) in s.listeners { listeners[k, default: FlowTotals()] += v }
            for (k, v) in s.members { members[k, default: FlowTotals()] += v }
            m.workers.append(.init(worker: s.worker, loopLag: s.loopLag, loopLagMax: s.loopLagMax))
            m.udpFlowEvictions += s.udp.sessionsEvicted
            m.udpDroppedNoMember += s.udp.droppedNoMember
            m.udpDroppedDraining += s.udp.droppedDraining
            m.udpDroppedSendFailed += s.udp.droppedSendFailed
            m.tcpRejected += s.rejectedFlows
            m.drainClosed += s.drainClosed
            m.http += s.http
        }
        for plan in snapshot.listeners {
            let arn = plan.listener.listenerArn
            m.listeners.append(.init(arn: arn, transport: plan.listener.protocol, totals: listeners[arn] ?? FlowTotals()))
        }
        for pool in snapshot.config.pools {
            guard let plan = snapshot.pools[pool.id] else { continue }
            for member in pool.members {
                let runtime = plan.runtime(of: member.id)
                m.members.append(.init(
                    poolID: pool.id, memberID: member.id, udp: pool.protocol == .udp, weight: member.weight,
                    totals: members[PoolMemberKey(poolID: pool.id, memberID: member.id)] ?? FlowTotals(),
                    active: runtime?.activeFlows ?? 0, picks: runtime?.pickCount ?? 0,
                    connectFailures: runtime?.connectFailureCount ?? 0, up: runtime?.isUp ?? true,
                    slowStartFraction: plan.rampFraction(of: member.id) ?? 1))
            }
        }
        m.stickyEvictions = snapshot.selection.stickyEvictions
        return m
    }

    /// GET /metrics body (Prometheus text format 0.0.4).
    public func renderMetrics() -> String { PrometheusText.render(metricsInput()) + handover.render() }
}
