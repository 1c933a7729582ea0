// Services started in order, drained and stopped in reverse (the model is
// swift-service-lifecycle's ServiceGroup). The daemon is one such group:
// state lock, data plane, health checker, control service, control server
// (Sources/flowgated/Daemon.swift).

/// An ordered group of services and its `GroupState`. Driven from one
/// thread; every move is checked against `GroupState.allows`.
public final class ServiceGroup {
    public let services: [any Service]
    public private(set) var state: GroupState = .idle
    /// Called after every move (old state, new state), e.g. to log it.
    public var onTransition: (GroupState, GroupState) -> Void = { _, _ in }

    public init(_ services: [any Service]) { self.services = services }

    private func move(to next: GroupState) throws(InvalidTransition) {
        guard state.allows(next) else { throw InvalidTransition(from: state.name, to: next.name) }
        enter(next)
    }

    /// Why `start` returned without the group running.
    public enum StartFailure: Error, Equatable {
        case invalid(InvalidTransition)
        case service(ServiceError)
    }

    /// Starts every service in order. When one fails, the ones already
    /// started are stopped in reverse order and the group ends `failed`.
    public func start() throws(StartFailure) {
        do throws(InvalidTransition) { try move(to: .starting(started: 0)) } catch { throw .invalid(error) }
        for (i, service) in services.enumerated() {
            do throws(ServiceError) {
                try service.start()
            } catch {
                for started in services[..<i].reversed() { started.stop() }
                enter(.failed(error))
                throw .service(error)
            }
            enter(.starting(started: i + 1))
        }
        enter(.running)
    }

    /// A move `start` makes once its first move was allowed: each one is
    /// in `GroupState.allows` by construction (the unit tests check it).
    private func enter(_ next: GroupState) {
        let old = state
        state = next
        onTransition(old, next)
    }

    /// Every service stops taking new work, last started first; in-flight
    /// work may go on until `deadline` (monotonic microseconds).
    public func beginDrain(deadline: UInt64) throws(InvalidTransition) {
        try move(to: .draining(deadline: deadline))
        for service in services.reversed() { service.beginDrain() }
    }

    /// How a drain is going at `now` (monotonic microseconds).
    public enum DrainProgress: Equatable { case inProgress, drained, timedOut }

    public func drainProgress(now: UInt64) -> DrainProgress {
        guard case let .draining(deadline) = state else { return .inProgress }
        if services.allSatisfy(\.isDrained) { return .drained }
        return now >= deadline ? .timedOut : .inProgress
    }

    /// Stops every service, last started first; from running (no drain) or
    /// draining (drained, timed out or cut short).
    public func stop(exitCode: Int32 = 0) throws(InvalidTransition) {
        guard state.allows(.stopped(exitCode: exitCode)) else {
            throw InvalidTransition(from: state.name, to: "stopped")
        }
        for service in services.reversed() { service.stop() }
        try move(to: .stopped(exitCode: exitCode))
    }
}
