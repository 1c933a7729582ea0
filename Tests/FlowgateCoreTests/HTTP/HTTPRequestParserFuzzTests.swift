// A seeded mutation fuzzer for the control request parser, the first code
// an unauthenticated client reaches. Inputs: the corpus in
// Tests/Fuzz/corpus/control-request/ (kept in the repository; add any input
// that ever found a bug) and mutations of it. Properties, for every input:
// - the parser returns, within the per-input bound, without trapping;
// - how the bytes are split into reads never changes the outcome (same
//   requests, same refusal): the server sees arbitrary read boundaries;
// - what it accepts is well formed (token method, origin-form target, body
//   within the limit, no CR/LF in names or values).
// Runs FLOWGATE_FUZZ_SECONDS (default 5) in the suite; set it higher, and
// FLOWGATE_FUZZ_SEED to vary the sequence, for a longer run on demand.
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import FlowgateCore

/// The seeded generator of Fuzz/MutationFuzzer.swift, with the bounded draw these targets use.
struct FuzzRandom {
    private var generator: SplitMix64
    init(state: UInt64) { generator = SplitMix64(seed: state) }
    mutating func next() -> UInt64 { generator.next() }
    mutating func below(_ n: Int) -> Int { n <= 1 ? 0 : Int(next() % UInt64(n)) }
}

enum FuzzCorpus {
    static func load(_ name: String) -> [[UInt8]] {
        let dir = #filePath.split(separator: "/").dropLast(3).joined(separator: "/")
        let path = "/" + dir + "/Fuzz/corpus/" + name
        guard let d = opendir(path) else { return [] }
        defer { closedir(d) }
        var out: [[UInt8]] = []
        while let entry = readdir(d) {
            let file = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            guard !file.hasPrefix(".") else { continue }
            guard let f = fopen(path + "/" + file, "rb") else { continue }
            var bytes: [UInt8] = []
            var buf = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = fread(&buf, 1, buf.count, f)
                if n <= 0 { break }
                bytes += buf[0..<n]
            }
            fclose(f)
            out.append(bytes)
        }
        return out
    }

    static func seconds(default d: Double) -> Double {
        getenv("FLOWGATE_FUZZ_SECONDS").flatMap { Double(String(cString: $0)) } ?? d
    }
    static func seed() -> UInt64 {
        getenv("FLOWGATE_FUZZ_SEED").flatMap { UInt64(String(cString: $0)) } ?? 0x666C_6F77_6761_7465
    }
    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

/// Mutations that reach the parser's interesting states: framing headers, line ends, numbers.
enum HTTPMutator {
    static let tokens: [String] = [
        "\r\n", "\n", "\r", "\r\n\r\n", " ", "\t", ":", ";", ",", "\0", "Content-Length: ", "Transfer-Encoding: chunked",
        "Transfer-Encoding: gzip", "Host: x", "Connection: close", "Expect: 100-continue", "HTTP/1.1", "HTTP/1.0", "HTTP/2.0",
        "0\r\n\r\n", "ffffffff", "fffffffff", "4294967296", "-1", "99999999999999999999", "\u{80}", "\u{FF}", "GET /", "POST /",
    ]

    static func mutate(_ input: [UInt8], _ rng: inout FuzzRandom, corpus: [[UInt8]]) -> [UInt8] {
        var b = input
        for _ in 0..<(1 + rng.below(4)) {
            switch rng.below(7) {
            case 0 where !b.isEmpty: b[rng.below(b.count)] ^= UInt8(1 << rng.below(8))
            case 1: b.insert(UInt8(rng.below(256)), at: rng.below(b.count + 1))
            case 2 where !b.isEmpty: b.remove(at: rng.below(b.count))
            case 3: b.insert(contentsOf: Array(tokens[rng.below(tokens.count)].utf8), at: rng.below(b.count + 1))
            case 4 where b.count > 1:
                let from = rng.below(b.count), len = 1 + rng.below(min(64, b.count - from))
                b.insert(contentsOf: b[from..<(from + len)], at: rng.below(b.count + 1))
            case 5 where !corpus.isEmpty:
                let other = corpus[rng.below(corpus.count)]
                let cut = rng.below(b.count + 1)
                b = Array(b[0..<cut]) + other[rng.below(other.count + 1)...]
            case 6 where b.count > 1:
                let from = rng.below(b.count)
                b.removeSubrange(from..<min(b.count, from + 1 + rng.below(16)))
            default: break
            }
        }
        return b.count > 200_000 ? Array(b.prefix(200_000)) : b
    }
}

