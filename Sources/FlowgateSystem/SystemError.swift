#if canImport(Glibc)
import Glibc
#endif

/// A failed system call: the call's name and its errno. Callers ask what
/// kind of failure it was through the named predicates below, never by
/// comparing errno numbers themselves.
public struct SystemError: Error, Sendable, Hashable, CustomStringConvertible {
    public var call: String
    public var code: Int32
    public init(_ call: String, _ code: Int32) { self.call = call; self.code = code }
    /// Captures the calling thread's errno right after `call` failed.
    @inlinable
    public static func last(_ call: String) -> SystemError { SystemError(call, errno) }

    /// EAGAIN/EWOULDBLOCK: a non-blocking call would block (also a lock
    /// someone else holds, for flock with LOCK_NB).
    public var isWouldBlock: Bool { code == EAGAIN || code == EWOULDBLOCK }
    /// EINTR: a signal interrupted the call.
    public var isInterrupted: Bool { code == EINTR }
    /// EMFILE/ENFILE: the process's or the system's descriptor table is full.
    public var isDescriptorLimit: Bool { code == EMFILE || code == ENFILE }
    /// ENOENT.
    public var isNotFound: Bool { code == ENOENT }
    /// EEXIST.
    public var isAlreadyExists: Bool { code == EEXIST }
    /// EADDRINUSE: another socket holds the address.
    public var isAddressInUse: Bool { code == EADDRINUSE }
    /// EACCES/EPERM: e.g. a port below 1024 without CAP_NET_BIND_SERVICE.
    public var isPermissionDenied: Bool { code == EACCES || code == EPERM }
    /// ECONNREFUSED: a TCP RST to a connect, or ICMP port unreachable on a
    /// connected UDP socket.
    public var isConnectionRefused: Bool { code == ECONNREFUSED }
    /// ECONNRESET/EPIPE: the peer reset the connection or is gone.
    public var isConnectionReset: Bool { code == ECONNRESET || code == EPIPE }
    /// ETIMEDOUT.
    public var isTimedOut: Bool { code == ETIMEDOUT }
    /// ENAMETOOLONG: e.g. a Unix socket path longer than sun_path.
    public var isNameTooLong: Bool { code == ENAMETOOLONG }
    /// EINVAL.
    public var isInvalidArgument: Bool { code == EINVAL }

    public var reason: String { String(cString: strerror(code)) }
    public var description: String { "\(call): \(reason) (errno \(code))" }

    /// A connect that ended at its deadline.
    public static func timedOut(_ call: String) -> SystemError { SystemError(call, ETIMEDOUT) }
}
