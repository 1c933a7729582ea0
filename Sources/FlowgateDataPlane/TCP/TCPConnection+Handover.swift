// A relaying connection paused, described, resumed or adopted for a
// takeover (docs/architecture.md §16.3; Handover/DataPlane+Handover.swift).
// Kept apart from TCPConnection.swift so the relay's own file does not grow.
import FlowgateCore
import FlowgateSystem

extension TCPConnection {
    /// Nothing held in Flowgate in either direction, so its whole state is in
    /// the two kernel sockets (their buffers travel with them).
    var quiescent: Bool {
        phase == .relaying && upstream.pendingCount == 0 && downstream.pendingCount == 0
            && !upstream.ended && !downstream.ended && backendFD >= 0
    }

    /// Stops watching both sockets (nothing is pending, so nothing needs a
    /// write either) until resumed or closed. The idle
    /// timer stays: a connection that times out meanwhile closes here as it
    /// would have (the next process, holding the same sockets, times it out too).
    func pauseForHandover() {
        unwatchSockets()
    }

    /// Reads both sockets again (roll back, or declined by the next process).
    func resumeAfterHandover() {
        guard phase == .relaying else { return }
        watchSocketsAgain()
    }

    /// This connection as the wire carries it.
    func handed(now: Int) -> HandedConnection {
        let t = target!
        return HandedConnection(id: 0, key: ListeningSocketKey(transport: .tcp, bind: plan.bindAddress, port: Int(flow.localPort)),
                                flow: flow, memberID: t.memberID, memberAddress: t.address, memberPort: t.port,
                                bytesIn: upstream.bytes, bytesOut: downstream.bytes,
                                idleLeft: max(1, plan.listener.idleTimeout - (now - lastActivity)), client: clientFD, backend: backendFD)
    }

    /// Starts relaying a connection received from the previous process, as
    /// if its connect to the member had just succeeded (with the idle time
    /// it already had).
    func adoptConnected(backend: Int32, target t: BackendTarget, idleLeft: Int) {
        backendFD = backend
        target = t
        established([])
        if phase == .relaying {
            lastActivity = service.now - max(0, plan.listener.idleTimeout - idleLeft)
        }
    }
}

extension TCPService {
    /// A connection handed over by the previous process; false (descriptors
    /// closed) when `plan` no longer has its member.
    func adoptHanded(_ h: HandedConnection, plan: ListenerPlan) -> Bool {
        guard var t = plan.adopt(h.flow, memberID: h.memberID, port: h.memberPort) else {
            System.close(h.client); System.close(h.backend)
            return false
        }
        t.address = h.memberAddress
        let c = TCPConnection(service: self, client: h.client, flow: h.flow, plan: plan)
        c.next = head
        head?.prev = c
        head = c
        worker.counters.activeFlows.add(1, ordering: .relaxed)
        c.adoptConnected(backend: h.backend, target: t, idleLeft: h.idleLeft)
        return true
    }
}
