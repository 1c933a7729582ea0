// The cluster store (docs/cluster.md §3-§5): seeds or takes over the shared
// objects, watches them from the last revision seen and hands every new
// snapshot to the apply thread (never applied on the etcd loop: an API write
// holds the control gate while it waits for that loop), commits writes as
// compare-and-put transactions, and keeps this instance's leased membership key.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import FlowgateCore
import FlowgateSystem
import Synchronization

public final class ClusterStore: ClusterCommitting, @unchecked Sendable {
    public let config: ClusterConfig
    public let keys: ClusterKeys
    public let client: EtcdClient
    let applyLoop: LoopThread
    /// This instance's objects, for seeding an empty prefix. Must not take
    /// the control gate (called on the etcd loop).
    let localObjects: @Sendable () -> FlowgateConfig
    /// True while the objects in force came from the config file (nothing
    /// from etcd or its cache yet): taking etcd's objects then is logged.
    public let servingFileObjects = Atomic<Bool>(false)
    /// Applies one snapshot (on the apply thread); its outcome goes into the status.
    let apply: @Sendable (ClusterSnapshot) -> ClusterApplyOutcome
    /// The snapshot in force here, for the membership key. Takes the control
    /// gate: called on the apply thread only, never on the etcd loop (a write
    /// holds the gate while it waits for that loop).
    let appliedRevision: @Sendable () -> Int64
    public let status = Mutex(ClusterStatus())
    public static let leaseTTL = 10
    var persistence: PersistenceSync?

    // etcd-loop state.
    private var watch: EtcdClient.Watch?
    private var nextWatchRevision: Int64 = 0
    private var retryDelay = 0.1
    private var stopped = false
    private var synced = false
    private var leaseID: Int64 = 0
    private var membershipTimer: LoopTimer?
    private var lastMembership = ""

    public init(_ config: ClusterConfig, localObjects: @escaping @Sendable () -> FlowgateConfig,
                apply: @escaping @Sendable (ClusterSnapshot) -> ClusterApplyOutcome,
                appliedRevision: @escaping @Sendable () -> Int64,
                selection: (@Sendable () -> SelectionState?)? = nil) throws(SystemError) {
        self.config = config
        keys = ClusterKeys(cluster: config.name)
        client = try EtcdClient(config)
        applyLoop = try LoopThread(name: "fg-cluster")
        self.localObjects = localObjects; self.apply = apply; self.appliedRevision = appliedRevision
        if let selection {
            persistence = PersistenceSync(client: client, keys: keys, selection: selection) { [unowned self] body in self.status.withLock { body(&$0) } }
        }
    }

    /// Starts the threads and the first sync; returns once it succeeded or
    /// failed (a failure leaves the retries running: the daemon serves what
    /// it has and catches up, docs/cluster.md §6).
    public func start() -> Bool {
        // Picks queue their persistence choices from now on (before the daemon is ready).
        persistence?.enable()
        applyLoop.start()
        client.start()
        // The sync, and the first read of the shared persistence entries, so a
        // restarted instance knows the fleet's clients before it is ready.
        let latch = Latch(persistence == nil ? 1 : 2)
        let ok = Atomic<Bool>(false)
        client.loop.post { [self] in
            persistence?.onFirstLoad = { latch.countDown() }
            sync { success in
                ok.store(success, ordering: .relaxed)
                latch.countDown()
                if !success, let p = self.persistence, p.onFirstLoad != nil { p.onFirstLoad = nil; latch.countDown() }
            }
            membershipTimer = client.loop.every(Double(Self.leaseTTL) / 3) { [self] in keepMembership() }
        }
        _ = latch.wait(timeout: Double(config.requestTimeout) + 1)
        return ok.load(ordering: .relaxed)
    }

