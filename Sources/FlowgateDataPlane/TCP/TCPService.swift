#if canImport(Glibc)
import Glibc
#endif
import CLibevent
import FlowgateCore

/// A worker's TCP share: its listening sockets (by key) and the connections
/// they accepted, in an intrusive list so shutdown can reach every one
/// without a per-connection hash entry.
final class TCPService: TransportService {
    unowned(unsafe) let worker: Worker
    private var acceptors: [ListeningSocketKey: TCPAcceptor] = [:]
    /// Head of the live-connection list; the list holds the strong references.
    var head: TCPConnection?
    private var resumeTimer: OpaquePointer?
    private var paused = false

    /// Largest read per recv: the scratch buffer, but never more than a
    /// connection may keep pending, so a short write always fits the cap.
    let readSize: Int
    let maxPending: Int
    let connectTimeout: timeval
    /// `FLOWGATE_TCP_RELAY=copy|splice|adaptive` (default adaptive); see
    /// `TCPRelayMode`.
    let relayMode = TCPRelayMode(environment: System.environment("FLOWGATE_TCP_RELAY"))

    init(worker: Worker) {
        self.worker = worker
        maxPending = max(4096, worker.tuning.tcpMaxPending)
        readSize = min(worker.scratchSize, maxPending)
        connectTimeout = timeval(tv_sec: max(1, worker.tuning.connectTimeout), tv_usec: 0)
        let cb: event_callback_fn = { _, _, ctx in
            Unmanaged<TCPService>.fromOpaque(ctx!).takeUnretainedValue().resumeAccepting()
        }
        resumeTimer = event_new(worker.base, -1, 0, cb, Unmanaged.passUnretained(self).toOpaque())
    }

    deinit {
        for p in pipePool { System.close(p.read); System.close(p.write) }
        if let t = resumeTimer { event_free(t) }
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
    func stopAccepting() { for k in attachedKeys { detach(k) } }

    func closeAllFlows() {
        while let c = head { c.close(reason: "shutdown") }
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

    func unlink(_ c: TCPConnection) {
        if let p = c.prev { p.next = c.next } else if head === c { head = c.next }
        c.next?.prev = c.prev
        c.prev = nil
        c.next = nil
        worker.counters.activeFlows.subtract(1, ordering: .relaxed)
    }

    /// EMFILE/ENFILE: stop accepting for 100 ms instead of spinning on a
    /// readable listener we cannot serve (design §4; nginx does the same
    /// with its accept mutex delay).
    func pauseAccepting(_ error: SystemError) {
        guard !paused else { return }
        paused = true
        for a in acceptors.values { a.disable() }
        var tv = timeval(tv_sec: 0, tv_usec: 100_000)
        event_add(resumeTimer, &tv)
        Log.warn("accept_paused", ["worker": worker.index, "error": error, "open_descriptors": System.openDescriptorCount()])
    }

    private func resumeAccepting() {
        paused = false
        for a in acceptors.values { a.enable() }
    }

    /// Coarse seconds for idle accounting. CLOCK_MONOTONIC_COARSE rather than
    /// `event_base_gettimeofday_cached`, which takes the base's lock on every
    /// call (pthread_mutex_lock/unlock were among the top functions per read
    /// in callgrind) and follows wall-clock steps.
    var now: Int { System.coarseSeconds() }
}
