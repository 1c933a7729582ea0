// The new process's side of a takeover (docs/architecture.md §16): receive
// every listening socket and the state blob before anything starts, then,
// once this process forwards, tell the old one to go, receive its paused
// connections, check them, commit and adopt them.
#if canImport(Glibc)
import Glibc
#endif
import FlowgateCore
import FlowgateSystem
import FlowgateDataPlane

final class TakeoverClient {
    let path: String
    private var fd: Int32 = -1
    /// A test hook (FLOWGATE_TEST_TAKEOVER_HOOK): `kill-<step>` sends this
    /// process SIGKILL at that step and `stop-<step>` SIGSTOP (the test then
    /// kills it when it likes), so tests can check the old process rolls
    /// back; `pause-after-receive` waits 5 s there. Steps, in order:
    /// after-receive, before-go, after-go, after-connections, before-commit.
    let hook = System.environment("FLOWGATE_TEST_TAKEOVER_HOOK") ?? ""
    /// The state blob received with the listeners, validated.
    private(set) var state: HandoverState?

    init(path: String) { self.path = path }

    deinit { if fd >= 0 { System.close(fd) } }

    /// Connects and receives every listening socket, named.
    func receiveListeners() throws(TakeoverFailure) -> [HandedListener] {
        do throws(SystemError) {
            fd = try System.connectUnixSeqpacket(path)
            System.setTimeouts(fd, seconds: 10)
            try System.sendMessage(fd, Array(TakeoverWire.hello().utf8))
        } catch {
            throw TakeoverFailure("cannot reach the running flowgated at \(path): \(error)")
        }
        var listeners: [HandedListener] = []
        var byKey: [ListeningSocketKey: Int] = [:]
        while true {
            let message: (bytes: [UInt8], descriptors: [Int32])?
            do throws(SystemError) { message = try System.receiveMessage(fd) } catch {
                closeAll(listeners)
                throw TakeoverFailure("receiving listening sockets from \(path): \(error)")
            }
            guard let (bytes, fds) = message else {
                closeAll(listeners)
                throw TakeoverFailure("the running flowgated closed the handshake before it ended")
            }
            let line = TakeoverWire.text(bytes)
            if line.hasPrefix("end ") { break }
            if line.hasPrefix("state ") {
                do throws(TakeoverFailure) { state = try TakeoverClient.readState(fds) } catch {
                    closeAll(listeners)
                    throw error
                }
                continue
            }
            if line.hasPrefix("refused ") {
                for d in fds { System.close(d) }
                closeAll(listeners)
                throw TakeoverFailure("the running flowgated refused: \(line.dropFirst(8))")
            }
            guard let l = TakeoverWire.parseListener(line, fds: fds) else {
                for d in fds { System.close(d) }
                closeAll(listeners)
                throw TakeoverFailure("unexpected handshake message \"\(line.prefix(120))\" with \(fds.count) descriptors")
            }
            // A port with more sockets than one message carries comes in several.
            if let i = byKey[l.key] { listeners[i].fds += l.fds } else { byKey[l.key] = listeners.count; listeners.append(l) }
        }
        step("after-receive")
        if hook == "pause-after-receive" { sleep(5) }
        return listeners
    }

    /// One sealed memfd with the state blob: read, checked, decoded.
    static func readState(_ fds: [Int32]) throws(TakeoverFailure) -> HandoverState {
        defer { for d in fds { System.close(d) } }
        guard fds.count == 1 else { throw TakeoverFailure("the state message came with \(fds.count) descriptors, not 1") }
        let bytes: [UInt8]
        do throws(SystemError) { bytes = try System.readSealedMemfd(fds[0], limit: HandoverCodec.maxBody + HandoverCodec.headerSize) } catch {
            throw TakeoverFailure("reading the takeover state memfd: \(error)")
        }
        do throws(HandoverBlobError) { return try HandoverCodec.decode(bytes) } catch {
            throw TakeoverFailure("refusing the running flowgated's state: \(error)")
        }
    }