    /// Revokes the membership lease (best effort), ends the watch and joins both threads.
    public func stop() {
        let latch = Latch(1)
        client.loop.post { [self] in
            stopped = true
            persistence?.stop()
            membershipTimer?.cancel()
            watch?.cancel()
            watch = nil
            if leaseID != 0 {
                client.send("lease/revoke", EtcdWire.lease(id: leaseID)) { _ in latch.countDown() }
            } else {
                latch.countDown()
            }
        }
        _ = latch.wait(timeout: 1)
        client.stop()
        applyLoop.stopAndJoin()
    }

    private func note(_ body: (inout ClusterStatus) -> Void) { status.withLock { body(&$0) } }

    // MARK: read path

    /// Reads the config key; seeds it when absent; delivers what etcd holds;
    /// then watches from the revision read. Retries with backoff on failure.
    private func sync(_ done: ((Bool) -> Void)? = nil) {
        guard !stopped else { done?(false); return }
        watch?.cancel(); watch = nil
        client.send("kv/range", EtcdWire.range(key: keys.config)) { [self] r in
            switch r {
            case let .failure(e):
                unreachable("sync", e)
                done?(false)
                retry()
            case let .success(v):
                let range = EtcdWire.RangeResult(v)
                if let kv = range.kvs.first {
                    deliver(kv, takeover: true)
                    watchFrom(range.revision + 1)
                    done?(true)
                } else {
                    seed(done)
                }
            }
        }
    }

    private func seed(_ done: ((Bool) -> Void)?) {
        let local = localObjects()
        let bytes = Array(StateFile.encode(local))
        let txn = EtcdWire.txn([.absent(keys.config)], puts: [(keys.config, bytes, 0)], failureRange: keys.config)
        client.send("kv/txn", txn) { [self] r in
            switch r {
            case let .failure(e):
                unreachable("seed", e)
                done?(false)
                retry()
            case let .success(v):
                let t = EtcdWire.TxnResult(v)
                if t.succeeded {
                    Log.info("cluster_seeded", ["cluster": config.name, "key": keys.config, "revision": t.revision,
                                                "listeners": local.allListeners.count, "pools": local.pools.count])
                    deliver(EtcdWire.KeyValue(key: keys.config, value: bytes, modRevision: t.revision), takeover: false)
                    watchFrom(t.revision + 1)
                } else if let kv = t.failureRange?.kvs.first {
                    deliver(kv, takeover: true)  // another instance seeded first
                    watchFrom((t.failureRange?.revision ?? kv.modRevision) + 1)
                } else {
                    retry()  // deleted again in between: read again
                    done?(false)
                    return
                }
                done?(true)
            }
        }
    }

    private func retry() {
        guard !stopped else { return }
        let delay = retryDelay
        retryDelay = min(2, retryDelay * 2)
        client.loop.after(delay) { [self] in sync() }
    }

    private func unreachable(_ step: String, _ e: EtcdError) {
        let was = status.withLock { s -> Bool in let w = s.reachable; s.reachable = false; s.lastError = e.message; return w }
        if was { Log.warn("cluster_unreachable", ["step": step, "error": e.message]) }
    }

    private func reachable() {
        retryDelay = 0.1
        let was = status.withLock { s -> Bool in let w = s.reachable; s.reachable = true; return w }
        if !was { Log.info("cluster_reachable", ["cluster": config.name]) }
    }

    private func watchFrom(_ revision: Int64) {
        reachable()
        synced = true
        persistence?.start()
        nextWatchRevision = revision
        startWatch()
    }

