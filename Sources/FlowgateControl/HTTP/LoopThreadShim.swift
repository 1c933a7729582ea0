// TEMPORARY: a stand-in for FlowgateSystem.LoopThread (being built on another
// branch) with the same API, so the control server can be written against it.
// Deleted when the foundation target lands.
#if canImport(Glibc)
import Glibc
#endif
import CLibevent
import FlowgateDataPlane
import Synchronization

public struct IOInterest: OptionSet, Sendable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }
    public static let read = IOInterest(rawValue: 1)
    public static let write = IOInterest(rawValue: 2)
    public static let edgeTriggered = IOInterest(rawValue: 4)
}

public struct IOReadiness: OptionSet, Sendable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }
    public static let read = IOReadiness(rawValue: 1)
    public static let write = IOReadiness(rawValue: 2)
    public static let timeout = IOReadiness(rawValue: 4)
}

final class ShimBox {
    let body: (Int16) -> Void
    init(_ body: @escaping (Int16) -> Void) { self.body = body }
}

private func shimTrampoline(_ fd: Int32, _ what: Int16, _ arg: UnsafeMutableRawPointer?) {
    Unmanaged<ShimBox>.fromOpaque(arg!).takeUnretainedValue().body(what)
}

public final class LoopTimer {
    var event: OpaquePointer?
    let box: ShimBox
    init(box: ShimBox) { self.box = box }
    public func cancel() { if let e = event { event_free(e); event = nil } }
    deinit { cancel() }
}

public final class IOWatch {
    let base: OpaquePointer
    let fd: Int32
    var event: OpaquePointer?
    var current: IOInterest?
    let box: ShimBox
    init(base: OpaquePointer, fd: Int32, box: ShimBox) { self.base = base; self.fd = fd; self.box = box }
    public func enable(_ interest: IOInterest) {
        if interest == current, let e = event { if event_pending(e, Int16(EV_READ | EV_WRITE), nil) == 0 { event_add(e, nil) }; return }
        if let e = event { event_free(e); event = nil }
        current = interest
        if interest.subtracting(.edgeTriggered).isEmpty { return }
        var flags = Int16(EV_PERSIST)
        if interest.contains(.read) { flags |= Int16(EV_READ) }
        if interest.contains(.write) { flags |= Int16(EV_WRITE) }
        if interest.contains(.edgeTriggered) { flags |= Int16(EV_ET) }
        event = event_new(base, fd, flags, shimTrampoline, Unmanaged.passUnretained(box).toOpaque())
        event_add(event, nil)
    }
    public func disable() { if let e = event { event_del(e) } }
    public func cancel() { if let e = event { event_free(e); event = nil } }
    deinit { cancel() }
}

public final class LoopThread: @unchecked Sendable {
    let base: OpaquePointer
    private var thread: pthread_t?
    private let inbox = Mutex<[@Sendable () -> Void]>([])
    private var wake: OpaquePointer?
    private var wakeBox: ShimBox?
    private let threadID = Atomic<UInt>(0)

    public init(name: String) {
        LibeventThreading.enable()
        base = event_base_new()!
        let box = ShimBox { [unowned self] _ in
            let jobs = self.inbox.withLock { j -> [@Sendable () -> Void] in let out = j; j.removeAll(); return out }
            for j in jobs { j() }
        }
        wakeBox = box
        wake = event_new(base, -1, 0, shimTrampoline, Unmanaged.passUnretained(box).toOpaque())
    }

    public func start() {
        var tid = pthread_t()
        let ctx = Unmanaged.passRetained(self).toOpaque()
        pthread_create(&tid, nil, { arg in
            let t = Unmanaged<LoopThread>.fromOpaque(arg!).takeRetainedValue()
            t.threadID.store(UInt(pthread_self()), ordering: .relaxed)
            event_base_loop(t.base, EVLOOP_NO_EXIT_ON_EMPTY)
            return nil
        }, ctx)
        thread = tid
    }

    public var isOnLoopThread: Bool { threadID.load(ordering: .relaxed) == UInt(pthread_self()) }

    public func post(_ work: @escaping @Sendable () -> Void) {
        inbox.withLock { $0.append(work) }
        event_active(wake, 0, 0)
    }

    @discardableResult public func after(_ seconds: Double, _ body: @escaping () -> Void) -> LoopTimer {
        let box = ShimBox { _ in body() }
        let t = LoopTimer(box: box)
        t.event = event_new(base, -1, 0, shimTrampoline, Unmanaged.passUnretained(box).toOpaque())
        var tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1e6))
        event_add(t.event, &tv)
        return t
    }

    @discardableResult public func every(_ seconds: Double, _ body: @escaping () -> Void) -> LoopTimer {
        let box = ShimBox { _ in body() }
        let t = LoopTimer(box: box)
        t.event = event_new(base, -1, Int16(EV_PERSIST), shimTrampoline, Unmanaged.passUnretained(box).toOpaque())
        var tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1e6))
        event_add(t.event, &tv)
        return t
    }

    public func watch(fd: Int32, events: IOInterest, _ body: @escaping (IOReadiness) -> Void) -> IOWatch {
        let box = ShimBox { what in
            var r = IOReadiness()
            if what & Int16(EV_READ) != 0 { r.insert(.read) }
            if what & Int16(EV_WRITE) != 0 { r.insert(.write) }
            if what & Int16(EV_TIMEOUT) != 0 { r.insert(.timeout) }
            body(r)
        }
        let w = IOWatch(base: base, fd: fd, box: box)
        w.enable(events)
        return w
    }

    public func stopAndJoin() {
        event_base_loopbreak(base)
        if let t = thread { pthread_join(t, nil); thread = nil }
    }
}
