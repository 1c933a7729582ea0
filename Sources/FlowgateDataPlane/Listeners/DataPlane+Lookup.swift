// `tuning.port_ranges: lookup` in the data plane (docs/architecture.md §20):
// per listener one socket group (LookupSockets.swift), its first socket in
// a socket-map slot, and the listener's ranges in the port map
// (PortLookupSteering.swift). A change that only moves ranges binds nothing:
// it rewrites port-map entries, before the workers swap the snapshot in.
import FlowgateCore
import FlowgateSystem

/// What a prepared lookup-mode change will do to the maps.
struct LookupChange {
    /// Every bound lookup key's slot after the change.
    var slots: [ListeningSocketKey: UInt32]
    /// Slots taken by this change (returned on abort).
    var newSlots: [UInt32]
    /// Slots of removed keys (returned after commit).
    var freedSlots: [UInt32]
    /// The whole port map after the change.
    var entries: [PortLookupKey: UInt32]
}

extension DataPlane {
    static func openSteering(_ mode: PortRangeMode) -> (PortLookupSteering?, String?) {
        if mode == .perPort { return (nil, "tuning.port_ranges is per_port") }
        do throws(SteeringError) { return (try PortLookupSteering.open(), nil) } catch { return (nil, error.description) }
    }

    /// Logs the mode once at start; `lookup` asked for and unavailable fails the start.
    func checkPortRangeMode() throws(ApplyError) {
        let why = requestedPortRangeMode == .perPort ? "-" : (steeringUnavailable ?? "-")
        Log.info("port_ranges", ["mode": portRangeMode == .lookup ? "lookup" : "per_port",
                                 "requested": requestedPortRangeMode.rawValue, "reason": why])
        if requestedPortRangeMode == .lookup, steering == nil {
            throw ApplyError(.permissionDenied, "tuning.port_ranges: lookup is unavailable: \(steeringUnavailable ?? "unknown") (it needs Linux 5.9 or later with CAP_BPF and CAP_NET_ADMIN; use auto or per_port)")
        }
    }

    func prepareLookup(_ new: FlowgateConfig) throws(ApplyError) -> PreparedUpdate {
        guard let steering else { preconditionFailure("prepareLookup without steering") }
        let (previous, generation, bound, slots) = state.withLock { ($0.index?.snapshot, $0.generation, $0.bound, $0.lookupSlots) }
        // After a takeover the first snapshot continues the previous process's generation and takes its
        // state (Handover/), as in `prepare`.
        let snapshot = SnapshotBuilder().build(new, generation: max(generation, seededGeneration()) + 1, previous: previous)
        applySeed(snapshot)
        let index = SnapshotIndex(snapshot, transports: Set(drivers.keys), lookup: true)
        let removed = bound.subtracting(index.plans.keys)
        var added: [(key: ListeningSocketKey, plan: ListenerPlan)] = []
        for plan in snapshot.listeners where drivers[plan.listener.protocol] != nil {
            let key = ListeningSocketKey.lookup(plan)
            if !bound.contains(key) { added.append((key, plan)) }
        }
        try checkConflicts(snapshot, previous: previous, added: Set(added.map(\.key)), adopted: adoptedKeys())
        let (toBind, handed) = takeAdopted(added)
        var opened = ListenerBinder.Opened(byWorker: Array(repeating: [], count: workers.count), socketsPerPort: workers.count)
        for entry in toBind {
            do throws(SystemError) {
                for (j, fd) in try LookupSockets.openGroup(entry.key, count: workers.count).enumerated() {
                    opened.byWorker[j].append(ListeningSocket(key: entry.key, fd: fd))
                }
            } catch {
                opened.closeAll()
                for h in handed { System.close(h.socket.fd) }
                throw ListenerBinder.applyError(error, listener: entry.plan.listener, address: SocketAddress(entry.key.bind, port: 0))
            }
        }
        opened.add(handed, workers: workers.count)
        opened.add(widenAdopted(handed), workers: workers.count)
        var change = LookupChange(slots: slots.filter { !removed.contains($0.key) }, newSlots: [],
                                  freedSlots: slots.filter { removed.contains($0.key) }.map(\.value), entries: [:])
        func fail(_ e: ApplyError) -> ApplyError {
            opened.closeAll()
            for s in change.newSlots { steering.releaseSlot(s) }
            return e
        }
        for entry in added {
            // Worker 0 holds socket 0 of every group (bound here or handed over).
            guard let first = opened.byWorker[0].first(where: { $0.key == entry.key })?.fd else { continue }
            guard let slot = steering.allocateSlot() else {
                throw fail(ApplyError(.other, "listener \(entry.plan.listener.listenerArn): more than \(PortLookupSteering.socketSlots) listener sockets for port_ranges: lookup"))
            }
            change.newSlots.append(slot)
            do throws(SystemError) { try steering.setSocket(slot, fd: first) } catch {
                throw fail(ApplyError(.other, "listener \(entry.plan.listener.listenerArn): cannot add its socket to the sk_lookup socket map: \(error)"))
            }
            change.slots[entry.key] = slot
        }
        let listeners = snapshot.listeners.compactMap { plan -> PortLookupTable.Listener? in
            guard let slot = change.slots[.lookup(plan)] else { return nil }
            return .init(transport: plan.listener.protocol, bind: plan.bindAddress, ranges: plan.listener.portRanges, slot: slot)
        }
        change.entries = PortLookupTable.entries(listeners)
        guard PortLookupSteering.fits(change.entries) else {
            throw fail(ApplyError(.other, "port_ranges: lookup: the listeners need \(change.entries.count) port-map entries, more than \(PortLookupSteering.portEntries)"))
        }
        if !handed.isEmpty { Log.info("listeners_adopted", ["groups": Set(handed.map(\.socket.key)).count, "sockets": handed.count]) }
        for entry in toBind {
            Log.info("listener_bound", ["listener": entry.plan.listener.listenerArn, "protocol": entry.key.transport.rawValue,
                                        "bind": entry.plan.listener.bind, "ports": DataPlane.describe(entry.plan.ports),
                                        "mode": "lookup", "sockets": workers.count])
        }
        let p = PreparedUpdate(config: new, index: index, opened: opened, added: Set(added.map(\.key)), removed: removed)
        p.lookup = change
        return p
    }

