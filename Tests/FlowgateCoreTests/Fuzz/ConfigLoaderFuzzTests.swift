// Fuzzes the config loader (issue 11, "a fuzz target for the config loader"):
// mutants of the corpus in Tests/Fuzz/corpus/config/ must never crash it, must
// load or fail with located issues, and must each be answered within a time
// bound. ~20 s in the suite; longer on demand:
//   FLOWGATE_FUZZ_SECONDS=600 swift test --filter ConfigLoaderFuzz
// FLOWGATE_FUZZ_SEED picks another deterministic sequence. The input being
// parsed is written to $TMPDIR/flowgate-fuzz-config-current.yaml first, so a
// crash leaves it behind; add it to the corpus once fixed.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import FlowgateCore

@Suite struct ConfigLoaderFuzz {
    static let corpusDir: String = {
        var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)  // Tests/FlowgateCoreTests/Fuzz/ConfigLoaderFuzzTests.swift -> Tests
        return parts.joined(separator: "/") + "/Fuzz/corpus/config"
    }()

    static func env(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }

    static func corpus() throws -> [[UInt8]] {
        let names = try FileManager.default.contentsOfDirectory(atPath: corpusDir).filter { $0.hasSuffix(".yaml") }.sorted()
        return try names.map { name in Array(try Data(contentsOf: URL(fileURLWithPath: corpusDir + "/" + name))) }
    }

    /// YAML and Flowgate words the byte mutations would rarely spell.
    static let tokens: [[UInt8]] = [
        "&a ", "*a", "&b ", "*b", "<<: *a", "- ", ": ", "? ", "[", "]", "{", "}", ", ", "\n  ", "\n- ", "|\n  ", ">-\n  ", "'", "\"",
        "!!str ", "!!int ", "!!map ", "!!binary ", "%YAML 1.2\n---\n", "---\n", "...\n", "~", "null", "true", "\"\\u0000\"", "\"\\uD800\"",
        "accelerators:", "listeners:", "pools:", "members:", "healthmonitors:", "PortRanges:", "FromPort: ", "ToPort: ",
        "Protocol: UDP", "pool_id: ", "protocol_port: ", "weight: ", "bind: \"::\"", "address: ::1", "workers: auto",
        "tuning:", "control:", "session_persistence:", "type: HTTP_COOKIE", "cookie_name: ", "slow_start:", "state_file: ",
        "lb_algorithm: SOURCE_IP", "ClientAffinity: SOURCE_IP", "healthmonitor_id: ", "id: 161835ef-0207-4300-ab5a-cf9c48f9f5ad",
    ].map { Array($0.utf8) }

    /// Per input: a debug build answers the largest corpus entry (the alias bomb) in ~0.3 s.
    static let perInputBound: Duration = .seconds(3)

    @Test func mutatedConfigsLoadOrFailLocatedAndNeverCrash() throws {
        let seconds = Double(Self.env("FLOWGATE_FUZZ_SECONDS") ?? "") ?? 20
        let seed = UInt64(Self.env("FLOWGATE_FUZZ_SEED") ?? "") ?? 0x466C_6F77_6761_7465  // "Flowgate"
        let corpus = try Self.corpus()
        #expect(corpus.count >= 8, "corpus at \(Self.corpusDir)")
        var fuzzer = MutationFuzzer(rng: SplitMix64(seed: seed), corpus: corpus, tokens: Self.tokens)
        let current = (Self.env("TMPDIR") ?? "/tmp") + "/flowgate-fuzz-config-current.yaml"
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(seconds)
        var outcomes = Set<String>()
        var (runs, loaded, slowest) = (0, 0, Duration.zero)
        // The corpus itself first, then mutants until the deadline.
        var pending = corpus
        while clock.now < deadline || !pending.isEmpty {
            let input = pending.popLast() ?? fuzzer.next()
            runs += 1
            _ = try? Data(input).write(to: URL(fileURLWithPath: current))
            let text = String(decoding: input, as: UTF8.self)  // invalid UTF-8 is ConfigLoader.load's check, before this
            let start = clock.now
            let result = ConfigLoader.parse(yaml: text, fileName: "fuzz.yaml")
            let took = clock.now - start
            slowest = max(slowest, took)
            #expect(took < Self.perInputBound, "run \(runs) (seed \(seed)) took \(took); input in \(current)")
            switch result {
            case .success:
                loaded += 1
                if outcomes.insert("ok").inserted { fuzzer.keep(input) }
            case let .failure(errors):
                #expect(!errors.issues.isEmpty, "run \(runs): a failure without issues; input in \(current)")
                for issue in errors.issues {
                    let wholeFile = issue.line == 0 && (issue.issue.message.hasPrefix("the file is empty") || issue.issue.message.hasPrefix("cannot read YAML"))
                    #expect(issue.file == "fuzz.yaml" && (wholeFile || (issue.line >= 1 && issue.column >= 1)),
                            "run \(runs): not located: \(issue); input in \(current)")
                    #expect(!issue.issue.message.isEmpty)
                }
                // A new kind of answer (message without its numbers and quoted values) is worth mutating further.
                let shape = Self.shape(errors.issues[0].issue.description)
                if outcomes.insert(shape).inserted { fuzzer.keep(input) }
            }
        }
        print("config loader fuzz: seed=\(seed) runs=\(runs) loaded=\(loaded) outcomes=\(outcomes.count) slowest=\(slowest)")
        #expect(runs > corpus.count)
    }

    static func shape(_ message: String) -> String {
        var out = ""
        var quoted = false
        for ch in message {
            if ch == "\"" { quoted.toggle(); continue }
            if quoted || ch.isNumber { continue }
            out.append(ch)
        }
        return out
    }
}
