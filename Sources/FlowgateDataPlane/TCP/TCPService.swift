#if canImport(Glibc)
import Glibc
#endif
import FlowgateCore
import FlowgateSystem

/// A worker's TCP share: its listening sockets (by key) and the connections
/// they accepted, in an intrusive list so shutdown can reach every one
/// without a per-connection hash entry.
final class TCPService: TransportService {
    unowned(unsafe) let worker: Worker
    /// The worker's event base, borrowed by every connection's events.
    unowned(unsafe) let base: EventBase
    private var acceptors: [ListeningSocketKey: TCPAcceptor] = [:]
    /// Head of the live-connection list; the list holds the strong references.
    var head: TCPConnection?
    /// Head of the live HTTP-pool connections (HTTP/HTTPConnection.swift).
    var httpHead: HTTPConnection?
    /// Buffer blocks HTTP connections borrow per request (HTTP/ByteQueue.swift).
    let httpBuffers = HTTPBufferPool()
    /// Idle member connections HTTP connections leave for the next (HTTP/HTTPUpstreamPool.swift).
    lazy var httpUpstreams = HTTPUpstreamPool(base: base)
    private var resumeTimer: LoopTimer?
    private var paused = false

    /// Largest read per recv: the scratch buffer, but never more than a
    /// connection may keep pending, so a short write always fits the cap.
    let readSize: Int
    let maxPending: Int
    /// Seconds a member may take to accept a connect.
    let connectTimeout: Int
    /// What a member's socket is watched for, once for its life
    /// (TCPConnection): `.closed` (EPOLLRDHUP) lets a FIN seen with the last
    /// data save the recv that would only read the EOF (TCPChannel.relay).
    /// Stored here so a connection does not build it from four statics.
    let watch: IOInterest = [.read, .write, .closed, .edgeTriggered]
    /// A client's socket: the same without write, which a fresh socket
    /// always is, so EPOLL_CTL_ADD would report it and cost a wakeup per
    /// connection; write is added the first time the client's side fills.
    let watchClient: IOInterest = [.read, .closed, .edgeTriggered]
    let watchWrite: IOInterest = [.write, .edgeTriggered]
    /// `FLOWGATE_TCP_RELAY=copy|splice|adaptive` (default adaptive); see
    /// `TCPRelayMode`.
    let relayMode = TCPRelayMode(environment: System.environment("FLOWGATE_TCP_RELAY"))

    init(worker: Worker) {
        self.worker = worker
        self.base = worker.eventBase
        maxPending = max(4096, worker.tuning.tcpMaxPending)
        readSize = min(worker.scratchSize, maxPending)
        connectTimeout = max(1, worker.tuning.connectTimeout)
    }

    deinit {
        for p in pipePool { System.close(p.read); System.close(p.write) }
        resumeTimer?.cancel()
    }

    var attachedKeys: [ListeningSocketKey] { Array(acceptors.keys) }

    func attach(_ socket: ListeningSocket, plan: ListenerPlan) {
        if let old = acceptors[socket.key] { old.close() }
        let a = TCPAcceptor(socket: socket, plan: plan, service: self)
        acceptors[socket.key] = a
        if !paused { a.enable() }
    }

    func detach(_ key: ListeningSocketKey) {
        acceptors.removeValue(forKey: key)?.close()
    }

    func snapshotDidChange(_ index: SnapshotIndex) {
        for a in acceptors.values { if let p = index.plans[a.key] { a.plan = p } }
    }

    /// Start of a drain: every listening socket closes (the kernel refuses
    /// new connections at once); established connections go on.
    func stopAccepting() {
        for k in attachedKeys { detach(k) }
        drainHTTP()
    }

    /// HTTP keep-alive connections between requests hold no work: closed
    /// now (as HAProxy does on soft-stop), the others after their response.
    private func drainHTTP() {
        draining = true
        var idle: [HTTPConnection] = []
        var h = httpHead
        while let conn = h {
            if conn.isBetweenRequests { idle.append(conn) }
            h = conn.next
        }
        for c in idle { c.close(reason: "draining") }
        httpUpstreams.closeAll()
    }

    /// Listeners closed for shutdown: HTTP connections close after their current response.
    private(set) var draining = false

    /// The next process accepts from the same sockets: close ours without
    /// draining the queue (nothing is reset while another descriptor holds
    /// the socket open).
    func handOver(closing: Set<ListeningSocketKey>) {
        for (k, a) in acceptors { if closing.contains(k) { a.close() } else { a.release() } }
        acceptors.removeAll()
        // HTTP connections are not handed over (docs/architecture.md §16.3): they drain here.
        drainHTTP()
    }

    func listeningDescriptor(_ key: ListeningSocketKey) -> Int32? { acceptors[key]?.fd }

    func closeAllFlows() {
        while let c = head { c.close(reason: "shutdown") }
        while let c = httpHead { c.close(reason: "shutdown") }
        httpUpstreams.closeAll()
    }

    /// One open flow of either list, as closeFlows and sample see it.
    private struct FlowView {
        let plan: ListenerPlan
        /// The member it is connected (or connecting) to.
        let memberID: String?
        /// The member whose bytes it counts: set once a TCP flow relays; HTTP
        /// connections count per request (WorkerMetrics+HTTP.swift), not here.
        let relayingMemberID: String?
        let bytesIn: Int
        let bytesOut: Int
        let close: (String) -> Void
    }

