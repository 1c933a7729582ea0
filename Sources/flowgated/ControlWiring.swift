// Wires the control plane into the daemon (design §5-§7): the state file
// overlaid on the config file before anything binds, then the evhttp
// control server on its own thread, applying changes through the data
// plane (the `ConfigApplier`).
import FlowgateCore
import FlowgateSystem
import FlowgateControl
import FlowgateDataPlane

/// The config file with every acknowledged API update from the state file
/// laid over it (design §6). nil (after logging why) when the state file is
/// corrupt or the result breaks a rule: starting without it would silently
/// drop acknowledged updates, so the start stops instead.
func overlayStateFile(_ fileConfig: FlowgateConfig) -> FlowgateConfig? {
    let store = StateStore(path: fileConfig.stateFile)
    let state: FlowgateConfig?
    do throws(StateFileError) { state = try store.load() } catch {
        Log.error("state_file_invalid", ["file": error.path, "error": error.message])
        return nil
    }
    guard let state else { return fileConfig }
    let merged = StateFile.overlay(config: fileConfig, state: state)
    // A listener moved to the other protocol by UpdateListener keeps its pool (design §2).
    let issues = ConfigValidator.validate(merged, checkListenerPoolProtocol: false)
    if !issues.isEmpty {
        for issue in issues { Log.error("state_file_invalid", ["file": store.path, "error": issue.description]) }
        Log.error("start_refused", ["reason": "the state file fails validation; fix it or run flowgatectl state reset (or delete \(store.path))"])
        return nil
    }
    Log.info("state_file_loaded", ["file": store.path, "listeners": merged.allListeners.count, "pools": merged.pools.count])
    return merged
}

/// Starts the control server (design §7). nil (after logging why) when it
/// cannot bind or its TCP endpoint is not allowed: the daemon does not start.
/// The returned service serialises every change (API and SIGHUP) and holds
/// the metrics registry (`service.metrics.register(...)` adds a collector).
func startControlPlane(loop: MainLoop, dataPlane: DataPlane, config: FlowgateConfig, fileConfig: FlowgateConfig) -> ControlService? {
    let control = config.control
    var tcpIsLoopback = true
    if let listen = control.listen {
        guard let (host, _) = ControlServer.splitHostPort(listen), let address = IPAddress(host) else {
            Log.error("control_refused", ["listen": listen, "reason": "control.listen must be an IP literal and port, e.g. 127.0.0.1:9900"])
            return nil
        }
        tcpIsLoopback = address.isLoopback
        if !tcpIsLoopback && control.awsCredentials.isEmpty && control.huaweiCredentials.isEmpty {
            Log.error("control_refused", ["listen": listen, "reason": "a non-loopback control address needs control.credentials"])
            return nil
        }
        if !tcpIsLoopback && control.allowUnsigned {
            Log.warn("allow_unsigned_ignored", ["listen": listen, "reason": "allow_unsigned is honoured only on loopback"])
        }
    }
    let service = ControlService(applier: AnyApplier(dataPlane), store: StateStore(path: config.stateFile), baseConfig: fileConfig)
    service.refusingChanges = { [dataPlane] in
        switch dataPlane.lifecycle {
        case .running, .reloading: return nil
        case let other: return "flowgated is \(other.rawValue)"
        }
    }
    // Health and metrics (issue 6): ELB operating_status from the health
    // checker; per-listener/pool/member/worker families (Metrics/).
    service.memberStatus = { [dataPlane] pool, member in dataPlane.operatingStatus(poolID: pool, memberID: member) }
    service.metrics.register("dataplane-flows") { [dataPlane] in dataPlane.renderMetrics() }
    let router = ControlRouter(service: service, control: control, tcpIsLoopback: tcpIsLoopback)
    do throws(ControlServerError) {
        let server = try ControlServer(router: router)
        server.start()
        Log.info("control_listening", ["unix_socket": control.unixSocket ?? "none", "listen": control.listen ?? "none",
                                       "tcp_port": server.tcpPort.map(String.init) ?? "none"])
    } catch {
        Log.error("control_failed", ["error": error.message])
        return nil
    }
    return service
}

/// SIGHUP through the control service, so it never interleaves with an API
/// update and re-applies the state file's acknowledged updates over the new file.
func reloadThroughControl(_ service: ControlService, fileConfig: FlowgateConfig) {
    do throws(UpdateFailure) {
        let applied = try service.reload(fileConfig: fileConfig)
        Log.info("reload_applied", ["listeners": applied.allListeners.count, "pools": applied.pools.count])
    } catch {
        switch error {
        case let .invalid(issues):
            for issue in issues { Log.error("reload_rejected", ["error": issue.description]) }
        case let .apply(e): Log.error("reload_failed", ["error": e.message])
        case let .persist(e): Log.error("reload_failed", ["error": e.description])
        case let .unavailable(reason): Log.warn("reload_ignored", ["reason": reason])
        }
    }
}
