#if canImport(Glibc)
import Glibc
#endif
import FlowgateCore
import FlowgateSystem

/// One client connection on a listener whose pool has `protocol: HTTP`
/// (issue 13): requests are parsed one at a time (keep-alive and pipelined
/// requests wait in `fromClient` until the previous response ended), each is
/// balanced on its own through the pool's algorithm and cookie persistence,
/// and the member connection is kept while consecutive requests go to the
/// same member. Only heads are parsed and rewritten; bodies are framed by
/// `HTTPBodyFramer` and sent straight from the receive buffer (queued only
/// when the destination is full). After a 101 both directions are relayed
/// as plain bytes.
///
/// The plain TCP path (TCP/TCPConnection.swift) is untouched: the acceptor
/// chooses this type once per accept from its listener plan's pool protocol.
///
/// Stored state is `@exclusivity(unchecked)`: it is touched only on the
/// worker's thread, and no method holds a mutable access to one property
/// while calling code that touches the same property; the dynamic checks
/// cost a quarter of the instructions per keep-alive request (callgrind,
/// docs/benchmark.md).
final class HTTPConnection: EventHandler {
    enum RequestState { case head, connecting, body, waiting, tunnel, closing }
    enum ResponseState { case idle, head, body, tunnel }

    unowned(unsafe) let service: TCPService
    /// The listener plan of the latest snapshot, taken again at each request
    /// (a keep-alive connection follows pool updates: members, algorithm,
    /// persistence); a pick is always released on the plan that made it,
    /// since the plan only changes while no pick is held.
    @exclusivity(unchecked) private(set) var plan: ListenerPlan
    let key: ListeningSocketKey
    let flow: FlowContext
    let clientFD: Int32
    @exclusivity(unchecked) private(set) var backendFD: Int32 = -1
    /// The member `backendFD` is connected to.
    @exclusivity(unchecked) private(set) var connectedTo: BackendTarget?
    /// The current request's pick (released when its response ends).
    @exclusivity(unchecked) private(set) var target: BackendTarget?
    @exclusivity(unchecked) private var tried: [String] = []
    @exclusivity(unchecked) private var timedOut = 0
    @exclusivity(unchecked) private(set) var closed = false

    @exclusivity(unchecked) var fromClient: ByteQueue, toBackend: ByteQueue
    @exclusivity(unchecked) var fromBackend: ByteQueue, toClient: ByteQueue
    /// The client's address and the listener port as X-Forwarded-* text, made once.
    private let forwarded: HTTPHeadRewrite.Forwarded
    /// `backendFD` carried an earlier request (this client's, or another's: HTTPUpstreamPool).
    @exclusivity(unchecked) private var backendReused = false
    /// The head sent on a reused member connection, kept until the response
    /// starts: a bodyless GET/HEAD/OPTIONS whose reused connection ends
    /// before any byte of its response is sent again on a new connection.
    @exclusivity(unchecked) private var replay: ByteQueue
    @exclusivity(unchecked) private var requestParser = HTTPHeadParser(kind: .request)
    @exclusivity(unchecked) private var responseParser = HTTPHeadParser(kind: .response)
    @exclusivity(unchecked) private var requestBody = HTTPBodyFramer(.none, kind: .request)
    @exclusivity(unchecked) private var responseBody = HTTPBodyFramer(.none, kind: .response)
    @exclusivity(unchecked) private(set) var requestState = RequestState.head
    @exclusivity(unchecked) private(set) var responseState = ResponseState.idle
    /// The request head stays unconsumed at the front of `fromClient` until
    /// its member connection is ready (`requestSent`), then is rewritten
    /// straight into `toBackend`: no copy of it is held meanwhile.
    @exclusivity(unchecked) private var requestMethod = HTTPMethod.get
    @exclusivity(unchecked) private var requestKeepAlive = true
    @exclusivity(unchecked) private var requestUpgrade = false
    /// The Set-Cookie to add to the final response (HTTP_COOKIE without a valid cookie).
    @exclusivity(unchecked) private var insertCookie = false
    /// The member the request's HTTP_COOKIE value names, if valid.
    @exclusivity(unchecked) private var cookieMember: String?
    /// Bytes of the current response sent to the client so far (a bad head after any is a close, not a 502).
    @exclusivity(unchecked) private var responseBytesSent = 0
    @exclusivity(unchecked) private var clientEnded = false, backendEnded = false
    @exclusivity(unchecked) private var backendWriteShut = false, clientWriteShut = false
    /// Close the client once `toClient` is out.
    @exclusivity(unchecked) private var closeAfterFlush = false
    /// The client got its FIN; its last bytes are being drained (`finishClient`).
    @exclusivity(unchecked) private var lingering = false
    static let lingerSeconds = 2

