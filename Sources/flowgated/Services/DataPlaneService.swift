// The data plane and its health checker as services of the daemon's group.
import FlowgateCore
import FlowgateSystem
import FlowgateDataPlane

/// Worker threads up with nothing bound: the control service's start (a
/// reload from nothing, ControlStateService) brings the config live through
/// the same path as SIGHUP. Draining stops accepting; the drain is over when
/// no TCP connection or UDP session is left.
final class DataPlaneService: Service {
    let name = "data-plane"
    let plane: DataPlane
    let projectID: String

    init(_ plane: DataPlane, projectID: String) { self.plane = plane; self.projectID = projectID }

    func start() throws(ServiceError) {
        do throws(ApplyError) { try plane.start(FlowgateConfig(projectID: projectID)) } catch {
            Log.error("start_failed", ["error": error.message])
            throw ServiceError(service: name, error.message)
        }
    }

    /// Set when a takeover's new process said go, to its worker count: it
    /// serves the same listening sockets, so this drain hands them over
    /// instead of closing them (Takeover/TakeoverServer.swift).
    var handOverTo: Int?

    func beginDrain() {
        plane.setLifecycle(.draining)
        if let n = handOverTo { plane.handOver(nextWorkers: n) } else { plane.stopAccepting() }
    }

    var isDrained: Bool { plane.drainingFlows == 0 }

    func stop() { plane.shutdown() }
}

/// The health checker ticks once a snapshot with monitors is applied
/// (DataPlane.commit); stopping it joins its thread before the workers go.
final class HealthCheckerService: Service {
    let name = "health-checker"
    let checker: HealthChecker

    init(_ checker: HealthChecker) { self.checker = checker }

    func start() throws(ServiceError) {}

    func stop() { checker.stop() }
}
