// The new process's side of a takeover (docs/architecture.md §16): receive
// every listening socket before anything starts, then, once this process
// forwards, tell the old one to go.
#if canImport(Glibc)
import Glibc
#endif
import FlowgateCore
import FlowgateSystem
import FlowgateDataPlane

final class TakeoverClient {
    let path: String
    private var fd: Int32 = -1
    /// A test hook (FLOWGATE_TEST_TAKEOVER_HOOK): `kill-after-receive` or
    /// `kill-before-go` sends this process SIGKILL at that step, so tests can
    /// check the old process rolls back; `pause-after-receive` waits 5 s
    /// there, so tests can act during the handshake.
    let hook = System.environment("FLOWGATE_TEST_TAKEOVER_HOOK") ?? ""

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
        if hook == "kill-after-receive" { raise(SIGKILL) }
        if hook == "pause-after-receive" { sleep(5) }
        return listeners
    }

    /// Tells the old process to go and waits for it to confirm that it
    /// stopped accepting and released the state lock.
    func go(workers: Int) throws(TakeoverFailure) {
        if hook == "kill-before-go" { raise(SIGKILL) }
        let reply: [UInt8]?
        do throws(SystemError) {
            try System.sendMessage(fd, Array(TakeoverWire.go(workers: workers).utf8))
            reply = try System.receiveMessage(fd)?.bytes
        } catch {
            throw TakeoverFailure("hand-over to \(path): \(error)")
        }
        guard let reply, TakeoverWire.text(reply) == "done" else {
            throw TakeoverFailure("the running flowgated at \(path) did not confirm the hand-over")
        }
        System.close(fd)
        fd = -1
    }

    private func closeAll(_ listeners: [HandedListener]) {
        for l in listeners { for d in l.fds { System.close(d) } }
    }
}
