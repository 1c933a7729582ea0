#if canImport(Glibc)
import Glibc
#endif
import FlowgateCore
import FlowgateSystem

/// One proxied TCP connection: client ⇄ picked member (docs/architecture.md §5), as two
/// `TCPChannel`s, one per direction, each with its own source, destination,
/// events and pending bytes (TCP/TCPChannel.swift has the data path). This
/// type connects to a member (retrying others), routes each event to its
/// channel, and turns a channel's step into events, counters or a close.
///
/// Half-close: EOF from one side becomes `shutdown(peer, SHUT_WR)` (the
/// pending remainder is always flushed first: a source is only read when
/// nothing of its channel is pending); both sockets close when both
/// directions ended, on an error or reset, or at the listener's idle
/// timeout. libevent's le-proxy sample closes both on the first EOF and
/// broke 20 of 20 half-closing echoes in the measurements.
final class TCPConnection: EventHandler {
    enum Phase: UInt8 { case connecting, relaying, closed }
    /// Which channel: client → member, or member → client.
    enum Way { case upstream, downstream }

    unowned(unsafe) let service: TCPService
    /// The listener plan of the snapshot that accepted it: the same plan
    /// picks and releases the member, whatever updates happen meanwhile.
    let plan: ListenerPlan
    let flow: FlowContext
    let clientFD: Int32
    /// Set here and by a hand-over (TCP/TCPConnection+Handover.swift).
    var backendFD: Int32 = -1
    var target: BackendTarget?
    private var tried: [String] = []
    private(set) var phase = Phase.connecting

    /// The member's socket: read, write and the peer's FIN, edge-triggered,
    /// registered once at the connect (its first write edge is the connect's
    /// result, with the connect timeout) and kept until the close.
    private var backendEvent: LoopEvent?
    /// The client's socket, for read and FIN, registered once the member
    /// answered. One registration per socket for the connection's life: no
    /// epoll_ctl when a destination fills or drains (docs/architecture.md §5).
    private var clientEvent: LoopEvent?
    /// Write on the client's socket, edge-triggered, added (one
    /// EPOLL_CTL_MOD) the first time the client's side fills and kept.
    private var clientWrite: LoopEvent?
    private var timer: LoopEvent?
    var lastActivity = 0
    /// Monotonic µs when the flow reached its member; set only on listeners
    /// with `connection_log` (no clock read per connection otherwise).
    private var openedAt: UInt64 = 0

    /// client → member.
    private(set) var upstream: TCPChannel
    /// member → client.
    private(set) var downstream: TCPChannel

    /// Live-connection list links (owned by `TCPService`).
    var next: TCPConnection?
    unowned(unsafe) var prev: TCPConnection?

    static let maxAttempts = 3

    init(service: TCPService, client: Int32, flow: FlowContext, plan: ListenerPlan) {
        self.service = service; self.clientFD = client; self.flow = flow; self.plan = plan
        upstream = TCPChannel(from: client, .client, to: -1, .backend)
        downstream = TCPChannel(from: -1, .backend, to: client, .client)
    }

    private var base: EventBase { service.base }
    private var counters: WorkerCounters { service.worker.counters }

    /// Every event of the connection lands here; which one fired follows from
    /// the phase, the descriptor and the readiness. A close from inside drops
    /// the last reference, so the connection keeps itself alive for the call.
    /// Edge-triggered: a wakeup reports what the socket is ready for now
    /// (writable nearly always); a channel acts only when it has something
    /// to do (pending bytes to flush, a source not blocked and not ended).
    override func handleEvent(fd: Int32, readiness: IOReadiness) {
        withLife {
            if phase == .connecting { connectFinished(readiness); return }
            if fd < 0 { idleCheck(); return }
            guard phase == .relaying else { return }
            let client = fd == clientFD
            // First what waited for this socket to take bytes, which may
            // also read that channel's source again.
            if readiness.contains(.write) {
                flush(client ? .downstream : .upstream)
                guard phase == .relaying else { return }
            }
            if readiness.contains(.read) || readiness.contains(.closed) {
                relay(client ? .upstream : .downstream, peerClosed: readiness.contains(.closed))
            }
        }
    }

