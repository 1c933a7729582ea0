#if canImport(Glibc)
import Glibc
#endif
import FlowgateCore
import FlowgateSystem

/// The UDP half of one worker's data plane (docs/architecture.md §6). Every
/// method runs on the worker's loop thread; nothing here takes a lock.
///
/// Hot path, per batch of up to `batchSlots` datagrams:
///   client → listener socket: one recvmmsg; per datagram a FlowKey lookup in
///   the listener's FlowTable and an O(1) LRU touch; consecutive datagrams of
///   one session leave in one sendmmsg on its connected upstream socket.
///   member → upstream socket: one recvmmsg; one sendmmsg through the listener
///   socket to the client's address, with the PKTINFO source on a wildcard bind.
/// The two batches are allocated once per worker; nothing is allocated per
/// datagram (a new flow allocates its UDPFlow, socket and event once).
public final class UDPRelay: @unchecked Sendable {
    /// Datagrams per recvmmsg/sendmmsg. 32 cuts syscalls ~30× versus one per
    /// datagram (docs/architecture.md §15 has 40-60× at 64 for little extra gain on
    /// loopback) while keeping the two batches at 2 MiB each.
    public static let batchSlots: UInt32 = 32
    /// Room for the largest UDP payload (65,507 over IPv4, 65,527 over IPv6).
    public static let slotBytes = 65_536
    /// Expiry sweep period. Flows expire between `idle_timeout` and
    /// `idle_timeout + 0.25 s` after their last datagram.
    static let sweepInterval = 0.25
    /// Batches taken per readable event before yielding to the loop, so one
    /// busy socket cannot starve the others.
    static let roundsPerEvent = 8
    /// While draining (SIGTERM), a session silent this long in both
    /// directions is over. UDP has no end-of-flow signal, and idle_timeout
    /// (30 s by default) is longer than the drain timeout (10 s), so without
    /// this every SIGTERM after any UDP traffic would wait the whole drain;
    /// with it, a session still exchanging datagrams keeps its member until
    /// it pauses or the deadline passes, as TCP connections do.
    static let drainQuiet = 1.0
    /// Runs of equal-sized datagrams leave as one UDP_SEGMENT send (see
    /// fg_batch_send_connected): measured with iperf3 -u -l 64 -b 0 through
    /// one worker, the relay's CPU per datagram fell from 5.3 to 3.8 µs and
    /// its listener socket stopped overflowing. FLOWGATE_UDP_GSO=off sends
    /// every datagram with sendmmsg instead (to compare, or for a NIC that
    /// mishandles it; the kernel's own refusal switches it off by itself).
    static let gsoEnabled = System.environment("FLOWGATE_UDP_GSO") != "off"

    let base: EventBase
    let time: TimeSource
    let bufferBytes: Int
    let maxFlows: Int
    private let inBatches: DatagramBatch   // client → member
    private let outBatches: DatagramBatch  // member → client
    private(set) var listeners: [String: UDPListenerState] = [:]
    var portsByKey: [ListeningSocketKey: UDPPortSocket] = [:]
    /// Reply sockets of lookup-mode listeners, by the address and port clients reached.
    var replies = UDPReplySockets()
    /// Upstream fd → its session's slot in its listener's table (the event's
    /// argument names the listener). Grown only when a higher fd appears.
    var slotByFD: [Int32] = []
    private var sweepTimer: LoopTimer?
    /// The run of `inBatch` being collected by `clientReadable`.
    private var run: (slot: FlowTable<FlowKey, UDPSession>.Slot, start: UInt32) = (-1, 0)
    public private(set) var stats = UDPRelayStats()
    /// Where `stats` are published for other threads (the worker's).
    let counters: UDPCounters
    private var liveSessions: Int { listeners.values.reduce(0) { $0 + $1.table.count } }
    /// The worker's metrics (set by UDPService); flows fold into it on release.
    var metrics: WorkerMetrics?
    /// Set by `beginDrain`: no new sessions, quiet ones end.
    public private(set) var draining = false