    private func startWatch() {
        guard !stopped else { return }
        watch = client.watch(prefix: keys.config, startRevision: nextWatchRevision, onMessage: { [self] m in
            switch m {
            case let .created(revision):
                note { $0.watchRevision = max($0.watchRevision, revision) }
            case let .events(revision, events):
                nextWatchRevision = max(nextWatchRevision, revision + 1)
                note { $0.watchRevision = max($0.watchRevision, revision) }
                for e in events {
                    switch e {
                    case let .put(kv) where kv.key == keys.config: deliver(kv, takeover: false)
                    case let .delete(kv) where kv.key == keys.config:
                        Log.warn("cluster_config_deleted", ["key": kv.key, "revision": kv.modRevision,
                                                            "action": "keeping the snapshot in force; re-seeding"])
                        watch?.cancel(); watch = nil
                        sync()
                        return
                    default: break
                    }
                }
            case let .compacted(compact):
                // Our start revision is gone: read everything again (docs/cluster.md §4).
                Log.warn("cluster_watch_compacted", ["from": nextWatchRevision, "compact_revision": compact])
                note { $0.compactions += 1 }
                watch?.cancel(); watch = nil
                sync()
            case let .canceled(reason), let .error(reason):
                Log.warn("cluster_watch_ended", ["reason": reason])
                watch?.cancel(); watch = nil
                retryWatch()
            }
        }, onEnd: { [self] why in
            watch = nil
            unreachable("watch", EtcdError(why))
            retryWatch()
        })
    }

    private func retryWatch() {
        guard !stopped else { return }
        let delay = retryDelay
        retryDelay = min(2, retryDelay * 2)
        client.loop.after(delay) { [self] in
            guard !stopped, watch == nil else { return }
            // Probe with a read first: a watch on a member without quorum
            // would wait silently; the read fails over instead.
            client.send("kv/range", EtcdWire.range(key: keys.config)) { [self] r in
                switch r {
                case let .failure(e): unreachable("watch", e); retryWatch()
                case let .success(v):
                    let range = EtcdWire.RangeResult(v)
                    if let kv = range.kvs.first { deliver(kv, takeover: false) }
                    reachable()
                    nextWatchRevision = max(nextWatchRevision, range.revision + 1)
                    startWatch()
                }
            }
        }
    }

    /// Decodes a config value and hands it to the apply thread.
    private func deliver(_ kv: EtcdWire.KeyValue, takeover: Bool) {
        let snapshot: ClusterSnapshot
        do throws(StateFile.DecodeError) {
            snapshot = ClusterSnapshot(config: try StateFile.decode(Data(kv.value)), revision: kv.modRevision)
        } catch {
            Log.error("cluster_snapshot_invalid", ["key": kv.key, "revision": kv.modRevision, "error": error.description])
            note { $0.failed(kv.modRevision, error.description) }
            return
        }
        note { $0.latestRevision = max($0.latestRevision, kv.modRevision) }
        applyLoop.post { [self] in
            let outcome = apply(snapshot)
            let applied = appliedRevision()
            note { $0.appliedRevision = applied }
            switch outcome {
            case .applied:
                if takeover, servingFileObjects.exchange(false, ordering: .relaxed) {
                    Log.info("cluster_objects_taken", ["cluster": config.name, "revision": snapshot.revision,
                                                       "note": "etcd already holds this cluster's objects; the config file's listeners, pools and health monitors were not used"])
                }
                Log.info("cluster_snapshot_applied", ["revision": snapshot.revision])
                note { $0.applied(snapshot.revision) }
            case .skipped:
                servingFileObjects.store(false, ordering: .relaxed)
                note { $0.applied(snapshot.revision) }
            case let .failed(why):
                Log.error("cluster_apply_failed", ["revision": snapshot.revision, "error": why])
                note { $0.failed(snapshot.revision, why) }
            }
            client.loop.post { [self] in keepMembership() }
        }
    }

    // MARK: write path

