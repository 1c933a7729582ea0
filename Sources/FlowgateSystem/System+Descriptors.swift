// Descriptor passing for the takeover handshake (Sources/flowgated/Takeover/):
// a SOCK_SEQPACKET Unix socket (message boundaries kept, so each message
// carries exactly its own descriptors), sendmsg/recvmsg with SCM_RIGHTS,
// dup, timeouts, a socket file removed only by the process that created it,
// and a lock taken with a bounded wait.
#if canImport(Glibc)
import Glibc
#endif
import CFlowgateSys

/// Which file a path named when it was bound: a later process may have
/// replaced it with its own socket, which must then be left alone.
public struct FileIdentity: Sendable, Equatable {
    public var device: UInt64
    public var inode: UInt64
}

extension System {
    /// Most descriptors one message carries (CFlowgateSys FG_MAX_FDS).
    public static let maxDescriptorsPerMessage = Int(FG_MAX_FDS)

    /// A listening SOCK_SEQPACKET Unix socket at `path` (message boundaries
    /// kept, each with its descriptors), created with `mode`; a socket file
    /// already there is replaced.
    public static func listenUnixSeqpacket(_ path: String, mode: UInt32 = 0o600, backlog: Int32 = 8) throws(SystemError) -> Int32 {
        try listenUnix(path, mode: mode, backlog: backlog, type: Int32(SOCK_SEQPACKET.rawValue))
    }

    /// A blocking SOCK_SEQPACKET socket connected to `path`.
    public static func connectUnixSeqpacket(_ path: String) throws(SystemError) -> Int32 {
        try connectUnix(path, type: Int32(SOCK_SEQPACKET.rawValue))
    }

    /// accept4 on a listening Unix socket; the connection is blocking. Nil
    /// when nothing is waiting.
    public static func acceptUnix(_ fd: Int32) throws(SystemError) -> Int32? {
        let c: Int32
        do throws(SystemError) {
            c = try retrying("accept") { fg_accept_nonblock(fd, nil, nil) }
        } catch {
            if error.isWouldBlock { return nil }
            throw error
        }
        _ = fcntl(c, F_SETFL, fcntl(c, F_GETFL) & ~O_NONBLOCK)
        return c
    }

    /// One message with `fds` attached as SCM_RIGHTS (the caller keeps its
    /// own copies open; the receiver gets new descriptors for the same sockets).
    public static func sendMessage(_ fd: Int32, _ bytes: [UInt8], descriptors fds: [Int32] = []) throws(SystemError) {
        guard fds.count <= maxDescriptorsPerMessage else { throw SystemError("sendmsg", EINVAL) }
        let sent = try retrying("sendmsg") {
            bytes.withUnsafeBytes { b in fds.withUnsafeBufferPointer { f in
                fg_send_with_fds(fd, b.baseAddress, UInt(b.count), f.baseAddress, Int32(f.count))
            } }
        }
        if sent != bytes.count { throw SystemError("sendmsg (short)", EMSGSIZE) }
    }

    /// One message and the descriptors that came with it; nil at EOF. A
    /// message or descriptor list cut short is an error (EMSGSIZE) with every
    /// received descriptor closed.
    public static func receiveMessage(_ fd: Int32, capacity: Int = 4096) throws(SystemError) -> (bytes: [UInt8], descriptors: [Int32])? {
        var buffer = [UInt8](repeating: 0, count: capacity)
        var fds = [Int32](repeating: -1, count: maxDescriptorsPerMessage)
        var count: Int32 = 0
        var truncated: Int32 = 0
        let n = try retrying("recvmsg") {
            buffer.withUnsafeMutableBytes { b in fds.withUnsafeMutableBufferPointer { f in
                fg_recv_with_fds(fd, b.baseAddress, UInt(b.count), f.baseAddress, Int32(f.count), &count, &truncated)
            } }
        }
        let received = Array(fds.prefix(Int(count)))
        if truncated != 0 {
            for d in received { close(d) }
            throw SystemError("recvmsg (truncated)", EMSGSIZE)
        }
        if n == 0 && received.isEmpty { return nil }
        return (Array(buffer.prefix(n)), received)
    }

    /// fcntl F_DUPFD_CLOEXEC: a second descriptor for the same open socket.
    public static func duplicate(_ fd: Int32) throws(SystemError) -> Int32 {
        try retrying("dup") { fcntl(fd, F_DUPFD_CLOEXEC, 0) }
    }

    /// SO_RCVTIMEO and SO_SNDTIMEO on a blocking socket: a peer that stops
    /// reading or writing fails the call with EAGAIN after `seconds`.
    public static func setTimeouts(_ fd: Int32, seconds: Double) {
        var tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1_000_000))
        let len = socklen_t(MemoryLayout<timeval>.size)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, len)
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, len)
    }

    /// Device and inode of the file at `path` (lstat), nil when absent.
    public static func fileIdentity(_ path: String) -> FileIdentity? {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        return FileIdentity(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
    }

    /// Removes the socket file at `path` only while it is still the one this
    /// process bound (`identity`); a successor's socket stays.
    public static func removeSocketFile(_ path: String, ifStill identity: FileIdentity?) {
        guard let identity, fileIdentity(path) == identity else { return }
        removeSocketFile(path)
    }

    /// `lockFile` retried every 10 ms for up to `seconds` while another
    /// process holds the lock; the last error otherwise.
    public static func lockFile(_ path: String, waitingUpTo seconds: Double) throws(SystemError) -> Int32 {
        let deadline = monotonicMicroseconds() + UInt64(max(0, seconds) * 1_000_000)
        while true {
            do { return try lockFile(path) } catch {
                if !error.isWouldBlock || monotonicMicroseconds() >= deadline { throw error }
            }
            usleep(10_000)
        }
    }
}
