// The pure part of health checking: thresholds and timing, no sockets and no
// clock of its own (the checker passes `now`), so tests drive it with exact
// times.

/// A member's health as ELB counts it (docs/architecture.md §10, issue 6): while up,
/// `fall` (`max_retries_down`) consecutive failed checks take it down; while
/// down, `rise` (`max_retries`) consecutive passing checks bring it back. A
/// result that agrees with the current state resets the opposite count, as
/// HAProxy's `rise`/`fall` counters do (src/check.c, `check->health`).
public struct HealthTracker: Sendable, Equatable {
    public enum Transition: String, Sendable, Equatable { case wentUp = "up", wentDown = "down" }

    public let rise: Int
    public let fall: Int
    public private(set) var isUp: Bool
    public private(set) var consecutivePasses = 0
    public private(set) var consecutiveFailures = 0

    /// Members start up (ELB shows a new member ONLINE until checks say
    /// otherwise; the data plane's `MemberRuntime.up` starts true too).
    public init(rise: Int, fall: Int, isUp: Bool = true) {
        precondition(rise >= 1 && fall >= 1, "thresholds are validated to 1..10")
        self.rise = rise; self.fall = fall; self.isUp = isUp
    }

    /// One active check's result; returns the transition it caused, if any.
    public mutating func record(passed: Bool) -> Transition? {
        if passed {
            consecutiveFailures = 0
            consecutivePasses += 1
            if !isUp && consecutivePasses >= rise { isUp = true; consecutivePasses = 0; return .wentUp }
        } else {
            consecutivePasses = 0
            consecutiveFailures += 1
            if isUp && consecutiveFailures >= fall { isUp = false; consecutiveFailures = 0; return .wentDown }
        }
        return nil
    }

    /// Passive check: the data plane saw `streak` consecutive connect
    /// failures to the member. `fall` of them take an up member down at once;
    /// only active checks bring it back.
    public mutating func observePassive(streak: Int) -> Transition? {
        guard isUp, streak >= fall else { return nil }
        isUp = false
        consecutiveFailures = 0
        consecutivePasses = 0
        return .wentDown
    }
}

/// When a member's next active check starts: every `delay` seconds from the
/// start of the previous one, but never while one is still running (a check
/// lasts up to `timeout`, which may exceed `delay`; the next then starts when
/// it ends). ELB's `delay` is "the interval between health checks".
public struct ProbeSchedule: Sendable, Equatable {
    public let delay: Double
    public let timeout: Double
    public private(set) var nextStart: Double
    public private(set) var running = false

    /// The first check is due at `firstAt` (the checker uses "now", so a
    /// member dead at start is found within `fall` checks, not `delay` later).
    public init(delay: Double, timeout: Double, firstAt: Double) {
        self.delay = delay; self.timeout = timeout; self.nextStart = firstAt
    }

    public func isDue(_ now: Double) -> Bool { !running && now >= nextStart }

    /// A check starts at `now`; returns its deadline.
    public mutating func begin(_ now: Double) -> Double {
        precondition(!running, "one check at a time per member")
        running = true
        // Keep the cadence when a tick is a little late; restart it after a
        // long stall rather than firing a burst of overdue checks.
        nextStart = (now - nextStart > delay ? now : nextStart) + delay
        return now + timeout
    }

    /// The check ended at `now` (result, error or deadline).
    public mutating func end(_ now: Double) {
        running = false
        if nextStart < now { nextStart = now }
    }

    /// The worst case from a member's death to its OFFLINE mark with only
    /// active checks: the check running at death may pass, then `fall`
    /// failing checks `delay` apart, the last taking up to `timeout`.
    public static func worstDetection(delay: Double, timeout: Double, fall: Int) -> Double {
        Double(fall) * max(delay, timeout) + timeout
    }
}

/// ELB `expected_codes`: one code ("200"), a list ("200,202") or a range
/// ("200-204"), or lists of both; codes 200..599.
public struct ExpectedCodes: Sendable, Equatable {
    public let ranges: [ClosedRange<Int>]

    /// nil when the text is not a valid list (validation normally catches it).
    public init?(_ text: String) {
        var ranges: [ClosedRange<Int>] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = part.trimmingSpaces.split(separator: "-", omittingEmptySubsequences: false)
            guard (1...2).contains(bounds.count),
                  let lo = Int(bounds[0].trimmingSpaces), let hi = Int(bounds[bounds.count - 1].trimmingSpaces),
                  (100...599).contains(lo), (100...599).contains(hi), lo <= hi else { return nil }
            ranges.append(lo...hi)
        }
        guard !ranges.isEmpty else { return nil }
        self.ranges = ranges
    }

    public func contains(_ code: Int) -> Bool { ranges.contains { $0.contains(code) } }
}

/// The status code of an HTTP/1.x response's status line ("HTTP/1.1 200 OK"),
/// once the whole line has arrived; nil while incomplete or malformed.
public enum HTTPStatusLine {
    public enum Parse: Equatable { case incomplete, malformed, status(Int) }

    public static func parse(_ bytes: [UInt8]) -> Parse {
        guard let end = bytes.firstIndex(of: 10) else { return bytes.count > 1024 ? .malformed : .incomplete }
        var line = bytes[..<end]
        if line.last == 13 { line = line.dropLast() }
        let parts = line.split(separator: 32, maxSplits: 2, omittingEmptySubsequences: true)
        guard parts.count >= 2, parts[0].starts(with: Array("HTTP/1.".utf8)), parts[1].count == 3,
              let code = Int(String(decoding: parts[1], as: UTF8.self)) else { return .malformed }
        return .status(code)
    }
}

fileprivate extension Substring {
    var trimmingSpaces: Substring {
        var s = self
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return s
    }
}
