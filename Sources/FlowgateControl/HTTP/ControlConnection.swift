// One control connection on the control loop thread: bytes in through the
// core's HTTPRequestParser, each complete request routed and answered in
// order, answers out through a bounded output buffer. One deadline timer
// covers the three ways a client can hold the connection without progress
// (see `Phase`); no byte the client sends moves a deadline.
#if canImport(Glibc)
import Glibc
#endif
import FlowgateCore
import FlowgateSystem

final class ControlConnection {
    let fd: Int32
    unowned let endpoint: ControlEndpoint
    unowned let server: ControlServer
    let peer: String
    private var parser: HTTPRequestParser
    private var watch: IOWatch?
    private var deadline: LoopTimer?
    private var phase: Phase = .idle
    private var output: [UInt8] = []
    private var outputOffset = 0
    /// No more requests are read; close once `output` is written.
    private var closeAfterFlush = false
    private var sentContinue = false
    /// Complete requests wait in the parser because too much output is queued.
    private var heldBack = false
    private var closed = false
    /// After an error answer: read and drop what the client still sends, so
    /// it reads the answer instead of a reset (a lingering close, as nginx does).
    private var lingerAfterFlush = false
    private var lingering = false
    private var lingeredBytes = 0
    static let lingerSeconds = 2.0
    static let lingerMaxBytes = 1 << 20

    /// What the running deadline bounds.
    enum Phase: Equatable {
        /// No request begun: a keep-alive connection may wait this long for the next.
        case idle
        /// A request's first byte arrived: head and body must be complete in time (a total deadline).
        case request
        /// Answers are queued: the client must read them in time.
        case writing
    }

    /// Stop reading pipelined requests while this much output waits (a client
    /// that sends but never reads cannot grow our memory).
    static let outputHighWater = 4 << 20

    init(fd: Int32, endpoint: ControlEndpoint, peer: String, server: ControlServer) {
        self.fd = fd; self.endpoint = endpoint; self.peer = peer; self.server = server
        parser = HTTPRequestParser(limits: server.limits.http)
    }

    func begin() {
        watch = server.loop.watch(fd: fd, events: .read) { [unowned self] readiness in
            if readiness.contains(.write) { self.flush() }
            if readiness.contains(.read) && !self.closed { self.readReady() }
        }
        arm(.idle)
    }

    // MARK: deadline

    private func arm(_ next: Phase) {
        if next == phase && deadline != nil { return }
        phase = next
        deadline?.cancel()
        deadline = server.loop.after(server.limits.timeoutSeconds) { [unowned self] in self.deadlinePassed() }
    }

    private func deadlinePassed() {
        deadline = nil
        switch phase {
        case .idle:
            close(reason: nil)
        case .request:
            server.counters.timedOut.add(1, ordering: .relaxed)
            server.rateLimitedLog.warn("control_request_timeout", key: "timeout-\(endpoint.name)",
                                       ["endpoint": endpoint.name, "peer": peer,
                                        "limit_s": server.limits.timeoutSeconds, "buffered": parser.bufferedBytes])
            // 408 only when nothing else is queued: answers must stay in request order.
            if output.count == outputOffset {
                queue(ControlConnection.errorResponse(408, "the request did not arrive within \(Int(server.limits.timeoutSeconds)) s"),
                      keepAlive: false, headOnly: false)
            }
            closeAfterFlush = true
            flush()
            if !closed { arm(.writing) }
        case .writing:
            server.counters.timedOut.add(1, ordering: .relaxed)
            close(reason: "answer not read within \(server.limits.timeoutSeconds) s")
        }
    }

    // MARK: reading

    private func beginLinger() {
        lingering = true
        System.shutdownWrite(fd)
        watch?.enable(.read)
        deadline?.cancel()
        deadline = server.loop.after(ControlConnection.lingerSeconds) { [unowned self] in self.deadline = nil; self.close(reason: nil) }
    }

    /// Drops input until EOF, the byte bound or the linger deadline.
    private func drainLingering() {
        withUnsafeTemporaryAllocation(byteCount: 16 << 10, alignment: 8) { buf in
            while !closed {
                let n: Int?
                do throws(SystemError) { n = try System.receive(fd, buf.baseAddress!, buf.count) } catch { close(reason: nil); return }
                guard let n else { return }
                lingeredBytes += n
                if n == 0 || lingeredBytes > ControlConnection.lingerMaxBytes { close(reason: nil); return }
            }
        }
    }

    private func readReady() {
        if lingering { drainLingering(); return }
        var sawEOF = false
        withUnsafeTemporaryAllocation(byteCount: 16 << 10, alignment: 8) { buf in
            // Bounded per wakeup: the parser refuses oversize heads and bodies itself.
            for _ in 0..<8 {
                let n: Int?
                do throws(SystemError) { n = try System.receive(fd, buf.baseAddress!, buf.count) } catch {
                    sawEOF = true; return
                }
                guard let n else { return }
                if n == 0 { sawEOF = true; return }
                if !closeAfterFlush { parser.append(UnsafeRawBufferPointer(rebasing: buf[0..<n])) }
            }
        }
        if !closeAfterFlush { serveComplete() }
        if sawEOF {
            // The client half-closed: answer what it sent in full, then close.
            closeAfterFlush = true
            if output.count == outputOffset { close(reason: nil); return }
            flush()
            return
        }
        updatePhase()
    }

