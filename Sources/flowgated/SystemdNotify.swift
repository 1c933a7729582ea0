import FlowgateSystem

/// sd_notify(3) spoken directly: newline-separated KEY=VALUE lines in one
/// datagram to $NOTIFY_SOCKET (a path, or an abstract name when it starts
/// with '@'). Without NOTIFY_SOCKET every call does nothing, so the daemon
/// runs the same in a terminal.
struct SystemdNotify: Sendable {
    let socketPath: String?

    init(socketPath: String? = System.environment("NOTIFY_SOCKET")) {
        self.socketPath = (socketPath?.isEmpty ?? true) ? nil : socketPath
    }

    func send(_ lines: String...) {
        guard let path = socketPath else { return }
        do {
            try System.sendDatagram(lines.joined(separator: "\n"), toUnixPath: path)
        } catch {
            Log.warn("notify_failed", ["socket": path, "error": error.reason])
        }
    }

    /// READY=1 with a status line (after every listener is bound).
    func ready(_ status: String) { send("READY=1", "STATUS=\(status)") }

    /// RELOADING=1 must carry MONOTONIC_USEC for Type=notify-reload
    /// (systemd.service(5)); plain notify units accept it too.
    func reloading() { send("RELOADING=1", "MONOTONIC_USEC=\(System.monotonicMicroseconds())", "STATUS=reloading configuration") }

    func stopping(_ status: String) { send("STOPPING=1", "STATUS=\(status)") }

    func status(_ status: String) { send("STATUS=\(status)") }
}
