import FlowgateCore
import FlowgateSystem
import Synchronization

/// Active and passive health checks (docs/architecture.md §10, issue 6) on their own
/// `LoopThread`. The rules are pure, in FlowgateCore's Health/. Marks members up and down through
/// `SelectionState.setMemberUp`, which every worker's picks read; the
/// control plane reads `operatingStatus` for ELB's ShowMember/ListMembers.
///
/// Thread use: `apply`, `operatingStatus` and `stop` from any thread; all
/// check state lives on the checker's thread.
public final class HealthChecker: @unchecked Sendable {
    /// How often the loop looks for due checks and passive failure streaks.
    /// Bounds how late a check starts and how long a passive streak waits.
    public static let tickInterval = 0.05

    struct MemberKey: Hashable { var poolID: String; var memberID: String }

    private let time: any TimeSource
    private let thread: LoopThread
    private let started = Mutex(false)
    /// Members under a monitor, and the selection state their health lives
    /// in (published for `operatingStatus`).
    private let published = Mutex<(monitored: Set<MemberKey>, selection: SelectionState?)>(([], nil))

    // Checker thread only.
    private var targets: [MemberKey: Target] = [:]
    private var selection: SelectionState?
    private var tick: LoopTimer?

    final class Target {
        let spec: HealthTargetSpec
        let runtime: MemberRuntime
        var tracker: HealthTracker
        var schedule: ProbeSchedule
        var probe: HealthProbe?
        init(spec: HealthTargetSpec, runtime: MemberRuntime, now: Double) {
            self.spec = spec; self.runtime = runtime
            tracker = HealthTracker(rise: spec.monitor.maxRetries, fall: spec.monitor.maxRetriesDown, isUp: runtime.isUp)
            schedule = ProbeSchedule(delay: Double(spec.monitor.delay), timeout: Double(spec.monitor.timeout), firstAt: now)
        }
    }

    public init(time: any TimeSource = SystemTime()) {
        self.time = time
        do throws(SystemError) { thread = try LoopThread(name: "health") } catch { preconditionFailure("health checker: \(error)") }
    }

    /// Members checked, for logs and tests.
    public var monitoredCount: Int { published.withLock { $0.monitored.count } }

    /// ELB `operating_status`: NO_MONITOR unless the member's pool has an
    /// enabled monitor; then ONLINE or OFFLINE from the checks.
    public func operatingStatus(poolID: String, memberID: String) -> OperatingStatus {
        let (monitored, selection) = published.withLock { ($0.monitored.contains(MemberKey(poolID: poolID, memberID: memberID)), $0.selection) }
        guard monitored, let selection else { return .noMonitor }
        return selection.isMemberUp(poolID: poolID, memberID: memberID) ? .online : .offline
    }

    /// A snapshot was committed: check what it monitors from now on. Kept
    /// members keep their counts; members no longer monitored are marked up
    /// (no monitor means nothing may hold them down).
    public func apply(_ snapshot: RuntimeSnapshot) {
        let specs = HealthTargets.of(snapshot)
        let selection = snapshot.selection
        let previouslyMonitored = published.withLock { p -> Set<MemberKey> in
            let before = p.monitored
            p.monitored = Set(specs.map { MemberKey(poolID: $0.poolID, memberID: $0.memberID) })
            p.selection = selection
            return before
        }
        let nowUnmonitored = previouslyMonitored.subtracting(specs.map { MemberKey(poolID: $0.poolID, memberID: $0.memberID) })
        for k in nowUnmonitored {
            selection.member(poolID: k.poolID, memberID: k.memberID).setPassiveLimit(0)
            selection.setMemberUp(poolID: k.poolID, memberID: k.memberID, up: true)
        }
        // Passive checks act on the worker that sees the failure, before the
        // checker's next tick (MemberRuntime.connectFailed).
        for s in specs { selection.member(poolID: s.poolID, memberID: s.memberID).setPassiveLimit(s.monitor.maxRetriesDown) }
        if specs.isEmpty && !started.withLock({ $0 }) { return }
        let first = started.withLock { s -> Bool in defer { s = true }; return !s }
        if first { thread.start() }
        let checker = UnsafeSendable(self)
        thread.post {
            if first { checker.value.startTicking() }
            checker.value.reconfigure(specs, selection: selection)
        }
    }