    @exclusivity(unchecked) private var clientRead: LoopEvent?, clientWrite: LoopEvent?
    @exclusivity(unchecked) private var backendRead: LoopEvent?, backendWrite: LoopEvent?
    @exclusivity(unchecked) private var connectEvent: LoopEvent?
    @exclusivity(unchecked) private var timer: LoopEvent?
    @exclusivity(unchecked) private var on = (clientRead: false, clientWrite: false, backendRead: false, backendWrite: false)
    @exclusivity(unchecked) private var lastActivity = 0
    @exclusivity(unchecked) private(set) var bytesIn = 0, bytesOut = 0

    @exclusivity(unchecked) var next: HTTPConnection?
    unowned(unsafe) var prev: HTTPConnection?

    static let maxAttempts = 3
    /// Bytes buffered per direction before its source stops being read.
    static let bufferLimit = 256 * 1024
    static let readSize = 64 * 1024

    init(service: TCPService, client: Int32, flow: FlowContext, plan: ListenerPlan, key: ListeningSocketKey) {
        self.service = service; self.clientFD = client; self.flow = flow; self.plan = plan; self.key = key
        let pool = service.httpBuffers
        fromClient = ByteQueue(pool: pool); toBackend = ByteQueue(pool: pool)
        fromBackend = ByteQueue(pool: pool); toClient = ByteQueue(pool: pool)
        replay = ByteQueue(pool: pool)
        forwarded = HTTPHeadRewrite.Forwarded(client: "\(flow.client)", port: flow.localPort)
    }

    private var base: EventBase { service.base }

    func start() {
        clientRead = LoopEvent(base, fd: clientFD, interest: .read, persist: true, handler: self)
        timer = LoopEvent(timerOn: base, handler: self)
        lastActivity = service.now
        timer?.add(seconds: plan.listener.idleTimeout)
        readClient()
        drive()
    }

    override func handleEvent(fd: Int32, readiness: IOReadiness) {
        withLife {
            if fd < 0 { idleCheck(); return }
            if requestState == .connecting && fd == backendFD && connectEvent != nil {
                connectFinished(readiness)
            } else if fd == clientFD {
                if readiness.contains(.read) { readClient() }
            } else if fd == backendFD {
                if readiness.contains(.read) { readBackend() }
            }
            guard !closed else { return }
            drive()
        }
    }

    // MARK: reading

    private func readClient() {
        guard !clientEnded else { return }
        do {
            guard let n = try fromClient.receive(clientFD, max: HTTPConnection.readSize) else { return }
            if n == 0 { clientEnded = true } else { bytesIn += n; lastActivity = service.now }
        } catch {
            close(reason: "client_recv_error", error: error)
        }
    }

    private func readBackend() {
        guard backendFD >= 0, !backendEnded else { return }
        do {
            guard let n = try fromBackend.receive(backendFD, max: HTTPConnection.readSize) else { return }
            if n == 0 { backendEnded = true } else { lastActivity = service.now }
        } catch {
            backendEnded = true
        }
    }

    // MARK: the state machine

    /// Moves everything that can move now, then sets which events to wait on.
    private func drive() {
        var progress = true
        while progress && !closed {
            progress = false
            if flush() { progress = true }
            if closed { return }
            if stepRequest() { progress = true }
            if closed { return }
            if stepResponse() { progress = true }
        }
        guard !closed else { return }
        if closeAfterFlush && toClient.isEmpty { finishClient(); return }
        if requestState == .head && responseState == .idle {
            // Between requests: an idle keep-alive connection keeps no buffer.
            if fromClient.isEmpty { fromClient.free() }
            if toClient.isEmpty { toClient.free() }
            if fromBackend.isEmpty { fromBackend.free() }
            if toBackend.isEmpty { toBackend.free() }
        }
        updateInterest()
    }

