#if canImport(Glibc)
import Glibc
#endif
import Testing
import FlowgateCore
@testable import FlowgateDataPlane
import FlowgateSystem

@Suite(.serialized) struct UDPRelayTests {
    @Test func echoesDatagramsByteForByteIncludingEmptyAndLargest() throws {
        let h = try UDPRelayHarness(backends: [TestBackend(id: "m1", answersWithID: false)])
        defer { h.close() }
        let client = TestUDPSocket()
        defer { client.close() }
        var rng = SystemRandomNumberGenerator()
        for size in [0, 1, 64, 1400, 9000, 65_507] {
            let payload = (0..<size).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let reply = h.roundTrip(client, payload)
            #expect(reply?.bytes == payload, "size \(size)")
            // The reply leaves from the listener's own address and port.
            #expect(reply?.from == IPAddress("127.0.0.1")!)
            #expect(reply?.port == h.listenerPort)
        }
        #expect(h.relay.sessionCount(UDPRelayHarness.arn) == 1)
        #expect(h.relay.stats.datagramsToClients == 6)
        #expect(h.relay.stats.flowsStarted == 1)
    }

    @Test func wildcardBindRepliesFromTheAddressTheClientUsed() throws {
        let h = try UDPRelayHarness(bind: "0.0.0.0", backends: [TestBackend(id: "m1", answersWithID: false)])
        defer { h.close() }
        for dest in ["127.0.0.1", "127.0.0.2"] {
            let client = TestUDPSocket()
            defer { client.close() }
            let reply = h.roundTrip(client, [1, 2, 3], to: IPAddress(dest)!)
            #expect(reply?.bytes == [1, 2, 3])
            #expect(reply?.from == IPAddress(dest)!, "sent to \(dest)")
            #expect(reply?.port == h.listenerPort)
        }
    }

    /// A burst through a wildcard bind: the relay receives it as one batch,
    /// sends it on as a GSO run, and the echoes come back as one GSO run
    /// carrying the PKTINFO source as well. Every datagram must arrive, in
    /// order, from the address the client used.
    @Test func burstsKeepBoundariesAndSourceThroughGSO() throws {
        let h = try UDPRelayHarness(bind: "0.0.0.0", backends: [TestBackend(id: "m1", answersWithID: false)])
        defer { h.close() }
        let client = TestUDPSocket()
        defer { client.close() }
        let sent = (0..<12).map { i in (0..<(i == 11 ? 40 : 100)).map { UInt8(truncatingIfNeeded: i &* 7 &+ $0) } }
        for d in sent { client.send(d, to: IPAddress("127.0.0.2")!, port: h.listenerPort) }
        var got: [(bytes: [UInt8], from: IPAddress, port: UInt16)] = []
        h.pump(seconds: 3) {
            while let d = client.receive() { got.append(d) }
            return got.count >= sent.count
        }
        #expect(got.map(\.bytes) == sent)
        #expect(got.allSatisfy { $0.from == IPAddress("127.0.0.2")! && $0.port == h.listenerPort })
        if GSOProbe.kernelTakesGSO {
            #expect(h.relay.gsoSends.toMembers >= 1)
            #expect(h.relay.gsoSends.toClients >= 1)
        }
    }

    @Test func dualStackBindServesIPv4AndIPv6() throws {
        let h = try UDPRelayHarness(bind: "::", backends: [TestBackend(id: "m1", answersWithID: false)])
        defer { h.close() }
        let v4 = TestUDPSocket("127.0.0.3")
        defer { v4.close() }
        let r4 = h.roundTrip(v4, [4], to: IPAddress("127.0.0.3")!)
        #expect(r4?.bytes == [4])
        #expect(r4?.from == IPAddress("127.0.0.3")!)
        #expect(r4?.port == h.listenerPort)
        let v6 = TestUDPSocket("::1")
        defer { v6.close() }
        let r6 = h.roundTrip(v6, [6], to: IPAddress("::1")!)
        #expect(r6?.bytes == [6])
        #expect(r6?.from == IPAddress("::1")!)
        #expect(r6?.port == h.listenerPort)
    }

    @Test func ipv4ClientReachesAnIPv6Member() throws {
        let h = try UDPRelayHarness(backends: [TestBackend(id: "v6", answersWithID: false, ip: "::1")])
        defer { h.close() }
        let client = TestUDPSocket()
        defer { client.close() }
        let reply = h.roundTrip(client, [0xde, 0xad])
        #expect(reply?.bytes == [0xde, 0xad])
        #expect(reply?.from == IPAddress("127.0.0.1")!)
        #expect(h.backends[0].received == 1)
    }

