import FlowgateSystem
import Synchronization

/// The per-listener TCP options of the config file (`tcp_defer_accept`,
/// `tcp_fastopen`, docs/architecture.md §19), applied by TCPAcceptor.
enum TCPListenerOptions {
    /// <netinet/tcp.h> TCP_DEFER_ACCEPT and TCP_FASTOPEN (not exported by Swift's Glibc module).
    static let deferAccept: Int32 = 9
    static let fastOpen: Int32 = 23

    private static let warned = Mutex(false)

    /// A listening socket takes TCP_FASTOPEN whatever the sysctl says, but
    /// the kernel only answers Fast Open SYNs when net.ipv4.tcp_fastopen has
    /// the server bit (2): said once per process, since it is the usual
    /// reason the option has no effect.
    static func warnIfFastOpenServerIsOff() {
        let first = warned.withLock { w -> Bool in defer { w = true }; return !w }
        guard first, let bytes = try? System.readFile("/proc/sys/net/ipv4/tcp_fastopen"),
              let value = Int(String(decoding: bytes, as: UTF8.self).filter { !$0.isWhitespace }) else { return }
        if value & 2 == 0 {
            Log.warn("tcp_fastopen_server_off", ["sysctl": "net.ipv4.tcp_fastopen", "value": value,
                                                 "fix": "set bit 2 (e.g. 3) for listeners with tcp_fastopen to answer Fast Open"])
        }
    }
}