    /// `maxFlows` bounds each listener's table on this worker
    /// (Tuning.maxUDPFlows); `bufferBytes` is Tuning.udpSocketBuffer.
    public init(base: EventBase, maxFlows: Int, bufferBytes: Int, time: TimeSource = SystemTime(),
                counters: UDPCounters = UDPCounters()) {
        self.base = base
        self.counters = counters
        self.maxFlows = maxFlows
        self.bufferBytes = bufferBytes
        self.time = time
        guard let i = DatagramBatch(slots: Int(UDPRelay.batchSlots), slotBytes: UDPRelay.slotBytes),
              let o = DatagramBatch(slots: Int(UDPRelay.batchSlots), slotBytes: UDPRelay.slotBytes) else {
            preconditionFailure("cannot allocate UDP batches")
        }
        inBatches = i; outBatches = o
        i.setGSO(UDPRelay.gsoEnabled)
        o.setGSO(UDPRelay.gsoEnabled)
        // unowned(unsafe): the relay cancels the timer in `shutdown` (also
        // from deinit), and a checked unowned load costs every tick.
        sweepTimer = base.every(UDPRelay.sweepInterval) { [unowned(unsafe) self] in self.sweep(); self.publish() }
    }

    deinit { shutdown() }

    // MARK: - Listening sockets (worker thread: start, snapshot swap, stop)

    /// Starts serving a socket bound by `UDPDriver` for `plan` (the relay owns
    /// it from now on). Its buffers are raised to `bufferBytes` here:
    /// recvmmsg/sendmmsg move bursts of datagrams, and the default 208 KB
    /// (net.core.rmem_default 212992) overflowed in iperf3 tests with 22-30%
    /// loss until 4 MiB (docs/architecture.md §15). Tuning's default,
    /// 4 MiB, is net.core.rmem_max here; SO_RCVBUFFORCE lets root exceed it.
    /// It caps queued datagrams; nothing is allocated up front.
    public func attach(_ key: ListeningSocketKey, fd: Int32, plan: ListenerPlan) {
        if portsByKey[key] != nil { detach(key) }
        let arn = plan.listener.listenerArn
        let state: UDPListenerState
        if let s = listeners[arn] {
            state = s
            if s.plan !== plan { s.update(plan) }
        } else {
            state = UDPListenerState(relay: self, plan: plan, maxFlows: maxFlows)
            listeners[arn] = state
        }
        if bufferBytes > 0 { System.setBuffers(fd, bytes: bufferBytes) }
        if key.isLookup {
            state.lookup = true
            state.lookupFamily = key.bind.isV4 ? AF_INET : AF_INET6
        }
        let p = UDPPortSocket(fd: fd, key: key, state: state)
        // The state holds the port socket; the event borrows it.
        p.event = LoopEvent(base, fd: fd, interest: .read, persist: true, handler: p)
        // A process taking over reads its UDP sockets only once it adopted
        // the previous one's sessions (UDP/UDPRelay+Handover.swift).
        if !UDPRelay.holdingListeners { p.event?.add() }
        state.ports.append(p)
        portsByKey[key] = p
    }

    /// Stops serving a key: its socket is closed, with the sessions that
    /// arrived on it (their replies could not leave from the right port). A
    /// listener left without sockets releases all its flows.
    public func detach(_ key: ListeningSocketKey) {
        guard let p = removePort(key) else { return }
        System.close(p.fd)
    }

    /// Takes a port out of its listener without closing the socket.
    private func removePort(_ key: ListeningSocketKey) -> UDPPortSocket? {
        guard let p = portsByKey.removeValue(forKey: key) else { return nil }
        let state = p.state
        for slot in state.table.slotsByRecency where state.table[slot].listenerFD == p.fd {
            let (_, s) = state.table.remove(slot)
            closeSession(state, s, reason: "port_closed")
        }
        if let e = p.event { e.free(); p.event = nil }
        state.ports.removeAll { $0 === p }
        if state.ports.isEmpty { dropListener(state) }
        return p
    }

    public var attachedKeys: [ListeningSocketKey] { Array(portsByKey.keys) }

