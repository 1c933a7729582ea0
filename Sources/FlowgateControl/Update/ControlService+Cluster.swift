// The control service in a cluster (docs/cluster.md §3, §4): a write is
// validated here exactly as standalone, prepared (new ports bound), then
// committed as one etcd transaction comparing the revision it was based on,
// and only then committed here and acknowledged. Snapshots other instances
// wrote arrive from the watch and go through the same prepare/commit.
import FlowgateCore
import FlowgateSystem

extension ControlService {
    /// The file's daemon settings with a snapshot's objects.
    static func withObjects(_ settings: FlowgateConfig, of objects: FlowgateConfig?) -> FlowgateConfig {
        guard let objects else { return settings }
        var next = settings
        next.accelerators = objects.accelerators
        next.pools = objects.pools
        next.healthmonitors = objects.healthmonitors
        return next
    }

    /// The snapshot in force here and the newest one seen, for status.
    public var clusterRevisions: (applied: Int64, latest: Int64) {
        gate.withLock { ($0.clusterApplied, $0.clusterBase?.revision ?? 0) }
    }

    /// True when the objects in force came from etcd or its cache, not from the config file.
    public var servesClusterObjects: Bool { gate.withLock { $0.clusterBase != nil } }

    func clusterStart(_ gated: inout Gated, fileConfig: FlowgateConfig, into next: inout FlowgateConfig) throws(UpdateFailure) {
        if gated.clusterBase == nil, let store {
            do throws(StateFileError) {
                if let cached = try store.loadCluster() {
                    gated.clusterBase = cached
                    Log.info("cluster_cache_loaded", ["file": store.path, "revision": cached.revision])
                }
            } catch {
                throw UpdateFailure.persist(error)
            }
        }
        next = Self.withObjects(fileConfig, of: gated.clusterBase?.config)
    }

    private func saveCache(_ snapshot: ClusterSnapshot) {
        do throws(StateFileError) { try store?.saveCluster(snapshot) } catch {
            // etcd holds the truth; the cache only matters for a start while etcd is down.
            Log.warn("cluster_cache_failed", ["error": error.description])
        }
    }

    /// A snapshot from etcd (the cluster apply thread). All or nothing.
    public func applyCluster(_ snapshot: ClusterSnapshot) -> ClusterApplyOutcome {
        do throws(UpdateFailure) {
            return try serialized { (gated: inout Gated) throws(UpdateFailure) -> ClusterApplyOutcome in
                applyClusterLocked(&gated, snapshot)
            }
        } catch {
            return .failed(Self.describe(error))
        }
    }

    func applyClusterLocked(_ gated: inout Gated, _ snapshot: ClusterSnapshot) -> ClusterApplyOutcome {
        if snapshot.revision > (gated.clusterBase?.revision ?? 0) { gated.clusterBase = snapshot }
        if snapshot.revision <= gated.clusterApplied { return .skipped }
        let current = applier.current
        let next = Self.withObjects(current, of: snapshot.config)
        if next == current {
            gated.clusterApplied = snapshot.revision
            saveCache(snapshot)
            return .skipped
        }
        let issues = validate(next)
        if let first = issues.first { return .failed("revision \(snapshot.revision) breaks a rule: \(first.description)") }
        do throws(UpdateFailure) {
            try applier.apply(next) { () throws(UpdateFailure) in saveCache(snapshot) }
        } catch {
            return .failed("revision \(snapshot.revision): \(Self.describe(error))")
        }
        gated.clusterApplied = snapshot.revision
        return .applied
    }

    static func describe(_ failure: UpdateFailure) -> String {
        switch failure {
        case let .invalid(issues): return issues.first?.description ?? "breaks a rule"
        case let .apply(e): return e.message
        case let .persist(e): return e.description
        case let .unavailable(reason): return reason
        }
    }

    /// `update` in a cluster. A conflict (another instance committed first)
    /// is retried once on the state etcd returned; a second one answers the
    /// API's conflict error. etcd unreachable answers the internal error.
    func clusterUpdate<Value, Refusal: Error>(_ cluster: ClusterCommitting, _ change: (inout FlowgateConfig) throws(Refusal) -> Value)
        throws(ChangeFailure<Refusal>) -> (config: FlowgateConfig, value: Value) {
        try settled { (gated: inout Gated) throws(UpdateFailure) -> Result<(config: FlowgateConfig, value: Value), Refusal> in
            var conflicts = 0
            while true {
                let base = gated.clusterBase
                var next = Self.withObjects(applier.current, of: base?.config)
                let value: Value
                do throws(Refusal) { value = try change(&next) } catch { return .failure(error) }
                let issues = validate(next)
                if !issues.isEmpty { throw UpdateFailure.invalid(issues) }
                var result = ClusterCommitResult.unavailable("not sent")
                do throws(UpdateFailure) {
                    try applier.apply(next) { () throws(UpdateFailure) in
                        result = cluster.commit(next, expected: base?.revision ?? 0)
                        switch result {
                        case let .committed(revision):
                            saveCache(ClusterSnapshot(config: next, revision: revision))
                        case .conflict:
                            throw UpdateFailure.invalid([ValidationIssue(.conflict, "",
                                "another Flowgate instance changed the configuration at the same time; read it again and retry")])
                        case let .unavailable(why):
                            throw UpdateFailure.persist(StateFileError(path: "etcd", message: "\(why); nothing was changed"))
                        }
                    }
                } catch {
                    guard case let .conflict(latest) = result else { throw error }
                    conflicts += 1
                    Log.info("cluster_write_conflict", ["based_on": base?.revision ?? 0, "latest": latest?.revision ?? 0, "attempt": conflicts])
                    if let latest { _ = applyClusterLocked(&gated, latest) }
                    if conflicts >= 2 || latest == nil { throw error }
                    continue
                }
                if case let .committed(revision) = result {
                    gated.clusterBase = ClusterSnapshot(config: next, revision: revision)
                    gated.clusterApplied = revision
                }
                return .success((next, value))
            }
        }
    }
}
