// The control HTTP/1.1 server: its own loop thread, so the data plane never
// waits on it; a Unix socket (mode 0600) and an optional TCP address. Every
// request is answered on this one thread, which is what serialises API
// updates with each other (SIGHUP reloads pass the same gate in
// Update/ControlService.swift).
//
// Written on plain sockets and the core's HTTPRequestParser rather than
// libevent's evhttp because the control endpoint faces unauthenticated
// clients, and evhttp gave no way to bound what they hold: its timeout is
// reset by every byte (a dribbling client stayed forever), it counts a
// connection only once a request completes (partial requests held every
// descriptor), it spins and logs on EMFILE, answers unknown methods with
// HTML, and dropped answers to pipelined requests. Here:
// - each endpoint has its own connection budget, so TCP clients can never
//   starve the Unix socket, and the control plane holds at most
//   2 x maxConnections descriptors: the data plane keeps the rest;
// - a request head and body must arrive within one total deadline, an idle
//   keep-alive connection and an unread answer are cut at the same bound;
// - a connection whose request failed authentication is closed after the answer;
// - at EMFILE/ENFILE accepting pauses with a growing back-off, and repeated
//   log lines are rate-limited with a count;
// - pipelined requests are answered in order, each exactly once.
#if canImport(Glibc)
import Glibc
#endif
import FlowgateCore
import FlowgateSystem
import Synchronization

public struct ControlServerError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

public struct ControlLimits: Sendable {
    /// Request bodies above this are refused with 413 before they are read.
    public var maxBodyBytes = 1 << 20
    public var maxHeaderBytes = 64 << 10
    /// Seconds a request (head and body) may take from its first byte, a
    /// keep-alive connection may stay idle, and an answer may take to be read.
    public var timeoutSeconds: Double = 10
    /// Connections held at once per endpoint (Unix socket, TCP); more are
    /// answered 503 and closed at once.
    public var maxConnections = 64
    /// Back-off bounds while accept(2) fails for lack of descriptors.
    public var acceptPauseMin: Double = 0.05
    public var acceptPauseMax: Double = 1.0
    public init() {}

    var http: HTTPLimits {
        var l = HTTPLimits()
        l.maxBodyBytes = maxBodyBytes
        l.maxHeadBytes = maxHeaderBytes
        return l
    }
}

public final class ControlServer: @unchecked Sendable {
    let router: ControlRouter
    let limits: ControlLimits
    let loop: LoopThread
    let counters = ControlServerCounters()
    let rateLimitedLog = RateLimitedLog(interval: 10)
    private var endpoints: [ControlEndpoint] = []
    private var connections: [ObjectIdentifier: ControlConnection] = [:]
    private let stopped = Atomic<Bool>(false)
    /// The bound TCP port (useful with port 0 in tests).
    public private(set) var tcpPort: Int?
    public let unixSocketPath: String?
    /// The socket file as bound: after a takeover the next process has
    /// replaced it with its own, which `stop` must leave in place.
    private var unixSocketIdentity: FileIdentity?

    /// Binds everything before returning, so a bad address fails the start.
    public init(router: ControlRouter, limits: ControlLimits = ControlLimits()) throws(ControlServerError) {
        self.router = router
        self.limits = limits
        do throws(SystemError) { loop = try LoopThread(name: "control") } catch {
            throw ControlServerError("control: cannot start its loop thread: \(error)")
        }
        let control = router.control
        unixSocketPath = control.unixSocket
        if let path = control.unixSocket {
            do throws(SystemError) {
                let fd = try System.listenUnix(path, mode: 0o600, backlog: 128)
                endpoints.append(ControlEndpoint(fd: fd, overTCP: false, name: "unix"))
                unixSocketIdentity = System.fileIdentity(path)
            } catch {
                throw ControlServerError("control.unix_socket \(path): \(error)")
            }
        }
        if let listen = control.listen {
            guard let (host, port) = ControlServer.splitHostPort(listen), let ip = IPAddress(host) else {
                closeEndpoints()
                throw ControlServerError("control.listen \"\(listen)\" is not ip:port (use [::1]:9900 for IPv6)")
            }
            do throws(SystemError) {
                let address: SocketAddress
                switch ip {
                case let .v4(a): address = SocketAddress(ipv4: a, port: UInt16(port))
                case let .v6(hi, lo): address = SocketAddress(ipv6: hi, lo, port: UInt16(port))
                }
                let fd = try System.tcpListener(address, backlog: 128)
                endpoints.append(ControlEndpoint(fd: fd, overTCP: true, name: "tcp"))
                tcpPort = try System.localAddress(fd).port
            } catch {
                closeEndpoints()
                throw ControlServerError("control.listen \(listen): \(error)")
            }
        }
        guard !endpoints.isEmpty else { throw ControlServerError("control: neither unix_socket nor listen is set") }
        router.service.metrics.register("control-server") { [counters] in counters.render() }
    }