    @Test func sourceIPAffinityKeepsOneMemberAcrossSourcePorts() throws {
        let members = [TestBackend(id: "a", answersWithID: true), TestBackend(id: "b", answersWithID: true)]
        let h = try UDPRelayHarness(affinity: .sourceIP, backends: members)
        defer { h.close() }
        var ids: Set<String> = []
        var clients: [TestUDPSocket] = []
        for _ in 0..<20 {
            let c = TestUDPSocket()
            clients.append(c)
            if let r = h.roundTrip(c, [9]) { ids.insert(String(decoding: r.bytes, as: UTF8.self)) }
        }
        defer { clients.forEach { $0.close() } }
        #expect(ids.count == 1)
        #expect(h.relay.flowCount(UDPRelayHarness.arn) == 1)
        // One session (upstream socket) per source port: each reply went to its own port.
        #expect(h.relay.sessionCount(UDPRelayHarness.arn) == 20)
        #expect(h.relay.stats.flowsStarted == 1)
    }

    @Test func noAffinitySpreadsSourcePortsAsSeparateFlows() throws {
        let members = [TestBackend(id: "a", answersWithID: true), TestBackend(id: "b", answersWithID: true)]
        let h = try UDPRelayHarness(affinity: .none, backends: members)
        defer { h.close() }
        var ids: [String] = []
        var clients: [TestUDPSocket] = []
        for _ in 0..<20 {
            let c = TestUDPSocket()
            clients.append(c)
            if let r = h.roundTrip(c, [9]) { ids.append(String(decoding: r.bytes, as: UTF8.self)) }
        }
        defer { clients.forEach { $0.close() } }
        #expect(ids.filter { $0 == "a" }.count == 10)
        #expect(ids.filter { $0 == "b" }.count == 10)
        #expect(h.relay.flowCount(UDPRelayHarness.arn) == 20)
        // A second datagram of a flow stays on its member.
        let again = h.roundTrip(clients[0], [9]).map { String(decoding: $0.bytes, as: UTF8.self) }
        #expect(again == ids[0])
    }

    /// SIGTERM's drain: live sessions keep forwarding both ways, a new
    /// client starts nothing (dropped, counted), and a session ends after a
    /// second of silence, far sooner than its 30 s idle timeout.
    @Test func drainKeepsLiveSessionsRefusesNewOnesAndEndsQuietOnes() throws {
        let clock = ManualTime(1000)
        let h = try UDPRelayHarness(backends: [TestBackend(id: "m1", answersWithID: false)], idleTimeout: 30, clock: clock)
        defer { h.close() }
        let live = TestUDPSocket(), quiet = TestUDPSocket(), late = TestUDPSocket()
        defer { live.close(); quiet.close(); late.close() }
        #expect(h.roundTrip(live, [1])?.bytes == [1])
        #expect(h.roundTrip(quiet, [2])?.bytes == [2])
        clock.advance(0.6)
        #expect(h.roundTrip(live, [3])?.bytes == [3])   // live was heard 0.6 s after quiet
        clock.advance(0.5)                                // quiet silent 1.1 s, live 0.5 s
        h.relay.beginDrain()
        #expect(h.relay.sessionCount(UDPRelayHarness.arn) == 1, "the quiet session ends at once")
        #expect(h.relay.stats.sessionsEndedQuiet == 1)
        #expect(h.roundTrip(live, [4])?.bytes == [4], "a live session still forwards while draining")
        #expect(h.roundTrip(late, [5], seconds: 0.5) == nil, "no new session while draining")
        #expect(h.relay.stats.droppedDraining == 1)
        #expect(h.relay.sessionCount(UDPRelayHarness.arn) == 1)
        clock.advance(1.0)                                // now live is quiet too: the next sweep ends it
        #expect(h.pump(seconds: 2) { h.relay.sessionCount(UDPRelayHarness.arn) == 0 })
        #expect(h.relay.stats.sessionsEndedQuiet == 2)
        #expect(h.relay.stats.sessionsExpired == 0, "ended by the drain, not by idle_timeout")
    }

    @Test func idleFlowsExpireOnTheInjectedClock() throws {
        let clock = ManualTime(1000)
        let members = [TestBackend(id: "a", answersWithID: true), TestBackend(id: "b", answersWithID: true)]
        let h = try UDPRelayHarness(backends: members, idleTimeout: 30, clock: clock)
        defer { h.close() }
        let c = TestUDPSocket()
        defer { c.close() }
        let first = h.roundTrip(c, [1]).map { String(decoding: $0.bytes, as: UTF8.self) }
        #expect(first == "a")
        clock.advance(29.9)
        h.pump(seconds: 0.4)
        #expect(h.relay.sessionCount(UDPRelayHarness.arn) == 1)
        clock.advance(0.1)                               // idle exactly 30 s
        #expect(h.pump(seconds: 2) { h.relay.sessionCount(UDPRelayHarness.arn) == 0 })
        #expect(h.relay.stats.sessionsExpired == 1)
        // The flow is gone: the next datagram is a new flow, picked afresh (round robin → b).
        let second = h.roundTrip(c, [1]).map { String(decoding: $0.bytes, as: UTF8.self) }
        #expect(second == "b")
        #expect(h.relay.stats.flowsStarted == 2)
    }

