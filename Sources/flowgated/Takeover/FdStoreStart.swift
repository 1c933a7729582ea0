// The start after a systemd file-descriptor-store hand-over
// (docs/architecture.md §16.8; FdStore.swift stores them): LISTEN_PID names
// this process, LISTEN_FDS descriptors start at 3, LISTEN_FDNAMES names them
// (sd_listen_fds_with_names(3)). The manifest says which descriptor is which
// listening socket, connection or session; the blob carries the state.
#if canImport(Glibc)
import Glibc
#endif
import FlowgateCore
import FlowgateSystem
import FlowgateDataPlane

struct StoredHandover {
    var listeners: [HandedListener] = []
    var state: HandoverState?
    var connections: [HandedConnection] = []
    var sessions: [HandedSession] = []
    /// Every name systemd passed: each is removed from the store once adopted.
    var names: [String] = []
    /// The previous process's sk_lookup link (`port_ranges: lookup`, docs/architecture.md §20): held
    /// until this process's own program and port map are live, so the ranges stay steered in between.
    var previousLink: Int32?
}

enum FdStoreStart {
    /// The stored hand-over passed to this process, nil when there is none
    /// (no LISTEN_FDS for this pid, or no manifest among them).
    static func receive() -> StoredHandover? {
        guard let pid = System.environment("LISTEN_PID").flatMap(Int32.init), pid == System.processID(),
              let count = System.environment("LISTEN_FDS").flatMap(Int.init), count > 0 else { return nil }
        let names = (System.environment("LISTEN_FDNAMES") ?? "").split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        var byName: [String: Int32] = [:]
        for i in 0..<count {
            let fd = Int32(3 + i)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)   // not inherited by anything this process starts
            if i < names.count { byName[names[i]] = fd }
        }
        var stored = StoredHandover(names: Array(names.prefix(count)))
        guard let manifestFD = byName[FdStore.manifestName] else {
            Log.warn("fdstore_ignored", ["reason": "LISTEN_FDS without a flowgate manifest", "descriptors": count])
            return nil
        }
        let manifest: String
        do throws(SystemError) {
            manifest = String(decoding: try System.readSealedMemfd(manifestFD, limit: 64 << 20), as: UTF8.self)
        } catch {
            Log.error("fdstore_manifest_refused", ["error": error.description])
            return discard(stored, byName)
        }
        var lines = manifest.split(separator: "\n")
        guard lines.first == Substring(FdStore.manifestHeader) else {
            Log.error("fdstore_manifest_refused", ["error": "the manifest does not start with \"\(FdStore.manifestHeader)\""])
            return discard(stored, byName)
        }
        lines.removeFirst()
        for line in lines {
            switch line.first {
            case "l":
                guard let space = line.lastIndex(of: " ") else { return discard(stored, byName) }
                let fds = line[line.index(after: space)...].split(separator: ",").compactMap { byName[String($0)] }
                guard let l = TakeoverWire.parseListener(String(line[..<space]), fds: fds) else { return discard(stored, byName) }
                stored.listeners.append(l)
            case "c":
                guard let id = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) }),
                      let client = byName["fgc\(2 * id)"], let backend = byName["fgc\(2 * id + 1)"],
                      let c = HandedConnection.parse(line, client: client, backend: backend) else { return discard(stored, byName) }
                stored.connections.append(c)
            case "u":
                guard let id = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) }),
                      let fd = byName["fgu\(id)"], let u = HandedSession.parse(line, upstream: fd) else { return discard(stored, byName) }
                stored.sessions.append(u)
            default:
                return discard(stored, byName)
            }
        }
        if let stateFD = byName[FdStore.stateName], let copy = try? System.duplicate(stateFD) {
            do throws(TakeoverFailure) { stored.state = try TakeoverClient.readState([copy]) } catch {
                // The flows still move; only the tables start empty.
                Log.error("fdstore_state_refused", ["error": error.message])
            }
        }
        stored.previousLink = byName[FdStore.linkName]
        System.close(manifestFD)
        if let stateFD = byName[FdStore.stateName] { System.close(stateFD) }
        return stored
    }

    /// A manifest that cannot be read: nothing is adopted, every stored
    /// descriptor is closed here and removed from the store, and the start
    /// goes on as a plain one (binding its ports).
    private static func discard(_ stored: StoredHandover, _ byName: [String: Int32]) -> StoredHandover? {
        Log.error("fdstore_discarded", ["descriptors": byName.count, "action": "starting without them"])
        for fd in byName.values { System.close(fd) }
        removeFromStore(stored.names)
        return nil
    }

    /// FDSTOREREMOVE=1 for each name, so systemd closes its copies (and does
    /// not pass them to a later start again).
    static func removeFromStore(_ names: [String]) {
        guard let path = System.environment("NOTIFY_SOCKET"), !path.isEmpty,
              let fd = try? FdStore.connectDatagram(path) else { return }
        defer { System.close(fd) }
        for name in Set(names) where !name.isEmpty {
            _ = try? System.sendMessage(fd, Array("FDSTOREREMOVE=1\nFDNAME=\(name)".utf8))
        }
    }
}

/// After the control service applied the config: adopt the stored
/// connections and sessions this configuration serves, close the others and
/// the listening sockets it no longer has, then empty the store.
final class FdStoreAdoptService: Service {
    let name = "fdstore-adopt"
    let stored: StoredHandover
    let plane: DataPlane

    init(stored: StoredHandover, plane: DataPlane) { self.stored = stored; self.plane = plane }

    func start() throws(ServiceError) {
        let (accepted, declined) = plane.checkHanded(stored.connections)
        let (acceptedSessions, declinedSessions) = plane.checkHandedSessions(stored.sessions)
        plane.adoptHanded(accepted)
        plane.adoptHandedSessions(acceptedSessions)
        plane.releaseUDPListeners()
        let closed = plane.closeUnadopted()
        // This process's program steers the ranges now (its config is applied).
        if let link = stored.previousLink { System.close(link) }
        FdStoreStart.removeFromStore(stored.names)
        Log.info("fdstore_restored", ["ports": stored.listeners.count, "ports_closed": closed.count,
                                      "connections_adopted": accepted.count, "connections_closed": declined.count,
                                      "udp_sessions_adopted": acceptedSessions.count, "udp_sessions_closed": declinedSessions.count])
    }

    func stop() {}
}
