#if canImport(Glibc)
import Glibc
#endif
import CFlowgateSys
import CLibevent
import Synchronization

/// One libevent loop on its own pthread: the workers, the health checker and
/// the control server each run on one. Other threads reach it only through
/// `post` (a mutex-guarded inbox and a user event that wakes the loop);
/// timers and descriptor watches belong to its `eventBase`.
public final class LoopThread: @unchecked Sendable {
    public let name: String
    /// The base every event of this loop is created on.
    public let eventBase: EventBase
    private let inbox = Mutex<[@Sendable () -> Void]>([])
    private let wakeHandler: InboxHandler
    private var wake: LoopEvent?
    private var thread: pthread_t?
    private let loopThreadID = Mutex<pthread_t?>(nil)

    /// Runs the inbox when the wake event fires.
    private final class InboxHandler: EventHandler {
        unowned(unsafe) var loop: LoopThread?
        override func handleEvent(fd: Int32, readiness: IOReadiness) { loop?.runInbox() }
    }

    public init(name: String) throws(SystemError) {
        self.name = name
        eventBase = try EventBase()
        wakeHandler = InboxHandler()
        // A pure user event: `post` makes it active from any thread; with
        // evthread_use_pthreads that wakes the loop through its notify pipe.
        wake = LoopEvent(eventBase, fd: -1, interest: [], persist: false, handler: wakeHandler)
        guard wake != nil else { throw SystemError("event_new", ENOMEM) }
        wakeHandler.loop = self
    }

    deinit {
        wake?.free()
        eventBase.free()
    }

    /// True on the loop's own thread.
    public var isOnLoopThread: Bool {
        guard let id = loopThreadID.withLock({ $0 }) else { return false }
        return pthread_equal(id, pthread_self()) != 0
    }

    /// Runs `work` on the loop thread at its next turn, in posting order.
    public func post(_ work: @escaping @Sendable () -> Void) {
        inbox.withLock { $0.append(work) }
        wake?.activate()
    }

    private func runInbox() {
        let jobs = inbox.withLock { q -> [@Sendable () -> Void] in
            let taken = q; q.removeAll(keepingCapacity: true); return taken
        }
        for job in jobs { job() }
    }

    /// Spawns the thread; returns once its loop runs (a job posted now has
    /// been run by it).
    public func start() {
        precondition(thread == nil, "\(name) started twice")
        var tid = pthread_t()
        let ctx = Unmanaged.passRetained(self).toOpaque()
        let rc = pthread_create(&tid, nil, { ctx in
            let loop = Unmanaged<LoopThread>.fromOpaque(ctx!).takeRetainedValue()
            loop.loopThreadID.withLock { $0 = pthread_self() }
            _ = fg_set_thread_name(loop.name)
            // NO_EXIT_ON_EMPTY: a loop with nothing armed yet keeps waiting for posts.
            event_base_loop(loop.eventBase.raw, EVLOOP_NO_EXIT_ON_EMPTY)
            return nil
        }, ctx)
        precondition(rc == 0, "pthread_create failed: \(rc)")
        thread = tid
        let running = Latch(1)
        post { running.countDown() }
        running.wait()
    }

    /// Runs every job posted so far, stops the loop and joins the thread.
    /// Events still armed stay allocated until the loop is released.
    public func stopAndJoin() {
        guard let t = thread else { return }
        let base = UnsafeSendable(eventBase.raw)
        post { event_base_loopbreak(base.value) }
        pthread_join(t, nil)
        thread = nil
    }

    /// Runs `body` every `seconds` on this loop until cancelled.
    @discardableResult public func every(_ seconds: Double, _ body: @escaping () -> Void) -> LoopTimer {
        eventBase.every(seconds, body)
    }

    /// Runs `body` once on this loop, `seconds` from now, unless cancelled.
    @discardableResult public func after(_ seconds: Double, _ body: @escaping () -> Void) -> LoopTimer {
        eventBase.after(seconds, body)
    }

    /// Calls `body` on this loop whenever `fd` is ready (persistent).
    public func watch(fd: Int32, events: IOInterest, _ body: @escaping (IOReadiness) -> Void) -> IOWatch {
        eventBase.watch(fd: fd, events: events, body)
    }
}

/// Carries a value into a `@Sendable` closure that runs on the thread
/// owning it.
public struct UnsafeSendable<T>: @unchecked Sendable {
    public let value: T
    public init(_ value: T) { self.value = value }
}
