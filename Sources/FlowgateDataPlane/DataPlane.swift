import FlowgateCore
import FlowgateSystem
import Synchronization

/// Where the daemon is in its life (docs/architecture.md §11); every change is logged.
public enum Lifecycle: String, Sendable {
    case starting, running, reloading, draining, stopped
}

/// The data plane: workers, their listening sockets, and how a configuration
/// goes live (docs/architecture.md §4, §7). `prepare` binds every port the change adds on
/// the calling thread before anything is committed; `commit` swaps the new
/// snapshot into every worker, has each close the ports the change removed,
/// and returns when all of them have.
public final class DataPlane: ConfigApplier, @unchecked Sendable {
    /// What `prepare` opened, handed to `commit` or `abort` exactly once.
    public final class PreparedUpdate: @unchecked Sendable {
        public let config: FlowgateConfig
        public let index: SnapshotIndex
        let opened: ListenerBinder.Opened
        let added: Set<ListeningSocketKey>
        let removed: Set<ListeningSocketKey>
        /// `port_ranges: lookup`: the port map and socket slots after this change.
        var lookup: LookupChange?
        fileprivate var finished = false
        init(config: FlowgateConfig, index: SnapshotIndex, opened: ListenerBinder.Opened,
             added: Set<ListeningSocketKey>, removed: Set<ListeningSocketKey>) {
            self.config = config; self.index = index; self.opened = opened; self.added = added; self.removed = removed
        }
        public var socketsPerPort: Int { opened.socketsPerPort }
        public var socketsOpened: Int { opened.count }
    }

    /// TCP and UDP (UDP/UDPSockets.swift).
    public static let defaultDrivers: [TransportDriver] = [TCPDriver(), UDPDriver()]

    public let workers: [Worker]
    /// Active and passive health checks on their own thread (Health/).
    public let health = HealthChecker()
    let drivers: [TransportProtocol: TransportDriver]

    struct State {
        var config: FlowgateConfig
        var index: SnapshotIndex?
        var generation: UInt64 = 0
        var bound: Set<ListeningSocketKey> = []
        var lifecycle: Lifecycle = .starting
        /// `port_ranges: lookup`: each bound lookup key's socket-map slot.
        var lookupSlots: [ListeningSocketKey: UInt32] = [:]
    }
    let state: Mutex<State>
    /// The sk_lookup steering when port ranges are served by lookup
    /// (Listeners/DataPlane+Lookup.swift), nil for one socket per port.
    let steering: PortLookupSteering?
    /// `lookup` or `per_port`: `tuning.port_ranges` resolved once at init.
    public let portRangeMode: PortRangeMode
    /// Why `lookup` is unavailable (logged at start; fails the start when
    /// `tuning.port_ranges: lookup` asked for it).
    let steeringUnavailable: String?
    let requestedPortRangeMode: PortRangeMode
    /// Listening sockets received from the previous process (takeover),
    /// used by `prepare` instead of binding their keys
    /// (Listeners/DataPlane+Takeover.swift).
    let adopted = Mutex<[ListeningSocketKey: [Int32]]>([:])
    /// For each key offered to a next process, the workers whose sockets
    /// were sent, in order (a socket's index is its position here).
    let offered = Mutex<[ListeningSocketKey: [Int]]>([:])
    /// Takeover state, paused connections and counters (Handover/).
    public let handover = HandoverRegistry()

    /// `workerCount` nil: one per online CPU. `tuning` is fixed for the
    /// process's life (scratch buffers are sized from it).
    public init(workerCount: Int?, tuning: Tuning) {
        let n = max(1, workerCount ?? System.onlineCPUs())
        let drivers = DataPlane.defaultDrivers
        var byTransport: [TransportProtocol: TransportDriver] = [:]
        for d in drivers { byTransport[d.transport] = d }
        self.drivers = byTransport
        self.workers = (0..<n).map { Worker(index: $0, tuning: tuning, drivers: drivers) }
        self.state = Mutex(State(config: FlowgateConfig(projectID: "")))
        (steering, steeringUnavailable) = DataPlane.openSteering(tuning.portRanges)
        portRangeMode = steering == nil ? .perPort : .lookup
        requestedPortRangeMode = tuning.portRanges
    }

    deinit { steering?.close() }

    public var current: FlowgateConfig { state.withLock { $0.config } }
    public var snapshot: RuntimeSnapshot? { state.withLock { $0.index?.snapshot } }
    public var lifecycle: Lifecycle { state.withLock { $0.lifecycle } }
    public var boundPortCount: Int { state.withLock { $0.bound.count } }