    // MARK: connecting

    func connectNext() {
        guard tried.count < TCPConnection.maxAttempts, let t = plan.pick(flow, excluding: tried) else {
            reject()
            return
        }
        target = t
        let address = SocketAddress(t.address, port: Int(t.port))
        do {
            backendFD = try System.streamSocket(family: address.family)
            System.setNoDelay(backendFD)
            if try System.connect(backendFD, address) {
                established([])
                return
            }
        } catch {
            attemptFailed(error)
            return
        }
        // Read and write: a failed connect raises EPOLLERR/EPOLLHUP, which
        // libevent reports as read|write, so a wakeup for write alone is a
        // connect that succeeded (connectFinished skips the SO_ERROR read).
        // The same registration serves the relay afterwards (established()
        // only drops the timeout), so the member's socket costs one
        // EPOLL_CTL_ADD and one DEL per connection.
        backendEvent = LoopEvent(base, fd: backendFD, interest: service.watch, persist: true, handler: self)
        backendEvent?.add(seconds: service.connectTimeout)
    }

    private func connectFinished(_ what: IOReadiness) {
        if what.contains(.timeout) { attemptFailed(.timedOut("connect")); return }
        // Writable and not readable: no error and no reset is queued on the
        // socket (either would have set EPOLLERR/EPOLLHUP, i.e. read too),
        // so the connect succeeded without a getsockopt(SO_ERROR) per
        // connection. Readable as well is either an error or a member that
        // already spoke (or closed): only then is SO_ERROR read, as before.
        if what.contains(.read) {
            let code = System.pendingError(backendFD)
            if code != 0 { attemptFailed(SystemError("connect", code)); return }
        }
        established(what)
    }

    /// Refused, unreachable or timed out: count it against the member, then
    /// try another one that has not been tried for this flow.
    private func attemptFailed(_ error: SystemError) {
        if let e = backendEvent { e.free(); backendEvent = nil }
        if backendFD >= 0 { System.close(backendFD); backendFD = -1 }
        counters.connectFailures.add(1, ordering: .relaxed)
        if let t = target {
            plan.release(flow, target: t, connected: false)
            tried.append(t.memberID)
            Log.debug("member_connect_failed", ["listener": plan.listener.listenerArn, "member": t.memberID,
                                                "address": "\(t.address)", "port": t.port, "error": error.reason])
        }
        target = nil
        connectNext()
    }

    /// No eligible member, or every try failed: reset the client (RST, so it
    /// learns at once instead of reading an orderly EOF).
    private func reject() {
        counters.rejectedFlows.add(1, ordering: .relaxed)
        Log.warn("flow_rejected", ["listener": plan.listener.listenerArn, "client": "\(flow.client)",
                                   "port": flow.localPort, "tried": tried.count,
                                   "reason": tried.isEmpty ? "no eligible member" : "no member reachable"])
        System.setAbortiveClose(clientFD)
        close(reason: "rejected")
    }