    private func closeEndpoints() {
        for e in endpoints { System.close(e.fd) }
        endpoints.removeAll()
    }

    /// `host:port` or `[v6]:port`.
    public static func splitHostPort(_ s: String) -> (String, Int)? {
        if s.hasPrefix("["), let close = s.firstIndex(of: "]") {
            let host = String(s[s.index(after: s.startIndex)..<close])
            let rest = s[s.index(after: close)...]
            guard rest.hasPrefix(":"), let p = Int(rest.dropFirst()), (0...65535).contains(p) else { return nil }
            return (host, p)
        }
        guard let colon = s.lastIndex(of: ":"), let p = Int(s[s.index(after: colon)...]), (0...65535).contains(p) else { return nil }
        let host = String(s[..<colon])
        return host.isEmpty || host.contains(":") ? nil : (host, p)
    }

    /// Keeps a started server alive until `stop()`, whether or not its
    /// creator holds it (the loop's callbacks refer to it unowned).
    private var running: ControlServer?

    /// Runs the server on its own loop thread.
    public func start() {
        running = self
        loop.start()
        loop.post { [self] in
            for endpoint in endpoints {
                endpoint.watch = loop.watch(fd: endpoint.fd, events: .read) { [unowned self, unowned endpoint] _ in
                    self.acceptReady(endpoint)
                }
            }
        }
    }

