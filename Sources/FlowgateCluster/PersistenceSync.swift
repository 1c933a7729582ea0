// Shared SOURCE_IP persistence (docs/cluster.md §7), on the etcd loop: every
// 100 ms the choices queued by picks (SharedPersistenceOutbox) go to etcd in
// transactions of up to 64 create-if-absent puts, back to back while a backlog lasts (nested transactions,
// one per key, so each key wins or loses on its own), each under a lease of
// the pool's persistence timeout. A key another instance created first comes
// back in the failure read and replaces the local choice; every put by any
// instance arrives through the watch on `persist/` and is learnt locally.
import FlowgateCore
import FlowgateSystem
import Synchronization

final class PersistenceSync {
    static let interval = 0.1
    // etcd 3.4 refuses 128 nested transactions of one compare, one put and
    // one read each ("too many operations in txn request") though its
    // --max-txn-ops is 128; 64 is accepted.
    static let maxBatch = 64

    let client: EtcdClient
    let keys: ClusterKeys
    let selection: @Sendable () -> SelectionState?
    let note: ((inout ClusterStatus) -> Void) -> Void
    private var leases: [Int: (id: Int64, grantedAt: UInt64)] = [:]
    private var inFlight = false
    private var timer: LoopTimer?
    private var watch: EtcdClient.Watch?
    private var nextRevision: Int64 = 0
    private var stopped = false
    /// Called once, when the first read of every shared entry ended (either way).
    var onFirstLoad: (() -> Void)?

    init(client: EtcdClient, keys: ClusterKeys, selection: @escaping @Sendable () -> SelectionState?,
         note: @escaping ((inout ClusterStatus) -> Void) -> Void) {
        self.client = client; self.keys = keys; self.selection = selection; self.note = note
    }

    /// Loads every shared entry, then watches for new ones and starts flushing (etcd loop).
    func start() {
        guard !stopped, timer == nil else { return }
        timer = client.loop.every(Self.interval) { [self] in flush() }
        load()
    }

    /// Called on the starting thread: choices made before the first flush are shared too.
    func enable() { selection()?.sharedPersistence.enabled.store(true, ordering: .relaxed) }

    func stop() {
        stopped = true
        timer?.cancel(); timer = nil
        watch?.cancel(); watch = nil
    }

    private func load() {
        guard !stopped else { return }
        client.send("kv/range", EtcdWire.range(key: keys.persistence, prefix: true)) { [self] r in
            defer { onFirstLoad?(); onFirstLoad = nil }
            switch r {
            case .failure:
                client.loop.after(1) { [self] in load() }
            case let .success(v):
                let range = EtcdWire.RangeResult(v)
                for kv in range.kvs { learn(kv) }
                nextRevision = range.revision + 1
                startWatch()
            }
        }
    }

    private func startWatch() {
        guard !stopped else { return }
        watch = client.watch(prefix: keys.persistence, startRevision: nextRevision, onMessage: { [self] m in
            switch m {
            case let .events(revision, events):
                nextRevision = max(nextRevision, revision + 1)
                for case let .put(kv) in events { learn(kv) }
            case .compacted, .canceled, .error:
                watch?.cancel(); watch = nil
                client.loop.after(0.5) { [self] in load() }
            case .created:
                break
            }
        }, onEnd: { [self] _ in
            watch = nil
            client.loop.after(0.5) { [self] in load() }
        })
    }

    /// `persist/<pool>/<client>` = `<member id> <timeout seconds>`.
    private func learn(_ kv: EtcdWire.KeyValue) {
        guard let selection = selection() else { return }
        let rest = kv.key.dropFirst(keys.persistence.count)
        guard let slash = rest.firstIndex(of: "/"), let client = IPAddress(String(rest[rest.index(after: slash)...])) else { return }
        let parts = String(decoding: kv.value, as: UTF8.self).split(separator: " ")
        guard parts.count == 2, let timeout = Double(parts[1]) else { return }
        if selection.learnPersistence(poolID: String(rest[..<slash]), client: client, memberID: String(parts[0]), timeout: timeout) {
            note { $0.persistLearned += 1 }
        }
    }

    private func flush() {
        guard !stopped, !inFlight, let selection = selection() else { return }
        selection.sharedPersistence.enabled.store(true, ordering: .relaxed)
        let batch = selection.sharedPersistence.drain(max: Self.maxBatch)
        guard !batch.isEmpty else { return }
        inFlight = true
        withLeases(Array(Set(batch.map(\.timeout)))) { [self] ok in
            guard ok else {
                Log.warn("cluster_persistence_write_failed", ["entries": batch.count, "error": "no lease granted"])
                inFlight = false
                note { $0.persistWriteFailures += batch.count }
                return
            }
            write(batch)
        }
    }

    /// A lease per timeout, renewed (a new one) after half its TTL so an entry never outlives its timeout by much.
    private func withLeases(_ timeouts: [Int], _ done: @escaping (Bool) -> Void) {
        let now = System.monotonicMicroseconds()
        let needed = timeouts.first { t in
            guard let lease = leases[t] else { return true }
            return now - lease.grantedAt > leaseAge(for: t)
        }
        guard let t = needed else { done(true); return }
        client.send("lease/grant", EtcdWire.leaseGrant(ttl: max(1, t))) { [self] r in
            guard case let .success(v) = r, EtcdWire.int64(v["ID"]) != 0 else { done(false); return }
            leases[t] = (EtcdWire.int64(v["ID"]), System.monotonicMicroseconds())
            withLeases(timeouts, done)
        }
    }

    private func leaseAge(for timeout: Int) -> UInt64 { UInt64(max(1, timeout)) * 500_000 }  // half the TTL, in µs

    private func write(_ batch: [SharedChoice]) {
        var ops: [JSONValue] = []
        for c in batch {
            let key = keys.persistence(pool: c.poolID, client: c.client.description)
            let value = Array("\(c.memberID) \(c.timeout)".utf8)
            let inner = EtcdWire.txn([.absent(key)], puts: [(key, value, leases[c.timeout]?.id ?? 0)], failureRange: key)
            ops.append(.object([("request_txn", inner)]))
        }
        let txn = JSONValue.object([("success", .array(ops))])
        client.send("kv/txn", txn) { [self] r in
            inFlight = false
            // A backlog goes out at once, batch after batch, not one batch per tick.
            defer { if case .success = r, (selection()?.sharedPersistence.queued ?? 0) > 0 { flush() } }
            switch r {
            case let .failure(e):
                Log.warn("cluster_persistence_write_failed", ["entries": batch.count, "error": e.message])
                note { $0.persistWriteFailures += batch.count }
            case let .success(v):
                note { $0.persistBatches += 1; $0.persistWrites += batch.count }
                let responses = v["responses"]?.arrayValue ?? []
                for (c, resp) in zip(batch, responses) {
                    let inner = EtcdWire.TxnResult(resp["response_txn"] ?? .null)
                    guard !inner.succeeded, let kv = inner.failureRange?.kvs.first else { continue }
                    // Another instance chose first: its member wins here too.
                    if String(decoding: kv.value, as: UTF8.self).split(separator: " ").first.map(String.init) != c.memberID {
                        note { $0.persistLostRaces += 1 }
                    }
                    learn(kv)
                }
            }
        }
    }
}
