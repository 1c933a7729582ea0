import FlowgateCore
import FlowgateSystem

/// Everything one scrape reports, already summed over workers.
public struct MetricsInput: Sendable {
    public struct ListenerRow: Sendable {
        public var arn: String
        public var transport: TransportProtocol
        public var totals: FlowTotals
        public init(arn: String, transport: TransportProtocol, totals: FlowTotals) { self.arn = arn; self.transport = transport; self.totals = totals }
    }
    public struct MemberRow: Sendable {
        public var poolID: String
        public var memberID: String
        public var udp: Bool
        public var weight: Int
        public var totals: FlowTotals
        /// Flows holding the member now, every worker (MemberRuntime).
        public var active: Int
        public var picks: Int
        public var connectFailures: Int
        public var up: Bool
        public var slowStartFraction: Double
        public init(poolID: String, memberID: String, udp: Bool, weight: Int, totals: FlowTotals, active: Int,
                    picks: Int, connectFailures: Int, up: Bool, slowStartFraction: Double) {
            self.poolID = poolID; self.memberID = memberID; self.udp = udp; self.weight = weight; self.totals = totals
            self.active = active; self.picks = picks; self.connectFailures = connectFailures; self.up = up
            self.slowStartFraction = slowStartFraction
        }
    }
    public struct WorkerRow: Sendable {
        public var worker: Int
        public var loopLag: Double
        public var loopLagMax: Double
        public init(worker: Int, loopLag: Double, loopLagMax: Double) { self.worker = worker; self.loopLag = loopLag; self.loopLagMax = loopLagMax }
    }

    public var listeners: [ListenerRow] = []
    /// In pool order, members in pool order.
    public var members: [MemberRow] = []
    public var workers: [WorkerRow] = []
    public var stickyEvictions = 0
    public var udpFlowEvictions = 0
    public var udpDroppedNoMember = 0
    public var udpDroppedDraining = 0
    public var udpDroppedSendFailed = 0
    public var tcpRejected = 0
    public var drainClosed = 0
    public var http = HTTPCounters()
    /// TCP connections open now (connecting or relaying), all workers.
    public var activeTCPConnections = 0
    /// Listening ports bound now, each protocol counted.
    public var boundPorts = 0
    public init() {}
}