    /// Sends queued bytes; true when some left.
    private func flush() -> Bool {
        var moved = false
        if !toClient.isEmpty {
            do {
                let n = try toClient.send(clientFD)
                if n > 0 { moved = true; bytesOut += n; responseBytesSent += n; lastActivity = service.now }
            } catch { close(reason: "client_send_error", error: error); return false }
        }
        if !toBackend.isEmpty && backendFD >= 0 && requestState != .connecting {
            do {
                if try toBackend.send(backendFD) > 0 { moved = true }
            } catch {
                toBackend.consume(toBackend.count)
                backendEnded = true
                moved = true
            }
        }
        return moved
    }

    /// Bytes `count` at the front of `source` go to `fd`: sent at once when
    /// nothing is queued before them, the rest queued.
    private func forward(_ count: Int, from source: inout ByteQueue, to fd: Int32, queue: inout ByteQueue, client: Bool) {
        guard count > 0 else { return }
        var sent = 0
        if queue.isEmpty && fd >= 0 {
            if let n = try? System.send(fd, source.bytes.baseAddress!, count) { sent = n }
        }
        if sent < count { queue.append(UnsafeRawBufferPointer(rebasing: source.bytes[sent..<count])) }
        if client { bytesOut += sent; responseBytesSent += sent }
        source.consume(count)
    }

    private func stepRequest() -> Bool {
        switch requestState {
        case .head:
            guard responseState == .idle else { return false }
            if fromClient.isEmpty {
                if clientEnded { closeAfterFlush = true; requestState = .closing; return true }
                return false
            }
            let complete: Bool
            do { complete = try requestParser.parse(fromClient.bytes) } catch {
                answer(error.status, error.message)
                return true
            }
            guard complete else {
                if clientEnded { answer(400, "connection closed inside the request head") ; return true }
                return false
            }
            startRequest(requestParser.head)
            // Body bytes that came with the head join it in `toBackend` before
            // the next flush, so head and body leave in one send.
            if requestState == .body { _ = stepRequest() }
            return true
        case .body:
            if requestBody.isDone { requestState = .waiting; return true }
            if fromClient.isEmpty {
                if clientEnded { close(reason: "client_closed_in_body"); return true }
                return false
            }
            guard toBackend.count < HTTPConnection.bufferLimit else { return false }
            let used: Int, done: Bool
            do { (used, done) = try requestBody.consume(fromClient.bytes) } catch {
                // Part of the request went to the member already: answer only
                // while nothing of its response has reached the client.
                if responseState == .head && responseBytesSent == 0 && toClient.isEmpty {
                    answer(error.status, error.message)
                } else {
                    close(reason: "bad_request_body")
                }
                return true
            }
            forward(used, from: &fromClient, to: backendFD, queue: &toBackend, client: false)
            if done { requestState = .waiting }
            return used > 0 || done
        case .tunnel:
            if !fromClient.isEmpty && toBackend.count < HTTPConnection.bufferLimit {
                forward(fromClient.count, from: &fromClient, to: backendFD, queue: &toBackend, client: false)
                return true
            }
            if clientEnded && fromClient.isEmpty && toBackend.isEmpty && !backendWriteShut {
                backendWriteShut = true
                System.shutdownWrite(backendFD)
                return true
            }
            return false
        case .connecting, .waiting, .closing:
            return false
        }
    }

