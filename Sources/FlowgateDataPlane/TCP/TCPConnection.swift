#if canImport(Glibc)
import Glibc
#endif
import FlowgateCore
import FlowgateSystem

/// One proxied TCP connection: client ⇄ picked member (design §4).
///
/// Data path, two ways with the same shape, chosen per direction
/// (`TCPRelayMode`, `FLOWGATE_TCP_RELAY=adaptive|copy|splice`):
/// - copy (where every direction starts): `recv` into the worker's 1 MiB
///   scratch buffer, `send` at once: one syscall each way per message.
/// - splice (once a read of the direction returned ≥ 64 KiB): socket → pipe
///   → socket with splice(2); the pipe (F_SETPIPE_SZ = min(scratch,
///   tcpMaxPending)) comes from a per-worker pool and returns to it once
///   empty. Back to copy after 8 drained splices under 4 KiB in a row.
/// Only when the peer's socket is full does a direction keep its bytes (the
/// pipe, or a buffer of exactly the unsent remainder: at most tcpMaxPending,
/// since no read is larger), stop reading its source and arm EV_WRITE on the
/// peer: backpressure reaches the sender through TCP's own window.
/// Why splice for bulk: one iperf3 stream, copy and splice runs
/// interleaved on this 2-core machine (loaded by other builds), two sets of
/// three, medians: splice 7.44 and 7.78 Gbit/s at 1.8-2.2 % of a core per
/// Gbit/s; copy 5.16 and 6.53 Gbit/s at 3.2-3.8 %. Splice won 5 of 6 pairs
/// on throughput and all 6 on CPU. Why copy for small messages: splice
/// moves each through a pipe (two splice calls plus the pipe's page
/// bookkeeping) where recv/send copies a few hundred bytes.
/// libevent 2.1's bufferevents were not used: `evbuffer_read`
/// reads 4 KiB per call and capped a relay at about 4 Gbit/s
/// (shared/swift-libevent-notes.md).
///
/// Half-close: EOF from one side becomes `shutdown(peer, SHUT_WR)` (the
/// pending remainder is always flushed first: a side is only read when
/// nothing of it is pending); both sockets close when both directions ended,
/// on an error or reset, or at the listener's idle timeout. libevent's
/// le-proxy sample closes both on the first EOF and broke 20 of 20
/// half-closing echoes in the measurements.
final class TCPConnection: EventHandler {
    enum Phase: UInt8 { case connecting, relaying, closed }

    /// One direction's state: bytes read from its source and not yet
    /// accepted by its destination, and whether the source ended.
    struct Direction {
        var pending: UnsafeMutableRawPointer? = nil
        var start = 0
        var end = 0
        var ended = false
        var bytes = 0
        /// Splice mode: this direction's pipe and the bytes sitting in it.
        var pipeRead: Int32 = -1
        var pipeWrite: Int32 = -1
        var inPipe = 0
        /// Adaptive mode: this direction proved bulk and splices; see
        /// `TCPRelayMode`.
        var bulk = false
        /// Consecutive small splices while bulk (hysteresis back to copy).
        var smallSplices: UInt8 = 0
        var pendingCount: Int { end - start + inPipe }
    }

    unowned(unsafe) let service: TCPService
    /// The listener plan of the snapshot that accepted it: the same plan
    /// picks and releases the member, whatever updates happen meanwhile.
    let plan: ListenerPlan
    let flow: FlowContext
    let clientFD: Int32
    private(set) var backendFD: Int32 = -1
    private(set) var target: BackendTarget?
    private var tried: [String] = []
    private(set) var phase = Phase.connecting

    private var clientRead: LoopEvent?
    private var backendRead: LoopEvent?
    private var clientWrite: LoopEvent?
    private var backendWrite: LoopEvent?
    private var timer: LoopEvent?
    private var lastActivity = 0
    /// Monotonic µs when the flow reached its member; set only on listeners
    /// with `connection_log` (no clock read per connection otherwise).
    private var openedAt: UInt64 = 0

    /// client → member.
    private(set) var upstream = Direction()
    /// member → client.
    private(set) var downstream = Direction()

    /// Live-connection list links (owned by `TCPService`).
    var next: TCPConnection?
    unowned(unsafe) var prev: TCPConnection?

