// The object model of docs/architecture.md §2. Field names in CodingKeys are the APIs' own,
// so a config file, an API response and a log line say the same thing.

/// `{FromPort, ToPort}` of AWS Global Accelerator, inclusive.
public struct PortRange: Sendable, Hashable, Codable {
    public var fromPort: Int
    public var toPort: Int
    public init(fromPort: Int, toPort: Int) { self.fromPort = fromPort; self.toPort = toPort }
    public var count: Int { toPort >= fromPort ? toPort - fromPort + 1 : 0 }
    public var ports: ClosedRange<Int> { fromPort...max(fromPort, toPort) }
    public func overlaps(_ other: PortRange) -> Bool { fromPort <= other.toPort && other.fromPort <= toPort }
    enum CodingKeys: String, CodingKey { case fromPort = "FromPort", toPort = "ToPort" }
}

/// A Global Accelerator listener plus Flowgate's own fields (`pool_id`,
/// `bind`, `idle_timeout`, `connection_log`, `tcp_defer_accept`,
/// `tcp_fastopen`), which AWS responses never echo.
public struct Listener: Sendable, Hashable, Codable {
    public var listenerArn: String
    public var portRanges: [PortRange]
    public var `protocol`: TransportProtocol
    public var clientAffinity: ClientAffinity
    public var poolID: String
    /// Bind address literal; `::` means dual stack.
    public var bind: String
    /// Seconds a flow may stay idle; defaults TCP 340, UDP 30 (Global Accelerator's values).
    public var idleTimeout: Int
    /// Log one line per flow opened/closed on this listener.
    public var connectionLog: Bool
    /// TCP_DEFER_ACCEPT on the listening sockets, in seconds: a connection is
    /// accepted only once the client has sent data (nil: off). Config file
    /// only; wrong for protocols where the server speaks first.
    public var tcpDeferAccept: Int?
    /// TCP_FASTOPEN on the listening sockets: the queue of pending Fast Open
    /// connections (nil: off). Config file only; needs the server bit (2) of
    /// the net.ipv4.tcp_fastopen sysctl.
    public var tcpFastOpen: Int?

    public static func defaultIdleTimeout(for p: TransportProtocol) -> Int { p == .tcp ? 340 : 30 }

    public init(listenerArn: String, portRanges: [PortRange], protocol: TransportProtocol,
                clientAffinity: ClientAffinity = .none, poolID: String, bind: String = "0.0.0.0",
                idleTimeout: Int? = nil, connectionLog: Bool = false, tcpDeferAccept: Int? = nil, tcpFastOpen: Int? = nil) {
        self.listenerArn = listenerArn
        self.portRanges = portRanges
        self.protocol = `protocol`
        self.clientAffinity = clientAffinity
        self.poolID = poolID
        self.bind = bind
        self.idleTimeout = idleTimeout ?? Listener.defaultIdleTimeout(for: `protocol`)
        self.connectionLog = connectionLog
        self.tcpDeferAccept = tcpDeferAccept
        self.tcpFastOpen = tcpFastOpen
    }

    enum CodingKeys: String, CodingKey {
        case listenerArn = "ListenerArn", portRanges = "PortRanges", `protocol` = "Protocol"
        case clientAffinity = "ClientAffinity", poolID = "pool_id", bind, idleTimeout = "idle_timeout"
        case connectionLog = "connection_log", tcpDeferAccept = "tcp_defer_accept", tcpFastOpen = "tcp_fastopen"
    }
}

/// A Global Accelerator accelerator: up to 10 listeners.
public struct Accelerator: Sendable, Hashable, Codable {
    public var acceleratorArn: String
    public var name: String
    public var listeners: [Listener]
    public init(acceleratorArn: String, name: String = "", listeners: [Listener]) {
        self.acceleratorArn = acceleratorArn; self.name = name; self.listeners = listeners
    }
    enum CodingKeys: String, CodingKey { case acceleratorArn = "AcceleratorArn", name = "Name", listeners }
}

