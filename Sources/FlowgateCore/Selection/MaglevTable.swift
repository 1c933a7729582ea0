/// A Maglev lookup table: Eisenbud et al., "Maglev: A Fast and Reliable
/// Software Network Load Balancer", NSDI 2016, §3.4 (Pseudocode 1). Each
/// member walks its own permutation of the table's slots,
///     permutation[i][j] = (offset_i + j × skip_i) mod M,
///     offset_i = h1(name_i) mod M,  skip_i = h2(name_i) mod (M − 1) + 1,
/// and the members take turns claiming their next unclaimed slot until every
/// slot is owned. Each member ends up with M/N slots (±1), and adding or
/// removing a member moves few keys besides its own (§3.4, §5.3).
///
/// M must be prime so every skip generates the whole table; 65537 is the size
/// §5.3 recommends for up to a few hundred members.
///
/// Members are ordered by name before they take turns, and names are hashed
/// with fixed keys, so every Flowgate instance with the same members builds
/// the same table, whatever order the config lists them in.
public struct MaglevTable: Sendable {
    public static let defaultSize = 65537

    public let size: Int
    /// Slot → index into the `names` the table was built from.
    public let slots: [Int32]

    /// `weights`: nil gives every member one turn per round, as in the paper;
    /// otherwise a member takes turns in proportion to its weight (the paper's
    /// suggestion for weighted backends: "adjusting the relative frequency of
    /// the backends' turns").
    public init(names: [String], weights: [Int]? = nil, size: Int = MaglevTable.defaultSize) {
        precondition(size > 1, "table size must be a prime > 1")
        precondition(weights == nil || weights!.count == names.count, "one weight per name")
        precondition(weights?.allSatisfy { $0 > 0 } ?? true, "weights in a table must be positive")
        self.size = size
        let n = names.count
        guard n > 0 else { slots = []; return }
        let m = UInt64(size)
        let order = names.indices.sorted { names[$0] != names[$1] ? names[$0] < names[$1] : $0 < $1 }
        var offset = [Int](repeating: 0, count: n), skip = [Int](repeating: 0, count: n)
        for i in 0..<n {
            offset[i] = Int(StableHash.memberOffset(names[i]) % m)
            skip[i] = Int(StableHash.memberSkip(names[i]) % (m - 1) + 1)
        }
        let w = weights ?? [Int](repeating: 1, count: n)
        let maxWeight = max(1, w.max() ?? 1)
        var credit = [Int](repeating: 0, count: n)
        var next = [Int](repeating: 0, count: n)
        var table = [Int32](repeating: -1, count: size)
        var filled = 0
        // The heaviest member takes a turn every round, so each round claims
        // at least one slot and the loop ends.
        while filled < size {
            for i in order {
                credit[i] += w[i]
                guard credit[i] >= maxWeight else { continue }
                credit[i] -= maxWeight
                var c = (offset[i] + next[i] * skip[i]) % size
                while table[c] >= 0 {
                    next[i] += 1
                    c = (offset[i] + next[i] * skip[i]) % size
                }
                table[c] = Int32(i)
                next[i] += 1
                filled += 1
                if filled == size { break }
            }
        }
        slots = table
    }

    @inline(__always) public subscript(slot: Int) -> Int { Int(slots[slot]) }
}
