// A small deterministic mutation fuzzer for XCTest/swift-testing targets:
// inputs are corpus entries mutated by a seeded RNG (the same seed gives the
// same sequence of inputs), with byte-level mutations, dictionary tokens and
// splices. It knows nothing about what it feeds: a target supplies the corpus,
// the tokens and a check for each input (Fuzz/ConfigLoaderFuzzTests.swift).
// Self-contained (standard library only), so another test target can reuse it.

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and fully determined by its seed.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

struct MutationFuzzer<RNG: RandomNumberGenerator> {
    var rng: RNG
    private(set) var corpus: [[UInt8]]
    let tokens: [[UInt8]]
    /// Mutants are cut to this many bytes.
    let maxSize: Int
    /// How many inputs `keep` may add to the corpus.
    let maxAdded: Int
    private var added = 0

    init(rng: RNG, corpus: [[UInt8]], tokens: [[UInt8]] = [], maxSize: Int = 64 * 1024, maxAdded: Int = 256) {
        precondition(!corpus.isEmpty, "a fuzzer needs at least one corpus entry")
        self.rng = rng; self.corpus = corpus; self.tokens = tokens; self.maxSize = maxSize; self.maxAdded = maxAdded
    }

    /// Adds an interesting input (e.g. one with a new outcome) so later mutants build on it.
    mutating func keep(_ input: [UInt8]) {
        guard added < maxAdded else { return }
        corpus.append(input); added += 1
    }

    /// The next input: a corpus entry with 1 to 8 stacked mutations.
    mutating func next() -> [UInt8] {
        var data = corpus[int(corpus.count)]
        for _ in 0..<(1 + int(8)) { mutate(&data) }
        if data.count > maxSize { data.removeLast(data.count - maxSize) }
        return data
    }

    static var structural: [UInt8] { Array(" \n\t:-[]{},&*#'\"!|>?%@`".utf8) }

    private mutating func int(_ bound: Int) -> Int { bound <= 1 ? 0 : Int.random(in: 0..<bound, using: &rng) }

    private mutating func mutate(_ d: inout [UInt8]) {
        let n = d.count
        switch int(11) {
        case 0 where n > 0: d[int(n)] ^= UInt8(1) << UInt8(int(8))                    // flip a bit
        case 1 where n > 0: d[int(n)] = UInt8.random(in: 0...255, using: &rng)        // any byte
        case 2 where n > 0: d[int(n)] = Self.structural[int(Self.structural.count)]  // a structural byte
        case 3 where n > 0:                                                           // delete a range
            let at = int(n); d.removeSubrange(at..<min(n, at + 1 + int(32)))
        case 4 where n > 0:                                                           // duplicate a range
            let at = int(n), len = 1 + int(min(64, n - at))
            d.insert(contentsOf: d[at..<min(n, at + len)], at: int(n + 1))
        case 5 where !tokens.isEmpty: d.insert(contentsOf: tokens[int(tokens.count)], at: int(n + 1))  // a token
        case 6:                                                                       // splice another entry
            let other = corpus[int(corpus.count)]
            guard !other.isEmpty else { return }
            let from = int(other.count), len = 1 + int(min(256, other.count - from))
            d.insert(contentsOf: other[from..<min(other.count, from + len)], at: int(n + 1))
        case 7 where n > 0: d.removeLast(int(n))                                      // truncate
        case 8: lines(&d) { l, f in if l.count > 1 { let i = f.int(l.count), j = f.int(l.count); l.swapAt(i, j) } }
        case 9: lines(&d) { l, f in if !l.isEmpty { let i = f.int(l.count); l.insert(contentsOf: Array(repeating: l[i], count: 1 + f.int(16)), at: i) } }
        case 10 where n > 0:                                                          // a number written there replaced
            let numbers = ["0", "-1", "65535", "65536", "4294967296", "9223372036854775807", "-9223372036854775808",
                           "99999999999999999999", "1e9", "0x10", ".inf", "NaN"]
            let text = Array(numbers[int(numbers.count)].utf8)
            let isDigit = { (b: UInt8) in (48...57).contains(b) }
            var at = int(n)
            while at < n && !isDigit(d[at]) { at += 1 }
            var end = at
            while end < n && isDigit(d[end]) { end += 1 }
            d.replaceSubrange(at..<end, with: text)
        default: break
        }
    }

    private mutating func lines(_ d: inout [UInt8], _ edit: (inout [ArraySlice<UInt8>], inout MutationFuzzer) -> Void) {
        var l = d.split(separator: 10, omittingEmptySubsequences: false)
        edit(&l, &self)
        d = Array(l.joined(separator: [10]))
    }
}
