// Established connections and flow state across a takeover
// (docs/architecture.md §16.2-16.4). Old side: pause the quiescent TCP
// connections, lend their sockets, then either close them (commit) or read
// them again (roll back). New side: restore the state blob into the first
// snapshot, check every connection against this configuration, adopt them.
import FlowgateCore
import FlowgateSystem
import Synchronization

extension DataPlane {
    // MARK: state blob

    /// The state blob of the applied snapshot (nil before the first commit).
    public func handoverBlob() -> [UInt8]? {
        guard let s = snapshot else { return nil }
        return HandoverCodec.encode(s.handoverState(takeoverGeneration: handover.generation.load(ordering: .relaxed)))
    }

    /// A validated state from the previous process: its snapshot generation
    /// is continued and its tables restored by the first `prepare`; this
    /// process's takeover generation is one more than the sender's.
    public func seed(_ state: HandoverState) {
        handover.seed.withLock { $0 = state }
        handover.generation.store(state.takeoverGeneration + 1, ordering: .relaxed)
    }

    /// Called by `prepare` with each snapshot it builds: the first one with
    /// pools after a takeover takes the received state, once (the data
    /// plane starts on an empty configuration before the file's is applied).
    func applySeed(_ snapshot: RuntimeSnapshot) {
        guard !snapshot.pools.isEmpty,
              let s = handover.seed.withLock({ v -> HandoverState? in defer { v = nil }; return v }) else { return }
        let r = snapshot.restore(s)
        Log.info("takeover_state_restored", ["members": r.members, "sticky_entries": r.entries,
                                             "previous_generation": s.snapshotGeneration, "takeover_generation": s.takeoverGeneration + 1])
    }

    /// The snapshot generation the first `prepare` continues from.
    func seededGeneration() -> UInt64 { handover.seed.withLock { $0?.snapshotGeneration ?? 0 } }

    // MARK: old side

    /// Pauses every established TCP connection that is quiescent (nothing
    /// pending in Flowgate in either direction, neither side ended) within
    /// `seconds`: a connection with bytes pending is looked at again every
    /// 2 ms while it flushes. Returns the paused ones, sockets included
    /// (still owned here until `commitHandover` or `rollBackHandover`).
    public func pauseForHandover(within seconds: Double) -> (connections: [HandedConnection], sessions: [HandedSession]) {
        let deadline = System.monotonicMicroseconds() + UInt64(max(0, seconds) * 1_000_000)
        let latch = Latch(workers.count)
        let found = Mutex<[HandedConnection]>([])
        let foundSessions = Mutex<[HandedSession]>([])
        let kept = Atomic<Int>(0)
        let registry = handover
        // Which of its port's sockets each worker holds, in the order they
        // would be handed over (duplicateListeners sorts by worker).
        var offered: [ListeningSocketKey: [Int]] = [:]
        for (k, order) in self.offered.withLock({ $0 }) { offered[k] = order }
        for w in workers {
            w.post { [offered] w in
                if let udp = w.service(.udp) as? UDPService {
                    var (handed, paused) = udp.relay.pauseSessionsForHandover()
                    registry.pausedSessions.withLock { $0[w.index] = paused }
                    for i in handed.indices { handed[i].socketIndex = offered[handed[i].key]?.firstIndex(of: w.index) ?? w.index }
                    foundSessions.withLock { $0 += handed }
                }
                guard let tcp = w.service(.tcp) as? TCPService else { latch.countDown(); return }
                var waiting: [TCPConnection] = []
                var mine: [TCPConnection] = []
                var c = tcp.head
                while let conn = c { if conn.phase == .relaying { waiting.append(conn) }; c = conn.next }
                // HTTP connections are not handed over: they drain here.
                var h = tcp.httpHead
                var http = 0
                while let conn = h { http += 1; h = conn.next }
                func sweep() {
                    waiting = waiting.filter { conn in
                        guard conn.phase == .relaying, !conn.upstream.ended, !conn.downstream.ended else { return false }
                        if conn.quiescent { conn.pauseForHandover(); mine.append(conn); return false }
                        return true
                    }
                    if waiting.isEmpty || System.monotonicMicroseconds() >= deadline {
                        kept.add(waiting.count + http, ordering: .relaxed)
                        let box = PausedConnections(mine)
                        registry.paused.withLock { $0[w.index] = box }
                        let now = tcp.now
                        let handed = mine.map { $0.handed(now: now) }
                        found.withLock { $0 += handed }
                        latch.countDown()
                    } else {
                        w.loop.after(0.002) { sweep() }
                    }
                }
                sweep()
            }
        }
        latch.wait()
        var all = found.withLock { $0 }
        for i in all.indices { all[i].id = i }
        var sessions = foundSessions.withLock { $0 }
        for i in sessions.indices { sessions[i].id = i }
        handover.connectionsKept.add(kept.load(ordering: .relaxed), ordering: .relaxed)
        return (all, sessions)
    }

