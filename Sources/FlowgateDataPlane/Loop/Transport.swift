import FlowgateCore
import FlowgateSystem

/// Identity of one listening port: a worker's socket set is keyed by it, and
/// an update binds only keys it adds and closes only keys it removes.
///
/// With `tuning.port_ranges: lookup` a listener has one key per protocol:
/// port 0 and `lookupListener` set to its ARN; its sockets (one per worker,
/// one SO_REUSEPORT group) serve every port of its ranges through the
/// sk_lookup program (Listeners/PortLookupSteering.swift).
public struct ListeningSocketKey: Sendable, Hashable, CustomStringConvertible {
    public var transport: TransportProtocol
    public var bind: IPAddress
    public var port: Int
    public var lookupListener: String?
    public init(transport: TransportProtocol, bind: IPAddress, port: Int, lookupListener: String? = nil) {
        self.transport = transport; self.bind = bind; self.port = port; self.lookupListener = lookupListener
    }
    /// The key of a listener's lookup sockets.
    public static func lookup(_ plan: ListenerPlan) -> ListeningSocketKey {
        ListeningSocketKey(transport: plan.listener.protocol, bind: plan.bindAddress, port: 0, lookupListener: plan.listener.listenerArn)
    }
    public var isLookup: Bool { lookupListener != nil }
    public var description: String {
        isLookup ? "\(transport.rawValue) \(bind):* (\(lookupListener ?? ""))" : "\(transport.rawValue) \(bind):\(port)"
    }
}

/// A bound socket handed to the worker that owns it.
public struct ListeningSocket: Sendable {
    public var key: ListeningSocketKey
    public var fd: Int32
    public init(key: ListeningSocketKey, fd: Int32) { self.key = key; self.fd = fd }
}

/// The listener plan for every listening key of one snapshot, built once per
/// update off the hot path and shared read-only by every worker.
public final class SnapshotIndex: Sendable {
    public let snapshot: RuntimeSnapshot
    public let plans: [ListeningSocketKey: ListenerPlan]

    /// `lookup`: one key per listener (ListeningSocketKey.lookup) instead of one per port.
    public init(_ snapshot: RuntimeSnapshot, transports: Set<TransportProtocol>, lookup: Bool = false) {
        self.snapshot = snapshot
        var plans: [ListeningSocketKey: ListenerPlan] = [:]
        for plan in snapshot.listeners where transports.contains(plan.listener.protocol) {
            if lookup { plans[.lookup(plan)] = plan; continue }
            for port in plan.ports {
                plans[ListeningSocketKey(transport: plan.listener.protocol, bind: plan.bindAddress, port: port)] = plan
            }
        }
        self.plans = plans
    }
}

/// One transport (TCP, UDP) as the data plane plugs it in: how its listening
/// sockets are opened, and what serves them inside a worker. `DataPlane` is
/// created with one driver per transport (`DataPlane.defaultDrivers`).
public protocol TransportDriver: Sendable {
    var transport: TransportProtocol { get }
    /// Opens, configures and binds one listening socket (called on the
    /// updating thread, before anything is committed). `reusePort` is set
    /// whenever more than one socket serves the port.
    func openListeningSocket(_ address: SocketAddress, reusePort: Bool) throws(SystemError) -> Int32
    /// The worker's share of this transport; called once per worker, on the
    /// worker's thread, before its loop runs.
    func makeService(worker: Worker) -> TransportService
}

/// A transport's per-worker state: the listening sockets the worker owns for
/// that protocol and the flows they opened. Every method runs on the
/// worker's thread.
public protocol TransportService: AnyObject {
    /// Start serving a socket bound in `prepare`.
    func attach(_ socket: ListeningSocket, plan: ListenerPlan)
    /// Stop serving a key and close its socket (removed port, or shutdown).
    func detach(_ key: ListeningSocketKey)
    /// Keys currently attached.
    var attachedKeys: [ListeningSocketKey] { get }
    /// A new snapshot was swapped in: refresh listener plans (flows keep
    /// their member).
    func snapshotDidChange(_ index: SnapshotIndex)
    /// End of drain: close every flow now.
    func closeAllFlows()
    /// Start of a drain (SIGTERM): take no new flows; established ones go on.
    func stopAccepting()
    /// Start of a drain after a takeover (Sources/flowgated/Takeover/): the
    /// listening sockets now also belong to the next process, which serves
    /// their queues, so stop reading them without taking in what is queued;
    /// established flows go on. Keys in `closing` are sockets the next
    /// process did not keep (it runs fewer workers): they close as in
    /// `stopAccepting`, so the kernel moves their traffic to the others.
    func handOver(closing: Set<ListeningSocketKey>)
    /// The listening socket attached for `key`, to be duplicated for a takeover.
    func listeningDescriptor(_ key: ListeningSocketKey) -> Int32?
    /// Adds every flow open now, and the transport's own figures, to a
    /// scrape sample (WorkerMetrics keeps the totals of ended flows).
    func sample(into sample: inout WorkerSample)
    /// A `connection_drain` deadline: closes this worker's flows to `member`
    /// of `pool` now; returns how many.
    func closeFlows(pool: String, member: String, reason: String) -> Int
}
