#if canImport(Glibc)
import Glibc
#endif

/// Counts down from n; `wait` blocks until it reaches zero (or a deadline).
/// Used by `DataPlane.commit` to return only after every worker swapped the
/// snapshot. pthread primitives keep async/await off the loop threads.
final class Latch: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var remaining: Int

    init(_ count: Int) {
        remaining = count
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(cond, nil)
    }

    deinit {
        pthread_cond_destroy(cond); pthread_mutex_destroy(mutex)
        cond.deallocate(); mutex.deallocate()
    }

    func countDown() {
        pthread_mutex_lock(mutex)
        remaining -= 1
        if remaining <= 0 { pthread_cond_broadcast(cond) }
        pthread_mutex_unlock(mutex)
    }

    func wait() {
        pthread_mutex_lock(mutex)
        while remaining > 0 { pthread_cond_wait(cond, mutex) }
        pthread_mutex_unlock(mutex)
    }
}