    /// Refuses ports this change starts steering that another socket of the
    /// namespace already serves (PortConflicts.swift): every port of a new
    /// listener, the ports an existing one gains. Groups handed over by a
    /// previous process are its ports already.
    private func checkConflicts(_ snapshot: RuntimeSnapshot, previous: RuntimeSnapshot?, added: Set<ListeningSocketKey>,
                                adopted: Set<ListeningSocketKey>) throws(ApplyError) {
        var own: Set<UInt64>?
        for plan in snapshot.listeners where drivers[plan.listener.protocol] != nil {
            let key = ListeningSocketKey.lookup(plan)
            if adopted.contains(key) { continue }
            let before = added.contains(key) ? [] : previous?.listeners.first { $0.listener.listenerArn == plan.listener.listenerArn }?.listener.portRanges ?? []
            let ranges = plan.listener.portRanges
            // Most changes (members, pools) gain no port: the socket tables are not read for them.
            if ranges.allSatisfy({ r in before.contains { $0.fromPort <= r.fromPort && r.toPort <= $0.toPort } }) { continue }
            let gained: (Int) -> Bool = { p in ranges.contains { $0.ports.contains(p) } && !before.contains { $0.ports.contains(p) } }
            if own == nil { own = PortConflicts.ownSocketInodes() }
            if let c = PortConflicts.find(plan.listener.protocol, bind: plan.bindAddress, ports: gained, own: own ?? []) {
                throw ApplyError(.addressInUse, "listener \(plan.listener.listenerArn) port \(c.port): cannot bind \(plan.listener.protocol.rawValue) \(plan.bindAddress.withPort(c.port)): Address already in use (port_ranges lookup: another socket is bound to \(c.address.withPort(c.port)), socket inode \(c.inode))")
            }
        }
    }

    /// Commit, before the workers swap: the port map becomes the change's.
    func applyLookup(_ change: LookupChange) {
        guard let steering else { return }
        if let e = steering.apply(change.entries) {
            Log.error("port_map_update_failed", ["error": e.description, "entries": change.entries.count])
        }
    }

    /// Commit, after every worker swapped: removed groups' slots are free.
    func finishLookup(_ change: LookupChange) {
        for s in change.freedSlots { steering?.releaseSlot(s) }
        state.withLock { $0.lookupSlots = change.slots }
    }

    func abortLookup(_ change: LookupChange) {
        for s in change.newSlots { steering?.releaseSlot(s) }
    }

    /// A duplicate of the sk_lookup link, for the systemd fd store: while
    /// systemd holds it the program stays attached between two processes.
    public func duplicateSteeringLink() -> Int32? { steering?.duplicateLink() }

    /// Port-map entries now (metrics, tests).
    public var portMapEntries: Int { steering?.entryCount ?? 0 }
}