    @Test func fullTableEvictsTheLeastRecentlyUsedSession() throws {
        let h = try UDPRelayHarness(backends: [TestBackend(id: "a", answersWithID: true)], maxFlows: 2)
        defer { h.close() }
        let c1 = TestUDPSocket(), c2 = TestUDPSocket(), c3 = TestUDPSocket()
        defer { [c1, c2, c3].forEach { $0.close() } }
        #expect(h.roundTrip(c1, [1]) != nil)
        #expect(h.roundTrip(c2, [2]) != nil)
        #expect(h.roundTrip(c1, [1]) != nil)             // c2 is now the oldest
        #expect(h.roundTrip(c3, [3]) != nil)             // evicts c2
        #expect(h.relay.stats.sessionsEvicted == 1)
        #expect(h.relay.sessionCount(UDPRelayHarness.arn) == 2)
        #expect(h.roundTrip(c2, [2]) != nil)             // c2 comes back as a new session, evicting c1
        #expect(h.relay.stats.sessionsEvicted == 2)
        #expect(h.relay.stats.sessionsStarted == 4)
    }

    @Test func evictionInsideOneBatchNeverMixesSessions() throws {
        let backend = TestBackend(id: "a", answersWithID: false)
        let h = try UDPRelayHarness(backends: [backend], maxFlows: 1)
        defer { h.close() }
        let c1 = TestUDPSocket(), c2 = TestUDPSocket()
        defer { c1.close(); c2.close() }
        let dest = IPAddress("127.0.0.1")!
        // Queued before the loop runs: one recvmmsg batch of three datagrams,
        // each new session evicting the previous one (table of one).
        c1.send([1], to: dest, port: h.listenerPort)
        c2.send([2], to: dest, port: h.listenerPort)
        c1.send([3], to: dest, port: h.listenerPort)
        h.pump(seconds: 2) { backend.log.count == 3 }
        #expect(backend.log.map(\.bytes) == [[1], [2], [3]])
        // Three sessions, hence three distinct upstream sockets (source ports).
        #expect(Set(backend.log.map(\.port)).count == 3)
        #expect(h.relay.stats.sessionsEvicted == 2)
        #expect(h.relay.sessionCount(UDPRelayHarness.arn) == 1)
    }

    @Test func refusedMemberGetsItsFlowRepicked() throws {
        let a = TestBackend(id: "a", answersWithID: true), b = TestBackend(id: "b", answersWithID: true)
        let h = try UDPRelayHarness(backends: [a, b])
        defer { h.close() }
        let c = TestUDPSocket()
        defer { c.close() }
        #expect(h.roundTrip(c, [1]).map { String(decoding: $0.bytes, as: UTF8.self) } == "a")
        a.socket.close()                                  // a's port now answers ICMP port unreachable
        h.backends = [b]
        var answer: String?
        for _ in 0..<5 where answer == nil {
            answer = h.roundTrip(c, [2], seconds: 0.5).map { String(decoding: $0.bytes, as: UTF8.self) }
        }
        #expect(answer == "b")
        #expect(h.relay.stats.repickedRefused == 1)
        #expect(h.relay.flowCount(UDPRelayHarness.arn) == 1)
    }

    @Test func removedMemberRepicksOnlyItsOwnFlows() throws {
        let a = TestBackend(id: "a", answersWithID: true), b = TestBackend(id: "b", answersWithID: true)
        let c = TestBackend(id: "c", answersWithID: true)
        let h = try UDPRelayHarness(backends: [a, b, c])
        defer { h.close() }
        let ca = TestUDPSocket(), cb = TestUDPSocket()
        defer { ca.close(); cb.close() }
        #expect(h.roundTrip(ca, [1]).map { String(decoding: $0.bytes, as: UTF8.self) } == "a")
        #expect(h.roundTrip(cb, [1]).map { String(decoding: $0.bytes, as: UTF8.self) } == "b")
        h.update(members: [b.member, c.member])           // a removed
        #expect(h.roundTrip(cb, [2]).map { String(decoding: $0.bytes, as: UTF8.self) } == "b")   // never moved
        let moved = h.roundTrip(ca, [2]).map { String(decoding: $0.bytes, as: UTF8.self) }
        #expect(moved == "b" || moved == "c")
        #expect(moved != "a")
        #expect(h.relay.stats.repickedRemoved == 1)
    }
}
