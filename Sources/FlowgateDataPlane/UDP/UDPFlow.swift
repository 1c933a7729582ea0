import FlowgateCore
import FlowgateSystem

/// One flow in the sense of docs/architecture.md §3.1: everything that shares the key
/// `FlowKey(context, affinity: listener.clientAffinity)`, hence one backend.
/// It is what `ListenerPlan.pick` is asked for once and `release`d once
/// (expiry/eviction of its last session, re-pick, shutdown).
///
/// Under NONE a flow has exactly one session. Under SOURCE_IP, a client's
/// datagrams from different source ports are different *sessions* of one
/// flow: each session keeps its own connected upstream socket, so the
/// member's replies on that socket go back to exactly the source port that
/// sent the request. One shared upstream socket would have to send every
/// reply to the client's most recent source port, which breaks clients that
/// talk from several ports at once (a DNS resolver randomising source ports,
/// RFC 5452 §4.5; QUIC connection migration probes); the cost is one socket
/// per client port, as nginx's stream proxy and HAProxy pay anyway.
final class UDPFlow {
    /// The affinity key this flow is registered under (SOURCE_IP only).
    let key: FlowKey
    /// The first datagram's context: what `pick` and `release` are given.
    let context: FlowContext
    /// The plan `target` was picked from; `release` goes back to it, so the
    /// counts of the pool that took the flow stay right across snapshots.
    var plan: ListenerPlan?
    var target: BackendTarget?
    /// Bumped on every (re)pick; a session whose upstream socket was opened
    /// for an older generation reopens it.
    var generation: UInt64 = 0
    /// The listener plan generation whose member set `target` was checked
    /// against (docs/architecture.md §3.7: a removed member's UDP flows are re-picked).
    var checkedPlanGeneration: UInt64
    /// Member that answered ICMP port unreachable: avoided by the next pick.
    var refusedMember: String?
    /// Live sessions; the flow ends when this drops to 0.
    var sessions = 0
    /// Metrics: traffic since the current pick; whether the listener has
    /// counted this flow as opened (a re-pick is not a new flow).
    var traffic = UDPFlowTraffic()
    var listenerCounted = false
    /// Connection log: monotonic µs of the flow's first pick (0 when off).
    var openedAt: UInt64 = 0

    init(key: FlowKey, context: FlowContext, planGeneration: UInt64) {
        self.key = key; self.context = context; self.checkedPlanGeneration = planGeneration
    }
}

/// One (client address:port, listener address:port) conversation and its
/// connected upstream socket: the value stored in the worker's `FlowTable`.
struct UDPSession {
    var flow: UDPFlow
    /// Connected to `flow.target`; -1 until opened or after a failure.
    var upstreamFD: Int32 = -1
    /// EV_READ | EV_PERSIST on `upstreamFD`.
    var event: LoopEvent?
    /// `flow.generation` `upstreamFD` was connected for.
    var generation: UInt64 = 0
    /// Where replies go: the client's address exactly as received.
    var client: UDPAddress
    /// Source address for replies from a wildcard bind (IP_PKTINFO /
    /// IPV6_PKTINFO); length 0 when the socket's bound address is used.
    var local: UDPAddress
    /// The listener socket the client wrote to; replies leave through it, so
    /// their source port is the port the client sent to.
    var listenerFD: Int32
}

/// Per-worker counters (read by metrics on the worker thread).
public struct UDPRelayStats: Sendable, Equatable {
    public var datagramsFromClients = 0
    public var datagramsToMembers = 0
    public var datagramsFromMembers = 0
    public var datagramsToClients = 0
    public var bytesFromClients = 0
    public var bytesFromMembers = 0
    public var flowsStarted = 0
    public var sessionsStarted = 0
    public var sessionsExpired = 0
    public var sessionsEvicted = 0
    /// Flows re-picked because their member refused (ICMP port unreachable).
    public var repickedRefused = 0
    /// Flows re-picked because their member left the pool.
    public var repickedRemoved = 0
    /// Datagrams dropped: no eligible member.
    public var droppedNoMember = 0
    /// Datagrams dropped: a send failed (EAGAIN on a full buffer, errors).
    public var droppedSendFailed = 0
    /// Datagrams dropped: they would have started a session while draining.
    public var droppedDraining = 0
    /// Sessions ended during a drain after `UDPRelay.drainQuiet` of silence.
    public var sessionsEndedQuiet = 0
    /// Upstream sockets that could not be opened (EMFILE, ENETUNREACH, ...).
    public var upstreamOpenFailures = 0
    public init() {}
}