    private func startRequest(_ head: HTTPHead) {
        if target == nil, let current = service.currentPlan(key), current !== plan {
            plan = current
            // Another snapshot: the connected member may have left or changed its address.
            closeBackend()
        }
        let buffer = fromClient.bytes
        requestMethod = head.method ?? .get
        requestKeepAlive = head.keepAlive
        requestUpgrade = head.requestsUpgrade
        requestBody = HTTPBodyFramer(head.framing, kind: .request)
        if head.framing == .chunked && head.length < buffer.count {
            // The chunked body bytes that came with the head are checked
            // before the head goes anywhere: a refusal here (a chunk-size
            // overflow, a bad chunk line) is answered 400 and nothing of the
            // request reaches a member. Later bytes are checked as they pass.
            var probe = requestBody
            do { _ = try probe.consume(UnsafeRawBufferPointer(rebasing: buffer[head.length...])) } catch {
                answer(error.status, error.message)
                return
            }
        }
        // Cookie persistence: a valid cookie names the member to prefer.
        var preferred: String?
        cookieMember = nil
        let pool = plan.pool
        if let codec = pool.cookieCodec {
            let value = codec.nameBytes.withUnsafeBytes { HTTPCookies.requestCookieValue($0, head: head, in: buffer) }
            preferred = value.flatMap { codec.member(forValue: UnsafeRawBufferPointer(rebasing: buffer[$0])) }
            cookieMember = preferred
            if preferred != nil && !pool.isUsable(preferred!) { preferred = nil }
            service.worker.metrics.httpCookie(poolID: pool.id, hit: preferred != nil, had: value != nil)
        } else if let name = pool.appCookieName {
            if let value = HTTPCookies.requestCookie(name, head: head, in: buffer) {
                preferred = pool.appCookieMember(value)
                if preferred != nil && !pool.isUsable(preferred!) { preferred = nil }
                service.worker.metrics.httpCookie(poolID: pool.id, hit: preferred != nil, had: true)
            }
        }
        tried = []; timedOut = 0
        pick(preferred: preferred)
    }

    /// Picks a member for the current request: the one connected already is
    /// reused when the pick lands on it; otherwise a new connect.
    private func pick(preferred: String?) {
        guard tried.count < HTTPConnection.maxAttempts,
              let t = plan.pick(flow, excluding: tried, preferred: tried.isEmpty ? preferred : nil) else {
            if tried.isEmpty {
                answer(503, "no eligible member in the pool")
            } else if timedOut == tried.count {
                answer(504, "no member answered the connect in time")
            } else {
                answer(502, "no member accepted the connection")
            }
            return
        }
        target = t
        // HTTP_COOKIE: a fresh cookie unless the request's already names this member.
        insertCookie = plan.pool.cookieCodec != nil && cookieMember != t.memberID
        if let c = connectedTo, c.memberID == t.memberID, backendFD >= 0, !backendEnded {
            backendReused = true
            requestSent()
            return
        }
        closeBackend()
        if replayable, let fd = service.httpUpstreams.take(t, now: service.now) {
            backendFD = fd
            backendReused = true
            established()
            return
        }
        connect(t)
    }

    /// A request that may be sent twice: no body, and a method RFC 9110 §9.2.2 calls idempotent.
    private var replayable: Bool {
        requestBody.isDone && (requestMethod == .get || requestMethod == .head || requestMethod == .options)
    }

    /// A new connection to `t` for the current request.
    private func connect(_ t: BackendTarget) {
        backendReused = false
        let address = SocketAddress(t.address, port: Int(t.port))
        do {
            backendFD = try System.streamSocket(family: address.family)
            System.setNoDelay(backendFD)
            requestState = .connecting
            if try System.connect(backendFD, address) {
                established()
                return
            }
        } catch {
            attemptFailed(error)
            return
        }
        connectEvent = LoopEvent(base, fd: backendFD, interest: .write, persist: false, handler: self)
        connectEvent?.add(seconds: service.connectTimeout)
    }

    private func connectFinished(_ what: IOReadiness) {
        connectEvent?.free(); connectEvent = nil
        if what.contains(.timeout) { attemptFailed(.timedOut("connect")); return }
        let code = System.pendingError(backendFD)
        if code != 0 { attemptFailed(SystemError("connect", code)); return }
        established()
    }

