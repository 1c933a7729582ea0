// The running process's side of a takeover (docs/architecture.md §16), on
// the main loop: a SOCK_SEQPACKET socket beside the control socket. A new
// process that says hello gets a duplicate of every listening socket and the
// state blob; both processes then accept from the same sockets. On `go` this
// one pauses its quiescent connections and sends them; only on `commit` does
// it let go of them, stop reading its listening sockets, release the state
// lock and drain as on SIGTERM. A new process that fails before commit makes
// it resume the paused connections (docs/architecture.md §16.4).
#if canImport(Glibc)
import Glibc
#endif
import FlowgateCore
import FlowgateSystem
import FlowgateDataPlane
import Synchronization

final class TakeoverServerService: Service {
    let name = "takeover"
    let path: String?
    let loop: MainLoop
    let plane: DataPlane
    /// The new process said go (with its worker count): stop accepting,
    /// release the lock, drain.
    var onGo: (Int) -> Void = { _ in }
    /// True from hello to go or abort: changes are refused meanwhile, since
    /// the new process has already read the state file.
    let busy = HandshakeFlag()
    /// A new process that received the sockets must say go within this.
    static let goDeadline = 30.0

    private var listenFD: Int32 = -1
    private var identity: FileIdentity?
    private var listenWatch: IOWatch?
    private var session: (fd: Int32, watch: IOWatch, timer: LoopTimer)?
    /// After go: the connections paused and sent, and the new process's workers.
    private var sent: (handed: [HandedConnection], sessions: [HandedSession], workers: Int)?
    /// How long `go` waits for connections with bytes pending to flush.
    static let quiesceDeadline = 1.0
    /// FLOWGATE_TEST_TAKEOVER_BLOB=bad-version|bad-checksum damages the state
    /// blob this process sends, so tests see the next one refuse it.
    let blobHook = System.environment("FLOWGATE_TEST_TAKEOVER_BLOB") ?? ""
    /// FLOWGATE_TEST_TAKEOVER_KEEP_TCP=1 hands no connection or session over
    /// (every one drains here), for tests of the old process's drain.
    let keepTCP = System.environment("FLOWGATE_TEST_TAKEOVER_KEEP_TCP") == "1"

    init(path: String?, loop: MainLoop, plane: DataPlane) { self.path = path; self.loop = loop; self.plane = plane }

    /// Without a Unix control socket there is no takeover; a socket that
    /// cannot be bound only disables it (logged), it never stops the daemon.
    func start() throws(ServiceError) {
        guard let path else { return }
        do throws(SystemError) { listenFD = try System.listenUnixSeqpacket(path) } catch {
            Log.warn("takeover_unavailable", ["socket": path, "error": error.description])
            return
        }
        identity = System.fileIdentity(path)
        listenWatch = loop.eventBase.watch(fd: listenFD, events: .read) { [unowned self] _ in self.acceptNew() }
        Log.info("takeover_listening", ["socket": path])
    }

    func stop() {
        if let s = session { end(s.fd) }
        stopListening()
        if let path { System.removeSocketFile(path, ifStill: identity) }
    }

    private func stopListening() {
        listenWatch?.cancel(); listenWatch = nil
        if listenFD >= 0 { System.close(listenFD); listenFD = -1 }
    }

    private func acceptNew() {
        while listenFD >= 0, let c = try? System.acceptUnix(listenFD) {
            System.setTimeouts(c, seconds: 5)
            if session != nil { refuse(c, "a takeover is already in progress"); continue }
            guard plane.lifecycle == .running || plane.lifecycle == .reloading else {
                refuse(c, "flowgated is \(plane.lifecycle.rawValue)"); continue
            }
            guard let hello = try? System.receiveMessage(c), let version = TakeoverWire.helloVersion(TakeoverWire.text(hello.bytes)) else {
                refuse(c, "expected hello"); continue
            }
            guard version == TakeoverWire.version else {
                refuse(c, "handshake version \(version) is not \(TakeoverWire.version)"); continue
            }
            offer(c, hello: TakeoverWire.text(hello.bytes))
        }
    }

