/// SOURCE_IP: consistent hashing of the client address over a Maglev lookup
/// table (Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load
/// Balancer", NSDI 2016, §3.4 population, table size 65537 per §5.3; see
/// `MaglevTable`). The same client reaches the same member on every Flowgate
/// instance with the same config, and a removed member's clients are the
/// main ones that move.
///
/// Tables are built here, when the snapshot is built, never per flow:
/// - `full`: every member that is admin up with weight > 0, including members
///   the health checker has marked down (so they get their clients back when
///   they return, without a rebuild);
/// - `base`: the same without the members ramping up under slow start when
///   the snapshot was built, i.e. where their keys went before they joined.
///
/// Per flow: the key's slot owner takes it if usable. A ramping member takes a
/// key only when a second, independent hash of the key (mapped to [0, 1)) is
/// under its ramp fraction, so as the fraction grows keys move to it
/// gradually, never back, and every instance agrees (docs/architecture.md §3.5).
/// A key it does not take goes where `base` sends it. A key whose owner is
/// down or already failed for this flow probes further slots in a step fixed
/// by the key, which is where it also went while that member was down: keys of
/// healthy members never move when another member fails.
///
/// Weights are ignored (ELB documents SOURCE_IP so) unless
/// `LoadBalancerOptions.sourceIPHonoursWeights` is set.
public final class SourceIPHash: LoadBalancer {
    public static let apiName = "SOURCE_IP"
    public static let registration = LoadBalancerFactory(name: apiName) { members, options in
        SourceIPHash(members, options: options)
    }
    /// Probes before giving up on the table and scanning members in order.
    static let maxProbes = 64

    public let full: MaglevTable
    public let base: MaglevTable?
    /// Table index → member index, for `full` and `base`.
    private let fullMembers: [Int]
    private let baseMembers: [Int]

    public init(_ members: PoolMembers, options: LoadBalancerOptions = LoadBalancerOptions()) {
        let inTable = (0..<members.count).filter { members.configEligible[$0] }
        let ramping = Set(inTable.filter { members.rampFraction($0, now: members.builtAt) < 1 })
        func build(_ indices: [Int]) -> MaglevTable {
            MaglevTable(names: indices.map { SourceIPHash.tableName(members, $0) },
                        weights: options.sourceIPHonoursWeights ? indices.map { members.weights[$0] } : nil)
        }
        fullMembers = inTable
        full = build(inTable)
        if ramping.isEmpty || ramping.count == inTable.count {
            baseMembers = []; base = nil
        } else {
            baseMembers = inTable.filter { !ramping.contains($0) }
            base = build(baseMembers)
        }
    }

    /// A member's identity in the table: address and port, so instances that
    /// gave the same backend different ids still agree; the id is added only
    /// when two members of the pool share an address and port.
    static func tableName(_ members: PoolMembers, _ i: Int) -> String {
        let p = members.plans[i]
        let port = p.member.protocolPort.map(String.init) ?? "*"
        let name = p.address.withPort(port)
        let clash = members.plans.indices.contains { j in
            j != i && members.plans[j].address == p.address && members.plans[j].member.protocolPort == p.member.protocolPort
        }
        return clash ? "\(name)#\(p.id)" : name
    }

    public func choose(_ members: PoolMembers, _ input: PickInput) -> Int? {
        guard full.size > 0, !fullMembers.isEmpty else { return nil }
        let h = StableHash.clientSlot(input.flow.client)
        let m = UInt64(full.size)
        var slot = Int(h % m)
        let step = Int((h >> 32) % (m - 1) + 1)
        var rampUnit = -1.0   // computed only when a ramping member owns the slot

        func takes(_ i: Int) -> Bool {
            guard members.usable(i, excluding: input.excluding) else { return false }
            let f = members.rampFraction(i, now: input.now)
            if f >= 1 { return true }
            if rampUnit < 0 { rampUnit = StableHash.clientRamp(input.flow.client) }
            return rampUnit < f
        }

        // The first usable member met, ramp or not: the answer when every
        // usable member is still ramping and declines the key (serving beats
        // refusing, and it is still a hashed, agreed choice).
        var firstUsable: Int?
        for _ in 0..<SourceIPHash.maxProbes {
            let owner = fullMembers[full[slot]]
            if takes(owner) { return owner }
            if firstUsable == nil, members.usable(owner, excluding: input.excluding) { firstUsable = owner }
            if let base {
                let alt = baseMembers[base[slot]]
                if alt != owner && takes(alt) { return alt }
            }
            slot = (slot + step) % full.size
        }
        // Nearly every member is unusable: any usable one, in config order.
        return firstUsable ?? fullMembers.first { members.usable($0, excluding: input.excluding) }
    }
}