    /// Moves to `next` when the lifecycle allows it: starting → running or
    /// stopped; running ⇄ reloading; running or reloading → draining;
    /// anything but stopped → stopped. Staying put is allowed. A refused
    /// move (e.g. stopped → running, draining → running) changes nothing,
    /// is logged, and returns false.
    @discardableResult
    public func setLifecycle(_ next: Lifecycle) -> Bool {
        func allowed(_ from: Lifecycle) -> Bool {
            switch (from, next) {
            case (.starting, .running), (.running, .reloading), (.reloading, .running),
                 (.running, .draining), (.reloading, .draining): return true
            case (.stopped, .stopped): return true
            case (.stopped, _): return false
            case (_, .stopped): return true
            default: return from == next
            }
        }
        let (previous, moved) = state.withLock { s -> (Lifecycle, Bool) in
            let p = s.lifecycle
            guard allowed(p) else { return (p, false) }
            s.lifecycle = next
            return (p, true)
        }
        if !moved {
            Log.warn("state_change_refused", ["from": previous.rawValue, "to": next.rawValue])
        } else if previous != next {
            Log.info("state_changed", ["from": previous.rawValue, "to": next.rawValue])
        }
        return moved
    }

    /// Starts the worker threads and brings `config` live; on failure the
    /// workers are stopped again and nothing stays bound.
    public func start(_ config: FlowgateConfig) throws(ApplyError) {
        try checkPortRangeMode()
        for w in workers { w.start() }
        do {
            let p = try prepare(config)
            commit(p)
        } catch {
            for w in workers { w.stopAndJoin() }
            setLifecycle(.stopped)
            throw error
        }
        setLifecycle(.running)
    }

    public func prepare(_ new: FlowgateConfig) throws(ApplyError) -> PreparedUpdate {
        if steering != nil { return try prepareLookup(new) }
        let (previous, generation, bound) = state.withLock { ($0.index?.snapshot, $0.generation, $0.bound) }
        // After a takeover the first snapshot continues the previous
        // process's generation and takes its state (Handover/).
        let snapshot = SnapshotBuilder().build(new, generation: max(generation, seededGeneration()) + 1, previous: previous)
        applySeed(snapshot)
        let index = SnapshotIndex(snapshot, transports: Set(drivers.keys))
        let wanted = Set(index.plans.keys)
        let removed = bound.subtracting(wanted)
        // Stable order: listener by listener, ascending ports, so round-robin
        // ownership is deterministic.
        var added: [(key: ListeningSocketKey, plan: ListenerPlan)] = []
        for plan in snapshot.listeners where drivers[plan.listener.protocol] != nil {
            for port in plan.ports {
                let key = ListeningSocketKey(transport: plan.listener.protocol, bind: plan.bindAddress, port: port)
                if !bound.contains(key) && index.plans[key] === plan { added.append((key, plan)) }
            }
        }
        // Keys handed over by the previous process are not bound again.
        let (toBind, handed) = takeAdopted(added)
        let budget = DescriptorBudget(limit: System.descriptorLimit(), openNow: System.openDescriptorCount())
        let binder = ListenerBinder(drivers: drivers, workers: workers.count)
        let k = try binder.socketsPerPort(toBind, budget: budget)
        if !toBind.isEmpty {
            Log.info("descriptor_budget", ["limit": budget.limit, "open": budget.openNow, "reserve": budget.reserve,
                                           "new_ports": toBind.count, "workers": workers.count, "sockets_per_port": k,
                                           "mode": k == workers.count ? "reuseport_per_worker" : "ports_dealt_to_workers"])
        }
        var opened: ListenerBinder.Opened
        do throws(ApplyError) { opened = try binder.bind(toBind, socketsPerPort: k) } catch {
            for h in handed { System.close(h.socket.fd) }
            throw error
        }
        opened.add(handed, workers: workers.count)
        opened.add(widenAdopted(handed), workers: workers.count)
        let addedKeys = Set(added.map(\.key))
        let boundKeys = Set(toBind.map(\.key))
        if !handed.isEmpty {
            Log.info("listeners_adopted", ["ports": addedKeys.count - boundKeys.count, "sockets": handed.count])
        }
        for plan in snapshot.listeners where drivers[plan.listener.protocol] != nil && !boundKeys.isEmpty {
            let newPorts = plan.ports.filter { boundKeys.contains(ListeningSocketKey(transport: plan.listener.protocol, bind: plan.bindAddress, port: $0)) }
            if newPorts.isEmpty { continue }
            Log.info("listener_bound", ["listener": plan.listener.listenerArn, "protocol": plan.listener.protocol.rawValue,
                                        "bind": plan.listener.bind, "ports": DataPlane.describe(newPorts),
                                        "sockets_per_port": opened.socketsPerPort])
        }
        return PreparedUpdate(config: new, index: index, opened: opened, added: addedKeys, removed: removed)
    }