/// ELB v3 `session_persistence`.
public struct SessionPersistence: Sendable, Hashable, Codable {
    public var type: PersistenceType
    public var cookieName: String?
    /// Minutes.
    public var persistenceTimeout: Int
    public init(type: PersistenceType, cookieName: String? = nil, persistenceTimeout: Int) {
        self.type = type; self.cookieName = cookieName; self.persistenceTimeout = persistenceTimeout
    }
    enum CodingKeys: String, CodingKey {
        case type, cookieName = "cookie_name", persistenceTimeout = "persistence_timeout"
    }
}

/// ELB v3 `slow_start`: duration 30..1200 seconds, default 30.
public struct SlowStart: Sendable, Hashable, Codable {
    public var enable: Bool
    public var duration: Int
    public init(enable: Bool = false, duration: Int = 30) { self.enable = enable; self.duration = duration }
}

/// ELB v3 `connection_drain`: timeout 10..300 seconds; off by default.
public struct ConnectionDrain: Sendable, Hashable, Codable {
    public var enable: Bool
    public var timeout: Int
    public init(enable: Bool = false, timeout: Int = 300) { self.enable = enable; self.timeout = timeout }
}

/// An ELB v3 member.
public struct Member: Sendable, Hashable, Codable {
    public var id: String
    public var name: String
    /// IPv4 or IPv6 literal.
    public var address: String
    /// nil: forward to the port the client connected to (Global Accelerator port ranges).
    public var protocolPort: Int?
    /// 0..100; 0 takes no new flows.
    public var weight: Int
    public var adminStateUp: Bool

    public init(id: String, name: String = "", address: String, protocolPort: Int?, weight: Int = 1, adminStateUp: Bool = true) {
        self.id = id; self.name = name; self.address = address
        self.protocolPort = protocolPort; self.weight = weight; self.adminStateUp = adminStateUp
    }
    enum CodingKeys: String, CodingKey {
        case id, name, address, protocolPort = "protocol_port", weight, adminStateUp = "admin_state_up"
    }
}

/// An ELB v3 pool.
public struct Pool: Sendable, Hashable, Codable {
    public var id: String
    public var name: String
    public var description: String
    public var `protocol`: PoolProtocol
    /// A name registered in `LoadBalancerRegistry` (ROUND_ROBIN, LEAST_CONNECTIONS, SOURCE_IP).
    public var lbAlgorithm: String
    public var sessionPersistence: SessionPersistence?
    public var slowStart: SlowStart
    public var connectionDrain: ConnectionDrain
    public var adminStateUp: Bool
    public var healthmonitorID: String?
    public var members: [Member]
    /// Flowgate's own, HTTP pools only (no ELB v3 pool field fits; ELB v3 puts
    /// inserted headers on listeners, which here are Global Accelerator's):
    /// false turns off the X-Forwarded-For/-Proto/-Port a request gets. nil
    /// (absent from the file and from older state files) means on.
    public var xForwardedHeaders: Bool?
    /// Whether requests get X-Forwarded-For/-Proto/-Port.
    public var addsForwardedHeaders: Bool { xForwardedHeaders ?? true }

    public init(id: String, name: String = "", description: String = "", protocol: PoolProtocol,
                lbAlgorithm: String = "ROUND_ROBIN", sessionPersistence: SessionPersistence? = nil,
                slowStart: SlowStart = SlowStart(), connectionDrain: ConnectionDrain = ConnectionDrain(),
                adminStateUp: Bool = true, healthmonitorID: String? = nil, members: [Member] = []) {
        self.id = id; self.name = name; self.description = description; self.protocol = `protocol`
        self.lbAlgorithm = lbAlgorithm; self.sessionPersistence = sessionPersistence
        self.slowStart = slowStart; self.connectionDrain = connectionDrain
        self.adminStateUp = adminStateUp; self.healthmonitorID = healthmonitorID; self.members = members
    }
    enum CodingKeys: String, CodingKey {
        case id, name, description, `protocol`, lbAlgorithm = "lb_algorithm"
        case sessionPersistence = "session_persistence", slowStart = "slow_start"
        case connectionDrain = "connection_drain", adminStateUp = "admin_state_up"
        case healthmonitorID = "healthmonitor_id", members, xForwardedHeaders = "x_forwarded_headers"
    }
}

