#if canImport(Glibc)
import Glibc
#endif
import CLibevent
import FlowgateCore
import Synchronization

/// Call once per process before any event_base exists: without it,
/// `event_active`/`event_base_loopbreak` from another thread never wake a
/// sleeping loop (shared/swift-libevent-notes.md).
public enum EventThreads {
    private static let done = Mutex(false)
    public static func enable() {
        done.withLock { d in
            if !d { precondition(evthread_use_pthreads() == 0, "evthread_use_pthreads failed"); d = true }
        }
    }
}

/// Counters a worker publishes for other threads (drain, metrics, tests).
public final class WorkerCounters: Sendable {
    /// Flows open now (TCP connections, including those still connecting).
    public let activeFlows = Atomic<Int>(0)
    public let acceptedFlows = Atomic<Int>(0)
    public let connectFailures = Atomic<Int>(0)
    /// Clients closed because no member could be reached or none was eligible.
    public let rejectedFlows = Atomic<Int>(0)
    public let bytesClientToBackend = Atomic<Int>(0)
    public let bytesBackendToClient = Atomic<Int>(0)
    /// Bytes held in connection pending buffers now, and the largest single
    /// connection direction's pending size ever seen (backpressure bound).
    public let pendingBytes = Atomic<Int>(0)
    public let peakPendingPerDirection = Atomic<Int>(0)
    /// UDP relay figures, published by the worker after each batch (UDP/UDPRelay.swift).
    public let udp = UDPCounters()
    init() {}
}

/// One event loop on one pthread (design §4). Owns its libevent base, a
/// scratch buffer every TCP relay on this thread reads through, and one
/// service per transport holding that protocol's listening sockets and flows.
/// Other threads talk to it only through `post`.
public final class Worker: @unchecked Sendable {
    public let index: Int
    public let base: OpaquePointer
    public let tuning: Tuning
    public let counters = WorkerCounters()
    /// Per-flow totals for GET /metrics (worker thread only; Metrics/).
    public let metrics = WorkerMetrics()
    /// Read/write scratch of `tuning.tcpScratchBuffer` bytes; only this
    /// worker's thread touches it, and never across a callback boundary.
    public let scratch: UnsafeMutableRawPointer
    public let scratchSize: Int
    /// Latest snapshot swapped in (worker thread only).
    public private(set) var snapshotIndex: SnapshotIndex?
    public private(set) var services: [TransportProtocol: TransportService] = [:]

    private let drivers: [TransportDriver]
    private let inbox = Mutex<[@Sendable (Worker) -> Void]>([])
    private var wakeEvent: OpaquePointer?
    private var thread: pthread_t?
    private let started = Latch(1)

    public init(index: Int, tuning: Tuning, drivers: [TransportDriver]) {
        EventThreads.enable()
        self.index = index
        self.tuning = tuning
        self.drivers = drivers
        guard let b = event_base_new() else { preconditionFailure("event_base_new failed") }
        base = b
        scratchSize = max(16 * 1024, tuning.tcpScratchBuffer)
        scratch = UnsafeMutableRawPointer.allocate(byteCount: scratchSize, alignment: 64)
        let wakeCallback: event_callback_fn = { _, _, ctx in
            Unmanaged<Worker>.fromOpaque(ctx!).takeUnretainedValue().runInbox()
        }
        // A pure user event: other threads make it active; with
        // evthread_use_pthreads that wakes the loop through its notify pipe.
        wakeEvent = event_new(base, -1, 0, wakeCallback, Unmanaged.passUnretained(self).toOpaque())
    }

    deinit {
        if let e = wakeEvent { event_free(e) }
        metrics.stopLagTimer()   // its event belongs to `base`
        event_base_free(base)
        scratch.deallocate()
    }

    public func service(_ t: TransportProtocol) -> TransportService? { services[t] }

    /// Runs `job` on this worker's thread at its next loop turn.
    public func post(_ job: @escaping @Sendable (Worker) -> Void) {
        inbox.withLock { $0.append(job) }
        event_active(wakeEvent, 0, 0)
    }

    private func runInbox() {
        let jobs = inbox.withLock { q -> [@Sendable (Worker) -> Void] in
            let taken = q; q.removeAll(keepingCapacity: true); return taken
        }
        for job in jobs { job(self) }
    }

    /// Starts the thread; returns once its services exist and the loop is
    /// about to run.
    public func start() {
        var tid = pthread_t()
        let ctx = Unmanaged.passRetained(self).toOpaque()
        let rc = pthread_create(&tid, nil, { ctx in
            let w = Unmanaged<Worker>.fromOpaque(ctx!).takeRetainedValue()
            w.run()
            return nil
        }, ctx)
        precondition(rc == 0, "pthread_create failed: \(rc)")
        thread = tid
        started.wait()
    }

    private func run() {
        for d in drivers { services[d.transport] = d.makeService(worker: self) }
        started.countDown()
        // NO_EXIT_ON_EMPTY: a worker with no sockets yet must keep waiting for posts.
        event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY)
        Log.debug("worker_stopped", ["worker": index])
    }

    /// Worker thread: swap in a new snapshot.
    func swap(_ index: SnapshotIndex) {
        snapshotIndex = index
        for s in services.values { s.snapshotDidChange(index) }
    }

    /// Stops the loop after closing every socket and flow, and joins the thread.
    public func stopAndJoin() {
        guard let t = thread else { return }
        post { w in
            for s in w.services.values {
                for k in s.attachedKeys { s.detach(k) }
                s.closeAllFlows()
            }
            w.services.removeAll()
            event_base_loopbreak(w.base)
        }
        pthread_join(t, nil)
        thread = nil
    }
}
