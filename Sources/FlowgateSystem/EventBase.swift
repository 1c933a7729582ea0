#if canImport(Glibc)
import Glibc
#endif
import CLibevent
import Synchronization

// Every libevent event in Flowgate is created here, runs the one callback
// trampoline below and reaches Swift through one box type, `EventHandler`.
// Periodic and one-shot timers, fd watches and signal watches are owned
// handles (`LoopTimer`, `IOWatch`, `SignalWatch`); the data plane's per-flow
// events are `LoopEvent`s its flows free themselves, so a flow allocates
// nothing beyond the libevent event it always had.

/// libevent's pthread locking, switched on once per process before any
/// event_base exists: without it `event_active`/`event_base_loopbreak` from
/// another thread never wake a sleeping loop.
public enum EventThreads {
    private static let done = Mutex(false)
    public static func enable() {
        done.withLock { d in
            if !d { precondition(evthread_use_pthreads() == 0, "evthread_use_pthreads failed"); d = true }
        }
    }
}

/// What to watch a descriptor for. Raw values are libevent's flags.
public struct IOInterest: OptionSet, Sendable {
    public let rawValue: Int16
    public init(rawValue: Int16) { self.rawValue = rawValue }
    public static let read = IOInterest(rawValue: Int16(EV_READ))
    public static let write = IOInterest(rawValue: Int16(EV_WRITE))
    public static let edgeTriggered = IOInterest(rawValue: Int16(EV_ET))
    /// The peer's FIN (EPOLLRDHUP), reported as `IOReadiness.closed`.
    public static let closed = IOInterest(rawValue: Int16(EV_CLOSED))
}

/// Why an event fired. Raw values are libevent's flags.
public struct IOReadiness: OptionSet, Sendable {
    public let rawValue: Int16
    public init(rawValue: Int16) { self.rawValue = rawValue }
    public static let timeout = IOReadiness(rawValue: Int16(EV_TIMEOUT))
    public static let read = IOReadiness(rawValue: Int16(EV_READ))
    public static let write = IOReadiness(rawValue: Int16(EV_WRITE))
    /// The peer sent its FIN (only for events watching `IOInterest.closed`).
    public static let closed = IOReadiness(rawValue: Int16(EV_CLOSED))
}

/// The one object type behind every event's callback argument. The
/// trampoline borrows it (no retain per event); a handler whose callback
/// may drop the last reference to itself keeps itself alive for the call
/// (`withLife`), as TCPConnection and the closure handles do.
open class EventHandler {
    @inlinable public init() {}
    /// Runs on the loop thread of the event's base. Never throws.
    open func handleEvent(fd: Int32, readiness: IOReadiness) {}

    /// Runs `body` with this object retained, for a callback that may
    /// release the last strong reference to it (a close from inside its
    /// own event).
    @inlinable @inline(__always)
    public final func withLife(_ body: () -> Void) {
        let keep = Unmanaged.passRetained(self)
        body()
        keep.release()
    }
}

@usableFromInline
let eventTrampoline: event_callback_fn = { fd, what, arg in
    Unmanaged<EventHandler>.fromOpaque(arg!)._withUnsafeGuaranteedRef {
        $0.handleEvent(fd: fd, readiness: IOReadiness(rawValue: what))
    }
}

@inlinable
func makeTimeval(_ seconds: Double) -> timeval {
    let s = max(0, seconds)
    return timeval(tv_sec: Int(s), tv_usec: Int((s - Double(Int(s))) * 1_000_000))
}

/// A libevent event owned by whoever created it (it must `free` it before
/// the base goes): the data plane's per-flow and per-socket events. A plain
/// pointer wrapper, so `LoopEvent?` costs no more than the pointer did.
public struct LoopEvent {
    @usableFromInline let raw: OpaquePointer

    /// `persist`: stays armed after firing. `handler` is not retained: it
    /// must outlive the event.
    @inlinable
    public init?(_ base: EventBase, fd: Int32, interest: IOInterest, persist: Bool, handler: EventHandler) {
        let flags = interest.rawValue | (persist ? Int16(EV_PERSIST) : 0)
        guard let e = event_new(base.raw, fd, flags, eventTrampoline, Unmanaged.passUnretained(handler).toOpaque()) else { return nil }
        raw = e
    }