    /// Every open flow, TCP connections then HTTP connections. Closing from
    /// `body` is not allowed (it would unlink the node being walked): collect first.
    private func everyFlow(_ body: (FlowView) -> Void) {
        var c = head
        while let conn = c {
            body(FlowView(plan: conn.plan, memberID: conn.target?.memberID,
                          relayingMemberID: conn.phase == .relaying ? conn.target?.memberID : nil,
                          bytesIn: conn.upstream.bytes, bytesOut: conn.downstream.bytes, close: { conn.close(reason: $0) }))
            c = conn.next
        }
        var h = httpHead
        while let conn = h {
            body(FlowView(plan: conn.plan, memberID: conn.connectedTo?.memberID, relayingMemberID: nil,
                          bytesIn: conn.bytesIn, bytesOut: conn.bytesOut, close: { conn.close(reason: $0) }))
            h = conn.next
        }
    }

    /// Closes every connection (connecting or relaying) to `member` of `pool`.
    func closeFlows(pool: String, member: String, reason: String) -> Int {
        var victims: [FlowView] = []
        everyFlow { f in if f.plan.pool.id == pool, f.memberID == member { victims.append(f) } }
        for v in victims { v.close(reason) }
        return victims.count
    }

    /// Every open connection's bytes so far, by listener and (once it
    /// reached its member) by member.
    func sample(into s: inout WorkerSample) {
        everyFlow { f in
            var t = FlowTotals()
            t.flowsOpened = 1; t.flowsActive = 1
            t.bytesIn = f.bytesIn; t.bytesOut = f.bytesOut
            s.listeners[f.plan.listener.listenerArn, default: FlowTotals()] += t
            if let member = f.relayingMemberID {
                s.members[PoolMemberKey(poolID: f.plan.pool.id, memberID: member), default: FlowTotals()] += t
            }
        }
    }

    // MARK: splice pipes

    private var pipePool: [(read: Int32, write: Int32)] = []
    static let pipePoolLimit = 8

    /// An empty pipe of `readSize` capacity (F_SETPIPE_SZ; the default 64 KiB
    /// pipe measured 12.2 Gbit/s against 16.9 with 1 MiB).
    func takePipe() throws(SystemError) -> (read: Int32, write: Int32) {
        if let p = pipePool.popLast() { return p }
        let p = try System.pipe()
        _ = System.setPipeSize(p.write, readSize)
        return p
    }

    /// Back to the pool when empty; a pipe still holding bytes is closed.
    func returnPipe(_ p: (read: Int32, write: Int32), empty: Bool) {
        if empty && pipePool.count < TCPService.pipePoolLimit { pipePool.append(p); return }
        System.close(p.read); System.close(p.write)
    }

    // MARK: accepting

    func open(client: Int32, flow: FlowContext, plan: ListenerPlan) {
        // TCP_NODELAY comes with the listener (TCPDriver.openListeningSocket).
        let c = TCPConnection(service: self, client: client, flow: flow, plan: plan)
        c.next = head
        head?.prev = c
        head = c
        worker.counters.activeFlows.add(1, ordering: .relaxed)
        worker.counters.acceptedFlows.add(1, ordering: .relaxed)
        c.connectNext()
    }

    /// A client of a listener whose pool speaks HTTP (chosen by the acceptor).
    func openHTTP(client: Int32, flow: FlowContext, plan: ListenerPlan, key: ListeningSocketKey) {
        let c = HTTPConnection(service: self, client: client, flow: flow, plan: plan, key: key)
        c.next = httpHead
        httpHead?.prev = c
        httpHead = c
        worker.counters.activeFlows.add(1, ordering: .relaxed)
        worker.counters.acceptedFlows.add(1, ordering: .relaxed)
        c.start()
    }

    /// The latest plan of listening socket `key` (nil once it was detached).
    func currentPlan(_ key: ListeningSocketKey) -> ListenerPlan? { acceptors[key]?.plan }

    func unlinkHTTP(_ c: HTTPConnection) {
        if let p = c.prev { p.next = c.next } else if httpHead === c { httpHead = c.next }
        c.next?.prev = c.prev
        c.prev = nil
        c.next = nil
        worker.counters.activeFlows.subtract(1, ordering: .relaxed)
    }

    func unlink(_ c: TCPConnection) {
        if let p = c.prev { p.next = c.next } else if head === c { head = c.next }
        c.next?.prev = c.prev
        c.prev = nil
        c.next = nil
        worker.counters.activeFlows.subtract(1, ordering: .relaxed)
    }

    /// EMFILE/ENFILE: stop accepting for 100 ms instead of spinning on a
    /// readable listener we cannot serve (docs/architecture.md §4; nginx does the same
    /// with its accept mutex delay).
    func pauseAccepting(_ error: SystemError) {
        guard !paused else { return }
        paused = true
        for a in acceptors.values { a.disable() }
        resumeTimer = worker.loop.after(0.1) { [unowned self] in self.resumeAccepting() }
        Log.warn("accept_paused", ["worker": worker.index, "error": error, "open_descriptors": System.openDescriptorCount()])
    }

    private func resumeAccepting() {
        paused = false
        resumeTimer = nil
        for a in acceptors.values { a.enable() }
    }

    /// Coarse seconds for idle accounting. CLOCK_MONOTONIC_COARSE rather than
    /// `event_base_gettimeofday_cached`, which takes the base's lock on every
    /// call (pthread_mutex_lock/unlock were among the top functions per read
    /// in callgrind) and follows wall-clock steps.
    var now: Int { System.coarseSeconds() }
}