@Suite struct HTTPRequestParserFuzzTests {
    enum Outcome: Equatable { case request(HTTPRequest), refused(Int, String) }

    static func run(_ bytes: [UInt8], split: [Int], limits: HTTPLimits) -> [Outcome] {
        var parser = HTTPRequestParser(limits: limits)
        var out: [Outcome] = []
        var i = 0
        var cuts = split.makeIterator()
        while i < bytes.count {
            let n = max(1, cuts.next() ?? bytes.count)
            let end = min(bytes.count, i + n)
            parser.append(Array(bytes[i..<end]))
            i = end
            while let r = parser.next() {
                switch r {
                case let .success(req): out.append(.request(req))
                case let .failure(e): out.append(.refused(e.status, e.message)); return out
                }
            }
        }
        return out
    }

    @Test func corpusAndMutationsKeepTheParsersProperties() {
        let corpus = FuzzCorpus.load("control-request")
        #expect(corpus.count >= 5, "the corpus in Tests/Fuzz/corpus/control-request is missing")
        var limits = HTTPLimits()
        limits.maxBodyBytes = 4096 // small limits reach the limit paths with small inputs
        limits.maxHeadBytes = 2048
        limits.maxLineBytes = 512
        limits.maxHeaders = 20
        var rng = FuzzRandom(state: FuzzCorpus.seed())
        let deadline = FuzzCorpus.now() + FuzzCorpus.seconds(default: 5)
        var executed = 0
        var accepted = 0
        var queue = corpus
        while FuzzCorpus.now() < deadline || executed < corpus.count {
            let input = executed < corpus.count ? corpus[executed] : HTTPMutator.mutate(queue[rng.below(queue.count)], &rng, corpus: corpus)
            let whole = Self.run(input, split: [], limits: limits)
            var split: [Int] = []
            for _ in 0..<8 { split.append(1 + rng.below(max(1, input.count / 3 + 1))) }
            let pieces = Self.run(input, split: split, limits: limits)
            let bytewise = Self.run(input, split: Array(repeating: 1, count: input.count), limits: limits)
            // Read boundaries never change the outcome.
            #expect(whole == pieces, "split \(split) changed the outcome for \(String(decoding: input, as: UTF8.self).debugDescription)")
            #expect(whole == bytewise, "byte-by-byte changed the outcome for \(String(decoding: input, as: UTF8.self).debugDescription)")
            for case let .request(r) in whole {
                accepted += 1
                #expect(r.head.method.utf8.allSatisfy(HTTPRequestParser.isTokenByte))
                #expect(r.head.target.hasPrefix("/") || r.head.target == "*")
                #expect(r.body.count <= limits.maxBodyBytes)
                #expect(r.head.headers.count <= limits.maxHeaders)
                #expect(r.head.headers.allSatisfy { !$0.name.utf8.contains(13) && !$0.name.utf8.contains(10) && !$0.value.utf8.contains(13) && !$0.value.utf8.contains(10) })
                #expect(!(r.head.value("Content-Length") != nil && r.head.value("Transfer-Encoding") != nil))
            }
            // Inputs that parse are worth mutating further.
            if case .request? = whole.first, queue.count < 512 { queue.append(input) }
            executed += 1
            if executed > 50_000_000 { break }
        }
        #expect(executed > corpus.count)
        #expect(accepted > 0)
        print("http parser fuzz: \(executed) inputs, \(accepted) requests accepted, \(queue.count) in the queue")
    }
}
