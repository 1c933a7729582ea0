import FlowgateCore
import FlowgateSystem

/// One active health check of one member, run on the checker's thread with
/// non-blocking sockets and one libevent event re-armed with whatever time is
/// left before the deadline (ELB's `timeout` covers the whole check).
///
/// - TCP: the connect completes (SO_ERROR 0) → pass.
/// - UDP_CONNECT: a datagram on a connected UDP socket; ICMP port unreachable
///   comes back as ECONNREFUSED on the socket → fail; a reply, or silence
///   until the deadline → pass (ELB: "if no ICMP error is received within
///   the timeout, the backend server is considered healthy").
/// - HTTP: connect, `GET url_path HTTP/1.0`, status line's code in
///   `expected_codes` → pass.
final class HealthProbe: EventHandler {
    typealias Completion = (_ passed: Bool, _ reason: String) -> Void

    private enum Stage { case connecting, awaitingReply, readingResponse, done }

    let kind: HealthMonitor.Kind
    private let base: EventBase
    private let deadline: Double
    private let time: any TimeSource
    private let request: [UInt8]
    private let expected: ExpectedCodes?
    private var fd: Int32 = -1
    private var event: LoopEvent?
    private var stage = Stage.connecting
    private var response: [UInt8] = []
    private var completion: Completion?

    /// The payload of a UDP_CONNECT probe (any datagram does; a named one
    /// lets a backend operator see what it is).
    static let udpPayload = Array("flowgate-health-check\n".utf8)

    init(kind: HealthMonitor.Kind, base: EventBase, time: any TimeSource, deadline: Double,
         host: String, urlPath: String, expectedCodes: String) {
        self.kind = kind; self.base = base; self.time = time; self.deadline = deadline
        request = Array("GET \(urlPath) HTTP/1.0\r\nHost: \(host)\r\nUser-Agent: flowgate-health\r\nConnection: close\r\n\r\n".utf8)
        expected = ExpectedCodes(expectedCodes)
        super.init()
    }

    deinit { cleanup() }

    /// Starts the check; `done` runs exactly once, on this thread, possibly
    /// before `start` returns (an immediate failure).
    func start(_ address: SocketAddress, done: @escaping Completion) {
        completion = done
        do {
            switch kind {
            case .udpConnect:
                fd = try System.connectedDatagramSocket(address)
                _ = try System.send(fd, HealthProbe.udpPayload, HealthProbe.udpPayload.count)
                stage = .awaitingReply
                arm(.read, persist: false)
            case .tcp, .http:
                fd = try System.streamSocket(family: address.family)
                if try System.connect(fd, address) { connected() } else { arm(.write, persist: false) }
            }
        } catch {
            finish(false, error.isConnectionRefused ? "refused" : error.description)
        }
    }

    /// Abandons the check without a result (member removed, checker stopping).
    func cancel() {
        completion = nil
        cleanup()
    }

    private func arm(_ interest: IOInterest, persist: Bool) {
        if let e = event { e.free(); event = nil }
        event = LoopEvent(base, fd: fd, interest: interest, persist: persist, handler: self)
        event?.add(timeout: max(0, deadline - time.now()))
    }

    /// The probe's owner drops it when it finishes: keep it alive for the call.
    override func handleEvent(fd: Int32, readiness: IOReadiness) {
        withLife { fired(readiness) }
    }

    private func fired(_ what: IOReadiness) {
        if what.contains(.timeout) {
            // Silence is health for UDP_CONNECT only.
            if stage == .awaitingReply { finish(true, "no port unreachable within timeout") } else { finish(false, "timeout") }
            return
        }
        switch stage {
        case .connecting:
            let code = System.pendingError(fd)
            if code != 0 {
                let error = SystemError("connect", code)
                finish(false, error.isConnectionRefused ? "refused" : error.description)
                return
            }
            connected()
        case .awaitingReply:
            var byte: UInt8 = 0
            do {
                _ = try System.receive(fd, &byte, 1)
                finish(true, "reply")
            } catch {
                finish(false, error.isConnectionRefused ? "port unreachable" : error.description)
            }
        case .readingResponse:
            readResponse()
        case .done:
            return
        }
    }

    private func connected() {
        guard kind == .http else { finish(true, "connected"); return }
        var sent = -1
        var failure: SystemError?
        request.withUnsafeBytes { raw in
            do throws(SystemError) { sent = try System.send(fd, raw.baseAddress!, raw.count) } catch { failure = error }
        }
        if let failure { finish(false, failure.description); return }
        // A fresh socket's send buffer always takes a few hundred bytes.
        guard sent == request.count else { finish(false, "request not sent"); return }
        stage = .readingResponse
        arm(.read, persist: true)
    }

    private func readResponse() {
        var chunk = [UInt8](repeating: 0, count: 2048)
        var n: Int?
        var failure: SystemError?
        chunk.withUnsafeMutableBytes { raw in
            do throws(SystemError) { n = try System.receive(fd, raw.baseAddress!, raw.count) } catch { failure = error }
        }
        if let failure { finish(false, failure.description); return }
        guard let n else { return }
        response.append(contentsOf: chunk[..<n])
        switch HTTPStatusLine.parse(response) {
        case .status(let code):
            let ok = expected?.contains(code) ?? false
            finish(ok, "status \(code)")
        case .malformed:
            finish(false, "malformed status line")
        case .incomplete:
            if n == 0 { finish(false, "closed before status line") }
            // A persistent event's timeout restarts on every read: a server
            // trickling bytes must not stretch the check past its deadline.
            else if time.now() >= deadline { finish(false, "timeout") }
        }
    }

    private func finish(_ passed: Bool, _ reason: String) {
        stage = .done
        cleanup()
        let c = completion
        completion = nil
        c?(passed, reason)
    }

    private func cleanup() {
        if let e = event { e.free(); event = nil }
        if fd >= 0 {
            // RST instead of FIN: a checker that closes first would otherwise
            // leave a TIME_WAIT entry per check.
            if kind != .udpConnect { System.setAbortiveClose(fd) }
            System.close(fd)
            fd = -1
        }
    }
}