    /// Closes every connection and listener, joins the thread and removes the
    /// socket file. Idempotent.
    public func stop() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        // After the join nothing runs on the loop, so its state is ours to tear down.
        loop.stopAndJoin()
        for c in Array(connections.values) { c.close(reason: nil) }
        for e in endpoints {
            e.resumeTimer?.cancel(); e.resumeTimer = nil
            e.watch?.cancel(); e.watch = nil
            System.close(e.fd)
        }
        endpoints.removeAll()
        if let p = unixSocketPath { System.removeSocketFile(p, ifStill: unixSocketIdentity) }
        running = nil
    }

    // MARK: accepting (loop thread)

    private func acceptReady(_ endpoint: ControlEndpoint) {
        // A bounded batch per wakeup keeps one busy endpoint from starving the other.
        for _ in 0..<64 {
            let accepted: (fd: Int32, peer: SocketAddress)?
            do throws(SystemError) {
                accepted = try System.accept(endpoint.fd)
            } catch {
                if error.isDescriptorLimit {
                    pauseAccepting(endpoint, error)
                } else {
                    counters.acceptErrors.add(1, ordering: .relaxed)
                    rateLimitedLog.warn("control_accept_failed", key: "accept-\(endpoint.name)-\(error.code)",
                                        ["endpoint": endpoint.name, "error": error.description])
                }
                return
            }
            guard let (fd, peer) = accepted else { return }
            endpoint.acceptPause = 0
            if endpoint.open >= limits.maxConnections {
                refuseOverBudget(fd, endpoint: endpoint, peer: peer)
                continue
            }
            let c = ControlConnection(fd: fd, endpoint: endpoint, peer: endpoint.overTCP ? peer.description : "unix", server: self)
            connections[ObjectIdentifier(c)] = c
            endpoint.open += 1
            counters.accepted.add(1, ordering: .relaxed)
            c.begin()
        }
    }

    /// At EMFILE/ENFILE the pending connection stays in the kernel's queue and
    /// the listener stays readable: keep polling it and the loop spins. Stop
    /// watching it for a growing pause instead (the data plane's acceptor does the same).
    private func pauseAccepting(_ endpoint: ControlEndpoint, _ error: SystemError) {
        counters.acceptPaused.add(1, ordering: .relaxed)
        endpoint.watch?.disable()
        endpoint.acceptPause = endpoint.acceptPause == 0 ? limits.acceptPauseMin : min(endpoint.acceptPause * 2, limits.acceptPauseMax)
        rateLimitedLog.warn("control_accept_paused", key: "emfile-\(endpoint.name)",
                            ["endpoint": endpoint.name, "error": error.description, "pause_ms": Int(endpoint.acceptPause * 1000)])
        endpoint.resumeTimer = loop.after(endpoint.acceptPause) { [unowned self, unowned endpoint] in
            endpoint.resumeTimer = nil
            guard !self.stopped.load(ordering: .relaxed) else { return }
            endpoint.watch?.enable(.read)
        }
    }

    private func refuseOverBudget(_ fd: Int32, endpoint: ControlEndpoint, peer: SocketAddress) {
        counters.refusedOverBudget.add(1, ordering: .relaxed)
        rateLimitedLog.warn("control_connection_refused", key: "budget-\(endpoint.name)",
                            ["endpoint": endpoint.name, "reason": "at most \(limits.maxConnections) connections per endpoint"])
        let message = "too many control connections: at most \(limits.maxConnections) are served at once"
        let body = JSONValue.object([("__type", "ThrottlingException"), ("error_code", "ELB.8906"),
                                     ("message", .string(message)), ("error_msg", .string(message))])
        let bytes = HTTPResponseText.serialize(status: 503, headers: [("Content-Type", "application/json")],
                                               body: Array(body.serialized().utf8), keepAlive: false, date: ControlServer.httpDate())
        // Best effort in one non-blocking send: a fresh socket's buffer takes it.
        _ = bytes.withUnsafeBytes { try? System.send(fd, $0.baseAddress!, $0.count) }
        System.close(fd)
    }

    func connectionClosed(_ c: ControlConnection) {
        guard connections.removeValue(forKey: ObjectIdentifier(c)) != nil else { return }
        c.endpoint.open -= 1
    }

    static func httpDate() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return HTTPResponseText.imfDate(Int64(ts.tv_sec))
    }
}

/// One listening socket and its budget (loop thread only).
final class ControlEndpoint {
    let fd: Int32
    let overTCP: Bool
    let name: String
    var watch: IOWatch?
    var resumeTimer: LoopTimer?
    var acceptPause: Double = 0
    /// Connections of this endpoint open now.
    var open = 0
    init(fd: Int32, overTCP: Bool, name: String) { self.fd = fd; self.overTCP = overTCP; self.name = name }
}

/// What the control server did with connections, for /metrics.
final class ControlServerCounters: Sendable {
    let accepted = Atomic<Int>(0)
    let refusedOverBudget = Atomic<Int>(0)
    let acceptPaused = Atomic<Int>(0)
    let acceptErrors = Atomic<Int>(0)
    let timedOut = Atomic<Int>(0)
    let badRequests = Atomic<Int>(0)
    let authClosed = Atomic<Int>(0)

    func render() -> String {
        var w = PrometheusWriter()
        w.family("flowgate_control_connections_accepted_total", .counter, "Control connections accepted and served.",
                 [([], Double(accepted.load(ordering: .relaxed)))])
        w.family("flowgate_control_connections_closed_total", .counter, "Control connections the server closed early, by reason.",
                 [("over_budget", refusedOverBudget.load(ordering: .relaxed)), ("deadline", timedOut.load(ordering: .relaxed)),
                  ("bad_request", badRequests.load(ordering: .relaxed)), ("auth_failed", authClosed.load(ordering: .relaxed))]
                    .map { ([("reason", $0.0)], Double($0.1)) })
        w.family("flowgate_control_accept_pauses_total", .counter, "Times accepting paused because descriptors ran out.",
                 [([], Double(acceptPaused.load(ordering: .relaxed)))])
        return w.text
    }
}