    /// Answers every complete request in the buffer, in order.
    private func serveComplete() {
        heldBack = false
        while !closeAfterFlush {
            if output.count - outputOffset >= ControlConnection.outputHighWater { heldBack = true; break }
            guard let result = parser.next() else { break }
            switch result {
            case let .failure(error):
                server.counters.badRequests.add(1, ordering: .relaxed)
                server.rateLimitedLog.info("control_bad_request", key: "bad-\(endpoint.name)",
                                           ["endpoint": endpoint.name, "peer": peer, "status": error.status, "error": error.message])
                queue(ControlConnection.errorResponse(error.status, error.message), keepAlive: false, headOnly: false)
                closeAfterFlush = true
                lingerAfterFlush = true
            case let .success(request):
                sentContinue = false
                // Each request gets its own deadline: the next one's starts now.
                deadline?.cancel(); deadline = nil
                serve(request)
            }
        }
        if !closeAfterFlush, let head = parser.headAwaitingBody, head.expectsContinue, !sentContinue {
            sentContinue = true
            output += Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)
        }
        flush()
    }

    private func serve(_ request: HTTPRequest) {
        let head = request.head
        // HEAD is answered as GET without the body (read-only handlers only answer GET).
        let headOnly = head.method == "HEAD"
        let controlRequest = ControlRequest(method: headOnly ? "GET" : head.method, path: head.target,
                                            headers: head.headers.map { ($0.name, $0.value) },
                                            body: request.body, overTCP: endpoint.overTCP)
        let response = server.router.route(controlRequest)
        var keepAlive = head.keepAlive
        // A request that failed authentication gets its answer and the connection ends:
        // an unauthenticated client never holds a slot beyond one request.
        if endpoint.overTCP && (response.status == 401 || response.status == 403) {
            server.counters.authClosed.add(1, ordering: .relaxed)
            keepAlive = false
        }
        queue(response, keepAlive: keepAlive, headOnly: headOnly)
        if !keepAlive { closeAfterFlush = true }
    }

    private func queue(_ response: ControlResponse, keepAlive: Bool, headOnly: Bool) {
        output += HTTPResponseText.serialize(status: response.status, headers: response.headers, body: response.body,
                                             keepAlive: keepAlive, headOnly: headOnly, date: ControlServer.httpDate())
    }

    static func errorResponse(_ status: Int, _ message: String) -> ControlResponse {
        // Before a request is parsed its API is unknown: answer in both shapes' fields
        // (AWS reads __type/message, the ELB SDK error_code/error_msg).
        let body = JSONValue.object([("__type", .string(status == 408 ? "RequestTimeoutException" : "BadRequestException")),
                                     ("message", .string(message)),
                                     ("error_code", .string("HTTP.\(status)")), ("error_msg", .string(message))])
        return ControlResponse(status: status, headers: [("Content-Type", "application/json")], json: body)
    }

    // MARK: writing

    private func flush() {
        while outputOffset < output.count {
            let offset = outputOffset
            let result: Result<Int, SystemError> = output.withUnsafeBytes { raw in
                do throws(SystemError) { return .success(try System.send(fd, raw.baseAddress! + offset, raw.count - offset)) }
                catch { return .failure(error) }
            }
            guard case let .success(sent) = result else { close(reason: nil); return }
            if sent == 0 { break }
            outputOffset += sent
        }
        if outputOffset == output.count {
            output.removeAll(keepingCapacity: output.capacity <= 64 << 10)
            outputOffset = 0
            if closeAfterFlush {
                if lingerAfterFlush { beginLinger() } else { close(reason: nil) }
                return
            }
            // Requests held back by the high-water mark can go now.
            if heldBack { serveComplete(); return }
        }
        updatePhase()
    }

    private func updatePhase() {
        guard !closed, !lingering else { return }
        let pending = output.count > outputOffset
        var interest: IOInterest = []
        if !closeAfterFlush && output.count - outputOffset < ControlConnection.outputHighWater { interest.insert(.read) }
        if pending { interest.insert(.write) }
        watch?.enable(interest)
        if pending { arm(.writing) } else if parser.isMidRequest { arm(.request) } else { arm(.idle) }
    }

    func close(reason: String?) {
        guard !closed else { return }
        closed = true
        if let reason { Log.debug("control_connection_closed", ["endpoint": endpoint.name, "peer": peer, "reason": reason]) }
        deadline?.cancel(); deadline = nil
        watch?.cancel(); watch = nil
        System.close(fd)
        server.connectionClosed(self)
    }
}
