#if canImport(Glibc)
import Glibc
#endif
import CLibevent
import Synchronization

/// A pthread running its own libevent base, off every worker's loop: the
/// health checker's home (design §8: checks never run on, or block, the
/// workers). Other threads reach it only through `post`.
final class EventThread: @unchecked Sendable {
    let name: String
    let base: OpaquePointer
    private let inbox = Mutex<[@Sendable () -> Void]>([])
    private var wakeEvent: OpaquePointer?
    private var thread: pthread_t?
    private let started = Latch(1)

    init(name: String) {
        EventThreads.enable()
        self.name = name
        guard let b = event_base_new() else { preconditionFailure("event_base_new failed") }
        base = b
        let wake: event_callback_fn = { _, _, ctx in
            Unmanaged<EventThread>.fromOpaque(ctx!).takeUnretainedValue().runInbox()
        }
        wakeEvent = event_new(base, -1, 0, wake, Unmanaged.passUnretained(self).toOpaque())
    }

    deinit {
        if let e = wakeEvent { event_free(e) }
        event_base_free(base)
    }

    var isRunning: Bool { thread != nil }

    /// Runs `job` on the thread at its next loop turn.
    func post(_ job: @escaping @Sendable () -> Void) {
        inbox.withLock { $0.append(job) }
        event_active(wakeEvent, 0, 0)
    }

    private func runInbox() {
        let jobs = inbox.withLock { q -> [@Sendable () -> Void] in let t = q; q.removeAll(); return t }
        for job in jobs { job() }
    }

    func start() {
        precondition(thread == nil, "\(name) started twice")
        var tid = pthread_t()
        let ctx = Unmanaged.passRetained(self).toOpaque()
        let rc = pthread_create(&tid, nil, { ctx in
            let t = Unmanaged<EventThread>.fromOpaque(ctx!).takeRetainedValue()
            t.started.countDown()
            event_base_loop(t.base, EVLOOP_NO_EXIT_ON_EMPTY)
            return nil
        }, ctx)
        precondition(rc == 0, "pthread_create failed: \(rc)")
        thread = tid
        started.wait()
    }

    /// Runs `last` on the thread, stops its loop and joins it.
    func stopAndJoin(_ last: @escaping @Sendable () -> Void = {}) {
        guard let t = thread else { return }
        let base = UnsafeSendable(base)
        post {
            last()
            event_base_loopbreak(base.value)
        }
        pthread_join(t, nil)
        thread = nil
    }
}

/// Carries a C pointer into a `@Sendable` closure that runs on the thread
/// owning it.
struct UnsafeSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
