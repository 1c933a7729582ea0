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
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data: Data
        do { data = try encoder.encode(config) } catch { throw StateFileError(path: path, message: "cannot encode state: \(error)") }
        try AtomicFile.write(Array(data), to: path)
    }

    /// nil when there is no state file yet. A file that exists but does not
    /// decode is an error: starting without it would silently drop updates.
    public func load() throws(StateFileError) -> FlowgateConfig? {
        let bytes: [UInt8]
        switch AtomicFile.read(path) {
        case .missing: return nil
        case let .failed(message): throw StateFileError(path: path, message: message)
        case let .contents(b): bytes = b
        }
        do {
            return try JSONDecoder().decode(FlowgateConfig.self, from: Data(bytes))
        } catch let DecodingError.dataCorrupted(ctx) {
            throw StateFileError(path: path, message: "state file is corrupt (\(ctx.debugDescription)); fix or delete it (flowgatectl state reset) to start from the config file")
        } catch let DecodingError.keyNotFound(key, ctx) {
            throw StateFileError(path: path, message: "state file is invalid: \(StateStore.pathText(ctx.codingPath + [key])) is missing; fix or delete it (flowgatectl state reset)")
        } catch let DecodingError.typeMismatch(_, ctx) {
            throw StateFileError(path: path, message: "state file is invalid: \(StateStore.pathText(ctx.codingPath)): \(ctx.debugDescription); fix or delete it (flowgatectl state reset)")
        } catch let DecodingError.valueNotFound(_, ctx) {
            throw StateFileError(path: path, message: "state file is invalid: \(StateStore.pathText(ctx.codingPath)) is null; fix or delete it (flowgatectl state reset)")
        } catch {
            throw StateFileError(path: path, message: "state file is corrupt: \(error); fix or delete it (flowgatectl state reset)")
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

    static func pathText(_ keys: [any CodingKey]) -> String {
        var out = ""
        for k in keys {
            if let i = k.intValue { out += "[\(i)]" } else { out += out.isEmpty ? k.stringValue : ".\(k.stringValue)" }
        }
        return out
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

/// Start-up overlay (design §6): objects in the state file override the same
/// objects (by ARN / id) in the config file; the daemon's own settings
/// (workers, control, tuning, state_file) always come from the config file.
public enum StateOverlay {
    public static func apply(state: FlowgateConfig, over file: FlowgateConfig) -> FlowgateConfig {
        var out = file
        let stateListeners = Dictionary(state.allListeners.map { ($0.listenerArn, $0) }, uniquingKeysWith: { a, _ in a })
        for a in out.accelerators.indices {
            for l in out.accelerators[a].listeners.indices {
                if let s = stateListeners[out.accelerators[a].listeners[l].listenerArn] { out.accelerators[a].listeners[l] = s }
            }
        }
        let statePools = Dictionary(state.pools.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        for p in out.pools.indices { if let s = statePools[out.pools[p].id] { out.pools[p] = s } }
        // Health monitors are created and deleted through the API, and the
        // state file always holds the whole set: it wins.
        out.healthmonitors = state.healthmonitors
        return out
    }
}
