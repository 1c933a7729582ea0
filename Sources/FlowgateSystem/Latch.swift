#if canImport(Glibc)
import Glibc
#endif

/// Counts down from n; `wait` blocks until it reaches zero, `wait(timeout:)`
/// at most until a deadline. Used where one thread hands work to loop
/// threads and must know it is done (DataPlane.commit, metrics collection,
/// LoopThread.start). pthread primitives keep async/await off the loop threads.
public final class Latch: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var remaining: Int

    public init(_ count: Int) {
        remaining = count
        pthread_mutex_init(mutex, nil)
        // CLOCK_MONOTONIC for timed waits: a wall-clock step must not
        // stretch or cut a deadline.
        var attr = pthread_condattr_t()
        pthread_condattr_init(&attr)
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        pthread_cond_init(cond, &attr)
        pthread_condattr_destroy(&attr)
    }

    deinit {
        pthread_cond_destroy(cond); pthread_mutex_destroy(mutex)
        cond.deallocate(); mutex.deallocate()
    }

    public func countDown() {
        pthread_mutex_lock(mutex)
        remaining -= 1
        if remaining <= 0 { pthread_cond_broadcast(cond) }
        pthread_mutex_unlock(mutex)
    }

    public func wait() {
        pthread_mutex_lock(mutex)
        while remaining > 0 { pthread_cond_wait(cond, mutex) }
        pthread_mutex_unlock(mutex)
    }

    /// Waits until the count reaches zero or `timeout` seconds pass; true
    /// when it reached zero.
    public func wait(timeout: Double) -> Bool {
        var deadline = timespec()
        clock_gettime(CLOCK_MONOTONIC, &deadline)
        let whole = Int(max(0, timeout))
        let nanos = deadline.tv_nsec + Int((max(0, timeout) - Double(whole)) * 1e9)
        deadline.tv_sec += whole + nanos / 1_000_000_000
        deadline.tv_nsec = nanos % 1_000_000_000
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while remaining > 0 {
            if pthread_cond_timedwait(cond, mutex, &deadline) == ETIMEDOUT { return remaining <= 0 }
        }
        return true
    }
}