/// An ELB v3 health monitor (docs/architecture.md §10, issue 6).
public struct HealthMonitor: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Hashable, CaseIterable, Codable {
        case tcp = "TCP", udpConnect = "UDP_CONNECT", http = "HTTP"
    }
    public var id: String
    public var name: String
    public var type: Kind
    /// Seconds between checks, 1..50.
    public var delay: Int
    /// Seconds per check, 1..50.
    public var timeout: Int
    /// Successes to turn ONLINE, 1..10.
    public var maxRetries: Int
    /// Failures to turn OFFLINE, 1..10.
    public var maxRetriesDown: Int
    public var monitorPort: Int?
    public var urlPath: String
    public var expectedCodes: String
    public var adminStateUp: Bool

    public init(id: String, name: String = "", type: Kind, delay: Int = 5, timeout: Int = 3,
                maxRetries: Int = 3, maxRetriesDown: Int = 3, monitorPort: Int? = nil,
                urlPath: String = "/", expectedCodes: String = "200", adminStateUp: Bool = true) {
        self.id = id; self.name = name; self.type = type; self.delay = delay; self.timeout = timeout
        self.maxRetries = maxRetries; self.maxRetriesDown = maxRetriesDown; self.monitorPort = monitorPort
        self.urlPath = urlPath; self.expectedCodes = expectedCodes; self.adminStateUp = adminStateUp
    }
    enum CodingKeys: String, CodingKey {
        case id, name, type, delay, timeout, maxRetries = "max_retries", maxRetriesDown = "max_retries_down"
        case monitorPort = "monitor_port", urlPath = "url_path", expectedCodes = "expected_codes"
        case adminStateUp = "admin_state_up"
    }
}

/// Credentials the TCP control endpoint accepts.
public struct AWSCredential: Sendable, Hashable, Codable {
    public var accessKeyID: String
    public var secretAccessKey: String
    public init(accessKeyID: String, secretAccessKey: String) { self.accessKeyID = accessKeyID; self.secretAccessKey = secretAccessKey }
    enum CodingKeys: String, CodingKey { case accessKeyID = "access_key_id", secretAccessKey = "secret_access_key" }
}

public struct HuaweiCredential: Sendable, Hashable, Codable {
    public var ak: String
    public var sk: String
    public init(ak: String, sk: String) { self.ak = ak; self.sk = sk }
}

/// The `control:` section of the config file (docs/architecture.md §12, §14).
public struct ControlConfig: Sendable, Hashable, Codable {
    public var unixSocket: String?
    /// Optional TCP endpoint, `host:port` (`[::1]:9900` for IPv6).
    public var listen: String?
    public var region: String
    public var allowUnsigned: Bool
    public var awsCredentials: [AWSCredential]
    public var huaweiCredentials: [HuaweiCredential]

    public init(unixSocket: String? = "/run/flowgate/control.sock", listen: String? = nil, region: String = "us-west-2",
                allowUnsigned: Bool = false, awsCredentials: [AWSCredential] = [], huaweiCredentials: [HuaweiCredential] = []) {
        self.unixSocket = unixSocket; self.listen = listen; self.region = region
        self.allowUnsigned = allowUnsigned; self.awsCredentials = awsCredentials; self.huaweiCredentials = huaweiCredentials
    }
    enum CodingKeys: String, CodingKey {
        case unixSocket = "unix_socket", listen, region, allowUnsigned = "allow_unsigned"
        case awsCredentials = "aws_credentials", huaweiCredentials = "huawei_credentials"
    }
}