    private func attemptFailed(_ error: SystemError) {
        if let e = connectEvent { e.free(); connectEvent = nil }
        closeBackend()
        service.worker.counters.connectFailures.add(1, ordering: .relaxed)
        if error.isTimedOut { timedOut += 1 }
        if let t = target {
            plan.release(flow, target: t, connected: false)
            tried.append(t.memberID)
            Log.debug("member_connect_failed", ["listener": plan.listener.listenerArn, "member": t.memberID, "error": error.reason])
        }
        target = nil
        pick(preferred: nil)
    }

    private func established() {
        guard let t = target else { return }
        plan.connected(t)
        connectedTo = t
        backendEnded = false; backendWriteShut = false
        backendRead = LoopEvent(base, fd: backendFD, interest: .read, persist: true, handler: self)
        requestSent()
    }

    /// The member connection is ready: the request head goes out (rewritten
    /// into `toBackend`, sent with the body bytes behind it by one send), its body follows.
    private func requestSent() {
        if !replay.isEmpty {
            // Sent again after a reused connection ended unanswered (`retryUnanswered`).
            toBackend.append(replay.bytes)
            replay.free()
        } else {
            let head = requestParser.head
            let from = toBackend.count
            HTTPHeadRewrite.request(head, fromClient.bytes, forwarded: plan.pool.pool.addsForwardedHeaders ? forwarded : nil,
                                    keepMemberConnection: true, into: &toBackend)
            fromClient.consume(head.length)
            if backendReused && replayable { replay.append(UnsafeRawBufferPointer(rebasing: toBackend.bytes[from...])) }
            service.worker.metrics.httpRequest(poolID: plan.pool.id, memberID: target?.memberID ?? "-")
        }
        requestState = .body
        responseState = .head
        responseBytesSent = 0
    }

    /// The reused member connection ended before any byte of the response:
    /// the member closed it as the request went out. A replayable request
    /// goes again to the same member on a new connection (true); anything
    /// else is the member's failure (false).
    private func retryUnanswered() -> Bool {
        guard !replay.isEmpty, responseBytesSent == 0, toClient.isEmpty, fromBackend.isEmpty, let t = target else {
            return false
        }
        Log.debug("http_reused_connection_closed", ["listener": plan.listener.listenerArn, "member": t.memberID])
        closeBackend()
        requestState = .connecting
        connect(t)
        return true
    }

    private func stepResponse() -> Bool {
        switch responseState {
        case .idle:
            if backendFD >= 0 && (backendEnded || !fromBackend.isEmpty) && requestState != .connecting {
                // The member closed its idle connection (or sent bytes nobody asked for).
                closeBackend()
                return true
            }
            return false
        case .head:
            if fromBackend.isEmpty {
                if backendEnded {
                    if !retryUnanswered() { badResponse("the member closed the connection before a response") }
                    return true
                }
                return false
            }
            replay.free()
            responseParser.respondingTo = requestMethod
            let complete: Bool
            do { complete = try responseParser.parse(fromBackend.bytes) } catch {
                badResponse(error.message)
                return true
            }
            guard complete else {
                if backendEnded { badResponse("the member closed the connection inside the response head") ; return true }
                return false
            }
            startResponse(responseParser.head)
            // Likewise the response body behind its head: one send to the client.
            if responseState == .body { _ = stepResponse() }
            return true
        case .body:
            if responseBody.isDone { responseEnded(); return true }
            if fromBackend.isEmpty {
                if backendEnded {
                    do { try responseBody.finish() } catch { close(reason: "member_closed_in_body"); return true }
                    responseEnded()
                    return true
                }
                return false
            }
            guard toClient.count < HTTPConnection.bufferLimit else { return false }
            let used: Int, done: Bool
            do { (used, done) = try responseBody.consume(fromBackend.bytes) } catch {
                close(reason: "bad_response_body")
                return true
            }
            forward(used, from: &fromBackend, to: clientFD, queue: &toClient, client: true)
            if done { responseEnded() }
            return true
        case .tunnel:
            if !fromBackend.isEmpty && toClient.count < HTTPConnection.bufferLimit {
                forward(fromBackend.count, from: &fromBackend, to: clientFD, queue: &toClient, client: true)
                return true
            }
            if backendEnded && fromBackend.isEmpty && toClient.isEmpty && !clientWriteShut {
                clientWriteShut = true
                System.shutdownWrite(clientFD)
                if clientEnded && backendWriteShut { close(reason: "done") }
                return true
            }
            if clientWriteShut && backendWriteShut && toBackend.isEmpty { close(reason: "done"); return true }
            return false
        }
    }

