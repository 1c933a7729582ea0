// The contract every long-lived part of the daemon keeps (the state lock,
// the data plane, the health checker, the control service and its server),
// so one `ServiceGroup` can start them in order, drain them gracefully and
// stop them in reverse, as swift-service-lifecycle's ServiceGroup does.

/// One part of the daemon with a start, a graceful drain and a stop.
/// Driven from one thread (the daemon's main loop); not thread-safe.
public protocol Service: AnyObject {
    /// For logs and errors, e.g. "data-plane".
    var name: String { get }
    /// Brings the service up. On failure it leaves nothing running and
    /// throws; the group then stops the services started before it.
    func start() throws(ServiceError)
    /// Stops taking new work; work in flight goes on. Returns at once.
    func beginDrain()
    /// Nothing of this service is in flight any more.
    var isDrained: Bool { get }
    /// Ends the service. Called exactly once, only after `start` returned.
    func stop()
}

extension Service {
    public func beginDrain() {}
    public var isDrained: Bool { true }
}

/// Why a service did not start; the message says what to fix.
public struct ServiceError: Error, Sendable, Equatable, CustomStringConvertible {
    public var service: String
    public var message: String
    public init(service: String, _ message: String) { self.service = service; self.message = message }
    public var description: String { "\(service): \(message)" }
}
