/// How many sockets each new port gets (docs/architecture.md §4): one per worker with
/// SO_REUSEPORT while the open-files limit allows, fewer for big ranges
/// (down to one socket per port, ports dealt round robin to workers), and a
/// clear error when even one per port does not fit, before anything is bound.
public struct DescriptorBudget: Sendable, Equatable {
    /// RLIMIT_NOFILE soft limit (already raised to the hard limit).
    public var limit: Int
    /// Descriptors open now (existing listeners, connections, libevent's own).
    public var openNow: Int
    /// Kept free for connections (two descriptors each) and everything else.
    public var reserve: Int

    public init(limit: Int, openNow: Int, reserve: Int? = nil) {
        self.limit = limit; self.openNow = openNow
        // An eighth of the limit, at least 256: with this machine's 20000 that
        // leaves 2500 descriptors, about 1250 proxied connections during a
        // change that binds the largest range that fits.
        self.reserve = reserve ?? max(256, limit / 8)
    }

    public var available: Int { max(0, limit - openNow - reserve) }

    /// Sockets per port for `ports` new ports with `workers` workers, or nil
    /// when even one per port does not fit.
    public func socketsPerPort(ports: Int, workers: Int) -> Int? {
        if ports == 0 { return workers }
        for k in stride(from: workers, through: 1, by: -1) where ports * k <= available { return k }
        return nil
    }

    /// The worker that owns socket `j` (0..<k) of the `i`-th new port: with
    /// k == workers every worker gets one; with fewer, ports rotate so every
    /// worker serves a share.
    public static func owner(portIndex i: Int, socket j: Int, socketsPerPort k: Int, workers: Int) -> Int {
        (i * k + j) % workers
    }
}
