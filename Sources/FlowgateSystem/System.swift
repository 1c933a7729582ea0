// The one place Flowgate calls the kernel (both planes, the daemon and
// flowgatectl go through here): every wrapper retries EINTR and turns errno
// into a typed `SystemError`, so callers never read the global errno
// themselves (it is per-thread but easy to clobber between the failing call
// and the read). SwiftNIO's NIOPosix/System.swift is the model.
#if canImport(Glibc)
import Glibc
#endif
import CFlowgateSys

/// Thin syscall wrappers. Names follow the calls they wrap.
public enum System {
    // MARK: descriptors

    @inlinable @inline(__always)
    static func retrying<T: BinaryInteger>(_ call: String, _ body: () -> T) throws(SystemError) -> T {
        while true {
            let r = body()
            if r >= 0 { return r }
            let e = errno
            if e == EINTR { continue }
            throw SystemError(call, e)
        }
    }

    /// close(2) without retry: on Linux the descriptor is released even when
    /// close reports EINTR, and retrying could close a reused number.
    @inlinable
    public static func close(_ fd: Int32) { _ = Glibc.close(fd) }

    // MARK: sockets

    @inlinable
    public static func socket(family: Int32, type: Int32) throws(SystemError) -> Int32 {
        try retrying("socket") { Glibc.socket(family, type | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
    }

    @inlinable
    public static func streamSocket(family: Int32) throws(SystemError) -> Int32 {
        try socket(family: family, type: Int32(SOCK_STREAM.rawValue))
    }

    public static func datagramSocket(family: Int32) throws(SystemError) -> Int32 {
        try socket(family: family, type: Int32(SOCK_DGRAM.rawValue))
    }

    @inlinable
    public static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) throws(SystemError) {
        var v = value
        _ = try retrying("setsockopt") { setsockopt(fd, level, name, &v, socklen_t(MemoryLayout<Int32>.size)) }
    }

    @inlinable
    public static func getOption(_ fd: Int32, _ level: Int32, _ name: Int32) throws(SystemError) -> Int32 {
        var v: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        _ = try retrying("getsockopt") { getsockopt(fd, level, name, &v, &len) }
        return v
    }

    @inlinable
    public static func setNoDelay(_ fd: Int32) {
        try? setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
    }

    /// SO_LINGER {on, 0}: the next close sends RST instead of FIN.
    @inlinable
    public static func setAbortiveClose(_ fd: Int32) {
        var l = linger(l_onoff: 1, l_linger: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
    }

    public static func bind(_ fd: Int32, _ address: SocketAddress) throws(SystemError) {
        _ = try address.withSockaddr { sa, len throws(SystemError) in
            try retrying("bind") { Glibc.bind(fd, sa, len) }
        }
    }

    public static func listen(_ fd: Int32, backlog: Int32) throws(SystemError) {
        _ = try retrying("listen") { Glibc.listen(fd, backlog) }
    }

    /// Non-blocking connect: returns true when connected at once, false when
    /// in progress (EINPROGRESS); throws on an immediate failure.
    @inlinable
    public static func connect(_ fd: Int32, _ address: SocketAddress) throws(SystemError) -> Bool {
        let r: Int32 = address.withSockaddr { sa, len in Glibc.connect(fd, sa, len) }
        if r == 0 { return true }
        let e = errno
        // EINTR on a non-blocking connect also means "in progress" (connect(2)).
        if e == EINPROGRESS || e == EINTR { return false }
        throw SystemError("connect", e)
    }

    /// SO_ERROR after a non-blocking connect finished.
    @inlinable
    public static func pendingError(_ fd: Int32) -> Int32 {
        (try? getOption(fd, SOL_SOCKET, SO_ERROR)) ?? EIO
    }

    /// accept4 with SOCK_NONBLOCK | SOCK_CLOEXEC; nil when the queue is empty.
    @inlinable
    public static func accept(_ fd: Int32) throws(SystemError) -> (fd: Int32, peer: SocketAddress)? {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        while true {
            let c = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { fg_accept_nonblock(fd, $0, &len) }
            }
            if c >= 0 { return (c, SocketAddress(storage: storage, length: len)) }
            let e = errno
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return nil }
            throw SystemError("accept4", e)
        }
    }