    /// Sends a duplicate of every listening socket, then waits (on the
    /// loop) for go or for the connection to drop.
    private func offer(_ c: Int32, hello: String) {
        busy.set(true)
        let started = System.monotonicMicroseconds()
        let handed = plane.duplicateListeners()
        defer { for l in handed { for d in l.fds { System.close(d) } } }
        var sockets = 0
        do throws(SystemError) {
            for l in handed {
                var rest = l.fds[...]
                while !rest.isEmpty {
                    let chunk = Array(rest.prefix(System.maxDescriptorsPerMessage))
                    rest = rest.dropFirst(chunk.count)
                    try System.sendMessage(c, Array(TakeoverWire.listenerLine(l).utf8), descriptors: chunk)
                    sockets += chunk.count
                }
            }
            try sendState(c)
            try System.sendMessage(c, Array("end \(handed.count)".utf8))
        } catch {
            Log.warn("takeover_aborted", ["reason": "sending listening sockets: \(error)"])
            System.close(c)
            busy.set(false)
            return
        }
        Log.info("takeover_offered", ["peer": hello, "ports": handed.count, "sockets": sockets,
                                      "send_us": System.monotonicMicroseconds() - started])
        let watch = loop.eventBase.watch(fd: c, events: .read) { [unowned self] _ in self.readable(c) }
        let timer = loop.after(TakeoverServerService.goDeadline) { [unowned self] in
            self.abort(c, "no go within \(Int(TakeoverServerService.goDeadline)) s")
        }
        session = (c, watch, timer)
    }

    private func readable(_ c: Int32) {
        let message: (bytes: [UInt8], descriptors: [Int32])?
        do throws(SystemError) { message = try System.receiveMessage(c) } catch {
            abort(c, "the handshake failed: \(error)"); return
        }
        guard let (bytes, fds) = message else {
            abort(c, sent == nil ? "the new process closed the handshake before go" : "the new process closed the handshake before commit"); return
        }
        for d in fds { System.close(d) }
        let line = TakeoverWire.text(bytes)
        if let s = sent {
            guard let declined = TakeoverWire.parseCommit(line) else { abort(c, "unexpected message \"\(line.prefix(60))\""); return }
            plane.commitHandover(s.handed, declined: declined.connections, sessions: s.sessions, declinedSessions: declined.sessions)
            Log.info("takeover_connections_committed", ["handed_over": s.handed.count - declined.connections.count,
                                                        "declined": declined.connections.count,
                                                        "udp_sessions_handed_over": s.sessions.count - declined.sessions.count,
                                                        "udp_sessions_declined": declined.sessions.count])
            handOver(c, nextWorkers: s.workers)
            return
        }
        guard let workers = TakeoverWire.goWorkers(line) else {
            abort(c, "unexpected message \"\(line.prefix(60))\""); return
        }
        // A SIGTERM during the handshake already started this process's
        // drain: answering go would cut it short. The new process then exits.
        guard plane.lifecycle == .running || plane.lifecycle == .reloading else {
            abort(c, "flowgated is \(plane.lifecycle.rawValue)"); return
        }
        sendConnections(c, nextWorkers: workers)
    }

    /// The state blob in a sealed memfd (HandoverCodec, System+Memfd.swift).
    private func sendState(_ c: Int32) throws(SystemError) {
        guard var blob = plane.handoverBlob() else { return }
        if blobHook == "bad-version" { blob[5] = 0xee }
        if blobHook == "bad-checksum" { blob[blob.count - 1] ^= 0xff }
        let fd = try System.sealedMemfd(name: "flowgate-takeover-state", blob)
        defer { System.close(fd) }
        try System.sendMessage(c, Array("state \(blob.count)".utf8), descriptors: [fd])
    }