    /// A new snapshot: every listener takes its new plan (flows keep their
    /// member unless it left the pool). A port now served by a different
    /// listener moves to it with its socket, ending the old listener's
    /// sessions on that port.
    public func snapshotDidChange(_ index: SnapshotIndex) {
        for p in Array(portsByKey.values) {
            guard let plan = index.plans[p.key] else { continue }   // removed: detached after the swap
            if plan.listener.listenerArn != p.state.arn {
                let fd = p.fd
                _ = removePort(p.key)
                attach(p.key, fd: fd, plan: plan)
            } else if p.state.plan !== plan {
                p.state.update(plan)
                if p.state.lookup { endUnservedSessions(p.state) }
            }
        }
    }

    /// A lookup listener's ranges changed: sessions on ports it no longer
    /// serves end now, closing their reply sockets, so those ports refuse
    /// at once (nothing else is bound there).
    private func endUnservedSessions(_ state: UDPListenerState) {
        for slot in state.table.slotsByRecency {
            guard let port = replies.port(of: state.table[slot].listenerFD),
                  !LookupSockets.serves(state.plan, port: Int(port)) else { continue }
            let (_, s) = state.table.remove(slot)
            closeSession(state, s, reason: "port_closed")
        }
    }

    /// Reply sockets open now (lookup-mode listeners; tests).
    var replySocketCount: Int { replies.count }

    /// For tests and single-listener use: a listener's new plan.
    func updateListener(_ plan: ListenerPlan) {
        listeners[plan.listener.listenerArn]?.update(plan)
    }

    /// Ends every flow (drain deadline); the sockets stay.
    public func closeAllFlows() {
        for state in listeners.values {
            for slot in state.table.slotsByRecency {
                let (_, s) = state.table.remove(slot)
                closeSession(state, s, reason: "shutdown")
            }
        }
    }

    private func dropListener(_ state: UDPListenerState) {
        for slot in state.table.slotsByRecency {
            let (_, s) = state.table.remove(slot)
            closeSession(state, s, reason: "listener_removed")
        }
        listeners[state.arn] = nil
    }

    /// Live sessions of a listener on this worker.
    public func sessionCount(_ listenerArn: String) -> Int { listeners[listenerArn]?.table.count ?? 0 }
    /// Live flows (affinity keys) of a listener on this worker.
    public func flowCount(_ listenerArn: String) -> Int {
        guard let s = listeners[listenerArn] else { return 0 }
        if s.plan.listener.clientAffinity == .none { return s.table.count }
        return s.flows.count
    }

    /// Graceful stop (SIGTERM): the listening sockets stay open so that live
    /// sessions keep their replies' source address, but no datagram starts a
    /// new session (dropped, counted); sessions silent for `drainQuiet` end
    /// now and at every sweep. The drain waits for the rest (`sessionCount`
    /// reaches 0 via the published counters) up to its deadline.
    public func beginDrain() {
        draining = true
        endQuietSessions(now: time.now())
    }

    /// A drain after a takeover: the next process reads the same listening
    /// sockets, so this one stops reading them at all (a datagram read here
    /// could only be dropped); the sockets stay open for the live sessions'
    /// replies, which leave from the address the client used. Sessions end
    /// after `drainQuiet` of silence as in `beginDrain`: their clients'
    /// datagrams now reach the next process.
    public func handOver() {
        for p in portsByKey.values { if let e = p.event { e.free(); p.event = nil } }
        beginDrain()
    }

    public func listeningDescriptor(_ key: ListeningSocketKey) -> Int32? { portsByKey[key]?.fd }

    private func endQuietSessions(now: Double) {
        for state in listeners.values {
            while let oldest = state.table.oldest, now - state.table.lastSeen(at: oldest) >= UDPRelay.drainQuiet {
                let (_, s) = state.table.remove(oldest)
                stats.sessionsEndedQuiet += 1
                closeSession(state, s, reason: "drain_quiet")
            }
        }
    }

    /// Releases every flow and closes every socket (worker exit).
    public func shutdown() {
        for key in Array(portsByKey.keys) { detach(key) }
        closeAllFlows()
        sweepTimer?.cancel()
        sweepTimer = nil
    }

    // MARK: - Client → member

