// The update path of docs/architecture.md §7, shared by both APIs: validate a changed copy
// of the configuration, then prepare (bind new ports) → persist → commit, one
// update at a time, and answer only after commit returned.
import FlowgateCore
import FlowgateSystem
import Synchronization

/// A type-erased `ConfigApplier` so the service does not carry its generic.
public final class AnyApplier: @unchecked Sendable {
    private let currentFn: () -> FlowgateConfig
    private let applyFn: (FlowgateConfig, () throws(UpdateFailure) -> Void) throws(UpdateFailure) -> Void

    public init<A: ConfigApplier>(_ applier: A) {
        currentFn = { applier.current }
        applyFn = { (config: FlowgateConfig, persist: () throws(UpdateFailure) -> Void) throws(UpdateFailure) in
            try AnyApplier.run(applier, config, persist)
        }
    }

    private static func run<A: ConfigApplier>(_ applier: A, _ config: FlowgateConfig, _ persist: () throws(UpdateFailure) -> Void) throws(UpdateFailure) {
        let t0 = System.monotonicMicroseconds()
        let prepared: A.Prepared
        do throws(ApplyError) { prepared = try applier.prepare(config) } catch { throw UpdateFailure.apply(error) }
        let t1 = System.monotonicMicroseconds()
        // The state file (standalone) or the etcd transaction (cluster,
        // docs/cluster.md §3): a failure here undoes the prepare, nothing changed.
        do throws(UpdateFailure) { try persist() } catch {
            applier.abort(prepared)
            throw error
        }
        let t2 = System.monotonicMicroseconds()
        applier.commit(prepared)
        let t3 = System.monotonicMicroseconds()
        // Where an update's time goes: binding, the state file's fsyncs, the workers' swap.
        Log.info("config_applied", ["prepare_us": t1 - t0, "persist_us": t2 - t1, "commit_us": t3 - t2])
    }
    public var current: FlowgateConfig { currentFn() }
    func apply(_ config: FlowgateConfig, persist: () throws(UpdateFailure) -> Void) throws(UpdateFailure) {
        try applyFn(config, persist)
    }
}

public enum UpdateFailure: Error, Sendable {
    /// The request broke a rule: nothing was changed. Never empty: the
    /// service throws it only with the validator's issues.
    case invalid([ValidationIssue])
    /// Binding a new port (or the descriptor budget) failed: nothing changed.
    case apply(ApplyError)
    /// The state file could not be written: the applier aborted, nothing changed.
    case persist(StateFileError)
    /// The daemon is not taking changes now (draining or stopped).
    case unavailable(String)

    /// The first issue, for the APIs that answer with one message.
    public var firstIssue: ValidationIssue? {
        if case let .invalid(issues) = self { return issues.first }
        return nil
    }
}

/// Why `update` changed nothing: the change itself refused (its own typed
/// error, e.g. a 404 for an object a reload just removed), or the shared
/// update path did.
public enum ChangeFailure<Refusal: Error>: Error {
    case refused(Refusal)
    case failed(UpdateFailure)
}

/// Owns the accepted configuration. Called only from the control thread, so
/// updates are serialised by construction.
public final class ControlService: @unchecked Sendable {
    public let applier: AnyApplier
    public let store: StateStore?
    /// The whole-config rules every changed config must pass; `apiRules`
    /// (the shared `ConfigValidator`) unless a test installs others.
    public var validate: @Sendable (FlowgateConfig) -> [ValidationIssue]
    /// Config-file state, for `state reset`; written and read under the gate.
    public var baseConfig: FlowgateConfig? { gate.withLock { $0.baseConfig } }
    /// Per-member health for ELB `operating_status`; nil → NO_MONITOR.
    public var memberStatus: (@Sendable (_ poolID: String, _ memberID: String) -> OperatingStatus?)?
    public let metrics: MetricsRegistry
    /// nil while changes are accepted; otherwise why not (e.g. draining):
    /// a change then would rebind ports the shutdown just closed.
    public var refusingChanges: @Sendable () -> String? = { nil }
    /// Serialises API updates (control thread) with SIGHUP reloads (main thread)
    /// and, in a cluster, snapshots from etcd (the cluster apply thread).
    let gate: Mutex<Gated>
    /// Set in a cluster (docs/cluster.md §3): updates commit through etcd
    /// instead of the state file, which then caches the applied snapshot.
    public var cluster: ClusterCommitting?
    /// Cluster only: what `GET /flowgate/cluster/status` answers (runs on the control thread).
    public var clusterStatus: (@Sendable () -> JSONValue)?

    public init(applier: AnyApplier, store: StateStore?, baseConfig: FlowgateConfig? = nil, metrics: MetricsRegistry = MetricsRegistry(),
                validate: @escaping @Sendable (FlowgateConfig) -> [ValidationIssue] = ControlService.apiRules) {
        self.applier = applier; self.store = store; self.gate = Mutex(Gated(baseConfig: baseConfig)); self.validate = validate; self.metrics = metrics
    }

    public var config: FlowgateConfig { applier.current }

    /// The rules an API update must pass: the shared `ConfigValidator` (one
    /// set of rules for file and API, docs/architecture.md §14), less the listener/pool
    /// protocol pairing: UpdateListener may change `Protocol`, and the
    /// listener then forwards that protocol to the same members (docs/architecture.md §2),
    /// as Global Accelerator allows.
    public static let apiRules: @Sendable (FlowgateConfig) -> [ValidationIssue] = { config in
        ConfigValidator.validate(config, checkListenerPoolProtocol: false)
    }

