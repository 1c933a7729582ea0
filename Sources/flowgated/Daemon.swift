import FlowgateCore
import FlowgateSystem
import FlowgateControl
import FlowgateDataPlane
import FlowgateCluster

/// The running daemon (docs/architecture.md §11): one `ServiceGroup` (state lock, data
/// plane, health checker, control service, control server) started in that
/// order and stopped in reverse, driven by signals on the main loop and
/// reported to systemd. Where the daemon is lives in the group's state
/// (running, draining with its deadline, stopped with its exit code).
final class Daemon {
    let configPath: String
    let notify = SystemdNotify()
    let loop = MainLoop()

    init(configPath: String) { self.configPath = configPath }

    /// Runs until stopped; returns the process exit code.
    func run(_ fileConfig: FlowgateConfig, takeover: Bool = false) -> Int32 {
        let startedAt = System.monotonicMicroseconds()
        System.ignoreSIGPIPE()
        let limit = System.raiseDescriptorLimit()
        let plane = DataPlane(workerCount: fileConfig.workers, tuning: fileConfig.tuning)
        let control = makeControlService(dataPlane: plane, fileConfig: fileConfig)
        let clusterStore: ClusterStore?
        do throws(SystemError) { clusterStore = try ClusterService.make(fileConfig.cluster, control: control, plane: plane) } catch {
            Log.error("start_failed", ["error": "cluster client: \(error)"])
            return 1
        }
        let takeoverPath = fileConfig.control.unixSocket.map { TakeoverWire.socketPath(controlSocket: $0) }
        let lock = StateLockService(stateFile: fileConfig.stateFile, deferred: takeover)
        let dataPlaneService = DataPlaneService(plane, projectID: fileConfig.projectID)
        let takeoverServer = TakeoverServerService(path: takeoverPath, loop: loop, plane: plane)
        var takeoverGo: [any Service] = []
        // Started by systemd with a stored hand-over (FdStoreStart.swift).
        if !takeover, let stored = FdStoreStart.receive() {
            plane.adopt(stored.listeners)
            if let state = stored.state { plane.seed(state) }
            plane.holdUDPListeners()
            Log.info("fdstore_received", ["ports": stored.listeners.count, "connections": stored.connections.count,
                                          "udp_sessions": stored.sessions.count, "descriptors": stored.names.count])
            takeoverGo = [FdStoreAdoptService(stored: stored, plane: plane)]
        }
        if takeover {
            // Sockets first: the config was validated before this, and
            // nothing is bound yet, so a port handed over is never bound twice.
            guard let path = takeoverPath else {
                Log.error("takeover_failed", ["error": "--takeover needs control.unix_socket (the takeover socket is beside it)"])
                return 1
            }
            let client = TakeoverClient(path: path)
            do throws(TakeoverFailure) {
                let handed = try client.receiveListeners()
                plane.adopt(handed)
                if let state = client.state { plane.seed(state) }
                // The old process reads the UDP sockets until it let go of its sessions.
                plane.holdUDPListeners()
                Log.info("takeover_received", ["socket": path, "ports": handed.count,
                                               "sockets": handed.reduce(0) { $0 + $1.fds.count }])
            } catch {
                Log.error("takeover_failed", ["error": error.message])
                return 1
            }
            takeoverGo = [TakeoverGoService(client: client, plane: plane, lock: lock, startedAt: startedAt)]
        }
        let refusing = control.refusingChanges
        let handshake = takeoverServer.busy
        control.refusingChanges = {
            if handshake.isSet { return "flowgated is handing over to a new process" }
            return refusing()
        }
        let group = ServiceGroup([
            lock,
            dataPlaneService,
            HealthCheckerService(plane.health),
            ControlStateService(control, fileConfig: fileConfig),
        ] + (clusterStore.map { [ClusterService($0, control: control)] } ?? []) + takeoverGo + [
            ControlServerService(control, control: fileConfig.control),
            takeoverServer,
        ])
        takeoverServer.onGo = { [unowned self, unowned group] nextWorkers in
            dataPlaneService.handOverTo = nextWorkers
            lock.release()
            // A SIGTERM between go and commit already started the drain: a
            // second request would cut it (what stayed here drains on).
            if case .running = group.state { self.shutdownRequested("takeover", group, plane) }
        }
        group.onTransition = { old, new in Log.debug("daemon_state", ["from": old.description, "to": new.description]) }

        Log.info("starting", ["config": configPath, "pid": System.processID(), "workers": plane.workers.count,
                              "open_files_limit": limit])
        notify.status("binding listeners")
        do throws(ServiceGroup.StartFailure) { try group.start() } catch {
            switch error {
            case let .service(e): notify.status("start failed: \(e.message)")
            case let .invalid(e): Log.error("start_failed", ["error": e.description])
            }
            return 1
        }

        loop.onSignal(.terminate) { [unowned self, unowned group] in
            // Under systemd with a file-descriptor store: listeners, flows and
            // state go to the store for the next start (FdStore.swift).
            if FdStore.enabled, case .running = group.state, plane.lifecycle == .running,
               FdStore.storeAll(plane) != nil {
                dataPlaneService.handOverTo = plane.workers.count
            }
            self.shutdownRequested("SIGTERM", group, plane)
        }
        loop.onSignal(.interrupt) { [unowned self] in self.shutdownRequested("SIGINT", group, plane) }
        loop.onSignal(.hangup) { [unowned self] in self.reload(group, plane, control) }

        let live = plane.current
        Log.info("ready", ["listeners": live.allListeners.count, "ports": plane.boundPortCount, "workers": plane.workers.count])
        notify.ready(statusLine(plane))
        loop.run()
        guard case let .stopped(exitCode) = group.state else { return 1 }
        return exitCode
    }

