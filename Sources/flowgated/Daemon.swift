import FlowgateCore
import FlowgateSystem
import FlowgateControl
import FlowgateDataPlane

/// The running daemon: lock, data plane, signals and systemd notifications
/// (design §8). Lives on the main thread; the data plane runs on its workers.
final class Daemon {
    let configPath: String
    let notify = SystemdNotify()
    let loop = MainLoop()
    private var dataPlane: DataPlane?
    /// The control plane (design §7): serialises API updates and reloads; its
    /// `metrics` registry serves GET /metrics.
    private var control: ControlService?
    private var lockFD: Int32 = -1
    private var drainTimer: MainLoop.Handle?
    private var drainDeadline: UInt64 = 0
    private var exitCode: Int32 = 0

    init(configPath: String) { self.configPath = configPath }

    /// Runs until stopped; returns the process exit code.
    func run(_ fileConfig: FlowgateConfig) -> Int32 {
        System.ignoreSIGPIPE()
        let limit = System.raiseDescriptorLimit()
        guard takeStateLock(fileConfig) else { return 1 }
        guard let config = overlayStateFile(fileConfig) else { return 1 }

        let plane = DataPlane(workerCount: config.workers, tuning: config.tuning)
        dataPlane = plane
        Log.info("starting", ["config": configPath, "pid": System.processID(), "workers": plane.workers.count,
                              "open_files_limit": limit])
        notify.status("binding listeners")
        do {
            try plane.start(config)
        } catch {
            Log.error("start_failed", ["error": error.message])
            notify.status("start failed: \(error.message)")
            return 1
        }

        // Design §7: the control server (evhttp on `loop.base`, Unix socket
        // and optional TCP) is wired here by the control work; it applies
        // changes through `plane` (a ConfigApplier) and, on start, merges
        // the state file over `config` before serving.
        guard let control = startControlPlane(loop: loop, dataPlane: plane, config: config, fileConfig: fileConfig) else {
            plane.shutdown()
            return 1
        }
        self.control = control

        loop.onSignal(.terminate) { [unowned self] in self.shutdownRequested("SIGTERM") }
        loop.onSignal(.interrupt) { [unowned self] in self.shutdownRequested("SIGINT") }
        loop.onSignal(.hangup) { [unowned self] in self.reload() }

        Log.info("ready", ["listeners": config.allListeners.count, "ports": plane.boundPortCount, "workers": plane.workers.count])
        notify.ready(statusLine(plane))
        loop.run()
        return exitCode
    }

    private func statusLine(_ plane: DataPlane) -> String {
        "running: \(plane.boundPortCount) ports on \(plane.workers.count) workers, \(plane.activeFlows) flows"
    }

    /// One daemon per state directory: SO_REUSEPORT would otherwise let a
    /// second one share every port silently.
    private func takeStateLock(_ config: FlowgateConfig) -> Bool {
        let dir = directory(of: config.stateFile)
        let path = dir + "/flowgated.lock"
        do {
            try System.makeDirectories(dir)
            lockFD = try System.lockFile(path)
            return true
        } catch {
            if error.isWouldBlock { // flock LOCK_NB: someone holds it
                Log.error("already_running", ["lock": path, "reason": "another flowgated uses this state directory"])
            } else {
                Log.error("state_lock_failed", ["lock": path, "error": error.description])
            }
            return false
        }
    }

    private func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let d = String(path[..<slash])
        return d.isEmpty ? "/" : d
    }

    // MARK: SIGTERM / SIGINT

    private func shutdownRequested(_ signal: String) {
        guard let plane = dataPlane else { loop.stop(); return }
        if plane.lifecycle == .draining {
            Log.warn("drain_cut", ["signal": signal, "active_flows": plane.drainingFlows])
            finish()
            return
        }
        let timeout = plane.current.tuning.drainTimeout
        plane.setLifecycle(.draining)
        notify.stopping("draining \(plane.drainingFlows) flows (up to \(timeout) s)")
        plane.stopAccepting()
        Log.info("draining", ["signal": signal, "active_flows": plane.activeFlows, "udp_sessions": plane.udpTotals.sessions,
                              "timeout_s": timeout])
        drainDeadline = System.monotonicMicroseconds() + UInt64(max(0, timeout)) * 1_000_000
        checkDrain()
        if dataPlane != nil { drainTimer = loop.every(0.05) { [unowned self] in self.checkDrain() } }
    }

    private func checkDrain() {
        guard let plane = dataPlane else { return }
        if plane.drainingFlows == 0 {
            Log.info("drained")
            finish()
        } else if System.monotonicMicroseconds() >= drainDeadline {
            Log.warn("drain_timeout", ["active_flows": plane.activeFlows, "udp_sessions": plane.udpTotals.sessions])
            finish()
        }
    }

    private func finish() {
        if let t = drainTimer { loop.cancel(t); drainTimer = nil }
        dataPlane?.shutdown()
        dataPlane = nil
        if lockFD >= 0 { System.close(lockFD); lockFD = -1 }
        exitCode = 0
        loop.stop()
    }

    // MARK: SIGHUP

    /// Re-read and validate the file; an invalid file is reported and the
    /// running state kept; a valid one goes live like an API update.
    private func reload() {
        guard let plane = dataPlane, plane.lifecycle == .running else {
            Log.warn("reload_ignored", ["state": dataPlane?.lifecycle.rawValue ?? "stopped"])
            return
        }
        plane.setLifecycle(.reloading)
        notify.reloading()
        defer {
            if plane.lifecycle == .reloading { plane.setLifecycle(.running) }
            notify.ready(statusLine(plane))
        }
        let new: FlowgateConfig
        switch ConfigSource.load(configPath) {
        case .failure(let problems):
            Log.error("reload_rejected", ["file": configPath, "errors": problems.lines.count])
            for line in problems.lines { Log.error("config_error", ["message": line]) }
            return
        case .success(let c): new = c
        }
        let old = plane.current
        if new.workers != old.workers || new.tuning != old.tuning {
            Log.warn("restart_required", ["reason": "workers and tuning apply at start only"])
        }
        if let control {
            reloadThroughControl(control, fileConfig: new)
            return
        }
        do {
            let prepared = try plane.prepare(new)
            plane.commit(prepared)
            Log.info("reload_applied", ["generation": prepared.index.snapshot.generation, "ports": plane.boundPortCount])
        } catch {
            Log.error("reload_failed", ["error": error.message])
        }
    }
}
