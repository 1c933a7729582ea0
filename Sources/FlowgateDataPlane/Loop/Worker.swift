import FlowgateCore
import FlowgateSystem
import Synchronization

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

/// One event loop on one pthread (a `LoopThread`, docs/architecture.md §4), with a
/// scratch buffer every TCP relay on this thread reads through, and one
/// service per transport holding that protocol's listening sockets and flows.
/// Other threads talk to it only through `post`.
public final class Worker: @unchecked Sendable {
    public let index: Int
    public let loop: LoopThread
    /// The base this worker's events are created on (`loop.eventBase`,
    /// stored so a load borrows it instead of retaining it).
    public let eventBase: EventBase
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
    private var started = false

    public init(index: Int, tuning: Tuning, drivers: [TransportDriver]) {
        self.index = index
        self.tuning = tuning
        self.drivers = drivers
        do throws(SystemError) { loop = try LoopThread(name: "worker-\(index)") } catch { preconditionFailure("worker \(index): \(error)") }
        eventBase = loop.eventBase
        scratchSize = max(16 * 1024, tuning.tcpScratchBuffer)
        scratch = UnsafeMutableRawPointer.allocate(byteCount: scratchSize, alignment: 64)
    }

    deinit { scratch.deallocate() }


    public func service(_ t: TransportProtocol) -> TransportService? { services[t] }

    /// Runs `job` on this worker's thread at its next loop turn.
    public func post(_ job: @escaping @Sendable (Worker) -> Void) {
        loop.post { [self] in job(self) }
    }

    /// Starts the thread; returns once its services exist and the loop runs.
    public func start() {
        started = true
        loop.start()
        let ready = Latch(1)
        post { w in
            for d in w.drivers { w.services[d.transport] = d.makeService(worker: w) }
            w.metrics.startLagTimer(w.loop)
            ready.countDown()
        }
        ready.wait()
    }

    /// Worker thread: swap in a new snapshot.
    func swap(_ index: SnapshotIndex) {
        snapshotIndex = index
        for s in services.values { s.snapshotDidChange(index) }
    }

    /// Stops the loop after closing every socket and flow, and joins the thread.
    public func stopAndJoin() {
        guard started else { return }
        started = false
        post { w in
            for s in w.services.values {
                for k in s.attachedKeys { s.detach(k) }
                s.closeAllFlows()
            }
            w.services.removeAll()
            w.metrics.stopLagTimer()
        }
        loop.stopAndJoin()
        Log.debug("worker_stopped", ["worker": index])
    }
}