    /// The next process adopted the paused connections: this process lets go
    /// of its descriptors (the sockets stay open in the next one), except for
    /// `declined` ones (by `HandedConnection.id`, in `handed`), which resume here.
    public func commitHandover(_ handed: [HandedConnection], declined: Set<Int>,
                               sessions: [HandedSession] = [], declinedSessions: Set<Int> = []) {
        let declinedFDs = Set(handed.filter { declined.contains($0.id) }.map(\.client))
        let moved = finishPaused { conn in
            if declinedFDs.contains(conn.clientFD) { conn.resumeAfterHandover(); return false }
            conn.close(reason: "handed_over")
            return true
        }
        handover.connectionsHandedOver.add(moved.yes, ordering: .relaxed)
        handover.connectionsKept.add(declinedFDs.count, ordering: .relaxed)
        let declinedUpstreams = Set(sessions.filter { declinedSessions.contains($0.id) }.map(\.upstream))
        let ended = finishPausedSessions(commit: true, declined: declinedUpstreams)
        handover.sessionsHandedOver.add(ended - declinedUpstreams.count, ordering: .relaxed)
        handover.sessionsKept.add(udpTotals.sessions, ordering: .relaxed)
    }

    /// Ends (commit) or resumes the paused UDP sessions on every worker.
    private func finishPausedSessions(commit: Bool, declined: Set<Int32>) -> Int {
        let latch = Latch(workers.count)
        let count = Atomic<Int>(0)
        let registry = handover
        for w in workers {
            w.post { w in
                // Committed: stop reading the listening sockets first, or a
                // datagram read between closing a session and the drain would
                // start a second session (another source port) here.
                if commit, let udp = w.service(.udp) as? UDPService { udp.relay.handOver() }
                if let paused = registry.pausedSessions.withLock({ $0.removeValue(forKey: w.index) }),
                   let udp = w.service(.udp) as? UDPService {
                    count.add(udp.relay.finishPausedSessions(paused, commit: commit, declined: declined), ordering: .relaxed)
                }
                latch.countDown()
            }
        }
        latch.wait()
        return count.load(ordering: .relaxed)
    }

    /// The next process failed before committing: every paused connection
    /// reads again, as if nothing happened (its bytes waited in the kernel).
    public func rollBackHandover() -> Int {
        let resumed = finishPaused { conn in conn.resumeAfterHandover(); return false }.all
            + finishPausedSessions(commit: false, declined: [])
        handover.rollbacks.add(1, ordering: .relaxed)
        handover.connectionsKept.store(0, ordering: .relaxed)
        return resumed
    }

    /// Runs `body` on every paused connection on its worker; returns how
    /// many there were and how many `body` returned true for.
    private func finishPaused(_ body: @escaping @Sendable (TCPConnection) -> Bool) -> (all: Int, yes: Int) {
        let latch = Latch(workers.count)
        let all = Atomic<Int>(0), yes = Atomic<Int>(0)
        let registry = handover
        for w in workers {
            w.post { w in
                let mine = registry.paused.withLock { $0.removeValue(forKey: w.index) }?.list ?? []
                all.add(mine.count, ordering: .relaxed)
                for conn in mine where body(conn) { yes.add(1, ordering: .relaxed) }
                latch.countDown()
            }
        }
        latch.wait()
        return (all.load(ordering: .relaxed), yes.load(ordering: .relaxed))
    }

    // MARK: new side

