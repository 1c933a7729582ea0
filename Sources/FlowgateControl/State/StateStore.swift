// The state file of docs/architecture.md §8: every accepted API update is written here
// before it is acknowledged, so `kill -9` right after a 200 loses nothing.
// Crash-safe replace as the ext4/XFS guidance and LWN "Ensuring data reaches
// disk" describe: write a temp file, fsync it, rename over the old one, fsync
// the directory so the rename itself is durable. The syscalls are
// FlowgateSystem's `System` wrappers (EINTR retried, errno typed).
import FlowgateCore
import FlowgateSystem
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

public struct StateFileError: Error, Sendable, Equatable, CustomStringConvertible {
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

    /// A cluster member's cache (docs/cluster.md §4): the last applied
    /// cluster snapshot and its etcd revision, same format plus `cluster_revision`.
    public func saveCluster(_ snapshot: ClusterSnapshot) throws(StateFileError) {
        try AtomicFile.write(Array(StateFile.encode(snapshot.config, clusterRevision: snapshot.revision)), to: path)
    }

    /// The cached cluster snapshot; nil when there is no file or it is a
    /// standalone file (no `cluster_revision`).
    public func loadCluster() throws(StateFileError) -> ClusterSnapshot? {
        switch AtomicFile.read(path) {
        case .missing: return nil
        case let .failed(message): throw StateFileError(path: path, message: message)
        case let .contents(bytes):
            do throws(StateFile.DecodeError) {
                let (config, revision) = try StateFile.decodeWithRevision(Data(bytes))
                return revision.map { ClusterSnapshot(config: config, revision: $0) }
            } catch {
                throw StateFileError(path: path, message: "\(error.description); fix it, or delete it to start from the cluster")
            }
        }
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
        do throws(SystemError) { try System.removeFile(path) } catch {
            if !error.isNotFound { throw StateFileError(path: path, message: "cannot remove: \(error.reason)") }
        }
        AtomicFile.syncDirectory(of: path)
    }
}

/// The durable write and the read of one file, with messages naming the step that failed.
enum AtomicFile {
    enum ReadResult { case missing, failed(String), contents([UInt8]) }

    static func write(_ bytes: [UInt8], to path: String) throws(StateFileError) {
        func fail(_ what: String, _ error: SystemError) -> StateFileError {
            StateFileError(path: path, message: "\(what): \(error.reason)")
        }
        let dir = directory(of: path)
        do throws(SystemError) { try System.makeDirectories(dir) } catch {
            throw fail("cannot create directory \(dir)", error)
        }
        let temp = path + ".tmp.\(System.processID())"
        let fd: Int32
        do throws(SystemError) { fd = try System.createFile(temp, mode: 0o600) } catch {
            throw fail("cannot create \(temp)", error)
        }
        do throws(SystemError) { try System.writeFully(fd, bytes) } catch {
            System.close(fd); try? System.removeFile(temp)
            throw fail("cannot write \(temp)", error)
        }
        do throws(SystemError) { try System.syncFile(fd) } catch {
            System.close(fd); try? System.removeFile(temp)
            throw fail("cannot fsync \(temp)", error)
        }
        System.close(fd)
        do throws(SystemError) { try System.renameFile(temp, to: path) } catch {
            try? System.removeFile(temp)
            throw fail("cannot rename \(temp) to \(path)", error)
        }
        syncDirectory(of: path)
    }

    static func read(_ path: String) -> ReadResult {
        do throws(SystemError) {
            guard let bytes = try System.readFile(path) else { return .missing }
            return .contents(bytes)
        } catch {
            return .failed("cannot \(error.call.hasPrefix("open") ? "open" : "read"): \(error.reason)")
        }
    }

    /// Best effort: the data is already safe in the renamed file; only the
    /// rename's durability depends on this, and no caller could undo it.
    static func syncDirectory(of path: String) {
        try? System.syncDirectory(directory(of: path))
    }

    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let d = String(path[..<slash])
        return d.isEmpty ? "/" : d
    }
}
