import FlowgateCore
import FlowgateSystem

/// A worker's UDP share, as the worker machinery sees it (TransportService):
/// adapts listening-socket keys to the relay's per-listener state.
///
/// UDP sessions are not counted in `WorkerCounters.activeFlows` (TCP's);
/// a drain waits for both that and the published live UDP session count
/// (`DataPlane.drainingFlows`). While draining, a UDP session ends after
/// `UDPRelay.drainQuiet` of silence: a UDP flow never "finishes", it only
/// goes quiet. The relay's own counters are in `UDPRelay.stats`.
final class UDPService: TransportService {
    let relay: UDPRelay

    init(worker: Worker) {
        relay = UDPRelay(base: worker.eventBase, maxFlows: worker.tuning.maxUDPFlows, bufferBytes: worker.tuning.udpSocketBuffer,
                         time: CoarseMonotonicTime(), counters: worker.counters.udp)
        relay.metrics = worker.metrics
    }

    func attach(_ socket: ListeningSocket, plan: ListenerPlan) { relay.attach(socket.key, fd: socket.fd, plan: plan) }
    func detach(_ key: ListeningSocketKey) { relay.detach(key); relay.publish() }
    var attachedKeys: [ListeningSocketKey] { relay.attachedKeys }
    func snapshotDidChange(_ index: SnapshotIndex) { relay.snapshotDidChange(index) }
    func closeAllFlows() { relay.closeAllFlows(); relay.publish() }
    /// Sockets stay open for the live sessions' replies; see `UDPRelay.beginDrain`.
    func stopAccepting() { relay.beginDrain(); relay.publish() }
    /// See `UDPRelay.handOver`.
    func handOver(closing: Set<ListeningSocketKey>) {
        for k in closing { relay.detach(k) }
        relay.handOver()
        relay.publish()
    }
    func listeningDescriptor(_ key: ListeningSocketKey) -> Int32? { relay.listeningDescriptor(key) }
    func sample(into s: inout WorkerSample) {
        s.udp = relay.stats
        relay.addLiveFlows(to: &s)
    }
    /// `connection_drain` ends TCP connections only: a UDP flow whose member
    /// left the pool is re-picked at its next datagram, and one to a member
    /// at weight 0 or admin down keeps it until it goes idle.
    func closeFlows(pool: String, member: String, reason: String) -> Int { 0 }
}

/// CLOCK_MONOTONIC_COARSE in seconds: the relay reads the time once per
/// batch, and idle expiry needs only its ~4 ms resolution. callgrind showed
/// `SystemTime.now()` (ContinuousClock → Duration.components, Int128
/// arithmetic) at about a third of the instructions of a small reply batch;
/// this is one vDSO call.
struct CoarseMonotonicTime: TimeSource {
    func now() -> Double { Double(System.monotonicCoarseNanoseconds()) * 1e-9 }
}
