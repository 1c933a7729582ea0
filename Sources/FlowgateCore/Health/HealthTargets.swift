/// What the checker checks for one member of one monitored pool.
public struct HealthTargetSpec: Sendable, Hashable {
    public var poolID: String
    public var memberID: String
    public var address: IPAddress
    public var port: Int
    public var monitor: HealthMonitor
    public init(poolID: String, memberID: String, address: IPAddress, port: Int, monitor: HealthMonitor) {
        self.poolID = poolID; self.memberID = memberID; self.address = address; self.port = port; self.monitor = monitor
    }
}

/// Which members a snapshot's health monitors cover (pure).
public enum HealthTargets {
    /// Every member under an enabled monitor. Port: `monitor_port`, else the
    /// member's `protocol_port`, else (a member that follows the listener's
    /// port) the lowest port of the first listener on its pool.
    public static func of(_ snapshot: RuntimeSnapshot) -> [HealthTargetSpec] {
        let config = snapshot.config
        var monitors: [String: HealthMonitor] = [:]
        for m in config.healthmonitors where m.adminStateUp { monitors[m.id] = m }
        var specs: [HealthTargetSpec] = []
        for pool in config.pools {
            guard let id = pool.healthmonitorID, let monitor = monitors[id] else { continue }
            let listenerPort = snapshot.listeners.first { $0.pool.id == pool.id }?.ports.first
            for m in pool.members {
                guard let address = IPAddress(m.address),
                      let port = monitor.monitorPort ?? m.protocolPort ?? listenerPort else { continue }
                specs.append(HealthTargetSpec(poolID: pool.id, memberID: m.id, address: address, port: port, monitor: monitor))
            }
        }
        return specs
    }
}