    /// Which received connections this configuration can relay: a TCP (not
    /// HTTP) listener serving the key, and the member still in its pool.
    /// The others are declined (their descriptors closed here; the old
    /// process resumes them).
    public func checkHanded(_ handed: [HandedConnection]) -> (accepted: [HandedConnection], declined: [HandedConnection]) {
        guard let s = snapshot else { return ([], handed) }
        let plans = SnapshotIndex(s, transports: Set(drivers.keys)).plans
        var accepted: [HandedConnection] = [], declined: [HandedConnection] = []
        for h in handed {
            if let plan = plans[h.key], plan.listener.protocol == .tcp, plan.pool.pool.protocol != .http,
               plan.pool.view.index(of: h.memberID) != nil {
                accepted.append(h)
            } else {
                System.close(h.client); System.close(h.backend)
                declined.append(h)
            }
        }
        return (accepted, declined)
    }

    /// Adopts checked connections, dealt to workers in turn; returns once
    /// every worker relays its share.
    public func adoptHanded(_ handed: [HandedConnection]) {
        guard let s = snapshot, !handed.isEmpty else { return }
        let plans = SnapshotIndex(s, transports: Set(drivers.keys)).plans
        var shares = [[HandedConnection]](repeating: [], count: workers.count)
        for (i, h) in handed.enumerated() { shares[i % workers.count].append(h) }
        let latch = Latch(workers.count)
        let adopted = Atomic<Int>(0)
        for (i, w) in workers.enumerated() {
            let share = shares[i]
            w.post { w in
                if let tcp = w.service(.tcp) as? TCPService {
                    for h in share {
                        if let plan = plans[h.key], tcp.adoptHanded(h, plan: plan) { adopted.add(1, ordering: .relaxed) }
                    }
                } else {
                    for h in share { System.close(h.client); System.close(h.backend) }
                }
                latch.countDown()
            }
        }
        latch.wait()
        handover.connectionsAdopted.add(adopted.load(ordering: .relaxed), ordering: .relaxed)
    }

    /// Which received UDP sessions this configuration can take (a UDP
    /// listener serving the key, the member still in its pool); the others'
    /// sockets close here and the old process keeps them.
    public func checkHandedSessions(_ handed: [HandedSession]) -> (accepted: [HandedSession], declined: [HandedSession]) {
        guard let s = snapshot else { return ([], handed) }
        let plans = SnapshotIndex(s, transports: Set(drivers.keys)).plans
        var accepted: [HandedSession] = [], declined: [HandedSession] = []
        for h in handed {
            if let plan = plans[h.key], plan.listener.protocol == .udp, plan.pool.view.index(of: h.memberID) != nil {
                accepted.append(h)
            } else {
                System.close(h.upstream)
                declined.append(h)
            }
        }
        return (accepted, declined)
    }

    /// Adopts checked sessions, dealt to workers in turn.
    public func adoptHandedSessions(_ handed: [HandedSession]) {
        guard !handed.isEmpty else { return }
        // Socket j of a port went to worker j (takeAdopted): the session goes
        // where its client's datagrams keep arriving.
        var shares = [[HandedSession]](repeating: [], count: workers.count)
        for h in handed { shares[h.socketIndex % workers.count].append(h) }
        let latch = Latch(workers.count)
        let adopted = Atomic<Int>(0)
        for (i, w) in workers.enumerated() {
            let share = shares[i]
            w.post { w in
                if let udp = w.service(.udp) as? UDPService {
                    for h in share where udp.relay.adoptSession(h) { adopted.add(1, ordering: .relaxed) }
                    udp.relay.publish()
                } else {
                    for h in share { System.close(h.upstream) }
                }
                latch.countDown()
            }
        }
        latch.wait()
        handover.sessionsAdopted.add(adopted.load(ordering: .relaxed), ordering: .relaxed)
    }

    /// A process taking over attaches its UDP listening sockets without
    /// reading them until `releaseUDPListeners` (after the sessions are adopted).
    public func holdUDPListeners() { UDPRelay.holdingListeners = true }

    public func releaseUDPListeners() {
        guard UDPRelay.holdingListeners else { return }
        UDPRelay.holdingListeners = false
        let latch = Latch(workers.count)
        for w in workers {
            w.post { w in
                (w.service(.udp) as? UDPService)?.relay.releaseListeners()
                latch.countDown()
            }
        }
        latch.wait()
    }
}