    public func commit(_ objects: FlowgateConfig, expected revision: Int64) -> ClusterCommitResult {
        let bytes = Array(StateFile.encode(objects))
        let compare: EtcdWire.Compare = revision == 0 ? .absent(keys.config) : .modRevision(keys.config, revision)
        let txn = EtcdWire.txn([compare], puts: [(keys.config, bytes, 0)], failureRange: keys.config)
        switch client.call("kv/txn", txn) {
        case let .failure(e):
            note { $0.writeFailures += 1 }
            return .unavailable(e.message)
        case let .success(v):
            let t = EtcdWire.TxnResult(v)
            if t.succeeded {
                // Applied here right after this returns (the prepare already bound its ports).
                note { $0.writes += 1; $0.latestRevision = max($0.latestRevision, t.revision); $0.appliedRevision = t.revision }
                client.loop.post { [self] in keepMembership() }
                return .committed(revision: t.revision)
            }
            guard let kv = t.failureRange?.kvs.first else { return .conflict(latest: nil) }
            // A retried transaction whose first try did commit reads back our own bytes.
            if kv.value == bytes { return .committed(revision: kv.modRevision) }
            note { $0.conflicts += 1 }
            do throws(StateFile.DecodeError) {
                return .conflict(latest: ClusterSnapshot(config: try StateFile.decode(Data(kv.value)), revision: kv.modRevision))
            } catch {
                return .conflict(latest: nil)
            }
        }
    }

    // MARK: membership (docs/cluster.md §5)

    /// Keeps `instances/<instance>` alive under a lease, rewritten when what it says changes.
    private func keepMembership() {
        guard !stopped, synced else { return }
        if leaseID == 0 {
            client.send("lease/grant", EtcdWire.leaseGrant(ttl: Self.leaseTTL)) { [self] r in
                guard case let .success(v) = r else { return }
                leaseID = EtcdWire.int64(v["ID"])
                lastMembership = ""
                putMembership()
            }
            return
        }
        client.send("lease/keepalive", EtcdWire.lease(id: leaseID)) { [self] r in
            switch r {
            case let .success(v):
                // TTL 0 (absent): the lease expired while etcd was away: take a new one.
                if EtcdWire.int64(v["result"]?["TTL"]) <= 0 { leaseID = 0; keepMembership(); return }
                putMembership()
            case .failure:
                break
            }
        }
    }

    private func putMembership() {
        let s = status.withLock { $0 }
        let value = JSONValue.object([
            ("instance", .string(config.instance)),
            ("applied_revision", .int(Int(s.appliedRevision))),
            ("latest_revision", .int(Int(s.latestRevision))),
            ("health", .string(s.notApplied.isEmpty ? "ok" : "degraded")),
            ("not_applied", .array(s.notApplied.map { .object([("revision", .int(Int($0.revision))), ("error", .string($0.error))]) })),
            ("pid", .int(Int(System.processID()))),
        ]).serialized()
        guard value != lastMembership else { return }
        client.send("kv/put", EtcdWire.put(key: keys.instance(config.instance), value: Array(value.utf8), lease: leaseID)) { [self] r in
            if case .success = r { lastMembership = value }
        }
    }

    /// Every instance's membership key (blocking; control thread).
    public func instances() -> Result<[JSONValue], EtcdError> {
        client.call("kv/range", EtcdWire.range(key: keys.instances, prefix: true)).map { v in
            EtcdWire.RangeResult(v).kvs.compactMap { try? JSONValue.parse($0.value) }
        }
    }
}

/// What `flowgatectl cluster status` and the metrics show of this instance.
public struct ClusterStatus: Sendable {
    public var reachable = true
    public var lastError = ""
    public var latestRevision: Int64 = 0
    public var appliedRevision: Int64 = 0
    public var watchRevision: Int64 = 0
    public var writes = 0
    public var writeFailures = 0
    public var conflicts = 0
    public var compactions = 0
    public var applyFailures = 0
    /// Shared persistence (docs/cluster.md §7).
    public var persistBatches = 0
    public var persistWrites = 0
    public var persistWriteFailures = 0
    public var persistLostRaces = 0
    public var persistLearned = 0
    /// Revisions this instance could not apply since the last one it could, with why.
    public var notApplied: [(revision: Int64, error: String)] = []

