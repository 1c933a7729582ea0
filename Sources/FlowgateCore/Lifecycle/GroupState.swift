// Where a `ServiceGroup` is in its life, with what each phase needs, and the
// only moves between phases. A move the table does not list is refused with
// an error naming both ends, never applied.

/// The phases of a service group; the payloads replace loose optionals
/// (a drain deadline, an exit code) that were meaningful only in one phase.
public enum GroupState: Sendable, Equatable, CustomStringConvertible {
    /// Nothing started yet.
    case idle
    /// Starting in order; `started` services are up.
    case starting(started: Int)
    /// Every service is up.
    case running
    /// Taking no new work; in-flight work may run until `deadline`
    /// (monotonic microseconds), then the group stops anyway.
    case draining(deadline: UInt64)
    /// Every started service was stopped, in reverse order.
    case stopped(exitCode: Int32)
    /// A service failed to start; those started before it were stopped.
    case failed(ServiceError)

    public var description: String {
        switch self {
        case .idle: return "idle"
        case let .starting(n): return "starting (\(n) up)"
        case .running: return "running"
        case let .draining(deadline): return "draining (deadline \(deadline) us)"
        case let .stopped(code): return "stopped (exit code \(code))"
        case let .failed(e): return "failed (\(e))"
        }
    }

    /// The phase's name alone, for refusals and logs.
    public var name: String {
        switch self {
        case .idle: return "idle"
        case .starting: return "starting"
        case .running: return "running"
        case .draining: return "draining"
        case .stopped: return "stopped"
        case .failed: return "failed"
        }
    }

    /// Whether the group may move from `self` to `next`: idle → starting →
    /// (starting with one more up)* → running or failed; running → draining;
    /// running or draining → stopped. Stopped and failed are final.
    public func allows(_ next: GroupState) -> Bool {
        switch (self, next) {
        case (.idle, .starting(started: 0)): return true
        case let (.starting(n), .starting(m)): return m == n + 1
        case (.starting, .running), (.starting, .failed): return true
        case (.running, .draining): return true
        case (.running, .stopped), (.draining, .stopped): return true
        default: return false
        }
    }
}

/// A move the lifecycle does not allow, e.g. draining a group that never ran.
public struct InvalidTransition: Error, Sendable, Equatable, CustomStringConvertible {
    public var from: String
    public var to: String
    public init(from: String, to: String) { self.from = from; self.to = to }
    public var description: String { "cannot go from \(from) to \(to)" }
}