    /// After go: pause the quiescent connections and send them in batches;
    /// the new process answers commit (or fails, and they resume).
    private func sendConnections(_ c: Int32, nextWorkers: Int) {
        let started = System.monotonicMicroseconds()
        let (handed, sessions) = keepTCP ? ([], []) : plane.pauseForHandover(within: TakeoverServerService.quiesceDeadline)
        let paused = System.monotonicMicroseconds()
        sent = (handed, sessions, nextWorkers)
        do throws(SystemError) {
            var rest = handed[...]
            while !rest.isEmpty {
                let batch = rest.prefix(TakeoverWire.connectionsPerMessage)
                rest = rest.dropFirst(batch.count)
                let text = "conns \(batch.count)\n" + batch.map(\.line).joined(separator: "\n")
                try System.sendMessage(c, Array(text.utf8), descriptors: batch.flatMap { [$0.client, $0.backend] })
            }
            var restSessions = sessions[...]
            while !restSessions.isEmpty {
                let batch = restSessions.prefix(System.maxDescriptorsPerMessage)
                restSessions = restSessions.dropFirst(batch.count)
                let text = "sessions \(batch.count)\n" + batch.map(\.line).joined(separator: "\n")
                try System.sendMessage(c, Array(text.utf8), descriptors: batch.map(\.upstream))
            }
            let kept = plane.handover.connectionsKept.load(ordering: .relaxed)
            let udpKept = max(0, plane.udpTotals.sessions - sessions.count)
            try System.sendMessage(c, Array("handed \(handed.count) sessions \(sessions.count) kept \(kept) udp \(udpKept)".utf8))
        } catch {
            abort(c, "sending connections: \(error)"); return
        }
        Log.info("takeover_connections_sent", ["connections": handed.count, "udp_sessions": sessions.count, "pause_us": paused - started,
                                               "send_us": System.monotonicMicroseconds() - paused])
        session?.timer.cancel()
        if let s = session {
            session = (s.fd, s.watch, loop.after(TakeoverServerService.goDeadline) { [unowned self] in
                self.abort(c, "no commit within \(Int(TakeoverServerService.goDeadline)) s")
            })
        }
    }

    /// Point of no return: this process stops reading its listening sockets
    /// (the new one serves them), releases the state lock, drains, and
    /// confirms with done.
    private func handOver(_ c: Int32, nextWorkers: Int) {
        session?.watch.cancel(); session?.timer.cancel(); session = nil
        sent = nil
        // The new process binds its own handshake socket at this path next;
        // the file is left for it to replace.
        stopListening()
        identity = nil
        onGo(nextWorkers)
        if (try? System.sendMessage(c, Array("done".utf8))) == nil {
            Log.warn("takeover_confirm_failed", ["reason": "the new process left before done"])
        }
        System.close(c)
        busy.set(false)
        Log.info("takeover_handed_over", ["pid": System.processID()])
    }

    /// The new process failed or left before commit: the connections paused
    /// for it read again here (their bytes waited in the kernel), and this
    /// process goes on serving everything.
    private func abort(_ c: Int32, _ reason: String) {
        var resumed = 0
        if sent != nil { resumed = plane.rollBackHandover(); sent = nil }
        Log.warn("takeover_aborted", ["reason": reason, "action": "still serving every listener", "connections_resumed": resumed])
        end(c)
    }

    private func end(_ c: Int32) {
        if sent != nil { _ = plane.rollBackHandover(); sent = nil }
        session?.watch.cancel(); session?.timer.cancel(); session = nil
        System.close(c)
        busy.set(false)
    }

    private func refuse(_ c: Int32, _ reason: String) {
        Log.warn("takeover_refused", ["reason": reason])
        _ = try? System.sendMessage(c, Array("refused \(reason)".utf8))
        System.close(c)
    }
}

/// Read by the control thread (ControlService.refusingChanges), set on the main loop.
final class HandshakeFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .sequentiallyConsistent) }
    func set(_ v: Bool) { value.store(v, ordering: .sequentiallyConsistent) }
}
