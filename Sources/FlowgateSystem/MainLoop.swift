#if canImport(Glibc)
import Glibc
#endif
import CLibevent

/// The daemon's own event loop on the main thread: signals and the drain
/// timer. Never carries data-plane traffic.
public final class MainLoop: @unchecked Sendable {
    public enum Signal: Sendable {
        case terminate, interrupt, hangup
        var number: Int32 {
            switch self {
            case .terminate: return SIGTERM
            case .interrupt: return SIGINT
            case .hangup: return SIGHUP
            }
        }
    }

    /// What `every` returns.
    public typealias Handle = LoopTimer

    public let eventBase: EventBase

    public init() {
        do throws(SystemError) { eventBase = try EventBase() } catch { preconditionFailure("main loop: \(error)") }
    }

    deinit { eventBase.free() }

    /// Runs `body` on this loop each time the signal arrives (libevent turns
    /// the signal into a loop event, so `body` may do anything).
    @discardableResult
    public func onSignal(_ signal: Signal, _ body: @escaping () -> Void) -> SignalWatch {
        eventBase.onSignal(signal.number, body)
    }

    /// Runs `body` every `seconds` until cancelled.
    @discardableResult
    public func every(_ seconds: Double, _ body: @escaping () -> Void) -> LoopTimer { eventBase.every(seconds, body) }

    /// Runs `body` once, `seconds` from now, unless cancelled.
    @discardableResult
    public func after(_ seconds: Double, _ body: @escaping () -> Void) -> LoopTimer { eventBase.after(seconds, body) }

    public func cancel(_ h: LoopTimer) { h.cancel() }

    /// Runs until `stop`.
    public func run() { event_base_loop(eventBase.raw, EVLOOP_NO_EXIT_ON_EMPTY) }

    public func stop() { event_base_loopbreak(eventBase.raw) }
}
