/// The load-balancing algorithms by their API name (`lb_algorithm`).
/// STUB: the selection work turns this into the real registry (one file per
/// algorithm, each registering itself), keeping `names` for the validators.
public enum LoadBalancerRegistry {
    public static let names: [String] = ["ROUND_ROBIN", "LEAST_CONNECTIONS", "SOURCE_IP"]
}
