// The `cluster:` section of the config file (issue 14, docs/cluster.md): this
// instance's place in a fleet sharing listeners, pools, members and health
// monitors through etcd. Absent: standalone, the state file is the store.

/// Where the fleet's shared objects live and how to reach etcd.
public struct ClusterConfig: Sendable, Hashable, Codable {
    /// Keys live under `/flowgate/<name>/`.
    public var name: String
    /// Unique per instance: its membership key is `/flowgate/<name>/instances/<instance>`.
    public var instance: String
    /// etcd client URLs, `http://host:port`, tried in order on failure.
    public var endpoints: [String]
    public var username: String?
    public var password: String?
    /// Seconds to wait for a TCP connection to one endpoint before the next.
    public var dialTimeout: Int
    /// Seconds one etcd request may take end to end (all endpoints tried).
    public var requestTimeout: Int

    public static let defaultDialTimeout = 2
    public static let defaultRequestTimeout = 5

    public init(name: String, instance: String, endpoints: [String], username: String? = nil, password: String? = nil,
                dialTimeout: Int = ClusterConfig.defaultDialTimeout, requestTimeout: Int = ClusterConfig.defaultRequestTimeout) {
        self.name = name; self.instance = instance; self.endpoints = endpoints
        self.username = username; self.password = password
        self.dialTimeout = dialTimeout; self.requestTimeout = requestTimeout
    }

    enum CodingKeys: String, CodingKey {
        case name, instance, endpoints, username, password
        case dialTimeout = "dial_timeout", requestTimeout = "request_timeout"
    }

    /// `/flowgate/<name>/`, the prefix every key of this cluster starts with.
    public var prefix: String { "/flowgate/\(name)/" }
}
