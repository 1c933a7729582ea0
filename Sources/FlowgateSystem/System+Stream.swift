// Stream-socket calls for the control plane's listener and flowgatectl's
// client: a Unix socket created 0600 with a stale file from a previous run
// removed, name resolution, and blocking connect/send/receive for a command
// line that makes one request and exits.
#if canImport(Glibc)
import Glibc
#endif
// The socket constants come through the shim's module too: its header includes
// <sys/socket.h>, and a clean build otherwise fails to see SOCK_STREAM here.
import CFlowgateSys

/// A host name that did not resolve (getaddrinfo's own error, not errno).
public struct ResolveError: Error, Sendable, CustomStringConvertible {
    public var host: String
    public var message: String
    public var description: String { "cannot resolve \(host): \(message)" }
}

extension System {
    /// A sockaddr_un for `path`; ENAMETOOLONG when it does not fit.
    static func unixAddress(_ path: String, call: String) throws(SystemError) -> (sockaddr_un, socklen_t) {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: addr.sun_path)
        guard path.utf8.count < capacity else { throw SystemError("\(call) \(path)", ENAMETOOLONG) }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in raw.copyBytes(from: path.utf8); raw[path.utf8.count] = 0 }
        return (addr, socklen_t(MemoryLayout<sockaddr_un>.size))
    }

    /// A non-blocking listening Unix stream socket at `path`, created with
    /// `mode` from the start (no window in which another user could
    /// connect). A socket file left by a previous run is removed first; any
    /// other file at `path` makes the bind fail. The parent directory is
    /// created when missing.
    /// `type`: SOCK_STREAM, or SOCK_SEQPACKET (the takeover handshake, System+Descriptors.swift).
    public static func listenUnix(_ path: String, mode: UInt32 = 0o600, backlog: Int32 = 64,
                                  type: Int32 = Int32(SOCK_STREAM.rawValue)) throws(SystemError) -> Int32 {
        let (addr, len) = try unixAddress(path, call: "bind")
        removeSocketFile(path)
        if let slash = path.lastIndex(of: "/"), slash != path.startIndex { try makeDirectories(String(path[..<slash])) }
        let fd = try retrying("socket") { Glibc.socket(AF_UNIX, type | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        let oldMask = umask(mode_t(~mode & 0o777))
        defer { umask(oldMask) }
        do {
            var a = addr
            _ = try retrying("bind \(path)") {
                withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, len) } }
            }
            _ = try retrying("listen \(path)") { Glibc.listen(fd, backlog) }
        } catch {
            close(fd)
            throw error
        }
        return fd
    }

    /// A blocking socket (stream by default) connected to the Unix socket at `path`.
    public static func connectUnix(_ path: String, type: Int32 = Int32(SOCK_STREAM.rawValue)) throws(SystemError) -> Int32 {
        var (addr, len) = try unixAddress(path, call: "connect")
        let fd = try retrying("socket") { Glibc.socket(AF_UNIX, type | Int32(SOCK_CLOEXEC.rawValue), 0) }
        do {
            _ = try retrying("connect \(path)") {
                withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, len) } }
            }
        } catch {
            close(fd)
            throw error
        }
        return fd
    }

    /// The TCP addresses `host` resolves to, with `port`.
    public static func resolve(_ host: String, port: Int) throws(ResolveError) -> [SocketAddress] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var res: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &res)
        guard rc == 0, let first = res else { throw ResolveError(host: host, message: String(cString: gai_strerror(rc))) }
        defer { freeaddrinfo(res) }
        var out: [SocketAddress] = []
        var ai: UnsafeMutablePointer<addrinfo>? = first
        while let a = ai {
            if let sa = a.pointee.ai_addr, Int(a.pointee.ai_addrlen) <= MemoryLayout<sockaddr_storage>.size {
                var storage = sockaddr_storage()
                withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: UnsafeRawBufferPointer(start: sa, count: Int(a.pointee.ai_addrlen))) }
                out.append(SocketAddress(storage: storage, length: a.pointee.ai_addrlen))
            }
            ai = a.pointee.ai_next
        }
        return out
    }

    /// A blocking stream socket connected to `address`.
    public static func connectBlocking(_ address: SocketAddress) throws(SystemError) -> Int32 {
        let fd = try retrying("socket") { Glibc.socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        do {
            _ = try address.withSockaddr { (sa, len) throws(SystemError) in try retrying("connect \(address)") { Glibc.connect(fd, sa, len) } }
        } catch {
            close(fd)
            throw error
        }
        return fd
    }

    /// Blocking send of every byte (MSG_NOSIGNAL: a closed peer is an error).
    public static func sendAll(_ fd: Int32, _ bytes: [UInt8]) throws(SystemError) {
        var offset = 0
        while offset < bytes.count {
            offset += try retrying("send") {
                bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            }
        }
    }

    /// Blocking reads until the peer closes; everything it sent.
    public static func receiveToEnd(_ fd: Int32) throws(SystemError) -> [UInt8] {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = try retrying("recv") { chunk.withUnsafeMutableBytes { Glibc.recv(fd, $0.baseAddress, $0.count, 0) } }
            if n == 0 { return out }
            out += chunk[0..<n]
        }
    }
}