    /// Applies `change` to a copy of the live config with the gate held, so
    /// every lookup `change` makes sees the config it will replace: an object
    /// a concurrent reload removed is not found there (`change` throws its
    /// own error, returned as `.refused`). Then the shared validators run on
    /// the result. Returns the committed config and what `change` returned.
    @discardableResult
    public func update<Value, Refusal: Error>(_ change: (inout FlowgateConfig) throws(Refusal) -> Value)
        throws(ChangeFailure<Refusal>) -> (config: FlowgateConfig, value: Value) {
        if let cluster { return try clusterUpdate(cluster, change) }
        return try settled { (_: inout Gated) throws(UpdateFailure) -> Result<(config: FlowgateConfig, value: Value), Refusal> in
            var next = applier.current
            let value: Value
            do throws(Refusal) { value = try change(&next) } catch { return .failure(error) }
            let issues = validate(next)
            if !issues.isEmpty { throw UpdateFailure.invalid(issues) }
            try applier.apply(next) { () throws(UpdateFailure) in try save(next) }
            return .success((next, value))
        }
    }

    /// Runs `body` under the gate and gives its outcome the API's two ways of
    /// failing: the change's own refusal (`.refused`) or a rule, an apply or
    /// the store failing (`.failed`). Standalone and cluster updates share it.
    func settled<Value, Refusal: Error>(
        _ body: (inout Gated) throws(UpdateFailure) -> Result<(config: FlowgateConfig, value: Value), Refusal>
    ) throws(ChangeFailure<Refusal>) -> (config: FlowgateConfig, value: Value) {
        let outcome: Result<(config: FlowgateConfig, value: Value), Refusal>
        do throws(UpdateFailure) { outcome = try serialized(body) } catch { throw .failed(error) }
        switch outcome {
        case let .success(committed): return committed
        case let .failure(refusal): throw .refused(refusal)
        }
    }

    /// SIGHUP (docs/architecture.md §7), and the start (a reload from nothing): the config
    /// file becomes the base, with the state file's acknowledged updates laid
    /// over it again (docs/architecture.md §8), so a reload never silently reverts an
    /// update a client was told is live. Nothing is written: the state file
    /// already holds those updates.
    @discardableResult
    public func reload(fileConfig: FlowgateConfig) throws(UpdateFailure) -> FlowgateConfig {
        try serialized { (gated: inout Gated) throws(UpdateFailure) -> FlowgateConfig in
            var next = fileConfig
            if cluster != nil {
                // A cluster member serves the cluster's objects, never the
                // file's (docs/cluster.md §4): the newest snapshot it holds,
                // else the one its state file cached, else the file's until
                // etcd answers (then seeded or replaced).
                try clusterStart(&gated, fileConfig: fileConfig, into: &next)
            } else if let store {
                do throws(StateFileError) {
                    if let state = try store.load() { next = StateFile.overlay(config: fileConfig, state: state) }
                } catch {
                    throw UpdateFailure.persist(error)
                }
            }
            let issues = validate(next)
            if !issues.isEmpty { throw UpdateFailure.invalid(issues) }
            try applier.apply(next) { () throws(UpdateFailure) in }
            gated.baseConfig = fileConfig
            if let base = gated.clusterBase, base.config.accelerators == next.accelerators, base.config.pools == next.pools,
               base.config.healthmonitors == next.healthmonitors {
                gated.clusterApplied = max(gated.clusterApplied, base.revision)
            }
            return next
        }
    }

    private func save(_ config: FlowgateConfig) throws(UpdateFailure) {
        do throws(StateFileError) { try store?.save(config) } catch { throw .persist(error) }
    }

    /// What the gate guards besides the order of changes.
    struct Gated {
        /// Changes applied so far.
        var applied = 0
        /// The config file as last (re)loaded, for `state reset`.
        var baseConfig: FlowgateConfig?
        /// Cluster only: the newest snapshot seen from etcd (applied or not),
        /// which the next write is based on and compared against.
        var clusterBase: ClusterSnapshot?
        /// Cluster only: the revision of the snapshot in force here (0: none yet).
        var clusterApplied: Int64 = 0
    }

    /// Runs one change with the gate held.
    func serialized<T>(_ body: (inout Gated) throws(UpdateFailure) -> T) throws(UpdateFailure) -> T {
        try gate.withLock { (gated: inout Gated) throws(UpdateFailure) -> T in
            if let reason = refusingChanges() { throw UpdateFailure.unavailable(reason) }
            let result = try body(&gated)
            gated.applied += 1
            return result
        }
    }

    /// `flowgatectl state reset`: delete the state file and go back to the
    /// config file, as read under the gate (a reload may be replacing it).
    public func reset() throws(UpdateFailure) -> FlowgateConfig {
        if cluster != nil {
            throw UpdateFailure.invalid([ValidationIssue(.invalidArgument, "", "state reset is for a standalone flowgated; a cluster member takes its objects from etcd (docs/cluster.md)")])
        }
        return try serialized { (gated: inout Gated) throws(UpdateFailure) -> FlowgateConfig in
            guard let base = gated.baseConfig else {
                throw UpdateFailure.invalid([ValidationIssue(.invalidArgument, "", "no config file state to reset to")])
            }
            let issues = validate(base)
            if !issues.isEmpty { throw UpdateFailure.invalid(issues) }
            try applier.apply(base) { () throws(UpdateFailure) in
                do throws(StateFileError) { try store?.remove() } catch { throw .persist(error) }
            }
            return base
        }
    }
}