    /// A timer (no descriptor).
    @inlinable
    public init?(timerOn base: EventBase, persist: Bool = false, handler: EventHandler) {
        self.init(base, fd: -1, interest: [], persist: persist, handler: handler)
    }

    /// Arms it without a timeout.
    @inlinable @inline(__always)
    public func add() { event_add(raw, nil) }

    /// Arms it with a timeout (for a descriptor event, the longest wait).
    @inlinable @inline(__always)
    public func add(seconds: Int) {
        var tv = timeval(tv_sec: seconds, tv_usec: 0)
        event_add(raw, &tv)
    }

    @inlinable @inline(__always)
    public func add(timeout: Double) {
        var tv = makeTimeval(timeout)
        event_add(raw, &tv)
    }

    /// Disarms it; it can be added again.
    @inlinable @inline(__always)
    public func remove() { event_del(raw) }

    /// Makes a pure user event (fd -1, no flags) run its handler once.
    @inlinable @inline(__always)
    public func activate() { event_active(raw, 0, 0) }

    /// Runs its handler once more with `readiness` on the next loop turn,
    /// without a system call: how an edge-triggered watch resumes reading
    /// a socket it left unread (no new edge would come).
    @inlinable @inline(__always)
    public func activate(_ readiness: IOReadiness) { event_active(raw, Int32(readiness.rawValue), 0) }

    /// Drops the timeout it was added with and keeps its descriptor interest
    /// (no system call; `add()` without a timeout would keep the old one).
    @inlinable @inline(__always)
    public func removeTimeout() { event_remove_timer(raw) }

    /// Frees it (also from inside its own callback).
    @inlinable @inline(__always)
    public func free() { event_free(raw) }
}

/// A handle whose event the base frees when the base itself goes.
protocol RegisteredEvent: AnyObject, Sendable {
    /// Frees the event now (idempotent); called with the registry lock held.
    func freeEvent()
}

/// One libevent event_base and the owned handles created on it. Freed by
/// its loop's owner (LoopThread or MainLoop) after the loop stopped: every
/// handle still registered is freed first, so no event outlives its base.
public final class EventBase: @unchecked Sendable {
    public let raw: OpaquePointer
    private let registry = Mutex<[ObjectIdentifier: RegisteredEvent]>([:])
    private var freed = false

    public init() throws(SystemError) {
        EventThreads.enable()
        guard let b = event_base_new() else { throw SystemError("event_base_new", ENOMEM) }
        raw = b
    }

    deinit { free() }

    /// Frees every registered handle's event, then the base.
    public func free() {
        guard !freed else { return }
        freed = true
        let handles = registry.withLock { r -> [RegisteredEvent] in let h = Array(r.values); r.removeAll(); return h }
        for h in handles { h.freeEvent() }
        event_base_free(raw)
    }

    /// Runs the callbacks of whatever is ready now, without waiting (for a
    /// test that pumps a base from its own thread).
    public func runReady() { event_base_loop(raw, EVLOOP_NONBLOCK) }

    func register(_ h: RegisteredEvent) { registry.withLock { $0[ObjectIdentifier(h)] = h } }
    func deregister(_ h: RegisteredEvent) { _ = registry.withLock { $0.removeValue(forKey: ObjectIdentifier(h)) } }

    /// Runs `body` every `seconds` until the timer is cancelled or the base freed.
    @discardableResult
    public func every(_ seconds: Double, _ body: @escaping () -> Void) -> LoopTimer {
        LoopTimer(self, seconds: seconds, repeating: true, body)
    }

    /// Runs `body` once, `seconds` from now, unless cancelled first.
    @discardableResult
    public func after(_ seconds: Double, _ body: @escaping () -> Void) -> LoopTimer {
        LoopTimer(self, seconds: seconds, repeating: false, body)
    }

    /// Calls `body` whenever `fd` is ready for `events` (persistent) until cancelled.
    public func watch(fd: Int32, events: IOInterest, _ body: @escaping (IOReadiness) -> Void) -> IOWatch {
        IOWatch(self, fd: fd, events: events, body)
    }