    private func startResponse(_ head: HTTPHead) {
        let buffer = fromBackend.bytes
        var cookie: [UInt8]?
        let pool = plan.pool
        if !head.isInterim, let t = target {
            if insertCookie, let codec = pool.cookieCodec { cookie = codec.setCookieLine(for: t.memberID) }
            if let name = pool.appCookieName, let value = HTTPCookies.setCookie(name, head: head, in: buffer), !value.isEmpty {
                pool.learnAppCookie(value, memberID: t.memberID)
            }
            service.worker.metrics.httpStatus(poolID: pool.id, status: head.status)
        }
        // The client asked to close: say so, whatever the member (kept open for the next client) said.
        let addClose = !head.isInterim && head.framing != .switchingProtocols && !requestKeepAlive && !head.connectionClose
        if let cookie {
            cookie.withUnsafeBytes { HTTPHeadRewrite.response(head, buffer, setCookie: $0, close: addClose, into: &toClient) }
        } else {
            HTTPHeadRewrite.response(head, buffer, setCookie: nil, close: addClose, into: &toClient)
        }
        fromBackend.consume(head.length)
        if head.isInterim { return }   // the final response follows
        if head.framing == .switchingProtocols {
            guard requestUpgrade else { close(reason: "unrequested_101"); return }
            responseState = .tunnel
            requestState = .tunnel
            return
        }
        if !head.keepAlive { requestKeepAlive = false; backendWillClose = true }
        responseBody = HTTPBodyFramer(head.framing, kind: .response)
        responseState = .body
    }

    @exclusivity(unchecked) private var backendWillClose = false

    /// The response is complete: the pick is released, and the next request
    /// (maybe already buffered: pipelining) may start.
    private func responseEnded() {
        if service.draining { requestKeepAlive = false }
        if let t = target { plan.release(flow, target: t, connected: true) }
        target = nil
        responseState = .idle
        if backendWillClose { closeBackend(); backendWillClose = false }
        if requestState != .waiting || !requestKeepAlive {
            // The client's request is not complete (the member answered early) or asked to close.
            requestState = .closing
            closeAfterFlush = true
            return
        }
        requestState = .head
    }

    /// Idle keep-alive: no request started, nothing queued either way.
    var isBetweenRequests: Bool {
        requestState == .head && responseState == .idle && fromClient.isEmpty && toClient.isEmpty
    }

    private func badResponse(_ message: String) {
        if responseBytesSent == 0 && toClient.isEmpty {
            answer(502, "the member sent an invalid response: \(message)")
        } else {
            close(reason: "bad_response")
        }
    }

    /// Flowgate's own answer; the connection closes once it is out.
    private func answer(_ status: Int, _ message: String) {
        service.worker.metrics.httpStatus(poolID: plan.pool.id, status: status)
        Log.debug("http_error", ["listener": plan.listener.listenerArn, "status": status, "message": message])
        if let t = target { plan.release(flow, target: t, connected: true); target = nil }
        closeBackend()
        replay.free()
        toClient.append(HTTPHeadRewrite.answer(status, message))
        requestState = .closing
        responseState = .idle
        closeAfterFlush = true
    }

    /// The client gets a FIN after everything queued for it; bytes it still
    /// sends are read and dropped until it closes (or the idle timer fires),
    /// so a close with unread bytes does not reset the answer away.
    private func finishClient() {
        if !clientWriteShut { clientWriteShut = true; System.shutdownWrite(clientFD) }
        if !lingering { lingering = true; timer?.add(seconds: HTTPConnection.lingerSeconds) }
        releaseBackend()
        if clientEnded { close(reason: "done"); return }
        fromClient.consume(fromClient.count)
        if !on.clientRead { clientRead?.add(); on.clientRead = true }
        if on.clientWrite { clientWrite?.remove(); on.clientWrite = false }
    }

