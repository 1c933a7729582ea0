#if canImport(Glibc)
import Glibc
#endif
import Testing
import FlowgateCore
@testable import FlowgateDataPlane
import FlowgateSystem

/// The batch senders coalesce runs of equal-sized datagrams into one
/// UDP_SEGMENT (GSO) sendmsg (CFlowgateSys/sys.c). Whatever they coalesce,
/// a receiver must see exactly the datagrams that were queued, in order:
/// these tests queue mixed sizes on real loopback sockets and compare.
///
/// Where the kernel takes UDP_SEGMENT (`GSOProbe`, probed once before these
/// run), the runs must have gone out as GSO sends: a sender that provokes a
/// refusal (EINVAL) would switch GSO off and still deliver everything, so
/// only the send count shows it.
@Suite(.serialized) struct UDPBatchGSOTests {
    @Test func theKernelTakesUDPSegmentOrPlainlySaysItCannot() {
        if case let .broken(why) = GSOProbe.outcome { Issue.record("GSO probe: \(why)") }
    }

    /// Fills slots 0..<lengths.count with distinct bytes (slot i, byte j -> i &+ j).
    private func fill(_ batch: DatagramBatch, _ lengths: [Int]) -> [[UInt8]] {
        var sent: [[UInt8]] = []
        for (i, length) in lengths.enumerated() {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: i &* 31 &+ $0) }
            batch.set(i, bytes)
            sent.append(bytes)
        }
        return sent
    }

    private func drain(_ socket: TestUDPSocket, expecting count: Int) -> [[UInt8]] {
        var got: [[UInt8]] = []
        var spins = 0
        while got.count < count, spins < 2_000 {
            if let d = socket.receive() { got.append(d.bytes) } else { spins += 1; usleep(1_000) }
        }
        while let d = socket.receive() { got.append(d.bytes) }   // nothing extra may arrive
        return got
    }

    /// Sends slots [0, n) with `send` until all left; returns the calls made.
    private func sendAll(_ n: Int, _ send: (UInt32, UInt32) throws(SystemError) -> Int) throws -> Int {
        var first = 0, calls = 0
        while first < n {
            let r = try send(UInt32(first), UInt32(n - first))
            calls += 1
            try #require(r > 0, "batch send made no progress")
            first += r
        }
        return calls
    }

    /// A receiver on 127.0.0.1:0 and a socket connected to it, for `body`.
    private func withConnectedPair(_ body: (_ receiver: TestUDPSocket, _ sender: Int32) throws -> Void) rethrows {
        let receiver = TestUDPSocket()
        defer { receiver.close() }
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { _ = Glibc.close(fd) }
        let a = UDPAddress(receiver.ip, port: receiver.port)
        precondition(a.withSockaddr { Glibc.connect(fd, $0, $1) } == 0)
        try body(receiver, fd)
    }

    // Runs: [64 64 64 10] [64] then [1232 1232] (1233 is over the GSO segment
    // cap: alone), [0] alone, [5 5 5], and a run cut by a longer datagram.
    static let mixed = [64, 64, 64, 10, 64, 1232, 1232, 1233, 0, 5, 5, 5, 100, 100, 200, 200, 1]

    @Test func connectedRunsKeepEveryDatagramBoundary() throws {
        try withConnectedPair { receiver, fd in
            let batch = try #require(DatagramBatch(slots: 32, slotBytes: 2_048))
            let sent = fill(batch, Self.mixed)
            _ = try sendAll(sent.count) { (first, count) throws(SystemError) in try batch.sendConnected(fd, first: first, count: count) }
            #expect(drain(receiver, expecting: sent.count) == sent)
            if GSOProbe.kernelTakesGSO {
                #expect(batch.gsoSends > 0, "this kernel takes UDP_SEGMENT; runs should have used it")
                #expect(DatagramBatch.gsoAvailable, "the sender provoked a refusal and switched GSO off")
            }
        }
    }

    @Test func longRunsSplitAtTheSegmentCap() throws {
        try withConnectedPair { receiver, fd in
            let batch = try #require(DatagramBatch(slots: 150, slotBytes: 256))
            let sent = fill(batch, Array(repeating: 100, count: 150))
            let calls = try sendAll(sent.count) { (first, count) throws(SystemError) in try batch.sendConnected(fd, first: first, count: count) }
            #expect(drain(receiver, expecting: sent.count) == sent)
            if GSOProbe.kernelTakesGSO {
                // 150 = 64 + 64 + 22: three GSO sends, never one over the cap.
                #expect(batch.gsoSends == 3)
                #expect(calls <= 3)
            }
        }
    }

    @Test func addressedBatchesCoalesceOnlyPerDestination() throws {
        let a = TestUDPSocket(), b = TestUDPSocket()
        defer { a.close(); b.close() }
        let sender = TestUDPSocket()
        defer { sender.close() }
        let batch = try #require(DatagramBatch(slots: 32, slotBytes: 2_048))
        // a a a b b a a (all 64 B, then a shorter one to a): only neighbours
        // with the same destination may share a send.
        let targets = [a, a, a, b, b, a, a, a]
        let sent = fill(batch, [64, 64, 64, 64, 64, 64, 64, 20])
        for (i, t) in targets.enumerated() {
            batch.setDestination(i, UDPAddress(t.ip, port: t.port))
        }
        _ = try sendAll(sent.count) { (first, count) throws(SystemError) in try batch.send(sender.fd, first: first, count: count) }
        let toA = targets.indices.filter { targets[$0].port == a.port }.map { sent[$0] }
        let toB = targets.indices.filter { targets[$0].port == b.port }.map { sent[$0] }
        #expect(drain(a, expecting: toA.count) == toA)
        #expect(drain(b, expecting: toB.count) == toB)
        if GSOProbe.kernelTakesGSO {
            #expect(batch.gsoSends == 3, "a a a | b b | a a a: three runs")
        }
    }

    @Test func withGSOOffTheSameBatchGoesOutByBatchedSends() throws {
        try withConnectedPair { receiver, fd in
            let batch = try #require(DatagramBatch(slots: 32, slotBytes: 2_048))
            let sent = fill(batch, Self.mixed)
            batch.setGSO(false)
            _ = try sendAll(sent.count) { (first, count) throws(SystemError) in try batch.sendConnected(fd, first: first, count: count) }
            #expect(batch.gsoSends == 0)
            #expect(drain(receiver, expecting: sent.count) == sent)
        }
    }
}
