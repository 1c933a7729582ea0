// The control server's TCP listener and the removal of its socket file at
// exit (Sources/FlowgateControl/HTTP/ControlServer.swift).
#if canImport(Glibc)
import Glibc
#endif

extension System {
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

    /// Removes a socket file this process created (at exit); a missing file,
    /// or a file that is not a socket, is left alone.
    public static func removeSocketFile(_ path: String) {
        var st = stat()
        if lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFSOCK { _ = unlink(path) }
    }
}
