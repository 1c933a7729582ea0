// The config file's shape (docs/architecture.md §14): which keys each mapping allows, in
// the order the documentation lists them (that order is what an "unknown
// key" error prints).

enum ConfigSchema {
    static let top = ["workers", "state_file", "control", "tuning", "http_cookie_name", "accelerators", "project_id", "pools",
                      "healthmonitors", "cluster"]
    static let cluster = ["name", "instance", "etcd"]
    static let clusterEtcd = ["endpoints", "username", "password", "dial_timeout", "request_timeout"]
    static let control = ["unix_socket", "listen", "region", "allow_unsigned", "credentials"]
    static let credentials = ["aws", "huawei"]
    static let awsCredential = ["access_key_id", "secret_access_key"]
    static let huaweiCredential = ["ak", "sk"]
    static let tuning = ConfigValidator.tuningBounds.map(\.key) + ["port_ranges"]
    static let accelerator = ["AcceleratorArn", "Name", "listeners"]
    static let listener = ["ListenerArn", "PortRanges", "Protocol", "ClientAffinity", "pool_id", "bind", "idle_timeout", "connection_log",
                           "tcp_defer_accept", "tcp_fastopen"]
    static let portRange = ["FromPort", "ToPort"]
    static let pool = ["id", "name", "description", "protocol", "lb_algorithm", "session_persistence", "slow_start",
                       "connection_drain", "admin_state_up", "healthmonitor_id", "members", "x_forwarded_headers"]
    static let sessionPersistence = ["type", "cookie_name", "persistence_timeout"]
    static let slowStart = ["enable", "duration"]
    static let connectionDrain = ["enable", "timeout"]
    static let member = ["id", "name", "address", "protocol_port", "weight", "admin_state_up"]
    static let healthMonitor = ["id", "name", "type", "delay", "timeout", "max_retries", "max_retries_down",
                                "monitor_port", "url_path", "expected_codes", "admin_state_up"]
}
