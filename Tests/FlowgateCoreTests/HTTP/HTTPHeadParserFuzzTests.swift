// A seeded mutation fuzzer for the data plane's HTTP parser (HTTPHeadParser
// and HTTPBodyFramer), over the corpora in Tests/Fuzz/corpus/data-plane-request
// and data-plane-response. Properties, for every input, as requests and as responses:
// - it returns without trapping;
// - how the bytes are split into reads never changes the outcome (same messages,
//   same payloads and trailers, same refusal with the same status and message);
// - what it accepts obeys the limits and never has both framings.
// The differential run against llhttp (Tests/IntegrationTests/test_http_parser_differential.py)
// checks what is accepted against another parser; this checks the incremental machinery.
// FLOWGATE_FUZZ_SECONDS (default 3 here) and FLOWGATE_FUZZ_SEED as for the control parser's fuzzer.
import Testing
@testable import FlowgateCore

@Suite struct HTTPHeadParserFuzzTests {
    struct Outcome: Equatable {
        var messages: [HTTPStreamDriver.Message]
        var error: HTTPParseError?
        var midMessage: Bool
        var switched: Bool
        init(_ d: HTTPStreamDriver) { messages = d.messages; error = d.error; midMessage = d.midMessage; switched = d.switched }
    }

    @Test func corpusAndMutationsGiveTheSameOutcomeAtAnyReadBoundary() {
        let requests = FuzzCorpus.load("data-plane-request")
        let responses = FuzzCorpus.load("data-plane-response")
        #expect(requests.count >= 5 && responses.count >= 4, "the corpora in Tests/Fuzz/corpus/data-plane-* are missing")
        let corpus = requests + responses
        var limits = HTTPLimits()
        limits.maxHeadBytes = 1024 // small limits reach the limit paths with small inputs
        limits.maxLineBytes = 200
        limits.maxHeaders = 12
        var rng = FuzzRandom(state: FuzzCorpus.seed())
        let deadline = FuzzCorpus.now() + FuzzCorpus.seconds(default: 3)
        var executed = 0, accepted = 0, refused = 0
        while FuzzCorpus.now() < deadline || executed < corpus.count {
            let input = executed < corpus.count ? corpus[executed] : HTTPMutator.mutate(corpus[rng.below(corpus.count)], &rng, corpus: corpus)
            for kind in [HTTPMessageKind.request, .response] {
                let whole = Outcome(HTTPStreamDriver(input, kind: kind, limits: limits))
                let reads = (0..<5).map { _ in 1 + rng.below(max(1, input.count / 4 + 1)) }
                let pieces = Outcome(HTTPStreamDriver(input, kind: kind, reads: reads, limits: limits))
                let bytewise = Outcome(HTTPStreamDriver(input, kind: kind, reads: [1], limits: limits))
                #expect(whole == pieces, "reads \(reads) changed the \(kind) outcome for \(String(decoding: input, as: UTF8.self).debugDescription)")
                #expect(whole == bytewise, "byte-by-byte changed the \(kind) outcome for \(String(decoding: input, as: UTF8.self).debugDescription)")
                for m in whole.messages {
                    #expect(m.fields.count <= limits.maxHeaders)
                    #expect(!(m.fields.contains { $0.lowercased().hasPrefix("content-length=") } && m.fields.contains { $0.lowercased().hasPrefix("transfer-encoding=") }))
                }
                accepted += whole.messages.count
                refused += whole.error == nil ? 0 : 1
            }
            executed += 1
            if executed > 50_000_000 { break }
        }
        #expect(accepted > 0 && refused > 0)
        print("data-plane http parser fuzz: \(executed) inputs, \(accepted) messages accepted, \(refused) streams refused")
    }
}
