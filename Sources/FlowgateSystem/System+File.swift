// File calls next to System.swift's wrappers, for the control plane's state
// file (docs/architecture.md §8): the same rules (EINTR retried, errno turned into a
// `SystemError` at once), so FlowgateControl makes no syscall of its own.
// Names avoid the libc ones (open, write, fsync, ...) because a static
// member of `System` would shadow them inside System.swift.
#if canImport(Glibc)
import Glibc
#endif

extension System {
    /// open(2) with O_CLOEXEC added.
    static func openFile(_ path: String, _ flags: Int32, mode: mode_t = 0o600) throws(SystemError) -> Int32 {
        try retrying("open \(path)") { open(path, flags | O_CLOEXEC, mode) }
    }

    /// Creates (or truncates) `path` for writing.
    public static func createFile(_ path: String, mode: UInt32 = 0o600) throws(SystemError) -> Int32 {
        try openFile(path, O_WRONLY | O_CREAT | O_TRUNC, mode: mode_t(mode))
    }

    /// The whole file, or nil when it does not exist (ENOENT).
    public static func readFile(_ path: String) throws(SystemError) -> [UInt8]? {
        let fd: Int32
        do throws(SystemError) { fd = try openFile(path, O_RDONLY) } catch {
            if error.isNotFound { return nil }
            throw error
        }
        defer { close(fd) }
        var out = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = try retrying("read \(path)") { chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) } }
            if n == 0 { return out }
            out += chunk[0..<n]
        }
    }

    /// write(2) until every byte is written (a regular file may take a short write).
    public static func writeFully(_ fd: Int32, _ bytes: [UInt8]) throws(SystemError) {
        var written = 0
        while written < bytes.count {
            written += try retrying("write") { bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, $0.count - written) } }
        }
    }

    /// fsync(2): returns once the file's data and metadata are on disk.
    public static func syncFile(_ fd: Int32) throws(SystemError) {
        _ = try retrying("fsync") { fsync(fd) }
    }

    /// rename(2): atomically replaces `to` when both are on one file system.
    public static func renameFile(_ from: String, to: String) throws(SystemError) {
        _ = try retrying("rename \(from) \(to)") { rename(from, to) }
    }

    /// unlink(2).
    public static func removeFile(_ path: String) throws(SystemError) {
        _ = try retrying("unlink \(path)") { unlink(path) }
    }

    /// fsync of a directory, so a rename or unlink in it is itself durable
    /// (LWN "Ensuring data reaches disk").
    public static func syncDirectory(_ dir: String) throws(SystemError) {
        let fd = try openFile(dir, O_RDONLY | O_DIRECTORY)
        defer { close(fd) }
        try syncFile(fd)
    }
}
