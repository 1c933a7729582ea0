// The state file of design §6: every accepted API update is written here
// before it is acknowledged, so `kill -9` right after a 200 loses nothing.
// Crash-safe replace as the ext4/XFS guidance and LWN "Ensuring data reaches
// disk" describe: write a temp file, fsync it, rename over the old one, fsync
// the directory so the rename itself is durable.
#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import FlowgateCore

public struct StateFileError: Error, Sendable, CustomStringConvertible {
    public var path: String
    public var message: String
    public init(path: String, message: String) { self.path = path; self.message = message }
    public var description: String { "\(path): \(message)" }
}

public final class StateStore: @unchecked Sendable {
    public let path: String
    public init(path: String) { self.path = path }

    /// Persists `config`; returns only once the bytes and the rename are on disk.
    public func save(_ config: FlowgateConfig) throws(StateFileError) {
        try AtomicFile.write(Array(StateFile.encode(config)), to: path)
    }

    /// nil when there is no state file yet. A file that exists but does not
    /// decode is an error: starting without it would silently drop updates.
    public func load() throws(StateFileError) -> FlowgateConfig? {
        switch AtomicFile.read(path) {
        case .missing: return nil
        case let .failed(message): throw StateFileError(path: path, message: message)
        case let .contents(bytes):
            do throws(StateFile.DecodeError) { return try StateFile.decode(bytes) } catch {
                throw StateFileError(path: path, message: "\(error.description); fix it, or delete it (flowgatectl state reset) to start from the config file")
            }
        }
    }

    /// Deletes the state file (`flowgatectl state reset`): the next start, or
    /// the reset itself, goes back to the config file.
    public func remove() throws(StateFileError) {
        if unlink(path) != 0 && errno != ENOENT {
            throw StateFileError(path: path, message: "cannot remove: \(String(cString: strerror(errno)))")
        }
        AtomicFile.syncDirectory(of: path)
    }

}

/// Small durable-file helpers (open/write/fsync/rename with EINTR retried).
enum AtomicFile {
    enum ReadResult { case missing, failed(String), contents([UInt8]) }

    static func errorText(_ what: String) -> String { "\(what): \(String(cString: strerror(errno)))" }

    static func write(_ bytes: [UInt8], to path: String) throws(StateFileError) {
        let dir = directory(of: path)
        if mkdirAll(dir) == false { throw StateFileError(path: path, message: errorText("cannot create directory \(dir)")) }
        let temp = path + ".tmp.\(getpid())"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StateFileError(path: path, message: errorText("cannot create \(temp)")) }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, bytes.count - written) }
            if n < 0 {
                if errno == EINTR { continue }
                let msg = errorText("cannot write \(temp)"); close(fd); unlink(temp)
                throw StateFileError(path: path, message: msg)
            }
            written += n
        }
        while fsync(fd) != 0 {
            if errno == EINTR { continue }
            let msg = errorText("cannot fsync \(temp)"); close(fd); unlink(temp)
            throw StateFileError(path: path, message: msg)
        }
        close(fd)
        guard rename(temp, path) == 0 else {
            let msg = errorText("cannot rename \(temp) to \(path)"); unlink(temp)
            throw StateFileError(path: path, message: msg)
        }
        syncDirectory(of: path)
    }

    static func read(_ path: String) -> ReadResult {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { return errno == ENOENT ? .missing : .failed(errorText("cannot open")) }
        defer { close(fd) }
        var out = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, 65536) }
            if n < 0 { if errno == EINTR { continue }; return .failed(errorText("cannot read")) }
            if n == 0 { break }
            out += chunk[0..<n]
        }
        return .contents(out)
    }

    static func syncDirectory(of path: String) {
        let dfd = open(directory(of: path), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dfd >= 0 else { return }
        while fsync(dfd) != 0 && errno == EINTR {}
        close(dfd)
    }

    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let d = String(path[..<slash])
        return d.isEmpty ? "/" : d
    }

    static func mkdirAll(_ dir: String) -> Bool {
        var st = stat()
        if stat(dir, &st) == 0 { return true }
        let parent = directory(of: dir)
        if parent != dir, !mkdirAll(parent) { return false }
        return mkdir(dir, 0o755) == 0 || errno == EEXIST
    }
}

/// Start-up overlay (design §6): core-config's `StateFile.overlay` (state
/// objects replace config-file objects of the same ARN/id), plus the health
/// monitors created through the API, which exist only in the state file.
public enum StateOverlay {
    public static func apply(state: FlowgateConfig, over file: FlowgateConfig) -> FlowgateConfig {
        var out = StateFile.overlay(config: file, state: state)
        let known = Set(out.healthmonitors.map(\.id))
        let linked = Set(out.pools.compactMap(\.healthmonitorID))
        out.healthmonitors += state.healthmonitors.filter { !known.contains($0.id) && linked.contains($0.id) }
        return out
    }
}
