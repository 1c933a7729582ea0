// What a data plane keeps about takeovers (docs/architecture.md §16): the
// connections it paused for a hand-over (each touched only on its own
// worker's thread), the state received from the previous process, and the
// counters GET /metrics and flowgatectl show.
import FlowgateCore
import FlowgateSystem
import Synchronization

public final class HandoverRegistry: @unchecked Sendable {
    /// Per worker, the connections paused for the hand-over in progress.
    let paused = Mutex<[Int: PausedConnections]>([:])
    let pausedSessions = Mutex<[Int: PausedSessions]>([:])
    /// State received from the previous process, applied to the first snapshot.
    let seed = Mutex<HandoverState?>(nil)
    /// Takeovers that led to this process (0 for a plain start).
    public let generation = Atomic<UInt64>(0)
    /// Unix time this process started.
    public let startedAt: Double
    /// Old side: connections sent to the next process and committed.
    public let connectionsHandedOver = Atomic<Int>(0)
    /// Old side: established connections kept to drain (not quiescent in
    /// time, connecting, HTTP, or declined by the next process).
    public let connectionsKept = Atomic<Int>(0)
    /// Old side: UDP sessions kept to drain.
    public let sessionsKept = Atomic<Int>(0)
    /// Old side: UDP sessions sent to the next process and committed.
    public let sessionsHandedOver = Atomic<Int>(0)
    /// New side: UDP sessions adopted from the previous process.
    public let sessionsAdopted = Atomic<Int>(0)
    /// Old side: hand-overs rolled back (the next process failed before commit).
    public let rollbacks = Atomic<Int>(0)
    /// New side: connections adopted from the previous process.
    public let connectionsAdopted = Atomic<Int>(0)
    /// New side: what the previous process said it kept to drain.
    public let previousKept = Atomic<Int>(0)
    public let previousSessionsKept = Atomic<Int>(0)

    init() { startedAt = Double(System.wallClockSeconds()) }

    func render() -> String {
        var w = PrometheusWriter()
        w.family("flowgate_process_start_time_seconds", .gauge, "Unix time this flowgated process started.", [([], startedAt)])
        w.family("flowgate_takeover_generation", .gauge, "Takeovers that led to this process (0: started without --takeover).",
                 [([], Double(generation.load(ordering: .relaxed)))])
        w.family("flowgate_takeover_connections_total", .counter,
                 "TCP connections in takeovers: handed_over (sent and committed by this process), adopted (received from the previous one), kept (left to drain in this process), previous_kept (left to drain in the previous one).",
                 [([("outcome", "handed_over")], Double(connectionsHandedOver.load(ordering: .relaxed))),
                  ([("outcome", "adopted")], Double(connectionsAdopted.load(ordering: .relaxed))),
                  ([("outcome", "kept")], Double(connectionsKept.load(ordering: .relaxed))),
                  ([("outcome", "previous_kept")], Double(previousKept.load(ordering: .relaxed)))])
        w.family("flowgate_takeover_udp_sessions_total", .counter,
                 "UDP sessions in takeovers: handed_over, adopted, kept (left to drain in this process), previous_kept (in the previous one).",
                 [([("outcome", "handed_over")], Double(sessionsHandedOver.load(ordering: .relaxed))),
                  ([("outcome", "adopted")], Double(sessionsAdopted.load(ordering: .relaxed))),
                  ([("outcome", "kept")], Double(sessionsKept.load(ordering: .relaxed))),
                  ([("outcome", "previous_kept")], Double(previousSessionsKept.load(ordering: .relaxed)))])
        w.family("flowgate_takeover_rollbacks_total", .counter,
                 "Hand-overs this process rolled back because the next process failed before committing.",
                 [([], Double(rollbacks.load(ordering: .relaxed)))])
        return w.text
    }
}

/// A worker's paused connections; only that worker's thread reads or
/// changes the list, the registry's mutex only guards the dictionary.
final class PausedConnections: @unchecked Sendable {
    let list: [TCPConnection]
    init(_ list: [TCPConnection]) { self.list = list }
}
