// Enumerations of the two cloud APIs, spelled exactly as on the wire
// (docs/api.md): the raw values are what config files, requests and responses carry.

/// A listener's protocol (AWS Global Accelerator `Protocol`).
public enum TransportProtocol: String, Sendable, Hashable, CaseIterable, Codable {
    case tcp = "TCP"
    case udp = "UDP"
}

/// A pool's protocol (ELB v3 `protocol`). A TCP listener may front a TCP or
/// HTTP pool, a UDP listener a UDP pool (docs/architecture.md §2).
public enum PoolProtocol: String, Sendable, Hashable, CaseIterable, Codable {
    case tcp = "TCP"
    case udp = "UDP"
    case http = "HTTP"
}

/// AWS Global Accelerator `ClientAffinity`: NONE hashes the 5-tuple,
/// SOURCE_IP the (source IP, destination IP) 2-tuple.
public enum ClientAffinity: String, Sendable, Hashable, CaseIterable, Codable {
    case none = "NONE"
    case sourceIP = "SOURCE_IP"
}

/// ELB v3 `session_persistence.type`.
public enum PersistenceType: String, Sendable, Hashable, CaseIterable, Codable {
    case sourceIP = "SOURCE_IP"
    case httpCookie = "HTTP_COOKIE"
    case appCookie = "APP_COOKIE"
}

/// ELB v3 member `operating_status`.
public enum OperatingStatus: String, Sendable, Hashable, CaseIterable, Codable {
    case online = "ONLINE"
    case offline = "OFFLINE"
    case noMonitor = "NO_MONITOR"
}