    /// Runs `body` on this base's loop each time `signal` arrives.
    @discardableResult
    public func onSignal(_ signal: Int32, _ body: @escaping () -> Void) -> SignalWatch {
        SignalWatch(self, signal: signal, body)
    }
}

/// A periodic or one-shot timer. Registered with its base until cancelled
/// (or, one-shot, until it fired), so a discarded result keeps running; its
/// closure is released then, so a closure that captures its owner strongly
/// keeps it alive until `cancel`. Create it from any thread; cancel it on
/// the loop's thread (or after the loop stopped).
public final class LoopTimer: EventHandler, RegisteredEvent, @unchecked Sendable {
    private let base: EventBase
    private var event: LoopEvent?
    private let body: () -> Void
    private let repeating: Bool

    init(_ base: EventBase, seconds: Double, repeating: Bool, _ body: @escaping () -> Void) {
        self.base = base; self.body = body; self.repeating = repeating
        super.init()
        guard let e = LoopEvent(timerOn: base, persist: repeating, handler: self) else { preconditionFailure("event_new failed") }
        event = e
        base.register(self)
        e.add(timeout: seconds)
    }

    deinit { freeEvent() }

    public override func handleEvent(fd: Int32, readiness: IOReadiness) {
        withLife {
            body()
            if !repeating { cancel() }
        }
    }

    /// Stops it and frees its event; safe from inside its own callback.
    public func cancel() {
        freeEvent()
        base.deregister(self)
    }

    func freeEvent() {
        if let e = event { e.free(); event = nil }
    }
}

/// A persistent watch of one descriptor, registered with its base until
/// `cancel` (which releases the closure). `enable`, `disable` and `cancel`
/// belong on the loop's thread (or after the loop stopped).
public final class IOWatch: EventHandler, RegisteredEvent, @unchecked Sendable {
    private let base: EventBase
    private var event: LoopEvent?
    private let fd: Int32
    private var current: IOInterest = []
    private let body: (IOReadiness) -> Void

    init(_ base: EventBase, fd: Int32, events: IOInterest, _ body: @escaping (IOReadiness) -> Void) {
        self.base = base; self.fd = fd; self.body = body
        super.init()
        base.register(self)
        enable(events)
    }

    deinit { freeEvent() }

    public override func handleEvent(fd: Int32, readiness: IOReadiness) {
        withLife { body(readiness) }
    }

    /// Watches for `interest` from now on (replacing what it watched). The
    /// same interest again only re-arms the event it has.
    public func enable(_ interest: IOInterest) {
        if let e = event, interest == current { e.add(); return }
        freeEvent()
        guard let e = LoopEvent(base, fd: fd, interest: interest, persist: true, handler: self) else { preconditionFailure("event_new failed") }
        event = e
        current = interest
        e.add()
    }

    /// Stops watching until the next `enable`.
    public func disable() { event?.remove() }

    /// Stops watching for good and frees the event (the descriptor stays open).
    public func cancel() {
        freeEvent()
        base.deregister(self)
    }

    func freeEvent() {
        if let e = event { e.free(); event = nil }
    }
}

/// A signal turned into a loop event, so its handler may do anything.
public final class SignalWatch: EventHandler, RegisteredEvent, @unchecked Sendable {
    private let base: EventBase
    private var event: LoopEvent?
    private let body: () -> Void

    init(_ base: EventBase, signal: Int32, _ body: @escaping () -> Void) {
        self.base = base; self.body = body
        super.init()
        guard let e = LoopEvent(base, fd: signal, interest: IOInterest(rawValue: Int16(EV_SIGNAL)), persist: true, handler: self) else {
            preconditionFailure("event_new failed")
        }
        event = e
        base.register(self)
        e.add()
    }

    deinit { freeEvent() }

    public override func handleEvent(fd: Int32, readiness: IOReadiness) { withLife { body() } }

    public func cancel() {
        freeEvent()
        base.deregister(self)
    }

    func freeEvent() {
        if let e = event { e.free(); event = nil }
    }
}
