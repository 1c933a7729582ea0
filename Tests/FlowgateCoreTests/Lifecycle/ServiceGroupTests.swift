import Testing
@testable import FlowgateCore

/// A service that records every call into a shared journal, and can be told
/// to fail its start or to hold work in flight.
private final class FakeService: Service {
    let name: String
    let journal: Journal
    var failStart = false
    var inFlight = 0
    init(_ name: String, _ journal: Journal, failStart: Bool = false) {
        self.name = name; self.journal = journal; self.failStart = failStart
    }
    func start() throws(ServiceError) {
        journal.entries.append("start \(name)")
        if failStart { throw ServiceError(service: name, "cannot bind") }
    }
    func beginDrain() { journal.entries.append("drain \(name)") }
    var isDrained: Bool { inFlight == 0 }
    func stop() { journal.entries.append("stop \(name)") }
}

private final class Journal { var entries: [String] = [] }

private func group(_ names: [String], failing: String? = nil) -> (ServiceGroup, Journal, [FakeService]) {
    let j = Journal()
    let services = names.map { FakeService($0, j, failStart: $0 == failing) }
    return (ServiceGroup(services), j, services)
}

@Suite struct ServiceGroupTests {
    @Test func startsInOrderAndStopsInReverse() throws {
        let (g, j, _) = group(["lock", "data-plane", "control"])
        var moves: [String] = []
        g.onTransition = { old, new in moves.append("\(old.name)->\(new.name)") }
        try g.start()
        #expect(g.state == .running)
        try g.stop(exitCode: 0)
        #expect(g.state == .stopped(exitCode: 0))
        #expect(j.entries == ["start lock", "start data-plane", "start control", "stop control", "stop data-plane", "stop lock"])
        #expect(moves == ["idle->starting", "starting->starting", "starting->starting", "starting->starting",
                          "starting->running", "running->stopped"])
    }

    @Test func failingStartStopsTheStartedOnesInReverse() {
        let (g, j, _) = group(["lock", "data-plane", "control", "server"], failing: "control")
        #expect(throws: ServiceGroup.StartFailure.service(ServiceError(service: "control", "cannot bind"))) { try g.start() }
        #expect(g.state == .failed(ServiceError(service: "control", "cannot bind")))
        // "server" never starts; "control" failed, so only the two before it stop.
        #expect(j.entries == ["start lock", "start data-plane", "start control", "stop data-plane", "stop lock"])
        // Failed is final: no second start, no drain, no stop (nothing is left to stop).
        #expect(throws: ServiceGroup.StartFailure.invalid(InvalidTransition(from: "failed", to: "starting"))) { try g.start() }
        #expect(throws: InvalidTransition(from: "failed", to: "draining")) { try g.beginDrain(deadline: 1) }
        #expect(throws: InvalidTransition(from: "failed", to: "stopped")) { try g.stop() }
        #expect(j.entries.count == 5)
    }

    @Test func firstServiceFailingStopsNothing() {
        let (g, j, _) = group(["lock", "data-plane"], failing: "lock")
        #expect(throws: ServiceGroup.StartFailure.self) { try g.start() }
        #expect(j.entries == ["start lock"])
    }

    @Test func drainRunsInReverseAndEndsDrainedOrTimedOut() throws {
        let (g, j, services) = group(["lock", "data-plane", "control"])
        try g.start()
        services[1].inFlight = 3
        try g.beginDrain(deadline: 1_000)
        #expect(g.state == .draining(deadline: 1_000))
        #expect(j.entries.suffix(3) == ["drain control", "drain data-plane", "drain lock"])
        #expect(g.drainProgress(now: 999) == .inProgress)
        #expect(g.drainProgress(now: 1_000) == .timedOut)
        services[1].inFlight = 0
        #expect(g.drainProgress(now: 2_000) == .drained)
        try g.stop(exitCode: 0)
        #expect(j.entries.suffix(3) == ["stop control", "stop data-plane", "stop lock"])
    }

    @Test func invalidTransitionsAreRefusedAndChangeNothing() throws {
        let (g, j, _) = group(["a", "b"])
        #expect(throws: InvalidTransition(from: "idle", to: "draining")) { try g.beginDrain(deadline: 5) }
        #expect(throws: InvalidTransition(from: "idle", to: "stopped")) { try g.stop() }
        #expect(g.state == .idle && j.entries.isEmpty)
        try g.start()
        #expect(throws: ServiceGroup.StartFailure.invalid(InvalidTransition(from: "running", to: "starting"))) { try g.start() }
        try g.beginDrain(deadline: 5)
        #expect(throws: InvalidTransition(from: "draining", to: "draining")) { try g.beginDrain(deadline: 9) }
        #expect(g.state == .draining(deadline: 5))
        try g.stop(exitCode: 0)
        #expect(throws: InvalidTransition(from: "stopped", to: "stopped")) { try g.stop() }
        // Each service stopped once.
        #expect(j.entries.filter { $0.hasPrefix("stop") } == ["stop b", "stop a"])
    }

    @Test func transitionTable() {
        let e = ServiceError(service: "x", "y")
        let all: [GroupState] = [.idle, .starting(started: 0), .starting(started: 1), .running, .draining(deadline: 1),
                                 .stopped(exitCode: 0), .failed(e)]
        var allowed: [String] = []
        for a in all { for b in all where a.allows(b) { allowed.append("\(a) -> \(b)") } }
        #expect(allowed == [
            "idle -> starting (0 up)",
            "starting (0 up) -> starting (1 up)", "starting (0 up) -> running", "starting (0 up) -> failed (x: y)",
            "starting (1 up) -> running", "starting (1 up) -> failed (x: y)",
            "running -> draining (deadline 1 us)", "running -> stopped (exit code 0)",
            "draining (deadline 1 us) -> stopped (exit code 0)",
        ])
    }
}