/// The data plane's metric families, written with FlowgateSystem's one
/// Prometheus writer: counters end in `_total`, base units (seconds, bytes),
/// as `promtool check metrics` lints.
public enum PrometheusText {
    public static func render(_ m: MetricsInput) -> String {
        var w = PrometheusWriter()
        w.family("flowgate_active_flows", .gauge, "TCP connections open now (connecting or relaying), all workers; UDP flows are in flowgate_listener_flows_active.",
                 [([], Double(m.activeTCPConnections))])
        w.family("flowgate_bound_ports", .gauge, "Listening ports bound now (each protocol counted).", [([], Double(m.boundPorts))])
        let dirs: [(String, KeyPath<FlowTotals, Int>, KeyPath<FlowTotals, Int>)] = [
            ("client_to_member", \.bytesIn, \.datagramsIn), ("member_to_client", \.bytesOut, \.datagramsOut)]

        // Listeners.
        let l = m.listeners
        w.family("flowgate_listener_flows_opened_total", .counter, "Flows accepted by the listener (TCP connections, UDP flow keys).",
                 l.map { ([("listener", $0.arn), ("protocol", $0.transport.rawValue)], Double($0.totals.flowsOpened)) })
        w.family("flowgate_listener_flows_active", .gauge, "Flows of the listener open now.",
                 l.map { ([("listener", $0.arn), ("protocol", $0.transport.rawValue)], Double($0.totals.flowsActive)) })
        w.family("flowgate_listener_bytes_total", .counter, "Payload bytes relayed by the listener's flows, by direction.",
                 l.flatMap { r in dirs.map { ([("listener", r.arn), ("direction", $0.0)], Double(r.totals[keyPath: $0.1])) } })
        w.family("flowgate_listener_datagrams_total", .counter, "UDP datagrams relayed by the listener's flows, by direction.",
                 l.filter { $0.transport == .udp }.flatMap { r in dirs.map { ([("listener", r.arn), ("direction", $0.0)], Double(r.totals[keyPath: $0.2])) } })

        // Pools: their members summed, in first-seen order.
        var poolOrder: [String] = []
        var pools: [String: (totals: FlowTotals, udp: Bool, members: Int, up: Int, picks: Int, failures: Int, active: Int)] = [:]
        for r in m.members {
            if pools[r.poolID] == nil { poolOrder.append(r.poolID); pools[r.poolID] = (FlowTotals(), r.udp, 0, 0, 0, 0, 0) }
            pools[r.poolID]!.totals += r.totals
            pools[r.poolID]!.members += 1
            pools[r.poolID]!.up += r.up ? 1 : 0
            pools[r.poolID]!.picks += r.picks
            pools[r.poolID]!.failures += r.connectFailures
            pools[r.poolID]!.active += r.active
        }
        let p = poolOrder.map { ($0, pools[$0]!) }
        w.family("flowgate_pool_flows_opened_total", .counter, "Flows that reached a member of the pool.",
                 p.map { ([("pool", $0.0)], Double($0.1.totals.flowsOpened)) })
        w.family("flowgate_pool_flows_active", .gauge, "Flows holding a member of the pool now.",
                 p.map { ([("pool", $0.0)], Double($0.1.active)) })
        w.family("flowgate_pool_bytes_total", .counter, "Payload bytes relayed to and from the pool's members, by direction.",
                 p.flatMap { r in dirs.map { ([("pool", r.0), ("direction", $0.0)], Double(r.1.totals[keyPath: $0.1])) } })
        w.family("flowgate_pool_datagrams_total", .counter, "UDP datagrams relayed to and from the pool's members, by direction.",
                 p.filter { $0.1.udp }.flatMap { r in dirs.map { ([("pool", r.0), ("direction", $0.0)], Double(r.1.totals[keyPath: $0.2])) } })
        w.family("flowgate_pool_picks_total", .counter, "Backend picks in the pool.", p.map { ([("pool", $0.0)], Double($0.1.picks)) })
        w.family("flowgate_pool_connect_failures_total", .counter, "Failed connects to the pool's members.",
                 p.map { ([("pool", $0.0)], Double($0.1.failures)) })
        w.family("flowgate_pool_members", .gauge, "Members configured in the pool.", p.map { ([("pool", $0.0)], Double($0.1.members)) })
        w.family("flowgate_pool_members_up", .gauge, "Members of the pool not marked down by health checks.",
                 p.map { ([("pool", $0.0)], Double($0.1.up)) })

        // Members.
        let mr = m.members
        func ml(_ r: MetricsInput.MemberRow) -> [(String, String)] { [("pool", r.poolID), ("member", r.memberID)] }
        w.family("flowgate_member_flows_opened_total", .counter, "Flows that reached the member.", mr.map { (ml($0), Double($0.totals.flowsOpened)) })
        w.family("flowgate_member_flows_active", .gauge, "Flows holding the member now (including connects in progress).",
                 mr.map { (ml($0), Double($0.active)) })
        w.family("flowgate_member_bytes_total", .counter, "Payload bytes relayed to and from the member, by direction.",
                 mr.flatMap { r in dirs.map { (ml(r) + [("direction", $0.0)], Double(r.totals[keyPath: $0.1])) } })
        w.family("flowgate_member_datagrams_total", .counter, "UDP datagrams relayed to and from the member, by direction.",
                 mr.filter(\.udp).flatMap { r in dirs.map { (ml(r) + [("direction", $0.0)], Double(r.totals[keyPath: $0.2])) } })
        w.family("flowgate_member_picks_total", .counter, "Times the member was picked for a flow.", mr.map { (ml($0), Double($0.picks)) })
        w.family("flowgate_member_connect_failures_total", .counter, "Failed connects to the member (refused, unreachable, timed out).",
                 mr.map { (ml($0), Double($0.connectFailures)) })
        w.family("flowgate_member_up", .gauge, "1 unless health checks marked the member OFFLINE.", mr.map { (ml($0), $0.up ? 1 : 0) })
        w.family("flowgate_member_slow_start_fraction", .gauge, "Share of its weight the member has now (1 when not ramping).",
                 mr.map { (ml($0), $0.slowStartFraction) })
        w.family("flowgate_member_weight", .gauge, "Configured weight.", mr.map { (ml($0), Double($0.weight)) })

        // Workers and tables.
        w.family("flowgate_worker_loop_lag_seconds", .gauge, "How late the worker's 100 ms timer last fired.",
                 m.workers.map { ([("worker", String($0.worker))], $0.loopLag) })
        w.family("flowgate_worker_loop_lag_max_seconds", .gauge, "Largest worker timer lateness since start.",
                 m.workers.map { ([("worker", String($0.worker))], $0.loopLagMax) })
        w.family("flowgate_sticky_evictions_total", .counter, "Session-persistence and client-affinity entries evicted at capacity.",
                 [([], Double(m.stickyEvictions))])
        w.family("flowgate_udp_flow_evictions_total", .counter, "UDP flow-table entries evicted at capacity (least recently used).",
                 [([], Double(m.udpFlowEvictions))])
        w.family("flowgate_udp_datagrams_dropped_total", .counter, "UDP datagrams dropped, by reason.",
                 [([("reason", "no_member")], Double(m.udpDroppedNoMember)), ([("reason", "send_failed")], Double(m.udpDroppedSendFailed)),
                  ([("reason", "draining")], Double(m.udpDroppedDraining))])
        w.family("flowgate_tcp_flows_rejected_total", .counter, "TCP clients reset because no member was eligible or reachable.",
                 [([], Double(m.tcpRejected))])
        w.family("flowgate_drain_closed_connections_total", .counter, "TCP connections closed at a pool's connection_drain timeout.",
                 [([], Double(m.drainClosed))])
        // HTTP pools.
        w.family("flowgate_http_requests_total", .counter, "HTTP requests sent to a member of an HTTP pool.",
                 m.http.requests.sorted { ($0.key.poolID, $0.key.memberID) < ($1.key.poolID, $1.key.memberID) }
                    .map { ([("pool", $0.key.poolID), ("member", $0.key.memberID)], Double($0.value)) })
        w.family("flowgate_http_responses_total", .counter, "HTTP responses sent to clients of an HTTP pool, by status (Flowgate's own errors included).",
                 m.http.responses.sorted { ($0.key.poolID, $0.key.label) < ($1.key.poolID, $1.key.label) }
                    .map { ([("pool", $0.key.poolID), ("status", $0.key.label)], Double($0.value)) })
        w.family("flowgate_http_cookie_requests_total", .counter, "HTTP requests of a cookie-persistence pool, by outcome (hit, fallback, miss).",
                 m.http.cookies.sorted { ($0.key.poolID, $0.key.label) < ($1.key.poolID, $1.key.label) }
                    .map { ([("pool", $0.key.poolID), ("outcome", $0.key.label)], Double($0.value)) })
        return w.text
    }
}
