// Issue 11 §4: config input that used to take the daemon down. The alias bomb
// is refused, located, before anything expands it; the empty file and a file
// without listeners are ConfigLoaderTests' (unreadableFileAndEmptyFile).
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Testing
@testable import FlowgateCore

/// One pool of `members` members, anchored, then `aliases` aliases of it (issue 11's 45 KB file at 1,000 × 1,000).
func aliasBomb(members: Int = 1000, aliases: Int = 1000) -> String {
    let ms = (0..<members).map { "{address: 127.0.0.1, protocol_port: \(1 + $0 % 60000)}" }.joined(separator: ", ")
    return """
    project_id: ac80359381a34f04b39a333b0ea5117a
    accelerators:
      - AcceleratorArn: \(accArn)
        listeners:
          - {ListenerArn: \(listenerArn0), PortRanges: [{FromPort: 18000, ToPort: 18000}], Protocol: TCP, pool_id: p}
    pools: [&p {name: p, protocol: TCP, lb_algorithm: ROUND_ROBIN, members: [\(ms)]}\(String(repeating: ", *p", count: aliases))]

    """
}

@Test func aliasBombIsRefusedFastAndLocated() {
    let start = ContinuousClock.now
    let lines = errorLines(aliasBomb())
    let elapsed = ContinuousClock.now - start
    #expect(lines == ["flowgate.yaml:6:9: the document expands to more than 250000 YAML nodes through aliases (the anchored node here is repeated by its aliases); at most 250000 are allowed"])
    // The walk stops at the bound: well under a second even in a debug build
    // (before: minutes and gigabytes decoding a million members).
    #expect(elapsed < .seconds(3), "took \(elapsed)")
}

@Test func nestedAliasesAreCountedAsExpanded() {
    // "Billion laughs": each level lists the previous one ten times.
    var yaml = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
    for i in 1...9 { yaml += "a\(i): &a\(i) [" + Array(repeating: "*a\(i - 1)", count: 10).joined(separator: ", ") + "]\n" }
    let lines = errorLines(yaml)
    #expect(lines.count == 1)
    #expect(lines.first?.hasSuffix("through aliases (the anchored node here is repeated by its aliases); at most 250000 are allowed") == true)
}

@Test func aliasesWithinTheBoundStillLoad() {
    // Anchors and aliases are fine while the expanded document stays small.
    let yaml = edited("      - {address: 127.0.0.1, protocol_port: 9002, weight: 1}",
                      "      - &m2 {address: 127.0.0.1, protocol_port: 9002, weight: 1}")
    #expect(loaded(yaml) != nil)
    // A small bomb is read normally (its duplicate pools are the rules' business, not the bound's).
    #expect(!errorLines(aliasBomb(members: 10, aliases: 10)).contains { $0.contains("YAML nodes") })
    #expect(!errorLines(aliasBomb(members: 10, aliases: 10)).isEmpty)
}
