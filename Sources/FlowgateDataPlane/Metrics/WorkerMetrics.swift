import FlowgateCore
import FlowgateSystem

/// Traffic totals of flows, each direction: client → member ("in") and
/// member → client ("out").
public struct FlowTotals: Sendable, Equatable {
    public var flowsOpened = 0
    public var flowsActive = 0
    public var bytesIn = 0
    public var bytesOut = 0
    public var datagramsIn = 0
    public var datagramsOut = 0
    public init() {}

    public static func += (a: inout FlowTotals, b: FlowTotals) {
        a.flowsOpened += b.flowsOpened; a.flowsActive += b.flowsActive
        a.bytesIn += b.bytesIn; a.bytesOut += b.bytesOut
        a.datagramsIn += b.datagramsIn; a.datagramsOut += b.datagramsOut
    }
}

/// (pool id, member id): members are counted per pool, since one address
/// may serve several pools.
public struct PoolMemberKey: Sendable, Hashable {
    public var poolID: String
    public var memberID: String
    public init(poolID: String, memberID: String) { self.poolID = poolID; self.memberID = memberID }
}

/// One worker's metrics (docs/architecture.md §13, issue 6): plain Ints touched only by the
/// worker's own thread, so the data path pays no atomic and no lock.
/// Finished flows are folded in here once, when they end; flows still open
/// are added by walking the worker's live flows at scrape time
/// (`Worker.collectMetrics`), so a scrape is exact to the byte without any
/// per-packet bookkeeping beyond what each flow already keeps.
public final class WorkerMetrics {
    /// Totals of ended flows, by listener ARN and by member.
    var listeners: [String: FlowTotals] = [:]
    var members: [PoolMemberKey: FlowTotals] = [:]
    /// TCP connections closed by a pool's `connection_drain` timeout.
    var drainClosed = 0
    /// HTTP pools' requests, responses and cookie outcomes (WorkerMetrics+HTTP.swift).
    var http = HTTPCounters()

    /// Loop lag: how late a periodic timer fires (a loop busy in callbacks
    /// fires it late). Seconds.
    var lagLast = 0.0
    var lagMax = 0.0
    private var lagTimer: LoopTimer?
    private var lagExpected: UInt64 = 0
    static let lagInterval: UInt64 = 100_000 // µs

    public init() {}

    deinit { stopLagTimer() }

    /// Cancels the lag timer (worker thread, at stop). A timer outliving
    /// the loop is harmless: its base frees it first (EventBase.free).
    func stopLagTimer() {
        lagTimer?.cancel()
        lagTimer = nil
    }

    /// A flow ended on this worker: fold its totals in (one dictionary
    /// update per flow and per direction, never per packet).
    @inline(__always)
    func flowEnded(listener: String, member: PoolMemberKey?, _ totals: FlowTotals) {
        listeners[listener, default: FlowTotals()] += totals
        if let member { members[member, default: FlowTotals()] += totals }
    }

    /// Starts the lag timer on the worker's loop (worker thread, once).
    func startLagTimer(_ loop: LoopThread) {
        guard lagTimer == nil else { return }
        lagExpected = System.monotonicMicroseconds() + WorkerMetrics.lagInterval
        // unowned(unsafe): cancelled at stop and in deinit; a checked
        // unowned load would cost every tick of every worker.
        lagTimer = loop.every(Double(WorkerMetrics.lagInterval) / 1e6) { [unowned(unsafe) self] in self.lagTick() }
    }

    private func lagTick() {
        let now = System.monotonicMicroseconds()
        let late = now > lagExpected ? Double(now - lagExpected) / 1e6 : 0
        lagLast = late
        if late > lagMax { lagMax = late }
        // libevent 2.1 reschedules a persistent timer from its previous
        // scheduled time, or from now when that is already past
        // (event.c, event_persist_closure).
        lagExpected += WorkerMetrics.lagInterval
        if lagExpected < now { lagExpected = now + WorkerMetrics.lagInterval }
    }
}

/// What one worker reports to a scrape: a copy, made on its own thread.
public struct WorkerSample: Sendable {
    public var worker: Int
    public var listeners: [String: FlowTotals] = [:]
    public var members: [PoolMemberKey: FlowTotals] = [:]
    public var loopLag = 0.0
    public var loopLagMax = 0.0
    public var drainClosed = 0
    public var http = HTTPCounters()
    public var rejectedFlows = 0
    public var udp = UDPRelayStats()
    public init(worker: Int) { self.worker = worker }
}
