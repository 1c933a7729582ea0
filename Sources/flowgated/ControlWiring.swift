// Wires the control plane into the daemon (docs/architecture.md §7, §8 and §12) as two services of
// its group: the control service, whose start is a reload from nothing
// (the config file with the state file laid over it, the same path as
// SIGHUP), then the control server on its own thread, applying changes
// through the data plane (the `ConfigApplier`).
import FlowgateCore
import FlowgateSystem
import FlowgateControl
import FlowgateDataPlane

/// The control service of a daemon: serialises every change (API, SIGHUP and
/// the start) and holds the metrics registry (`metrics.register(...)` adds a collector).
func makeControlService(dataPlane: DataPlane, fileConfig: FlowgateConfig) -> ControlService {
    // No base config yet: the start (ControlStateService) sets it, as every reload does.
    let service = ControlService(applier: AnyApplier(dataPlane), store: StateStore(path: fileConfig.stateFile))
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
    return service
}

/// The control service's start: the config file with every acknowledged API
/// update from the state file laid over it (docs/architecture.md §8), applied through
/// `ControlService.reload` like a SIGHUP. A corrupt state file, or a result
/// that breaks a rule, stops the start: starting without it would silently
/// drop acknowledged updates.
final class ControlStateService: Service {
    let name = "control-service"
    let service: ControlService
    let fileConfig: FlowgateConfig

    init(_ service: ControlService, fileConfig: FlowgateConfig) { self.service = service; self.fileConfig = fileConfig }

    func start() throws(ServiceError) {
        // Temporaries of writers that died mid-write (kill -9) go before the state file is read.
        for file in service.store?.removeStaleTemporaries() ?? [] { Log.info("state_temp_removed", ["file": file]) }
        let applied: FlowgateConfig
        do throws(UpdateFailure) { applied = try service.reload(fileConfig: fileConfig) } catch {
            let path = service.store?.path ?? fileConfig.stateFile
            switch error {
            case let .persist(e):
                Log.error("state_file_invalid", ["file": e.path, "error": e.message])
                throw ServiceError(service: name, e.description)
            case let .invalid(issues):
                for issue in issues { Log.error("state_file_invalid", ["file": path, "error": issue.description]) }
                Log.error("start_refused", ["reason": "the state file fails validation; fix it or run flowgatectl state reset (or delete \(path))"])
                throw ServiceError(service: name, "the state file \(path) fails validation")
            case let .apply(e):
                Log.error("start_failed", ["error": e.message])
                throw ServiceError(service: name, e.message)
            case let .unavailable(reason):
                Log.error("start_failed", ["error": reason])
                throw ServiceError(service: name, reason)
            }
        }
        Log.info("config_live", ["listeners": applied.allListeners.count, "pools": applied.pools.count,
                                 "state_file": service.store?.path ?? "none"])
    }

    func stop() {}
}

/// The control server (docs/architecture.md §12): refuses to start (and so the daemon) when
/// it cannot bind or its TCP endpoint is not allowed. Stopping it joins its
/// thread and removes the socket file.
final class ControlServerService: Service {
    let name = "control-server"
    let service: ControlService
    let control: ControlConfig
    private var server: ControlServer?

    init(_ service: ControlService, control: ControlConfig) { self.service = service; self.control = control }

    func start() throws(ServiceError) {
        var tcpIsLoopback = true
        if let listen = control.listen {
            guard let (host, _) = ControlServer.splitHostPort(listen), let address = IPAddress(host) else {
                Log.error("control_refused", ["listen": listen, "reason": "control.listen must be an IP literal and port, e.g. 127.0.0.1:9900"])
                throw ServiceError(service: name, "control.listen \(listen) is not an IP literal and port")
            }
            tcpIsLoopback = address.isLoopback
            if !tcpIsLoopback && control.awsCredentials.isEmpty && control.huaweiCredentials.isEmpty {
                Log.error("control_refused", ["listen": listen, "reason": "a non-loopback control address needs control.credentials"])
                throw ServiceError(service: name, "a non-loopback control address needs control.credentials")
            }
            if !tcpIsLoopback && control.allowUnsigned {
                Log.warn("allow_unsigned_ignored", ["listen": listen, "reason": "allow_unsigned is honoured only on loopback"])
            }
        }
        let router = ControlRouter(service: service, control: control, tcpIsLoopback: tcpIsLoopback)
        let server: ControlServer
        do throws(ControlServerError) { server = try ControlServer(router: router) } catch {
            Log.error("control_failed", ["error": error.message])
            throw ServiceError(service: name, error.message)
        }
        server.start()
        self.server = server
        Log.info("control_listening", ["unix_socket": control.unixSocket ?? "none", "listen": control.listen ?? "none",
                                       "tcp_port": server.tcpPort.map(String.init) ?? "none"])
    }

    func stop() {
        server?.stop()
        server = nil
        Log.info("control_stopped", ["unix_socket": control.unixSocket ?? "none"])
    }
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