    /// Tells the old process to go, receives its paused connections, checks
    /// them against this configuration, commits (naming those declined,
    /// which resume in the old process) and adopts the rest. Returns once
    /// the old process confirmed it let go.
    func go(plane: DataPlane) throws(TakeoverFailure) {
        step("before-go")
        let goAt = System.monotonicMicroseconds()
        var handed: [HandedConnection] = []
        var sessions: [HandedSession] = []
        var summary: (handed: Int, sessions: Int, kept: Int, udp: Int)?
        var problem: String?
        do throws(SystemError) {
            try System.sendMessage(fd, Array(TakeoverWire.go(workers: plane.workers.count).utf8))
            step("after-go")
            while summary == nil && problem == nil {
                guard let (bytes, fds) = try System.receiveMessage(fd, capacity: 1 << 16) else {
                    problem = "the running flowgated closed the handshake while sending connections"; break
                }
                let text = TakeoverWire.text(bytes)
                if let s = TakeoverWire.parseHanded(text) { summary = s; break }
                if text.hasPrefix("sessions ") {
                    guard let batch = TakeoverClient.parseSessions(text, fds) else {
                        for d in fds { System.close(d) }
                        problem = "unexpected message \"\(text.prefix(120))\" with \(fds.count) descriptors"; break
                    }
                    sessions += batch
                    continue
                }
                guard let batch = TakeoverClient.parseConnections(text, fds) else {
                    for d in fds { System.close(d) }
                    problem = "unexpected message \"\(text.prefix(120))\" with \(fds.count) descriptors"; break
                }
                handed += batch
            }
        } catch {
            problem = "hand-over to \(path): \(error)"
        }
        guard let summary, problem == nil else {
            closeConnections(handed); closeSessions(sessions)
            throw TakeoverFailure(problem ?? "no summary")
        }
        guard summary.handed == handed.count, summary.sessions == sessions.count else {
            closeConnections(handed); closeSessions(sessions)
            throw TakeoverFailure("the running flowgated announced \(summary.handed) connections and \(summary.sessions) sessions, and sent \(handed.count) and \(sessions.count)")
        }
        step("after-connections")
        let receivedAt = System.monotonicMicroseconds()
        let (accepted, declined) = plane.checkHanded(handed)
        let (acceptedSessions, declinedSessions) = plane.checkHandedSessions(sessions)
        step("before-commit")
        let commit = TakeoverWire.commit(connections: declined.map(\.id), sessions: declinedSessions.map(\.id))
        do throws(SystemError) { try System.sendMessage(fd, Array(commit.utf8)) } catch {
            closeConnections(accepted); closeSessions(acceptedSessions)
            throw TakeoverFailure("committing the hand-over to \(path): \(error)")
        }
        // Committed: the old process closes its copies; these are now the only ones.
        let committedAt = System.monotonicMicroseconds()
        plane.adoptHanded(accepted)
        plane.adoptHandedSessions(acceptedSessions)
        plane.handover.previousKept.add(summary.kept, ordering: .relaxed)
        plane.handover.previousSessionsKept.add(summary.udp, ordering: .relaxed)
        Log.info("takeover_connections_adopted", ["adopted": accepted.count, "declined": declined.count,
                                                  "udp_sessions_adopted": acceptedSessions.count, "udp_sessions_declined": declinedSessions.count,
                                                  "receive_ms": (receivedAt - goAt) / 1000, "check_ms": (committedAt - receivedAt) / 1000,
                                                  "adopt_ms": (System.monotonicMicroseconds() - committedAt) / 1000,
                                                  "left_to_drain": summary.kept, "udp_sessions_left": summary.udp])
        let reply: [UInt8]?
        do throws(SystemError) { reply = try System.receiveMessage(fd)?.bytes } catch {
            throw TakeoverFailure("hand-over to \(path): \(error)")
        }
        guard let reply, TakeoverWire.text(reply) == "done" else {
            plane.releaseUDPListeners()
            throw TakeoverFailure("the running flowgated at \(path) did not confirm the hand-over")
        }
        // The old process stopped reading the UDP listening sockets: this one starts.
        plane.releaseUDPListeners()
        System.close(fd)
        fd = -1
    }

    /// A `conns` message: its lines, each with two of `fds` in order.
    static func parseConnections(_ text: String, _ fds: [Int32]) -> [HandedConnection]? {
        var lines = text.split(separator: "\n")
        guard let head = lines.first, head.hasPrefix("conns "), let n = Int(head.dropFirst(6)),
              lines.count == n + 1, fds.count == 2 * n else { return nil }
        lines.removeFirst()
        var out: [HandedConnection] = []
        for (i, line) in lines.enumerated() {
            guard let h = HandedConnection.parse(line, client: fds[2 * i], backend: fds[2 * i + 1]) else { return nil }
            out.append(h)
        }
        return out
    }

    /// A `sessions` message: its lines, each with one of `fds` in order.
    static func parseSessions(_ text: String, _ fds: [Int32]) -> [HandedSession]? {
        var lines = text.split(separator: "\n")
        guard let head = lines.first, head.hasPrefix("sessions "), let n = Int(head.dropFirst(9)),
              lines.count == n + 1, fds.count == n else { return nil }
        lines.removeFirst()
        var out: [HandedSession] = []
        for (i, line) in lines.enumerated() {
            guard let h = HandedSession.parse(line, upstream: fds[i]) else { return nil }
            out.append(h)
        }
        return out
    }

    private func closeSessions(_ list: [HandedSession]) {
        for h in list { System.close(h.upstream) }
    }

    private func step(_ name: String) {
        if hook == "kill-\(name)" { raise(SIGKILL) }
        if hook == "stop-\(name)" { raise(SIGSTOP) }
    }

    private func closeConnections(_ list: [HandedConnection]) {
        for h in list { System.close(h.client); System.close(h.backend) }
    }

    private func closeAll(_ listeners: [HandedListener]) {
        for l in listeners { for d in l.fds { System.close(d) } }
    }
}
