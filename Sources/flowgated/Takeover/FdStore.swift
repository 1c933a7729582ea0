// The systemd file-descriptor-store path of a takeover (docs/architecture.md
// §16.8): at SIGTERM, with FLOWGATE_FDSTORE=1 (or systemd's own $FDSTORE) and
// $NOTIFY_SOCKET, the process gives systemd every listening socket, every
// quiescent connection's two sockets, every UDP session's upstream socket, the
// state blob and a manifest (both sealed memfds), each with `FDSTORE=1` and
// its own `FDNAME=`; the next start finds them in LISTEN_FDS/LISTEN_FDNAMES
// (FdStoreStart.swift). Names: fgl<n> listening sockets, fgc<n> connection
// sockets (2 per connection, client then member), fgu<n> session sockets,
// fgstate, fgmanifest.
#if canImport(Glibc)
import Glibc
#endif
import FlowgateCore
import FlowgateSystem
import FlowgateDataPlane

enum FdStore {
    static let manifestName = "fgmanifest"
    static let stateName = "fgstate"
    /// The sk_lookup link (docs/architecture.md §20): stored so the program stays attached while no process runs.
    static let linkName = "fglink"
    static let manifestHeader = "flowgate-fdstore 1"

    /// Whether this process should store its descriptors at SIGTERM.
    static var enabled: Bool {
        guard let n = System.environment("NOTIFY_SOCKET"), !n.isEmpty else { return false }
        if System.environment("FLOWGATE_FDSTORE") == "1" { return true }
        if let max = System.environment("FDSTORE").flatMap(Int.init), max > 0 { return true }
        return false
    }

    /// Pauses and stores everything; returns the connections and sessions
    /// stored (committed here: this process closes its copies and drains the
    /// rest), or nil when storing failed (then nothing was committed and the
    /// process drains as on a plain SIGTERM).
    static func storeAll(_ plane: DataPlane) -> (connections: Int, sessions: Int)? {
        guard let path = System.environment("NOTIFY_SOCKET") else { return nil }
        let started = System.monotonicMicroseconds()
        let listeners = plane.duplicateListeners()
        defer { for l in listeners { for d in l.fds { System.close(d) } } }
        let (conns, sessions) = plane.pauseForHandover(within: TakeoverServerService.quiesceDeadline)
        var manifest = [manifestHeader]
        var entries: [(name: String, fd: Int32)] = []
        var n = 0
        for l in listeners {
            var names: [String] = []
            for fd in l.fds { names.append("fgl\(n)"); entries.append(("fgl\(n)", fd)); n += 1 }
            manifest.append(TakeoverWire.listenerLine(l) + " " + names.joined(separator: ","))
        }
        for c in conns {
            manifest.append(c.line)
            entries.append(("fgc\(2 * c.id)", c.client)); entries.append(("fgc\(2 * c.id + 1)", c.backend))
        }
        for s in sessions {
            manifest.append(s.line)
            entries.append(("fgu\(s.id)", s.upstream))
        }
        var memfds: [Int32] = []
        defer { for m in memfds { System.close(m) } }
        do throws(SystemError) {
            let fd = try connectDatagram(path)
            defer { System.close(fd) }
            if let link = plane.duplicateSteeringLink() {
                memfds.append(link)   // closed here after sending, like the memfds
                entries.append((linkName, link))
            }
            if let blob = plane.handoverBlob() {
                let m = try System.sealedMemfd(name: "flowgate-fdstore-state", blob)
                memfds.append(m)
                entries.append((stateName, m))
            }
            let m = try System.sealedMemfd(name: "flowgate-fdstore-manifest", Array(manifest.joined(separator: "\n").utf8))
            memfds.append(m)
            // The manifest last: its presence says the set is complete.
            entries.append((manifestName, m))
            for e in entries {
                try System.sendMessage(fd, Array("FDSTORE=1\nFDNAME=\(e.name)".utf8), descriptors: [e.fd])
            }
        } catch {
            Log.error("fdstore_failed", ["error": error.description, "action": "draining as on SIGTERM"])
            _ = plane.rollBackHandover()
            return nil
        }
        plane.commitHandover(conns, declined: [], sessions: sessions, declinedSessions: [])
        Log.info("fdstore_stored", ["listening_sockets": n, "connections": conns.count, "udp_sessions": sessions.count,
                                    "descriptors": entries.count, "elapsed_us": System.monotonicMicroseconds() - started])
        return (conns.count, sessions.count)
    }

    /// A datagram socket connected to $NOTIFY_SOCKET (a path; systemd's is
    /// /run/systemd/notify).
    static func connectDatagram(_ path: String) throws(SystemError) -> Int32 {
        try System.connectUnix(path, type: Int32(SOCK_DGRAM.rawValue))
    }
}
