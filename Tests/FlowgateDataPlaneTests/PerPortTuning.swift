import FlowgateCore

extension Tuning {
    /// These suites test one socket per port (docs/architecture.md §4); `auto` would pick the sk_lookup steering as
    /// root and attach it to the test process's network namespace. Lookup mode is tested in
    /// Tests/IntegrationTests/test_port_lookup.py, inside a namespace of its own.
    static var perPort: Tuning {
        var t = Tuning()
        t.portRanges = .perPort
        return t
    }
}
