// The last step of a takeover in the new process (docs/architecture.md §16),
// a service placed after the control service's start: by then the config
// and state file are validated and applied on the adopted sockets, so this
// process forwards. It closes adopted sockets its config no longer has,
// tells the old process to go, and takes the state lock (bounded wait)
// before the control server, the only writer of the state file, starts.
import FlowgateCore
import FlowgateSystem
import FlowgateDataPlane

final class TakeoverGoService: Service {
    let name = "takeover-go"
    let client: TakeoverClient
    let plane: DataPlane
    let lock: StateLockService
    let startedAt: UInt64
    /// The old process releases the lock before it confirms; this bounds a
    /// third process holding it.
    static let lockWait = 10.0

    init(client: TakeoverClient, plane: DataPlane, lock: StateLockService, startedAt: UInt64) {
        self.client = client; self.plane = plane; self.lock = lock; self.startedAt = startedAt
    }

    func start() throws(ServiceError) {
        let closed = plane.closeUnadopted()
        if !closed.isEmpty {
            Log.info("takeover_sockets_closed", ["ports": closed.count, "reason": "not in this config"])
        }
        let goAt = System.monotonicMicroseconds()
        do throws(TakeoverFailure) { try client.go(plane: plane) } catch {
            Log.error("takeover_failed", ["error": error.message])
            throw ServiceError(service: name, error.message)
        }
        // Past go the old process drains: failing now would leave nobody
        // accepting, so a lock that does not come is logged and the start goes on.
        do throws(ServiceError) { try lock.acquire(waitingUpTo: TakeoverGoService.lockWait) } catch {
            Log.error("takeover_lock_timeout", ["error": error.message])
        }
        Log.info("takeover_complete", ["ports": plane.boundPortCount, "go_to_done_ms": (System.monotonicMicroseconds() - goAt) / 1000,
                                       "elapsed_ms": (System.monotonicMicroseconds() - startedAt) / 1000])
    }

    func stop() {}
}
