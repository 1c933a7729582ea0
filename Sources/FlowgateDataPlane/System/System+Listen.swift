// Listening sockets for the control server: a Unix stream socket created
// mode 0600 from its first instant (umask around bind, so no other user can
// connect in a window), and a TCP socket on an IP literal.
#if canImport(Glibc)
import Glibc
#endif
import FlowgateCore

extension System {
    /// Binds and listens on `path`, replacing a stale socket file from a
    /// previous run (only a socket: any other file there is an error) and
    /// creating the parent directory. Non-blocking, close-on-exec.
    public static func unixListener(path: String, backlog: Int32) throws(SystemError) -> Int32 {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: addr.sun_path)
        guard path.utf8.count < capacity else { throw SystemError("bind \(path)", ENAMETOOLONG) }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: path.utf8); raw[path.utf8.count] = 0
        }
        if let slash = path.lastIndex(of: "/"), slash != path.startIndex {
            try makeDirectories(String(path[..<slash]))
        }
        var st = stat()
        if lstat(path, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFSOCK else { throw SystemError("bind \(path) (exists and is not a socket)", EEXIST) }
            _ = unlink(path)
        }
        let fd = try retrying("socket") { Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        let oldMask = umask(0o177)
        defer { umask(oldMask) }
        do {
            _ = try retrying("bind \(path)") {
                withUnsafePointer(to: &addr) { p in
                    p.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
                }
            }
            _ = try retrying("chmod \(path)") { chmod(path, 0o600) }
            try listen(fd, backlog: backlog)
        } catch {
            close(fd)
            throw error
        }
        return fd
    }

    /// Binds and listens on a TCP address (SO_REUSEADDR, non-blocking, close-on-exec).
    public static func tcpListener(_ address: SocketAddress, backlog: Int32) throws(SystemError) -> Int32 {
        let fd = try streamSocket(family: address.family)
        do {
            try setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1)
            try bind(fd, address)
            try listen(fd, backlog: backlog)
        } catch {
            close(fd)
            throw error
        }
        return fd
    }

    /// Removes a socket file this process created (at exit); a missing file is fine.
    public static func removeSocketFile(_ path: String) {
        var st = stat()
        if lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFSOCK { _ = unlink(path) }
    }
}