    /// `what`: the readiness of the wakeup that finished the connect (empty
    /// when connect returned at once); its read edge, if any, is handled here.
    func established(_ what: IOReadiness) {
        phase = .relaying
        tried = []
        if let t = target { plan.connected(t) }   // passive health: the member answered
        upstream.destination = backendFD
        downstream.source = backendFD
        if let e = backendEvent {
            e.removeTimeout()   // the connect timeout; no system call
        } else {
            // The connect finished at once: registered now, and the ADD
            // reports whatever the member has already sent.
            backendEvent = LoopEvent(base, fd: backendFD, interest: service.watch, persist: true, handler: self)
            backendEvent?.add()
        }
        clientEvent = LoopEvent(base, fd: clientFD, interest: service.watchClient, persist: true, handler: self)
        timer = LoopEvent(timerOn: base, handler: self)
        lastActivity = service.now
        timer?.add(seconds: plan.listener.idleTimeout)
        if plan.listener.connectionLog, let t = target {
            openedAt = System.monotonicMicroseconds()   // connection log: duration
            Log.info("flow_opened", ["listener": plan.listener.listenerArn, "client": "\(flow.client):\(flow.clientPort)",
                                     "port": flow.localPort, "member": t.memberID, "backend": "\(t.address):\(t.port)"])
        }
        // Speculative first read: with client-first protocols (HTTP, TLS)
        // the request is usually queued by the time the member answers the
        // SYN, so relaying it now saves a loop turn per connection (HAProxy
        // reads speculatively the same way); otherwise one recv gets EAGAIN.
        // The client's socket is registered after it: EPOLL_CTL_ADD reports
        // what is ready at that moment, so registering first would report
        // the request just read and cost a recv that finds nothing.
        relay(.upstream, peerClosed: false)
        guard phase == .relaying else { return }
        clientEvent?.add()
        // A member that speaks first may have sent its first bytes before
        // the wakeup that finished the connect; that read edge is used up,
        // so they are relayed now (no other edge would announce them).
        if what.contains(.read) { relay(.downstream, peerClosed: what.contains(.closed)) }
    }


    // MARK: relaying

    /// A channel's source is readable (`peerClosed`: the wakeup reported its
    /// FIN, remembered by the channel). Not read while the channel holds
    /// bytes its destination has not taken (flush reads it again once they
    /// are out), nor after its EOF.
    private func relay(_ way: Way, peerClosed: Bool) {
        var moved = 0
        let step = way == .upstream
            ? upstream.relayIfReadable(service, peerClosed: peerClosed, moved: &moved)
            : downstream.relayIfReadable(service, peerClosed: peerClosed, moved: &moved)
        guard let step else { return }
        if moved > 0 { account(way, moved) }
        switch step {
        case .idle: return
        case .more: (way == .upstream ? clientEvent : backendEvent)?.activate(.read)
        case let .blocked(held): waitForDestination(way, holding: held)
        case .ended: sourceEnded(way)
        case let .failed(error, side): fail(error, side: side)
        }
    }

    /// A channel's destination is writable: send what it holds, if anything.
    private func flush(_ way: Way) {
        var moved = 0, released = 0
        let step = way == .upstream
            ? upstream.flushIfPending(service, moved: &moved, released: &released)
            : downstream.flushIfPending(service, moved: &moved, released: &released)
        guard let step else { return }
        if moved > 0 { account(way, moved) }
        if released > 0 { counters.pendingBytes.subtract(released, ordering: .relaxed) }
        switch step {
        case .idle:
            // All out: read the source now. Its readiness edge came (and was
            // left unread) while the channel was blocked; none comes again.
            relay(way, peerClosed: false)
        case .blocked, .ended, .more: return
        case let .failed(error, side): fail(error, side: side)
        }
    }

    @inline(__always)
    private func account(_ way: Way, _ n: Int) {
        if way == .upstream { counters.bytesClientToBackend.add(n, ordering: .relaxed) } else { counters.bytesBackendToClient.add(n, ordering: .relaxed) }
        lastActivity = service.now
    }

    /// The destination is full: the source is not read (relay's guard)
    /// until the destination's write edge lets flush send the rest.
    private func waitForDestination(_ way: Way, holding count: Int) {
        counters.pendingBytes.add(count, ordering: .relaxed)
        var peak = counters.peakPendingPerDirection.load(ordering: .relaxed)
        while count > peak {
            let (exchanged, now) = counters.peakPendingPerDirection.compareExchange(expected: peak, desired: count, ordering: .relaxed)
            if exchanged { break }
            peak = now
        }
        // The member's socket is watched for write already; the client's
        // only from its first block on (the ADD reports what is ready, so
        // a write edge that came meanwhile is not lost).
        if way == .downstream && clientWrite == nil {
            clientWrite = LoopEvent(base, fd: clientFD, interest: service.watchWrite, persist: true, handler: self)
            clientWrite?.add()
        }
    }

