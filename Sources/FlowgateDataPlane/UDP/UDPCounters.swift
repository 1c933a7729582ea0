import FlowgateSystem
import Synchronization

/// A worker's UDP figures for other threads (metrics, tests). The relay
/// counts in plain integers on its own thread and stores them here once per
/// callback (a handful of relaxed stores per batch of up to 32 datagrams),
/// so readers never touch the relay and the hot path takes no lock.
public final class UDPCounters: Sendable {
    /// Sessions (client address:port conversations) live now.
    public let sessions = Atomic<Int>(0)
    public let flowsStarted = Atomic<Int>(0)
    public let datagramsClientToBackend = Atomic<Int>(0)
    public let datagramsBackendToClient = Atomic<Int>(0)
    public let bytesClientToBackend = Atomic<Int>(0)
    public let bytesBackendToClient = Atomic<Int>(0)
    public let sessionsExpired = Atomic<Int>(0)
    public let sessionsEvicted = Atomic<Int>(0)
    /// Flows re-picked: member refused (ICMP port unreachable) or removed.
    public let repicks = Atomic<Int>(0)
    /// Datagrams dropped: no eligible member, a send failed, or draining.
    public let dropped = Atomic<Int>(0)

    public init() {}

    func publish(_ s: UDPRelayStats, sessions live: Int) {
        sessions.store(live, ordering: .relaxed)
        flowsStarted.store(s.flowsStarted, ordering: .relaxed)
        datagramsClientToBackend.store(s.datagramsToMembers, ordering: .relaxed)
        datagramsBackendToClient.store(s.datagramsToClients, ordering: .relaxed)
        bytesClientToBackend.store(s.bytesFromClients, ordering: .relaxed)
        bytesBackendToClient.store(s.bytesFromMembers, ordering: .relaxed)
        sessionsExpired.store(s.sessionsExpired, ordering: .relaxed)
        sessionsEvicted.store(s.sessionsEvicted, ordering: .relaxed)
        repicks.store(s.repickedRefused + s.repickedRemoved, ordering: .relaxed)
        dropped.store(s.droppedNoMember + s.droppedSendFailed + s.droppedDraining, ordering: .relaxed)
    }
}

extension DataPlane {
    /// UDP figures summed over every worker.
    public var udpTotals: (sessions: Int, flowsStarted: Int, datagramsIn: Int, datagramsOut: Int, dropped: Int) {
        var t = (sessions: 0, flowsStarted: 0, datagramsIn: 0, datagramsOut: 0, dropped: 0)
        for w in workers {
            let u = w.counters.udp
            t.sessions += u.sessions.load(ordering: .relaxed)
            t.flowsStarted += u.flowsStarted.load(ordering: .relaxed)
            t.datagramsIn += u.datagramsClientToBackend.load(ordering: .relaxed)
            t.datagramsOut += u.datagramsBackendToClient.load(ordering: .relaxed)
            t.dropped += u.dropped.load(ordering: .relaxed)
        }
        return t
    }
}
