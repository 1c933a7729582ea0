// The data plane's side of a takeover (Sources/flowgated/Takeover/,
// docs/architecture.md §16): the running process lends its listening
// sockets out (duplicates, so a concurrent change cannot close a number
// in flight), and the next process adopts them instead of binding.
import FlowgateCore
import FlowgateSystem
import Synchronization

/// One listening port as handed over: its key, the listener serving it, and
/// one descriptor per socket bound for it (one per worker with SO_REUSEPORT,
/// or fewer when the descriptor budget dealt ports to workers).
public struct HandedListener: Sendable {
    public var key: ListeningSocketKey
    public var listenerArn: String
    public var fds: [Int32]
    public init(key: ListeningSocketKey, listenerArn: String, fds: [Int32]) {
        self.key = key; self.listenerArn = listenerArn; self.fds = fds
    }
}

extension DataPlane {
    /// Duplicates of every listening socket the workers serve, grouped by
    /// key in worker order. The caller owns (and closes) the duplicates.
    public func duplicateListeners() -> [HandedListener] {
        let latch = Latch(workers.count)
        let found = Mutex<[ListeningSocketKey: [(worker: Int, fd: Int32)]]>([:])
        for (i, w) in workers.enumerated() {
            w.post { w in
                var mine: [(ListeningSocketKey, Int32)] = []
                for s in w.services.values {
                    for k in s.attachedKeys {
                        guard let fd = s.listeningDescriptor(k), let d = try? System.duplicate(fd) else { continue }
                        mine.append((k, d))
                    }
                }
                found.withLock { for (k, d) in mine { $0[k, default: []].append((i, d)) } }
                latch.countDown()
            }
        }
        latch.wait()
        let plans = snapshot.map { SnapshotIndex($0, transports: Set(drivers.keys), lookup: steering != nil).plans } ?? [:]
        let all = found.withLock { $0 }
        var out: [HandedListener] = []
        var order: [ListeningSocketKey: [Int]] = [:]
        for (k, list) in all {
            let sorted = list.sorted { $0.worker < $1.worker }
            order[k] = sorted.map { $0.worker }
            let fds = sorted.map { $0.fd }
            out.append(HandedListener(key: k, listenerArn: plans[k]?.listener.listenerArn ?? "", fds: fds))
        }
        out.sort { a, b in a.key.port != b.key.port ? a.key.port < b.key.port : a.key.description < b.key.description }
        offered.withLock { $0 = order }
        return out
    }

    /// Sockets received from the previous process; the next `prepare` uses
    /// them for their keys instead of binding. At most one socket per worker
    /// per key is kept (socket j goes to worker j); the rest, when this
    /// process runs fewer workers, close with `closeUnadopted` and the old
    /// process closes its copies at go (`handOver(nextWorkers:)`), so the
    /// kernel moves their share of the port to the sockets kept.
    public func adopt(_ listeners: [HandedListener]) {
        adopted.withLock { pool in for l in listeners { pool[l.key, default: []].append(contentsOf: l.fds) } }
    }

    /// Per worker of this (old) process, the keys whose socket sits at a
    /// position the next process, with `nextWorkers` workers, did not keep.
    func surplusKeys(nextWorkers: Int) -> [Int: Set<ListeningSocketKey>] {
        var closing: [Int: Set<ListeningSocketKey>] = [:]
        for (k, order) in offered.withLock({ $0 }) {
            for (position, worker) in order.enumerated() where position >= nextWorkers { closing[worker, default: []].insert(k) }
        }
        return closing
    }

    /// Closes the adopted sockets no `prepare` took (ports the new config no
    /// longer has); returns their keys.
    @discardableResult
    public func closeUnadopted() -> [ListeningSocketKey] {
        let left = adopted.withLock { pool in defer { pool.removeAll() }; return pool }
        for (_, fds) in left { for fd in fds { System.close(fd) } }
        return left.keys.sorted { $0.port < $1.port }
    }

    /// With more workers than the previous process had sockets for a port,
    /// the workers left without one get a new socket in the port's
    /// SO_REUSEPORT group, so every worker serves it as after a plain start.
    /// A port handed over with a single socket (no SO_REUSEPORT: the
    /// descriptor budget dealt ports to workers) stays with one, and a
    /// socket that cannot be opened only leaves the port on fewer workers.
    func widenAdopted(_ handed: [(index: Int, socket: ListeningSocket)]) -> [(index: Int, socket: ListeningSocket)] {
        var count: [ListeningSocketKey: Int] = [:]
        for h in handed { count[h.socket.key, default: 0] += 1 }
        var extra: [(index: Int, socket: ListeningSocket)] = []
        var firstFD: [ListeningSocketKey: Int32] = [:]
        for h in handed where firstFD[h.socket.key] == nil { firstFD[h.socket.key] = h.socket.fd }
        for (key, n) in count where (n > 1 || key.isLookup) && n < workers.count {
            guard let driver = drivers[key.transport] else { continue }
            let address = SocketAddress(key.bind, port: key.port)
            for j in n..<workers.count {
                do throws(SystemError) {
                    // A lookup group binds a port the kernel picked: join it there.
                    let fd = key.isLookup ? try LookupSockets.join(key, groupOf: firstFD[key]!)
                                          : try driver.openListeningSocket(address, reusePort: true)
                    extra.append((j, ListeningSocket(key: key, fd: fd)))
                } catch {
                    Log.warn("takeover_widen_failed", ["port": key.port, "protocol": key.transport.rawValue, "error": error.description])
                    break
                }
            }
        }
        if !extra.isEmpty { Log.info("listeners_widened", ["sockets": extra.count, "workers": workers.count]) }
        return extra
    }

    /// Keys with sockets received from the previous process and not yet used.
    func adoptedKeys() -> Set<ListeningSocketKey> { adopted.withLock { Set($0.keys) } }

    /// Splits the keys an update adds into those to bind and those handed
    /// over (each socket with its index among its key's sockets).
    func takeAdopted(_ added: [(key: ListeningSocketKey, plan: ListenerPlan)])
        -> ([(key: ListeningSocketKey, plan: ListenerPlan)], [(index: Int, socket: ListeningSocket)]) {
        adopted.withLock { pool in
            if pool.isEmpty { return (added, []) }
            var toBind: [(key: ListeningSocketKey, plan: ListenerPlan)] = []
            var handed: [(index: Int, socket: ListeningSocket)] = []
            for entry in added {
                guard var fds = pool.removeValue(forKey: entry.key), !fds.isEmpty else { toBind.append(entry); continue }
                // Sockets beyond one per worker stay in the pool (closed by closeUnadopted).
                let kept = Array(fds.prefix(workers.count))
                fds.removeFirst(kept.count)
                if !fds.isEmpty { pool[entry.key] = fds }
                for (j, fd) in kept.enumerated() { handed.append((j, ListeningSocket(key: entry.key, fd: fd))) }
            }
            return (toBind, handed)
        }
    }
}
