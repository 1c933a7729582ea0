// One daemon per state directory: SO_REUSEPORT would otherwise let a second
// one share every port silently. First service of the daemon's group, so it
// is released last.
import FlowgateCore
import FlowgateSystem
import FlowgateDataPlane

final class StateLockService: Service {
    let name = "state-lock"
    let directory: String
    var path: String { directory + "/flowgated.lock" }

    private enum Lock { case free, held(fd: Int32) }
    private var lock = Lock.free

    /// A takeover's new process starts without the lock (the old process
    /// holds it until told to go) and takes it in `acquire` (Takeover/).
    let deferred: Bool

    init(stateFile: String, deferred: Bool = false) {
        directory = StateLockService.directory(of: stateFile)
        self.deferred = deferred
    }

    func start() throws(ServiceError) {
        if deferred {
            do { try System.makeDirectories(directory) } catch {
                throw ServiceError(service: name, "\(directory): \(error.description)")
            }
            return
        }
        do {
            try System.makeDirectories(directory)
            lock = .held(fd: try System.lockFile(path))
        } catch {
            if error.isWouldBlock { // flock LOCK_NB: someone holds it
                Log.error("already_running", ["lock": path, "reason": "another flowgated uses this state directory"])
                throw ServiceError(service: name, "another flowgated uses \(directory)")
            }
            Log.error("state_lock_failed", ["lock": path, "error": error.description])
            throw ServiceError(service: name, "\(path): \(error.description)")
        }
    }

    func stop() { release() }

    /// Waits up to `seconds` for the process handing over to let go of the lock.
    func acquire(waitingUpTo seconds: Double) throws(ServiceError) {
        if case .held = lock { return }
        do throws(SystemError) { lock = .held(fd: try System.lockFile(path, waitingUpTo: seconds)) } catch {
            throw ServiceError(service: name, "\(path) still locked after \(Int(seconds)) s: \(error.description)")
        }
    }

    /// Lets the next process take the lock (takeover) or ends it (stop).
    func release() {
        if case let .held(fd) = lock { System.close(fd) }
        lock = .free
    }

    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let d = String(path[..<slash])
        return d.isEmpty ? "/" : d
    }
}