    private func updateInterest() {
        let wantClientRead = !clientEnded && fromClient.count < HTTPConnection.bufferLimit
        let wantClientWrite = !toClient.isEmpty
        let live = backendFD >= 0 && requestState != .connecting
        let wantBackendRead = live && !backendEnded && fromBackend.count < HTTPConnection.bufferLimit
        let wantBackendWrite = live && !toBackend.isEmpty
        if wantClientRead != on.clientRead { if wantClientRead { clientRead?.add() } else { clientRead?.remove() }; on.clientRead = wantClientRead }
        // Write events exist only once a send came up short (most connections never need one).
        if wantClientWrite && clientWrite == nil {
            clientWrite = LoopEvent(base, fd: clientFD, interest: .write, persist: true, handler: self)
        }
        if wantBackendWrite && backendWrite == nil {
            backendWrite = LoopEvent(base, fd: backendFD, interest: .write, persist: true, handler: self)
        }
        if wantClientWrite != on.clientWrite { if wantClientWrite { clientWrite?.add() } else { clientWrite?.remove() }; on.clientWrite = wantClientWrite }
        if wantBackendRead != on.backendRead { if wantBackendRead { backendRead?.add() } else { backendRead?.remove() }; on.backendRead = wantBackendRead }
        if wantBackendWrite != on.backendWrite { if wantBackendWrite { backendWrite?.add() } else { backendWrite?.remove() }; on.backendWrite = wantBackendWrite }
    }

    private func idleCheck() {
        if lingering { close(reason: "linger_timeout"); return }
        let idle = plan.listener.idleTimeout
        let elapsed = service.now - lastActivity
        if elapsed >= idle { close(reason: "idle_timeout"); return }
        timer?.add(seconds: idle - elapsed)
    }

    // MARK: closing

    /// The client connection is done: an idle, clean member connection of the
    /// latest snapshot is parked for the next client (HTTPUpstreamPool), any other closed.
    private func releaseBackend() {
        if backendFD >= 0, let t = connectedTo, target == nil, responseState == .idle, !backendEnded, !backendWillClose,
           requestState != .tunnel, requestState != .connecting, toBackend.isEmpty, fromBackend.isEmpty,
           !service.draining, service.currentPlan(key) === plan {
            let fd = backendFD
            backendFD = -1
            closeBackend()
            service.httpUpstreams.park(fd, target: t, now: service.now)
            return
        }
        closeBackend()
    }

    private func closeBackend() {
        connectEvent?.free(); connectEvent = nil
        backendRead?.free(); backendRead = nil
        backendWrite?.free(); backendWrite = nil
        on.backendRead = false; on.backendWrite = false
        if backendFD >= 0 { System.close(backendFD); backendFD = -1 }
        connectedTo = nil
        backendEnded = false; backendWriteShut = false
        fromBackend.consume(fromBackend.count)
        toBackend.consume(toBackend.count)
    }

    func close(reason: String, error: SystemError? = nil) {
        guard !closed else { return }
        closed = true
        if reason == "done" { releaseBackend() } else { closeBackend() }
        clientRead?.free(); clientRead = nil
        clientWrite?.free(); clientWrite = nil
        timer?.free(); timer = nil
        System.close(clientFD)
        if let t = target { plan.release(flow, target: t, connected: true); target = nil }
        fromClient.free(); toBackend.free(); fromBackend.free(); toClient.free(); replay.free()
        service.worker.metrics.tcpClosed(listener: plan.listener.listenerArn, poolID: plan.pool.id, target: nil,
                                         established: false, bytesIn: bytesIn, bytesOut: bytesOut)
        if plan.listener.connectionLog || (error != nil && Log.enabled(.debug)) {
            Log.emit(plan.listener.connectionLog ? .info : .debug, "http_connection_closed", [
                "listener": plan.listener.listenerArn, "client": "\(flow.client):\(flow.clientPort)",
                "reason": reason, "bytes_in": bytesIn, "bytes_out": bytesOut, "error": error?.reason ?? "-"])
        }
        service.unlinkHTTP(self)
    }
}
