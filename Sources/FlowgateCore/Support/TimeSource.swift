/// Monotonic seconds, injectable so algorithms and tables can be tested with
/// a fake clock (sticky-table expiry, slow start).
public protocol TimeSource: Sendable {
    /// Seconds since an arbitrary fixed origin; never goes backwards.
    func now() -> Double
}

/// A manual clock for tests.
public final class ManualTime: TimeSource, @unchecked Sendable {
    private var current: Double
    public init(_ start: Double = 0) { current = start }
    public func now() -> Double { current }
    public func advance(_ seconds: Double) { current += seconds }
    public func set(_ t: Double) { current = t }
}

/// The process's monotonic clock (ContinuousClock, no C import).
public struct SystemTime: TimeSource {
    private static let origin = ContinuousClock.now
    public init() {}
    public func now() -> Double {
        let d = SystemTime.origin.duration(to: ContinuousClock.now)
        return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }
}
