#if canImport(Glibc)
import Glibc
#endif
import CLibevent

/// The daemon's own event loop on the main thread: signals, the drain timer,
/// and (design §7) the control server, which attaches its evhttp to `base`.
/// Never carries data-plane traffic.
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

    /// Owns one libevent event and the closure it runs.
    public final class Handle {
        fileprivate var event: OpaquePointer?
        fileprivate let body: () -> Void
        fileprivate init(_ body: @escaping () -> Void) { self.body = body }
        deinit { if let e = event { event_free(e) } }
    }

    /// The libevent base, for the control server's evhttp.
    public let base: OpaquePointer
    private var handles: [ObjectIdentifier: Handle] = [:]

    public init() {
        EventThreads.enable()
        guard let b = event_base_new() else { preconditionFailure("event_base_new failed") }
        base = b
    }

    deinit {
        handles.removeAll()
        event_base_free(base)
    }

    private static let fire: event_callback_fn = { _, _, ctx in
        Unmanaged<Handle>.fromOpaque(ctx!).takeUnretainedValue().body()
    }

    /// Runs `body` on this loop each time the signal arrives (libevent turns
    /// the signal into a loop event, so `body` may do anything).
    @discardableResult
    public func onSignal(_ signal: Signal, _ body: @escaping () -> Void) -> Handle {
        let h = Handle(body)
        h.event = event_new(base, signal.number, Int16(EV_SIGNAL | EV_PERSIST), MainLoop.fire, Unmanaged.passUnretained(h).toOpaque())
        event_add(h.event, nil)
        handles[ObjectIdentifier(h)] = h
        return h
    }

    /// Runs `body` every `seconds` until cancelled.
    @discardableResult
    public func every(_ seconds: Double, _ body: @escaping () -> Void) -> Handle {
        let h = Handle(body)
        h.event = event_new(base, -1, Int16(EV_PERSIST), MainLoop.fire, Unmanaged.passUnretained(h).toOpaque())
        var tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1e6))
        event_add(h.event, &tv)
        handles[ObjectIdentifier(h)] = h
        return h
    }

    public func cancel(_ h: Handle) {
        if let e = h.event { event_del(e) }
        handles.removeValue(forKey: ObjectIdentifier(h))
    }

    /// Runs until `stop`.
    public func run() { event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY) }

    public func stop() { event_base_loopbreak(base) }
}
