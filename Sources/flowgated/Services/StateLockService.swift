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

    init(stateFile: String) { directory = StateLockService.directory(of: stateFile) }

    func start() throws(ServiceError) {
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

    func stop() {
        if case let .held(fd) = lock { System.close(fd) }
        lock = .free
    }

    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let d = String(path[..<slash])
        return d.isEmpty ? "/" : d
    }
}