    @inlinable
    public static func localAddress(_ fd: Int32) throws(SystemError) -> SocketAddress {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = try retrying("getsockname") {
            withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
            }
        }
        return SocketAddress(storage: storage, length: len)
    }

    @inlinable
    public static func shutdownWrite(_ fd: Int32) { _ = Glibc.shutdown(fd, Int32(SHUT_WR)) }

    /// recv into `buffer`: > 0 bytes read, 0 on EOF, nil when it would block.
    @inlinable @inline(__always)
    public static func receive(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) throws(SystemError) -> Int? {
        while true {
            let n = recv(fd, buffer, count, Int32(MSG_DONTWAIT))
            if n >= 0 { return n }
            let e = errno
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return nil }
            throw SystemError("recv", e)
        }
    }

    /// send with MSG_NOSIGNAL (a closed peer is an error, not SIGPIPE):
    /// bytes sent, 0 when it would block.
    @inlinable @inline(__always)
    public static func send(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) throws(SystemError) -> Int {
        while true {
            let n = Glibc.send(fd, buffer, count, Int32(MSG_DONTWAIT) | Int32(MSG_NOSIGNAL))
            if n >= 0 { return n }
            let e = errno
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return 0 }
            throw SystemError("send", e)
        }
    }

    /// Seconds of CLOCK_MONOTONIC_COARSE: a vDSO read (no syscall, no lock),
    /// a few ms coarse; for idle accounting on the per-read path.
    @inlinable @inline(__always)
    public static func coarseSeconds() -> Int {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC_COARSE, &ts)
        return ts.tv_sec
    }

    // MARK: splice (zero-copy mode)

    public static func pipe() throws(SystemError) -> (read: Int32, write: Int32) {
        var fds: [Int32] = [-1, -1]
        _ = try retrying("pipe2") { fds.withUnsafeMutableBufferPointer { fg_pipe_nonblock($0.baseAddress) } }
        return (fds[0], fds[1])
    }

    public static func setPipeSize(_ fd: Int32, _ bytes: Int) -> Int {
        Int(fg_set_pipe_size(fd, Int32(bytes)))
    }

    /// splice between a socket and a pipe: bytes moved, 0 on EOF, nil when it would block.
    @inlinable
    public static func splice(from: Int32, to: Int32, _ count: Int) throws(SystemError) -> Int? {
        while true {
            let n = fg_splice(from, to, count)
            if n >= 0 { return n }
            let e = errno
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return nil }
            throw SystemError("splice", e)
        }
    }

    // MARK: process

    /// Ignore SIGPIPE: a write to a closed peer must be an EPIPE error, not
    /// the death of the daemon (measured: exit 141 without it).
    public static func ignoreSIGPIPE() { _ = signal(SIGPIPE, SIG_IGN) }

    /// Raises RLIMIT_NOFILE's soft limit to its hard limit; returns the new soft limit.
    @discardableResult
    public static func raiseDescriptorLimit() -> Int {
        var lim = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &lim) == 0 else { return 1024 }
        if lim.rlim_cur < lim.rlim_max {
            var raised = lim
            raised.rlim_cur = lim.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { lim = raised }
        }
        return lim.rlim_cur >= rlim_t(Int32.max) ? Int(Int32.max) : Int(lim.rlim_cur)
    }

    public static func descriptorLimit() -> Int {
        var lim = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &lim) == 0 else { return 1024 }
        return lim.rlim_cur >= rlim_t(Int32.max) ? Int(Int32.max) : Int(lim.rlim_cur)
    }

    /// Descriptors open in this process right now (/proc/self/fd entries).
    public static func openDescriptorCount() -> Int {
        guard let dir = opendir("/proc/self/fd") else { return 0 }
        defer { closedir(dir) }
        var n = 0
        while readdir(dir) != nil { n += 1 }
        return max(0, n - 3) // ".", "..", and the directory's own descriptor
    }

    public static func onlineCPUs() -> Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    public static func processID() -> Int32 { getpid() }

    /// mkdir -p with mode 0755 for missing components.
    public static func makeDirectories(_ path: String) throws(SystemError) {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for part in path.split(separator: "/") {
            prefix += part
            if mkdir(prefix, 0o755) != 0 {
                let e = SystemError.last("mkdir \(prefix)")
                if !e.isAlreadyExists { throw e }
            }
            prefix += "/"
        }
    }

    /// Opens (creating) `path` and takes an exclusive, non-blocking flock on
    /// it; the lock lives as long as the returned descriptor.
    public static func lockFile(_ path: String) throws(SystemError) -> Int32 {
        let fd = try retrying("open \(path)") { open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644) }
        do {
            _ = try retrying("flock \(path)") { flock(fd, LOCK_EX | LOCK_NB) }
        } catch {
            close(fd)
            throw error
        }
        return fd
    }

    /// One datagram to a Unix socket path (a leading '@' names an abstract
    /// socket, as systemd's NOTIFY_SOCKET does).
    public static func sendDatagram(_ message: String, toUnixPath path: String) throws(SystemError) {
        let fd = try retrying("socket") { Glibc.socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        var pathBytes = Array(path.utf8)
        if pathBytes.first == UInt8(ascii: "@") { pathBytes[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: addr.sun_path)
        guard pathBytes.count < capacity else { throw SystemError("sendto \(path)", ENAMETOOLONG) }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in pathBytes.enumerated() { raw[i] = b }
        }
        let len = socklen_t(MemoryLayout<sa_family_t>.size + pathBytes.count + (pathBytes.first == 0 ? 0 : 1))
        let bytes = Array(message.utf8)
        _ = try retrying("sendto \(path)") {
            withUnsafePointer(to: &addr) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                    bytes.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), sa, len) }
                }
            }
        }
    }

    /// Writes all of `bytes` to a descriptor (used for log lines on stderr).
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) {
        var offset = 0
        while offset < bytes.count {
            let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 { if errno == EINTR { continue }; return }
            offset += n
        }
    }

    /// CLOCK_MONOTONIC in microseconds (systemd's MONOTONIC_USEC).
    public static func monotonicMicroseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1000
    }

    /// Seconds since the Unix epoch (wall clock: request signatures carry it).
    public static func wallClockSeconds() -> Int { Int(time(nil)) }

    public static func environment(_ name: String) -> String? {
        guard let v = getenv(name) else { return nil }
        return String(cString: v)
    }
}