    static let maxAttempts = 3

    init(service: TCPService, client: Int32, flow: FlowContext, plan: ListenerPlan) {
        self.service = service; self.clientFD = client; self.flow = flow; self.plan = plan
    }

    private var base: EventBase { service.worker.eventBase }

    /// Every event of the connection lands here; which one fired follows from
    /// the phase, the descriptor and the readiness. A close from inside drops
    /// the last reference, so the connection keeps itself alive for the call.
    override func handleEvent(fd: Int32, readiness: IOReadiness) {
        withLife {
            if phase == .connecting { connectFinished(readiness); return }
            if fd < 0 { idleCheck(); return }
            if readiness.contains(.read) { relay(upstream: fd == clientFD) } else { flush(upstream: fd == backendFD) }
        }
    }
    private var counters: WorkerCounters { service.worker.counters }

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
                established()
                return
            }
        } catch {
            attemptFailed(error)
            return
        }
        backendWrite = LoopEvent(base, fd: backendFD, interest: .write, persist: false, handler: self)
        backendWrite?.add(seconds: service.connectTimeout)
    }

    private func connectFinished(_ what: IOReadiness) {
        if what.contains(.timeout) { attemptFailed(.timedOut("connect")); return }
        let code = System.pendingError(backendFD)
        if code != 0 { attemptFailed(SystemError("connect", code)); return }
        established()
    }

    /// Refused, unreachable or timed out: count it against the member, then
    /// try another one that has not been tried for this flow.
    private func attemptFailed(_ error: SystemError) {
        if let e = backendWrite { e.free(); backendWrite = nil }
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

    private func established() {
        // Freed, not kept for a later EV_WRITE wait: an idle connection holds
        // no write event (memory per idle connection, issue 7).
        if let e = backendWrite { e.free(); backendWrite = nil }
        phase = .relaying
        tried = []
        if let t = target { plan.connected(t) }   // passive health: the member answered
        clientRead = LoopEvent(base, fd: clientFD, interest: .read, persist: true, handler: self)
        backendRead = LoopEvent(base, fd: backendFD, interest: .read, persist: true, handler: self)
        timer = LoopEvent(timerOn: base, handler: self)
        clientRead?.add()
        backendRead?.add()
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
        relay(upstream: true)
    }

    // MARK: relaying

    @inline(__always)
    private func withDirection<R>(_ up: Bool, _ body: (inout Direction) -> R) -> R {
        up ? body(&upstream) : body(&downstream)
    }

    /// The source of one direction is readable: move what it has to the peer.
    private func relay(upstream up: Bool) {
        switch service.relayMode {
        case .splice: spliceRelay(upstream: up); return
        case .adaptive: if up ? upstream.bulk : downstream.bulk { spliceRelay(upstream: up); return }
        case .copy: break
        }
        let src = up ? clientFD : backendFD
        let dst = up ? backendFD : clientFD
        let scratch = service.worker.scratch
        let cap = service.readSize
        var rounds = 0
        while true {
            let n: Int?
            do { n = try System.receive(src, scratch, cap) } catch { fail(error, side: up ? "client" : "backend"); return }
            guard let n else { return }
            if n == 0 { sourceEnded(up); return }
            let sent: Int
            do { sent = try System.send(dst, scratch, n) } catch { fail(error, side: up ? "backend" : "client"); return }
            if sent > 0 { account(up, sent) }
            // A read this large says bulk: this direction splices from now on.
            let adaptive = service.relayMode == .adaptive
            if adaptive && n >= TCPRelayMode.bulkRead { if up { upstream.bulk = true } else { downstream.bulk = true } }
            if sent < n {
                hold(up, scratch + sent, n - sent)
                return
            }
            rounds += 1
            // A short read means the socket is drained; a few full ones and
            // we yield so other connections on this loop get their turn.
            if n < cap || rounds == 4 { return }
            if adaptive && n >= TCPRelayMode.bulkRead { spliceRelay(upstream: up); return }
        }
    }

    @inline(__always)
    private func account(_ up: Bool, _ n: Int) {
        withDirection(up) { $0.bytes += n }
        if up { counters.bytesClientToBackend.add(n, ordering: .relaxed) } else { counters.bytesBackendToClient.add(n, ordering: .relaxed) }
        lastActivity = service.now
    }

    /// The peer's socket is full: keep the remainder, stop reading the
    /// source, wait for the peer to drain.
    private func hold(_ up: Bool, _ bytes: UnsafeMutableRawPointer, _ count: Int) {
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: count, alignment: 16)
        buffer.copyMemory(from: bytes, byteCount: count)
        withDirection(up) { $0.pending = buffer; $0.start = 0; $0.end = count }
        waitForPeer(up, holding: count)
    }

    /// Stop reading the source, arm EV_WRITE on the destination.
    private func waitForPeer(_ up: Bool, holding count: Int) {
        counters.pendingBytes.add(count, ordering: .relaxed)
        var peak = counters.peakPendingPerDirection.load(ordering: .relaxed)
        while count > peak {
            let (exchanged, now) = counters.peakPendingPerDirection.compareExchange(expected: peak, desired: count, ordering: .relaxed)
            if exchanged { break }
            peak = now
        }
        (up ? clientRead : backendRead)?.remove()
        if up {
            if backendWrite == nil { backendWrite = LoopEvent(base, fd: backendFD, interest: .write, persist: true, handler: self) }
            backendWrite?.add()
        } else {
            if clientWrite == nil { clientWrite = LoopEvent(base, fd: clientFD, interest: .write, persist: true, handler: self) }
            clientWrite?.add()
        }
    }

    /// The destination of one direction is writable again: send the pending
    /// bytes; once all are out, free the buffer and resume reading the source.
    private func flush(upstream up: Bool) {
        if withDirection(up, { $0.pipeRead >= 0 }) { spliceFlush(upstream: up); return }
        let dst = up ? backendFD : clientFD
        let (pending, start, end) = withDirection(up) { ($0.pending, $0.start, $0.end) }
        guard let pending, end > start else { return }
        let sent: Int
        do { sent = try System.send(dst, pending + start, end - start) } catch { fail(error, side: up ? "backend" : "client"); return }
        if sent > 0 { account(up, sent) }
        if start + sent < end {
            withDirection(up) { $0.start += sent }
            return
        }
        pending.deallocate()
        withDirection(up) { $0.pending = nil; $0.start = 0; $0.end = 0 }
        counters.pendingBytes.subtract(end - start, ordering: .relaxed)
        (up ? backendWrite : clientWrite)?.remove()
        (up ? clientRead : backendRead)?.add()
    }

    /// EOF from one direction's source: nothing of it is pending (a source
    /// is only read when its pending buffer is empty), so pass the EOF on now.
    private func sourceEnded(_ up: Bool) {
        (up ? clientRead : backendRead)?.remove()
        withDirection(up) { $0.ended = true }
        // Both ended: close() sends the FIN itself (the peer's receive side
        // is drained, so no RST), one shutdown syscall less per connection.
        if upstream.ended && downstream.ended { close(reason: "done"); return }
        System.shutdownWrite(up ? backendFD : clientFD)
    }

    private func fail(_ error: SystemError, side: String) {
        // A reset or broken pipe on one side is passed on as a reset, as a
        // direct connection would have shown it (HAProxy does the same).
        if error.isConnectionReset {
            System.setAbortiveClose(side == "client" ? backendFD : clientFD)
        }
        close(reason: "\(side)_\(error.call)_error", error: error)
    }

    private func idleCheck() {
        let idle = plan.listener.idleTimeout
        let elapsed = service.now - lastActivity
        if elapsed >= idle { close(reason: "idle_timeout"); return }
        timer?.add(seconds: idle - elapsed)
    }

    // MARK: splice mode (the default)

    /// socket → pipe → socket without copying through user space. The pipe
    /// comes from the worker's pool and goes back as soon as it is empty, so
    /// like the scratch buffer it is shared by every connection that is not
    /// blocked; only a direction whose peer is full keeps one (HAProxy pools
    /// its pipes the same way, src/pipe.c).
    private func spliceRelay(upstream up: Bool) {
        let src = up ? clientFD : backendFD
        let dst = up ? backendFD : clientFD
        let pipe: (read: Int32, write: Int32)
        do { pipe = try service.takePipe() } catch { fail(error, side: "pipe"); return }
        var rounds = 0
        while true {
            let n: Int?
            do { n = try System.splice(from: src, to: pipe.write, service.readSize) } catch {
                service.returnPipe(pipe, empty: true)
                fail(error, side: up ? "client" : "backend"); return
            }
            guard let n else { service.returnPipe(pipe, empty: true); return }
            if n == 0 { service.returnPipe(pipe, empty: true); sourceEnded(up); return }
            let moved: Int
            do { moved = try System.splice(from: pipe.read, to: dst, n) ?? 0 } catch {
                service.returnPipe(pipe, empty: false)
                fail(error, side: up ? "backend" : "client"); return
            }
            if moved > 0 { account(up, moved) }
            if moved < n {
                withDirection(up) { $0.pipeRead = pipe.read; $0.pipeWrite = pipe.write; $0.inPipe = n - moved }
                waitForPeer(up, holding: n - moved)
                return
            }
            rounds += 1
            if n < service.readSize || rounds == 4 {
                service.returnPipe(pipe, empty: true)
                if service.relayMode == .adaptive { noteSplice(up, small: n < TCPRelayMode.smallSplice) }
                return
            }
        }
    }

    /// Once per splice callback: drained under `smallSplice` bytes
    /// `smallSplicesBeforeCopy` times in a row means small again (e.g. a bulk
    /// download followed by keep-alive requests): back to recv/send. Plain
    /// field access: closures over `inout` Direction cost exclusivity checks
    /// per call in callgrind.
    private func noteSplice(_ up: Bool, small: Bool) {
        if !small {
            if up { upstream.smallSplices = 0 } else { downstream.smallSplices = 0 }
        } else if up {
            upstream.smallSplices &+= 1
            if upstream.smallSplices >= TCPRelayMode.smallSplicesBeforeCopy { upstream.bulk = false; upstream.smallSplices = 0 }
        } else {
            downstream.smallSplices &+= 1
            if downstream.smallSplices >= TCPRelayMode.smallSplicesBeforeCopy { downstream.bulk = false; downstream.smallSplices = 0 }
        }
    }

    private func spliceFlush(upstream up: Bool) {
        let dst = up ? backendFD : clientFD
        let (pr, pw, held) = withDirection(up) { ($0.pipeRead, $0.pipeWrite, $0.inPipe) }
        guard held > 0 else { return }
        let moved: Int
        do { moved = try System.splice(from: pr, to: dst, held) ?? 0 } catch { fail(error, side: up ? "backend" : "client"); return }
        if moved > 0 { account(up, moved) }
        withDirection(up) { $0.inPipe -= moved }
        counters.pendingBytes.subtract(moved, ordering: .relaxed)
        if moved < held { return }
        withDirection(up) { $0.pipeRead = -1; $0.pipeWrite = -1 }
        service.returnPipe((pr, pw), empty: true)
        (up ? backendWrite : clientWrite)?.remove()
        (up ? clientRead : backendRead)?.add()
    }

    // MARK: closing

    /// Frees everything and leaves the live list (which drops the last strong
    /// reference: callers must return right after).
    func close(reason: String, error: SystemError? = nil) {
        guard phase != .closed else { return }
        let wasRelaying = phase == .relaying   // metrics: reached its member
        phase = .closed
        for e in [clientRead, backendRead, clientWrite, backendWrite, timer] { e?.free() }
        clientRead = nil; backendRead = nil; clientWrite = nil; backendWrite = nil; timer = nil
        System.close(clientFD)
        if backendFD >= 0 { System.close(backendFD); backendFD = -1 }
        for up in [true, false] {
            let held = withDirection(up) { d -> Int in
                let n = d.pendingCount
                d.pending?.deallocate(); d.pending = nil; d.start = 0; d.end = 0
                if d.pipeRead >= 0 { System.close(d.pipeRead); System.close(d.pipeWrite) }
                d.pipeRead = -1; d.pipeWrite = -1; d.inPipe = 0
                return n
            }
            if held > 0 { counters.pendingBytes.subtract(held, ordering: .relaxed) }
        }
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