    func clientReadable(_ port: UDPPortSocket) {
        let state = port.state
        let slots = UDPRelay.batchSlots
        for _ in 0..<UDPRelay.roundsPerEvent {
            let n: Int
            do { n = try inBatches.receive(port.fd, max: slots) } catch { return }
            if n == 0 { return }
            let now = time.now()
            stats.datagramsFromClients += Int(n)
            // A run: consecutive datagrams of one session, sent with one
            // sendmmsg. It is flushed before a new session is created, since
            // the insert may evict (and recycle the slot of) the run's session.
            run = (-1, 0)
            var bytes = 0
            for i in 0..<UInt32(n) {
                let length = inBatches.length(i)
                bytes &+= length
                let slot = session(for: i, state: state, port: port, now: now)
                if slot >= 0 { state.table[slot].flow.traffic.countIn(length) }   // metrics
                if slot != run.slot || slot < 0 {
                    flushRun(state, upTo: i)
                    run = (slot, i)
                }
            }
            flushRun(state, upTo: UInt32(n))
            stats.bytesFromClients &+= bytes
            if UInt32(n) < slots { return }
        }
    }

    /// The session slot for datagram `i` of `inBatch`, creating the flow and
    /// session if new; -1 to drop it (no eligible member, no socket).
    private func session(for i: UInt32, state: UDPListenerState, port: UDPPortSocket, now: Double) -> FlowTable<FlowKey, UDPSession>.Slot {
        let (peer, peerLength) = inBatches.address(i)
        let client = UDPAddress(peer, length: peerLength)
        var local = UDPAddress()
        var localIP = state.plan.bindAddress
        var localPort = UInt16(truncatingIfNeeded: port.key.port)
        if state.lookup {
            // The port (and address) the client reached, which sk_lookup
            // left in the packet (docs/architecture.md §20).
            var ss = sockaddr_storage()
            guard inBatches.originalDestination(i, into: &ss) else { return -1 }
            let len = socklen_t(ss.ss_family == sa_family_t(AF_INET) ? MemoryLayout<sockaddr_in>.size : MemoryLayout<sockaddr_in6>.size)
            let original = withUnsafePointer(to: &ss) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { UDPAddress($0, length: len) }
            }
            guard LookupSockets.serves(state.plan, port: Int(original.port)) else { return -1 }
            localIP = original.ip
            localPort = original.port
            local = UDPAddress(original.ip, port: original.port, family: state.lookupFamily)
        } else if state.wildcard {
            var ss = sockaddr_storage()
            if inBatches.localAddress(i, into: &ss) {
                let len = socklen_t(ss.ss_family == sa_family_t(AF_INET) ? MemoryLayout<sockaddr_in>.size : MemoryLayout<sockaddr_in6>.size)
                local = withUnsafePointer(to: &ss) { p in
                    p.withMemoryRebound(to: sockaddr.self, capacity: 1) { UDPAddress($0, length: len) }
                }
                localIP = local.ip
            }
        }
        let ctx = FlowContext(transport: .udp, client: client.ip, clientPort: client.port, local: localIP, localPort: localPort)
        let key = FlowKey(ctx, affinity: .none)
        if let slot = state.table.slot(of: key) {
            if slot == run.slot { state.table.touch(slot, now: now); return slot }
            guard ensureUpstream(state, slot) else { return -1 }
            state.table.touch(slot, now: now)
            return slot
        }
        flushRun(state, upTo: i)
        if draining {
            stats.droppedDraining += 1
            return -1
        }
        return newSession(state, key: key, context: ctx, client: client, local: local, listenerFD: port.fd, now: now)
    }

    private func newSession(_ state: UDPListenerState, key: FlowKey, context ctx: FlowContext, client: UDPAddress,
                            local: UDPAddress, listenerFD: Int32, now: Double) -> FlowTable<FlowKey, UDPSession>.Slot {
        let affinity = state.plan.listener.clientAffinity
        let flowKey = FlowKey(ctx, affinity: affinity)
        let flow: UDPFlow
        if affinity == .sourceIP, let existing = state.flows[flowKey] {
            flow = existing
        } else {
            flow = UDPFlow(key: flowKey, context: ctx, planGeneration: state.planGeneration)
            if affinity == .sourceIP { state.flows[flowKey] = flow }
        }
        // Counted before the insert: an eviction it causes may end another
        // session of this same flow, which must not end the flow.
        flow.sessions += 1
        if !checkTarget(state, flow) {
            endSession(state, flow, reason: "no_member")
            return -1
        }
        // A lookup listener replies through the socket bound to the address
        // and port this client reached (UDPReplySockets.swift).
        var replyFD = listenerFD
        if state.lookup {
            do throws(SystemError) { replyFD = try replies.acquire(local) } catch {
                stats.upstreamOpenFailures += 1
                endSession(state, flow, reason: "reply_socket_failed")
                return -1
            }
        }
        let value = UDPSession(flow: flow, client: client, local: state.lookup ? UDPAddress() : local, listenerFD: replyFD)
        let (slot, evicted) = state.table.insert(key, value, now: now)
        stats.sessionsStarted += 1
        if let ev = evicted {
            stats.sessionsEvicted += 1
            closeSession(state, ev.value, reason: "evicted")
        }
        guard openUpstream(state, slot) else {
            let (_, s) = state.table.remove(slot)
            closeSession(state, s, reason: "upstream_failed")
            return -1
        }
        return slot
    }

    /// Makes sure the session's flow has a live member and its upstream
    /// socket is connected to it.
    private func ensureUpstream(_ state: UDPListenerState, _ slot: FlowTable<FlowKey, UDPSession>.Slot) -> Bool {
        let flow = state.table[slot].flow
        guard checkTarget(state, flow) else { return false }
        if state.table[slot].generation != flow.generation || state.table[slot].upstreamFD < 0 {
            return openUpstream(state, slot)
        }
        return true
    }

    /// Re-picks the flow's member if it has none (new, refused) or its member
    /// left the pool; a member still in the pool is kept (docs/architecture.md §3.7, §7).
    private func checkTarget(_ state: UDPListenerState, _ flow: UDPFlow) -> Bool {
        if flow.checkedPlanGeneration != state.planGeneration {
            flow.checkedPlanGeneration = state.planGeneration
            if let t = flow.target, !state.memberIDs.contains(t.memberID) {
                releaseTarget(flow, connected: true)
                stats.repickedRemoved += 1
                logRepick(state, flow, member: t.memberID, reason: "member_removed")
            }
        }
        if flow.target != nil { return true }
        let excluding = flow.refusedMember.map { [$0] } ?? []
        var picked = state.plan.pick(flow.context, excluding: excluding)
        // The refused member may be the only one: trying it again beats dropping.
        if picked == nil, !excluding.isEmpty { picked = state.plan.pick(flow.context) }
        guard let target = picked else {
            stats.droppedNoMember += 1
            if !state.loggedNoMember {
                state.loggedNoMember = true
                Log.warn("udp_no_member", ["listener": state.arn, "pool": state.plan.pool.id])
            }
            return false
        }
        if flow.generation == 0 {
            stats.flowsStarted += 1
            if state.plan.listener.connectionLog {
                flow.openedAt = System.monotonicMicroseconds()   // connection log: duration
                Log.info("udp_flow_opened", ["listener": state.arn, "client": flow.context.client, "client_port": flow.context.clientPort,
                                             "local": flow.context.local, "local_port": flow.context.localPort, "member": target.memberID])
            }
        }
        flow.target = target
        flow.plan = state.plan
        flow.generation &+= 1
        flow.refusedMember = nil
        return true
    }

    /// The one `release` for the flow's current pick.
    private func releaseTarget(_ flow: UDPFlow, connected: Bool) {
        guard let t = flow.target, let p = flow.plan else { return }
        p.release(flow.context, target: t, connected: connected)
        metrics?.udpReleased(flow, plan: p, target: t)
        flow.target = nil
        flow.plan = nil
    }

    /// (Re)opens the session's upstream socket to its flow's member.
    private func openUpstream(_ state: UDPListenerState, _ slot: FlowTable<FlowKey, UDPSession>.Slot) -> Bool {
        closeUpstream(&state.table[slot])
        guard let target = state.table[slot].flow.target else { return false }
        var fd: Int32 = -1
        var evictedForDescriptor = false
        while fd < 0 {
            do {
                fd = try UDPSockets.openUpstream(target, bufferBytes: bufferBytes)
            } catch {
                // Out of descriptors (every flow holds one): give this flow the
                // least recently used session's, once, so the table behaves as
                // an LRU bounded by the descriptor limit too. Never the slot
                // being opened nor the run waiting to be sent.
                if error.isDescriptorLimit, !evictedForDescriptor, let victim = state.table.oldest,
                   victim != slot, victim != run.slot {
                    evictedForDescriptor = true
                    let (_, s) = state.table.remove(victim)
                    stats.sessionsEvicted += 1
                    closeSession(state, s, reason: "descriptors_exhausted")
                    continue
                }
                stats.upstreamOpenFailures += 1
                if !state.loggedUpstreamFailure {
                    state.loggedUpstreamFailure = true
                    Log.error("udp_upstream_failed", ["listener": state.arn, "member": target.memberID, "error": error,
                                                      "note": "logged once per listener until the next config change; counted"])
                }
                return false
            }
        }
        guard let ev = LoopEvent(base, fd: fd, interest: .read, persist: true, handler: state) else {
            System.close(fd)
            return false
        }
        ev.add()
        if Int(fd) >= slotByFD.count {
            slotByFD.append(contentsOf: repeatElement(-1, count: Int(fd) + 1024 - slotByFD.count))
        }
        slotByFD[Int(fd)] = slot
        state.table[slot].upstreamFD = fd
        state.table[slot].event = ev
        state.table[slot].generation = state.table[slot].flow.generation
        return true
    }

    func closeUpstream(_ s: inout UDPSession) {
        if let e = s.event { e.free(); s.event = nil }
        if s.upstreamFD >= 0 {
            slotByFD[Int(s.upstreamFD)] = -1
            System.close(s.upstreamFD)
            s.upstreamFD = -1
        }
    }

    /// A session removed from the table: close its socket; end its flow if
    /// it was the last session.
    func closeSession(_ state: UDPListenerState, _ s: UDPSession, reason: String) {
        var s = s
        closeUpstream(&s)
        if state.lookup { replies.release(s.listenerFD) }
        endSession(state, s.flow, reason: reason)
    }

    private func endSession(_ state: UDPListenerState, _ flow: UDPFlow, reason: String) {
        flow.sessions -= 1
        precondition(flow.sessions >= 0, "UDP flow session count below zero")
        guard flow.sessions == 0 else { return }
        if state.plan.listener.connectionLog, let t = flow.target {
            Log.info("udp_flow_closed", ["listener": state.arn, "client": flow.context.client, "client_port": flow.context.clientPort,
                                         "member": t.memberID, "reason": reason,
                                         "datagrams_in": flow.traffic.datagramsIn, "datagrams_out": flow.traffic.datagramsOut,
                                         "bytes_in": flow.traffic.bytesIn, "bytes_out": flow.traffic.bytesOut,
                                         "duration_s": flow.openedAt == 0 ? "-" : ConnectionLog.seconds(since: flow.openedAt)])
        }
        releaseTarget(flow, connected: true)
        if let f = state.flows[flow.key], f === flow { state.flows[flow.key] = nil }
    }

    /// Sends the pending run, datagrams [run.start, end) of `inBatch`, and clears it.
    private func flushRun(_ state: UDPListenerState, upTo end: UInt32) {
        if run.slot >= 0, run.start < end { sendRun(state, run.slot, from: run.start, to: end) }
        run = (-1, end)
    }

    /// Sends datagrams [from, to) of `inBatch` on the session's upstream socket.
    private func sendRun(_ state: UDPListenerState, _ slot: FlowTable<FlowKey, UDPSession>.Slot, from: UInt32, to: UInt32) {
        var first = from
        var retried = false
        while first < to {
            let fd = state.table[slot].upstreamFD
            let sent: Int
            do { sent = try inBatches.sendConnected(fd, first: first, count: to - first) } catch {
                // A pending ICMP port unreachable from the member surfaces
                // here as ECONNREFUSED: re-pick now and resend once (docs/architecture.md §3.6).
                if error.isConnectionRefused, !retried {
                    retried = true
                    refused(state, slot)
                    if ensureUpstream(state, slot) { continue }
                }
                stats.droppedSendFailed += Int(to - first)
                return
            }
            if sent > 0 {
                stats.datagramsToMembers += sent
                first += UInt32(sent)
                continue
            }
            stats.droppedSendFailed += Int(to - first)
            return
        }
    }

    // MARK: - Member → client

    func memberReadable(_ state: UDPListenerState, fd: Int32) {
        guard Int(fd) < slotByFD.count else { return }
        let slot = slotByFD[Int(fd)]
        guard slot >= 0 else { return }
        let slots = UDPRelay.batchSlots
        for _ in 0..<UDPRelay.roundsPerEvent {
            let n: Int
            do { n = try outBatches.receiveConnected(fd, max: slots) } catch {
                if error.isConnectionRefused { refused(state, slot) }
                return
            }
            if n == 0 { return }
            state.table.touch(slot, now: time.now())
            stats.datagramsFromMembers += Int(n)
            let listenerFD = state.table[slot].listenerFD
            let client = state.table[slot].client
            let local = state.table[slot].local
            var bytes = 0
            let flow = state.table[slot].flow
            flow.traffic.datagramsOut += Int(n)   // metrics
            for k in 0..<UInt32(n) {
                let length = outBatches.length(k)
                bytes &+= length
                flow.traffic.bytesOut += length   // metrics
                client.withSockaddr { sa, len in outBatches.setAddress(k, sa, len) }
                if local.length > 0 {
                    local.withSockaddr { sa, _ in outBatches.setSource(k, sa) }
                } else {
                    outBatches.setSource(k, nil)
                }
            }
            stats.bytesFromMembers &+= bytes
            var first: UInt32 = 0
            while first < UInt32(n) {
                let r = (try? outBatches.send(listenerFD, first: first, count: UInt32(n) - first)) ?? -1
                if r <= 0 { stats.droppedSendFailed += Int(UInt32(n) - first); break }
                stats.datagramsToClients += Int(r)
                first += UInt32(r)
            }
            if UInt32(n) < slots { return }
        }
    }

    /// The member refused (ICMP port unreachable): release it (as a failed
    /// connect) and let the flow's next datagram pick another member.
    private func refused(_ state: UDPListenerState, _ slot: FlowTable<FlowKey, UDPSession>.Slot) {
        let flow = state.table[slot].flow
        guard let t = flow.target, state.table[slot].generation == flow.generation else { return }
        flow.refusedMember = t.memberID
        releaseTarget(flow, connected: false)
        stats.repickedRefused += 1
        logRepick(state, flow, member: t.memberID, reason: "port_unreachable")
    }

    /// One line per (member, reason) per listener until the next config
    /// change: a dead member with 10,000 flows must not write 10,000 lines.
    /// Every re-pick is counted in `stats` either way.
    private func logRepick(_ state: UDPListenerState, _ flow: UDPFlow, member: String, reason: String) {
        guard state.loggedRepicks.insert(member + " " + reason).inserted else { return }
        Log.info("udp_flow_repick", ["listener": state.arn, "client": flow.context.client, "member": member, "reason": reason,
                                     "note": "first of this member and reason; the rest are counted"])
    }

    /// UDP_SEGMENT sends made so far, client → member and member → client.
    var gsoSends: (toMembers: Int, toClients: Int) {
        (inBatches.gsoSends, outBatches.gsoSends)
    }

    /// Stores `stats` where other threads read them.
    func publish() { counters.publish(stats, sessions: liveSessions) }

    // MARK: - Expiry

    private func sweep() {
        let now = time.now()
        for state in listeners.values {
            while let e = state.table.popExpired(now: now) {
                stats.sessionsExpired += 1
                closeSession(state, e.value, reason: "idle_timeout")
            }
        }
        if draining { endQuietSessions(now: now) }
    }
}
