import Testing
@testable import FlowgateCore

// url_path ≤ 80 and expected_codes ≤ 64 characters (ELB v3): the config file
// refuses what the ELB API refuses (Tests/FlowgateControlTests/ELBValidationTests.swift
// has the API side of the same values).

private let base = baseConfig + "healthmonitors:\n  - {id: 00000000-0000-4000-8000-000000000000, type: TCP}\n"
private func monitor(_ fields: String) -> String { edited("type: TCP}", "type: TCP, \(fields)}", in: base) }

/// 17 valid codes, 67 characters.
private let longCodes = (200...216).map(String.init).joined(separator: ",")

@Test func urlPathAndExpectedCodesLengthsInTheFile() {
    #expect(errorLines(monitor("url_path: /\(String(repeating: "a", count: 79))")) == [])
    #expect(errorLines(monitor("url_path: /\(String(repeating: "a", count: 80))")) == [
        "flowgate.yaml:19:69: healthmonitors[0].url_path: 81 characters, at most 80 allowed",
    ])
    // Too long and relative: both rules are reported, the length first.
    #expect(errorLines(monitor("url_path: \(String(repeating: "a", count: 81))")) == [
        "flowgate.yaml:19:69: healthmonitors[0].url_path: 81 characters, at most 80 allowed",
        "flowgate.yaml:19:69: healthmonitors[0].url_path: \"\(String(repeating: "a", count: 81))\" must start with \"/\"",
    ])
    #expect(errorLines(monitor("expected_codes: \"\((200...215).map(String.init).joined(separator: ","))\"")) == [])
    #expect(errorLines(monitor("expected_codes: \"\(longCodes)\"")) == [
        "flowgate.yaml:19:75: healthmonitors[0].expected_codes: 67 characters, at most 64 allowed",
    ])
}

@Test func theRuleTravelsWithTheIssue() {
    let h = HealthMonitor(id: "00000000-0000-4000-8000-000000000000", type: .http)
    var long = h
    long.urlPath = "/" + String(repeating: "a", count: 80)
    long.expectedCodes = longCodes
    let issues = ConfigValidator.validateHealthMonitor(long, path: "")
    #expect(issues.map(\.rule) == [.tooLong(count: 81, max: 80), .tooLong(count: 67, max: 64)])
    let sp = SessionPersistence(type: .httpCookie, cookieName: "c", persistenceTimeout: 61)
    #expect(ConfigValidator.validateSessionPersistence(sp, poolProtocol: .tcp, path: "").map(\.rule) == [
        .persistenceTypeNotAllowed(.httpCookie, .tcp), .persistenceTimeout(61, 1...60, .tcp), .onlyAllowedWith("APP_COOKIE"),
    ])
}
