import FlowgateCore
import FlowgateSystem

/// A worker's idle member connections, kept between client connections (what
/// nginx's `upstream { keepalive }` does): a client connection that ends while
/// its member connection is idle and clean parks it here, and the next client
/// connection whose request goes to the same member (id, address and port)
/// takes it instead of connecting. Worker thread only.
///
/// Only bodyless GET, HEAD and OPTIONS requests take a parked connection
/// (HTTPConnection.pick): a member may close an idle connection at any
/// moment, and such a request is sent again on a new connection when the
/// reused one ends before any byte of its response (HTTPConnection's replay).
/// A connection is checked before it is handed out (one `recv` that must
/// find nothing to read: an EOF or stray bytes close it), and none is kept
/// longer than `maxIdleSeconds` (a sweep runs while any is parked), well
/// under the keep-alive timeouts servers use (nginx 75 s, Apache 5 s).
final class HTTPUpstreamPool {
    private struct Parked {
        let fd: Int32
        let target: BackendTarget
        let since: Int
    }

    static let maxParked = 64
    static let maxIdleSeconds = 2
    /// Oldest first; handed out newest first.
    private var parked: [Parked] = []
    private var sweepScheduled = false
    unowned(unsafe) let base: EventBase
    private(set) var reused = 0

    init(base: EventBase) {
        self.base = base
        parked.reserveCapacity(HTTPUpstreamPool.maxParked)
    }

    deinit { for p in parked { System.close(p.fd) } }

    var count: Int { parked.count }

    /// Keeps `fd`, connected to `target` and idle, for the next request to that member.
    func park(_ fd: Int32, target: BackendTarget, now: Int) {
        if parked.count == HTTPUpstreamPool.maxParked { System.close(parked.removeFirst().fd) }
        parked.append(Parked(fd: fd, target: target, since: now))
        if !sweepScheduled {
            sweepScheduled = true
            _ = base.after(Double(HTTPUpstreamPool.maxIdleSeconds)) { [weak self] in self?.sweep() }
        }
    }

    /// A parked connection to `target` that is still open and idle, if any.
    func take(_ target: BackendTarget, now: Int) -> Int32? {
        var i = parked.count - 1
        while i >= 0 {
            let p = parked[i]
            if p.target == target {
                parked.remove(at: i)
                if now - p.since <= HTTPUpstreamPool.maxIdleSeconds && HTTPUpstreamPool.idle(p.fd) {
                    reused += 1
                    return p.fd
                }
                System.close(p.fd)
            }
            i -= 1
        }
        return nil
    }

    /// Closes every parked connection older than `maxIdleSeconds`; runs again while any is left.
    private func sweep() {
        sweepScheduled = false
        let now = System.coarseSeconds()
        parked.removeAll { p in
            guard now - p.since > HTTPUpstreamPool.maxIdleSeconds else { return false }
            System.close(p.fd)
            return true
        }
        if !parked.isEmpty {
            sweepScheduled = true
            _ = base.after(Double(HTTPUpstreamPool.maxIdleSeconds)) { [weak self] in self?.sweep() }
        }
    }

    /// Closes every parked connection (drain, shutdown).
    func closeAll() {
        for p in parked { System.close(p.fd) }
        parked.removeAll()
    }

    /// Nothing to read and no EOF: the member still holds the connection open and idle.
    private static func idle(_ fd: Int32) -> Bool {
        var byte: UInt8 = 0
        do { return try System.receive(fd, &byte, 1) == nil } catch { return false }
    }
}