    public func commit(_ prepared: PreparedUpdate) {
        precondition(!prepared.finished, "update committed or aborted twice")
        prepared.finished = true
        let index = prepared.index
        let removed = prepared.removed
        // The port map changes before the workers swap: new groups are
        // listening already (their queues fill until attached), and removed
        // ports are refused from here on.
        if let change = prepared.lookup { applyLookup(change) }
        let latch = Latch(workers.count)
        for (i, w) in workers.enumerated() {
            let mine = prepared.opened.byWorker[i]
            w.post { w in
                w.swap(index)
                for s in mine {
                    guard let plan = index.plans[s.key], let service = w.service(s.key.transport) else { System.close(s.fd); continue }
                    service.attach(s, plan: plan)
                }
                // After the swap, the owner closes the sockets of removed
                // ports; commit returns only then, so a caller told "done"
                // finds removed ports refusing as well as new ones serving.
                if !removed.isEmpty {
                    for service in w.services.values {
                        for k in service.attachedKeys where removed.contains(k) { service.detach(k) }
                    }
                }
                latch.countDown()
            }
        }
        latch.wait()
        let previous = state.withLock { s in
            let previous = s.config
            s.config = prepared.config
            s.index = index
            s.generation = index.snapshot.generation
            s.bound.subtract(removed)
            s.bound.formUnion(prepared.added)
            return previous
        }
        if let change = prepared.lookup { finishLookup(change) }
        didCommit(previous: previous, index: index)
        if !removed.isEmpty { Log.info("ports_closed", ["count": removed.count]) }
        Log.info("snapshot_committed", ["generation": index.snapshot.generation, "workers": workers.count,
                                        "ports": state.withLock { $0.bound.count }])
    }

    /// After every worker swapped in `index`: reconfigure the health checks
    /// and arm `connection_drain` deadlines for members the change took out
    /// of service.
    private func didCommit(previous: FlowgateConfig, index: SnapshotIndex) {
        health.apply(index.snapshot)
        let orders = ConnectionDrainPlanner.orders(previous: previous, next: index.snapshot.config)
        guard !orders.isEmpty else { return }
        for o in orders {
            Log.info("drain_started", ["pool": o.poolID, "member": o.memberID, "timeout_s": o.timeout])
        }
        for w in workers { w.post { w in w.scheduleDrain(orders) } }
    }

    public func abort(_ prepared: PreparedUpdate) {
        precondition(!prepared.finished, "update committed or aborted twice")
        prepared.finished = true
        prepared.opened.closeAll()
        if let change = prepared.lookup { abortLookup(change) }
        Log.info("update_aborted", ["closed_sockets": prepared.opened.count])
    }

    /// Flows open on every worker.
    public var activeFlows: Int { workers.reduce(0) { $0 + $1.counters.activeFlows.load(ordering: .relaxed) } }

    /// What a drain waits for: TCP connections plus live UDP sessions (which,
    /// once draining, end after a second of silence; UDPRelay.drainQuiet).
    public var drainingFlows: Int { activeFlows + udpTotals.sessions }

    /// No new flows from now on; established flows go on. TCP listening
    /// sockets close; UDP ones stay open for the live sessions' replies but
    /// start no new session. Returns after every worker has done so.
    public func stopAccepting() {
        let latch = Latch(workers.count)
        for w in workers {
            w.post { w in
                for s in w.services.values { s.stopAccepting() }
                latch.countDown()
            }
        }
        latch.wait()
        // UDP sockets stay bound until shutdown() (see above).
        state.withLock { $0.bound = $0.bound.filter { $0.transport == .udp } }
        Log.info("listeners_closed", ["active_flows": activeFlows, "udp_sessions": udpTotals.sessions])
    }

    /// Start of a drain after a takeover: the next process serves the same
    /// listening sockets, so every worker stops reading them without taking
    /// in their queues; UDP ones stay open for the live sessions' replies.
    public func handOver(nextWorkers: Int) {
        // The next process's own program steers the ports from now on
        // (attached before `go`); this one's would keep steering its old
        // ranges to sockets it no longer reads.
        steering?.detach()
        let closing = surplusKeys(nextWorkers: nextWorkers)
        let latch = Latch(workers.count)
        for (i, w) in workers.enumerated() {
            let mine = closing[i] ?? []
            w.post { w in
                for s in w.services.values { s.handOver(closing: mine) }
                latch.countDown()
            }
        }
        latch.wait()
        state.withLock { $0.bound = $0.bound.filter { $0.transport == .udp } }
        Log.info("listeners_handed_over", ["active_flows": activeFlows, "udp_sessions": udpTotals.sessions])
    }

    /// Closes every flow and listening socket and joins the worker threads.
    public func shutdown() {
        let left = activeFlows
        health.stop()
        for w in workers { w.stopAndJoin() }
        steering?.detach()
        state.withLock { $0.bound.removeAll() }
        setLifecycle(.stopped)
        Log.info("data_plane_stopped", ["flows_cut": left])
    }

    /// "8000-8009,9000" for a sorted port list.
    static func describe(_ ports: [Int]) -> String {
        var parts: [String] = []
        var i = 0
        while i < ports.count {
            var j = i
            while j + 1 < ports.count && ports[j + 1] == ports[j] + 1 { j += 1 }
            parts.append(i == j ? "\(ports[i])" : "\(ports[i])-\(ports[j])")
            i = j + 1
        }
        return parts.joined(separator: ",")
    }
}