    mutating func applied(_ revision: Int64) { notApplied.removeAll { $0.revision <= revision } }
    mutating func failed(_ revision: Int64, _ error: String) {
        applyFailures += 1
        notApplied.append((revision, error))
        if notApplied.count > 16 { notApplied.removeFirst(notApplied.count - 16) }
    }
}

extension ClusterStore {
    /// `flowgatectl cluster status` (docs/cluster.md §5): this instance's
    /// view, and every instance's membership key with its lag behind the
    /// newest revision any of them saw. Blocking (control thread only).
    public func statusReport() -> JSONValue {
        let s = status.withLock { $0 }
        var fields: [(String, JSONValue)] = [
            ("cluster", .string(config.name)), ("instance", .string(config.instance)), ("prefix", .string(keys.prefix)),
            ("applied_revision", .int(Int(s.appliedRevision))), ("latest_revision", .int(Int(s.latestRevision))),
            ("etcd_reachable", .bool(s.reachable)), ("last_error", .string(s.lastError)),
            ("writes", .int(s.writes)), ("write_failures", .int(s.writeFailures)), ("conflicts", .int(s.conflicts)),
            ("apply_failures", .int(s.applyFailures)), ("compactions", .int(s.compactions)),
            ("persistence", .object([("batches", .int(s.persistBatches)), ("writes", .int(s.persistWrites)),
                                     ("write_failures", .int(s.persistWriteFailures)), ("lost_races", .int(s.persistLostRaces)),
                                     ("learned", .int(s.persistLearned))])),
            ("not_applied", .array(s.notApplied.map { .object([("revision", .int(Int($0.revision))), ("error", .string($0.error))]) })),
        ]
        switch instances() {
        case let .success(list):
            let newest = list.map { $0["latest_revision"]?.intValue ?? 0 }.reduce(Int(s.latestRevision), max)
            let rows: [JSONValue] = list.map { i in
                let applied = i["applied_revision"]?.intValue ?? 0
                return .object([("instance", i["instance"] ?? .null), ("applied_revision", .int(applied)),
                                ("lag", .int(max(0, newest - applied))), ("health", i["health"] ?? .null),
                                ("not_applied", i["not_applied"] ?? .array([]))])
            }
            fields.append(("newest_revision", .int(newest)))
            fields.append(("instances", .array(rows)))
        case let .failure(e):
            fields.append(("instances_error", .string(e.message)))
        }
        return .object(fields)
    }
}

extension ClusterStore {
    /// The cluster families of /metrics (docs/cluster.md §5).
    public func renderMetrics() -> String {
        let s = status.withLock { $0 }
        var w = PrometheusWriter()
        w.family("flowgate_cluster_applied_revision", .gauge, "etcd revision of the shared configuration in force on this instance",
                 [([], Double(s.appliedRevision))])
        w.family("flowgate_cluster_latest_revision", .gauge, "newest etcd revision of the shared configuration this instance saw",
                 [([], Double(s.latestRevision))])
        w.family("flowgate_cluster_etcd_reachable", .gauge, "1 while the last etcd call of this instance succeeded",
                 [([], s.reachable ? 1 : 0)])
        w.family("flowgate_cluster_writes_total", .counter, "API changes committed to etcd by this instance, by result",
                 [([("result", "committed")], Double(s.writes)), ([("result", "conflict")], Double(s.conflicts)),
                  ([("result", "unavailable")], Double(s.writeFailures))])
        w.family("flowgate_cluster_apply_failures_total", .counter, "snapshots from etcd this instance could not apply",
                 [([], Double(s.applyFailures))])
        w.family("flowgate_cluster_persistence_entries_total", .counter, "shared SOURCE_IP persistence entries, by outcome",
                 [([("outcome", "written")], Double(s.persistWrites)), ([("outcome", "write_failed")], Double(s.persistWriteFailures)),
                  ([("outcome", "lost_race")], Double(s.persistLostRaces)), ([("outcome", "learnt")], Double(s.persistLearned))])
        return w.text
    }
}