    private func statusLine(_ plane: DataPlane) -> String {
        "running: \(plane.boundPortCount) ports on \(plane.workers.count) workers, \(plane.activeFlows) flows"
    }

    // MARK: SIGTERM / SIGINT

    /// The first signal starts a drain bounded by `tuning.drain_timeout`; a
    /// second one cuts it short.
    private func shutdownRequested(_ signal: String, _ group: ServiceGroup, _ plane: DataPlane) {
        switch group.state {
        case .running:
            let timeout = plane.current.tuning.drainTimeout
            notify.stopping("draining \(plane.drainingFlows) flows (up to \(timeout) s)")
            let deadline = System.monotonicMicroseconds() + UInt64(max(0, timeout)) * 1_000_000
            do throws(InvalidTransition) { try group.beginDrain(deadline: deadline) } catch {
                Log.warn("signal_ignored", ["signal": signal, "reason": error.description])
                return
            }
            Log.info("draining", ["signal": signal, "active_flows": plane.activeFlows, "udp_sessions": plane.udpTotals.sessions,
                                  "timeout_s": timeout])
            if !checkDrain(group, plane) { loop.every(0.05) { [unowned self] in _ = self.checkDrain(group, plane) } }
        case .draining:
            Log.warn("drain_cut", ["signal": signal, "active_flows": plane.drainingFlows])
            finish(group)
        default:
            Log.warn("signal_ignored", ["signal": signal, "state": group.state.name])
        }
    }

    /// True once the drain is over (and the group stopped).
    private func checkDrain(_ group: ServiceGroup, _ plane: DataPlane) -> Bool {
        switch group.drainProgress(now: System.monotonicMicroseconds()) {
        case .inProgress:
            return false
        case .drained:
            Log.info("drained")
        case .timedOut:
            Log.warn("drain_timeout", ["active_flows": plane.activeFlows, "udp_sessions": plane.udpTotals.sessions])
        }
        finish(group)
        return true
    }

    /// Stops every service in reverse order (the control server first: its
    /// socket file is removed and its thread joined), then leaves the loop.
    private func finish(_ group: ServiceGroup) {
        do throws(InvalidTransition) { try group.stop(exitCode: 0) } catch {
            Log.warn("stop_ignored", ["reason": error.description])
        }
        loop.stop()
    }

    // MARK: SIGHUP

    /// Re-read and validate the file; an invalid file is reported and the
    /// running state kept; a valid one goes live through the control
    /// service, the same path as the start.
    private func reload(_ group: ServiceGroup, _ plane: DataPlane, _ control: ControlService) {
        guard case .running = group.state, plane.setLifecycle(.reloading) else {
            Log.warn("reload_ignored", ["state": plane.lifecycle.rawValue])
            return
        }
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
        if new.cluster != old.cluster {
            Log.warn("restart_required", ["reason": "the cluster section applies at start only (docs/cluster.md)"])
        }
        reloadThroughControl(control, fileConfig: new)
    }
}