/// Data-plane tunables (Flowgate's own; all have defaults).
public struct Tuning: Sendable, Hashable, Codable {
    /// Seconds SIGTERM waits for established flows before closing them.
    public var drainTimeout: Int = 10
    /// Max live UDP flows per listener per worker (least recently used evicted past it, counted).
    public var maxUDPFlows: Int = 262_144
    /// Max entries in each sticky table (persistence, affinity); oldest evicted.
    public var maxStickyEntries: Int = 1_048_576
    /// SO_RCVBUF / SO_SNDBUF for UDP sockets, bytes.
    public var udpSocketBuffer: Int = 4 * 1024 * 1024
    /// Per-worker TCP scratch buffer, bytes.
    public var tcpScratchBuffer: Int = 1024 * 1024
    /// Bytes a TCP connection may hold per direction while its peer is blocked.
    public var tcpMaxPending: Int = 1024 * 1024
    /// Seconds to wait for a member's TCP connect before trying the next.
    public var connectTimeout: Int = 3
    /// How a listener's port ranges are served (docs/architecture.md §20).
    public var portRanges: PortRangeMode = .auto
    public init() {}
    enum CodingKeys: String, CodingKey {
        case drainTimeout = "drain_timeout", maxUDPFlows = "max_udp_flows", maxStickyEntries = "max_sticky_entries"
        case udpSocketBuffer = "udp_socket_buffer", tcpScratchBuffer = "tcp_scratch_buffer"
        case tcpMaxPending = "tcp_max_pending", connectTimeout = "connect_timeout", portRanges = "port_ranges"
    }
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = Tuning()
        drainTimeout = try c.decodeIfPresent(Int.self, forKey: .drainTimeout) ?? d.drainTimeout
        maxUDPFlows = try c.decodeIfPresent(Int.self, forKey: .maxUDPFlows) ?? d.maxUDPFlows
        maxStickyEntries = try c.decodeIfPresent(Int.self, forKey: .maxStickyEntries) ?? d.maxStickyEntries
        udpSocketBuffer = try c.decodeIfPresent(Int.self, forKey: .udpSocketBuffer) ?? d.udpSocketBuffer
        tcpScratchBuffer = try c.decodeIfPresent(Int.self, forKey: .tcpScratchBuffer) ?? d.tcpScratchBuffer
        tcpMaxPending = try c.decodeIfPresent(Int.self, forKey: .tcpMaxPending) ?? d.tcpMaxPending
        connectTimeout = try c.decodeIfPresent(Int.self, forKey: .connectTimeout) ?? d.connectTimeout
        portRanges = try c.decodeIfPresent(PortRangeMode.self, forKey: .portRanges) ?? d.portRanges
    }
}

/// `tuning.port_ranges`: `per_port` binds one socket per port per worker;
/// `lookup` serves every port of a listener from one socket per worker
/// through a BPF sk_lookup program (needs Linux 5.9, CAP_BPF and
/// CAP_NET_ADMIN); `auto` uses `lookup` where the kernel and privileges
/// allow it and `per_port` otherwise (decided once at start, logged).
public enum PortRangeMode: String, Sendable, Hashable, CaseIterable, Codable {
    case auto
    case perPort = "per_port"
    case lookup
}

/// The whole declared state: what the config file says, plus accepted
/// API updates (the state file holds the same shape).
public struct FlowgateConfig: Sendable, Hashable, Codable {
    /// nil = one worker per core.
    public var workers: Int?
    public var stateFile: String
    public var control: ControlConfig
    public var tuning: Tuning
    public var projectID: String
    public var accelerators: [Accelerator]
    public var pools: [Pool]
    public var healthmonitors: [HealthMonitor]
    /// nil: standalone (the state file is the store); set: a fleet member (docs/cluster.md).
    public var cluster: ClusterConfig?
    /// The name of the cookie HTTP_COOKIE pools insert, one for every pool
    /// (config file only; nil: `HTTPCookieCodec.defaultCookieName`).
    public var httpCookieName: String?
    /// The cookie name in effect.
    public var effectiveHTTPCookieName: String { httpCookieName ?? HTTPCookieCodec.defaultCookieName }

    public init(workers: Int? = nil, stateFile: String = "/var/lib/flowgate/state.json",
                control: ControlConfig = ControlConfig(), tuning: Tuning = Tuning(),
                projectID: String, accelerators: [Accelerator] = [], pools: [Pool] = [],
                healthmonitors: [HealthMonitor] = [], cluster: ClusterConfig? = nil) {
        self.workers = workers; self.stateFile = stateFile; self.control = control; self.tuning = tuning
        self.projectID = projectID; self.accelerators = accelerators; self.pools = pools
        self.healthmonitors = healthmonitors; self.cluster = cluster
    }
    enum CodingKeys: String, CodingKey {
        case workers, stateFile = "state_file", control, tuning, projectID = "project_id"
        case accelerators, pools, healthmonitors, cluster, httpCookieName = "http_cookie_name"
    }

    /// Every listener of every accelerator, in file order.
    public var allListeners: [Listener] { accelerators.flatMap(\.listeners) }
    public func pool(id: String) -> Pool? { pools.first { $0.id == id } }
}