    /// EOF from a channel's source: nothing of it is pending (a source is
    /// only read when its channel holds nothing), so pass the EOF on now.
    private func sourceEnded(_ way: Way) {
        let destination: Int32
        if way == .upstream {
            upstream.ended = true; destination = upstream.destination
        } else {
            downstream.ended = true; destination = downstream.destination
        }
        // Both ended: close() sends the FIN itself (the peer's receive side
        // is drained, so no RST), one shutdown syscall less per connection.
        if upstream.ended && downstream.ended { close(reason: "done"); return }
        System.shutdownWrite(destination)
    }

    private func fail(_ error: SystemError, side: TCPSide) {
        // A reset or broken pipe on one side is passed on as a reset, as a
        // direct connection would have shown it (HAProxy does the same).
        if error.isConnectionReset {
            System.setAbortiveClose(side == .client ? backendFD : clientFD)
        }
        close(reason: "\(side.rawValue)_\(error.call)_error", error: error)
    }

    private func idleCheck() {
        let idle = plan.listener.idleTimeout
        let elapsed = service.now - lastActivity
        if elapsed >= idle { close(reason: "idle_timeout"); return }
        timer?.add(seconds: idle - elapsed)
    }

    // MARK: pausing (takeover: TCPConnection+Handover.swift)

    /// Stops watching both sockets (edge-triggered registrations are removed,
    /// not left armed: a paused connection must not read). The idle timer stays.
    func unwatchSockets() {
        clientEvent?.remove()
        backendEvent?.remove()
        clientWrite?.remove()
    }

    /// Watches both sockets again. EPOLL_CTL_ADD reports what is ready at
    /// that moment, so bytes that arrived while paused are not missed even
    /// though their edge passed.
    func watchSocketsAgain() {
        clientEvent?.add()
        backendEvent?.add()
        clientWrite?.add()
    }

    // MARK: closing

    /// Frees everything and leaves the live list (which drops the last strong
    /// reference: callers must return right after).
    func close(reason: String, error: SystemError? = nil) {
        guard phase != .closed else { return }
        let wasRelaying = phase == .relaying   // metrics: reached its member
        phase = .closed
        clientWrite?.free(); clientWrite = nil
        clientEvent?.free(); clientEvent = nil
        backendEvent?.free(); backendEvent = nil
        timer?.free(); timer = nil
        let held = upstream.release() + downstream.release()
        if held > 0 { counters.pendingBytes.subtract(held, ordering: .relaxed) }
        System.close(clientFD)
        if backendFD >= 0 { System.close(backendFD); backendFD = -1 }
        // A flow closed mid-connect (shutdown) still holds its pick: release it
        // too, or least-connection counts and sticky references would leak.
        if let t = target { plan.release(flow, target: t, connected: true) }
        service.worker.metrics.tcpClosed(listener: plan.listener.listenerArn, poolID: plan.pool.id, target: target,
                                         established: wasRelaying, bytesIn: upstream.bytes, bytesOut: downstream.bytes)
        if plan.listener.connectionLog || (error != nil && Log.enabled(.debug)) {
            Log.emit(plan.listener.connectionLog ? .info : .debug, "flow_closed", [
                "listener": plan.listener.listenerArn, "client": "\(flow.client):\(flow.clientPort)",
                "port": flow.localPort, "member": target?.memberID ?? "-", "reason": reason,
                "bytes_in": upstream.bytes, "bytes_out": downstream.bytes,
                "duration_s": openedAt == 0 ? "-" : ConnectionLog.seconds(since: openedAt), "error": error?.reason ?? "-"])
        }
        service.unlink(self)
    }
}
