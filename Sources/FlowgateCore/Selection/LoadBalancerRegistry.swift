/// The load-balancing algorithms by their API name (`lb_algorithm`). The
/// snapshot builder maps a pool's name to a factory once per build, so the hot
/// path calls the algorithm directly and never switches on its name.
public enum LoadBalancerRegistry {
    /// Every algorithm, one file each; add a new one here.
    public static let factories: [LoadBalancerFactory] = [
        RoundRobin.registration, LeastConnections.registration, SourceIPHash.registration,
    ]

    /// The accepted `lb_algorithm` values, in API documentation order (the
    /// validators list them in error messages).
    public static let names: [String] = factories.map(\.name)

    private static let byName: [String: LoadBalancerFactory] =
        Dictionary(uniqueKeysWithValues: factories.map { ($0.name, $0) })

    public static func factory(named name: String) -> LoadBalancerFactory? { byName[name] }
}
