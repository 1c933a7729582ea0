import Testing
import FlowgateSystem

@Suite struct PrometheusEscapeTests {
    /// "\r\n" is a single Character in Swift: escaping by Character let its
    /// line feed through and split a sample across two lines.
    @Test func aLineFeedInsideCRLFIsEscaped() {
        #expect(PrometheusWriter.escape("a\r\nb") == "a\r\\nb")
        var w = PrometheusWriter()
        w.family("x_total", .counter, "help\r\nmore", [([("op", "p\r\nq\"")], 1)])
        #expect(w.text == "# HELP x_total help\r\\nmore\n# TYPE x_total counter\nx_total{op=\"p\r\\nq\\\"\"} 1\n")
    }
}