    /// Stops every check and the thread.
    public func stop() {
        guard started.withLock({ $0 }) else { return }
        let checker = UnsafeSendable(self)
        thread.post {
            let c = checker.value
            for t in c.targets.values { t.probe?.cancel(); t.probe = nil }
            c.targets.removeAll()
            c.tick?.cancel()
            c.tick = nil
        }
        thread.stopAndJoin()
        started.withLock { $0 = false }
    }

    // MARK: checker thread

    private func startTicking() {
        tick = thread.every(HealthChecker.tickInterval) { [unowned self] in self.onTick() }
    }

    private func reconfigure(_ specs: [HealthTargetSpec], selection: SelectionState) {
        self.selection = selection
        let now = time.now()
        var next: [MemberKey: Target] = [:]
        for spec in specs {
            let key = MemberKey(poolID: spec.poolID, memberID: spec.memberID)
            if let t = targets[key], t.spec == spec {
                next[key] = t
                continue
            }
            targets[key]?.probe?.cancel()
            next[key] = Target(spec: spec, runtime: selection.member(poolID: spec.poolID, memberID: spec.memberID), now: now)
        }
        for (key, t) in targets where next[key] == nil { t.probe?.cancel() }
        if targets.count != next.count || Set(targets.keys) != Set(next.keys) {
            Log.info("health_checks_configured", ["members": next.count])
        }
        targets = next
        onTick()
    }

    private func onTick() {
        let now = time.now()
        for t in targets.values {
            // Passive: a worker marked the member down after `fall`
            // consecutive connect failures; the checker takes over from here
            // (only active checks bring it back).
            if t.tracker.isUp && !t.runtime.isUp, t.tracker.observePassive(streak: t.tracker.fall) != nil {
                t.runtime.resetFailureStreak()
                logTransition(t, up: false, reason: "\(t.tracker.fall) consecutive connect failures", check: "passive")
            }
            if t.schedule.isDue(now) { startProbe(t, now: now) }
        }
    }

    private func startProbe(_ t: Target, now: Double) {
        let deadline = t.schedule.begin(now)
        let spec = t.spec
        let probe = HealthProbe(kind: spec.monitor.type, base: thread.eventBase, time: time, deadline: deadline,
                                host: spec.address.isV4 ? "\(spec.address)" : "[\(spec.address)]",
                                urlPath: spec.monitor.urlPath, expectedCodes: spec.monitor.expectedCodes)
        t.probe = probe
        probe.start(SocketAddress(spec.address, port: spec.port)) { [unowned self, unowned t] passed, reason in
            self.probeFinished(t, passed: passed, reason: reason)
        }
    }

    private func probeFinished(_ t: Target, passed: Bool, reason: String) {
        t.probe = nil
        t.schedule.end(time.now())
        if passed { t.runtime.resetFailureStreak() }
        Log.debug("health_check", ["pool": t.spec.poolID, "member": t.spec.memberID, "type": t.spec.monitor.type.rawValue,
                                   "passed": passed, "reason": reason])
        switch t.tracker.record(passed: passed) {
        case .wentUp?: mark(t, up: true, reason: reason, check: t.spec.monitor.type.rawValue)
        case .wentDown?: mark(t, up: false, reason: reason, check: t.spec.monitor.type.rawValue)
        case nil: break
        }
    }

    private func mark(_ t: Target, up: Bool, reason: String, check: String) {
        selection?.setMemberUp(poolID: t.spec.poolID, memberID: t.spec.memberID, up: up)
        logTransition(t, up: up, reason: reason, check: check)
    }

    private func logTransition(_ t: Target, up: Bool, reason: String, check: String) {
        let fields: KeyValuePairs<String, Any> = [
            "pool": t.spec.poolID, "member": t.spec.memberID, "address": "\(SocketAddress(t.spec.address, port: t.spec.port))",
            "operating_status": up ? "ONLINE" : "OFFLINE", "check": check, "reason": reason]
        if up { Log.info("member_online", fields) } else { Log.warn("member_offline", fields) }
    }
}
