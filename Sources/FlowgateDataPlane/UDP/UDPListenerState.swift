import FlowgateCore
import FlowgateSystem

/// One UDP listener on one worker: its current plan, its flow table (one
/// table per listener, since each listener has its own idle timeout and key
/// space), and its bound sockets, one per port.
final class UDPListenerState: EventHandler {
    unowned(unsafe) let relay: UDPRelay
    private(set) var plan: ListenerPlan
    /// Bumped on every plan update; flows re-check their member against
    /// `memberIDs` once per bump, not per datagram.
    private(set) var planGeneration: UInt64 = 1
    private(set) var memberIDs: Set<String>
    /// Sessions keyed by the full 5-tuple (see `UDPFlow` for why).
    var table: FlowTable<FlowKey, UDPSession>
    /// SOURCE_IP flows by their 2-tuple key, while they have live sessions.
    var flows: [FlowKey: UDPFlow] = [:]
    var ports: [UDPPortSocket] = []
    /// Bound to 0.0.0.0 or ::: reply sources come from PKTINFO.
    let wildcard: Bool
    /// Served by a lookup socket (`port_ranges: lookup`): each datagram's
    /// port comes from IP_ORIGDSTADDR and replies leave through reply
    /// sockets (UDPReplySockets.swift). `lookupFamily` is the socket's.
    var lookup = false
    var lookupFamily: Int32 = 0
    /// Logged once per listener, then only counted.
    var loggedNoMember = false
    var loggedUpstreamFailure = false
    /// "member reason" pairs already logged as re-picks.
    var loggedRepicks: Set<String> = []

    init(relay: UDPRelay, plan: ListenerPlan, maxFlows: Int) {
        self.relay = relay
        self.plan = plan
        self.memberIDs = Set(plan.pool.members.map(\.id))
        self.table = FlowTable(capacity: max(1, maxFlows), idleTimeout: Double(max(1, plan.listener.idleTimeout)))
        self.wildcard = plan.bindAddress.isUnspecified
        super.init()
    }

    /// An upstream socket of one of this listener's sessions is readable
    /// (the relay finds the session by descriptor).
    override func handleEvent(fd: Int32, readiness: IOReadiness) {
        let relay = self.relay
        relay.memberReadable(self, fd: fd)
        relay.publish()
    }

    var arn: String { plan.listener.listenerArn }

    /// A new snapshot's plan for this listener. Live flows keep their member
    /// unless it left the pool (docs/architecture.md §3.7, §7).
    func update(_ new: ListenerPlan) {
        plan = new
        planGeneration &+= 1
        memberIDs = Set(new.pool.members.map(\.id))
        table.idleTimeout = Double(max(1, new.listener.idleTimeout))
        loggedNoMember = false
        loggedUpstreamFailure = false
        loggedRepicks.removeAll()
    }
}

/// One bound listener socket (one port) on one worker.
final class UDPPortSocket: EventHandler {
    let fd: Int32
    let key: ListeningSocketKey
    var event: LoopEvent?
    unowned(unsafe) let state: UDPListenerState
    init(fd: Int32, key: ListeningSocketKey, state: UDPListenerState) { self.fd = fd; self.key = key; self.state = state }

    /// Client datagrams are waiting on this port.
    override func handleEvent(fd: Int32, readiness: IOReadiness) {
        let relay = state.relay
        relay.clientReadable(self)
        relay.publish()
    }
}
