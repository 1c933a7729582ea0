import Testing
@testable import FlowgateCore

@Suite struct FlowTableKeyTests {
    let client = IPAddress("192.0.2.7")!
    let listener = IPAddress("198.51.100.1")!

    @Test func noneKeepsTheFiveTuple() {
        let ctx = FlowContext(transport: .udp, client: client, clientPort: 40001, local: listener, localPort: 8000)
        let k = FlowKey(ctx, affinity: .none)
        #expect(k.transport == .udp)
        #expect(k.client == .v4(0xC000_0207))
        #expect(k.clientPort == 40001)
        #expect(k.local == .v4(0xC633_6401))
        #expect(k.localPort == 8000)
        let otherPort = FlowKey(FlowContext(transport: .udp, client: client, clientPort: 40002, local: listener, localPort: 8000), affinity: .none)
        #expect(k != otherPort)
    }

    @Test func sourceIPKeepsOnlyTheTwoTuple() {
        let a = FlowKey(FlowContext(transport: .udp, client: client, clientPort: 40001, local: listener, localPort: 8000), affinity: .sourceIP)
        let b = FlowKey(FlowContext(transport: .udp, client: client, clientPort: 51999, local: listener, localPort: 8001), affinity: .sourceIP)
        #expect(a.client == .v4(0xC000_0207))
        #expect(a.clientPort == 0)
        #expect(a.local == .v4(0xC633_6401))
        #expect(a.localPort == 0)
        #expect(a == b)
        #expect(a.hashValue == b.hashValue)
        let otherClient = FlowKey(FlowContext(transport: .udp, client: IPAddress("192.0.2.8")!, clientPort: 40001, local: listener, localPort: 8000), affinity: .sourceIP)
        #expect(a != otherClient)
    }

    @Test func dualStackMappedClientKeysLikeIPv4() {
        let mapped = FlowKey(FlowContext(transport: .udp, client: IPAddress("::ffff:192.0.2.7")!, clientPort: 5, local: IPAddress("::ffff:198.51.100.1")!, localPort: 9), affinity: .sourceIP)
        let plain = FlowKey(FlowContext(transport: .udp, client: client, clientPort: 6, local: listener, localPort: 9), affinity: .sourceIP)
        #expect(mapped == plain)
        let v6 = FlowKey(FlowContext(transport: .udp, client: IPAddress("2001:db8::7")!, clientPort: 5, local: IPAddress("2001:db8::1")!, localPort: 9), affinity: .none)
        #expect(v6.client == .v6(hi: 0x2001_0db8_0000_0000, lo: 7))
        #expect(v6.clientPort == 5)
    }
}

@Suite struct FlowTableLRUTests {
    @Test func evictsLeastRecentlyUsedFirstAndCounts() {
        var t = FlowTable<String, Int>(capacity: 3, idleTimeout: 30)
        let a = t.insert("a", 1, now: 0).slot
        _ = t.insert("b", 2, now: 1)
        _ = t.insert("c", 3, now: 2)
        #expect(t.keysByRecency == ["c", "b", "a"])
        t.touch(a, now: 3)                       // a becomes newest; b is now oldest
        #expect(t.keysByRecency == ["a", "c", "b"])
        let r1 = t.insert("d", 4, now: 4)
        #expect(r1.evicted?.key == "b")
        #expect(r1.evicted?.value == 2)
        #expect(t.evictions == 1)
        #expect(t.keysByRecency == ["d", "a", "c"])
        let r2 = t.insert("e", 5, now: 5)
        #expect(r2.evicted?.key == "c")
        #expect(t.evictions == 2)
        #expect(t.count == 3)
        #expect(t.slot(of: "b") == nil)
        #expect(t.slot(of: "c") == nil)
        #expect(t[t.slot(of: "a")!] == 1)
        // The evicted slots were recycled: no slot beyond capacity exists.
        #expect(Set(t.slotsByRecency) == Set<Int32>([0, 1, 2]))
    }

    @Test func valuesAreMutableInPlace() {
        var t = FlowTable<Int, [Int]>(capacity: 2, idleTimeout: 1)
        let s = t.insert(7, [1], now: 0).slot
        t[s].append(2)
        #expect(t[s] == [1, 2])
        let (k, v) = t.remove(s)
        #expect(k == 7 && v == [1, 2])
        #expect(t.isEmpty)
        #expect(t.oldest == nil && t.newest == nil)
    }

    @Test func removeFromMiddleKeepsOrder() {
        var t = FlowTable<Int, Int>(capacity: 10, idleTimeout: 1)
        var slots: [Int32] = []
        for i in 0..<5 { slots.append(t.insert(i, i, now: Double(i)).slot) }
        t.remove(slots[2])
        #expect(t.keysByRecency == [4, 3, 1, 0])
        t.remove(slots[4])
        t.remove(slots[0])
        #expect(t.keysByRecency == [3, 1])
        #expect(t.key(at: t.oldest!) == 1)
        #expect(t.key(at: t.newest!) == 3)
    }
}

@Suite struct FlowTableExpiryTests {
    @Test func expiresExactlyAtTheTimeout() {
        let clock = ManualTime(100)
        var t = FlowTable<String, Int>(capacity: 8, idleTimeout: 30)
        let a = t.insert("a", 1, now: clock.now()).slot
        clock.advance(10)
        _ = t.insert("b", 2, now: clock.now())         // b at 110
        clock.set(129.999)
        #expect(t.popExpired(now: clock.now()) == nil)
        clock.set(130)                                  // a idle exactly 30 s
        let e = t.popExpired(now: clock.now())
        #expect(e?.key == "a")
        #expect(t.popExpired(now: clock.now()) == nil)  // b idle 20 s
        #expect(t.expirations == 1)
        #expect(t.slot(of: "a") == nil)
        _ = a
    }

    @Test func touchPostponesExpiry() {
        let clock = ManualTime(0)
        var t = FlowTable<String, Int>(capacity: 8, idleTimeout: 5)
        let a = t.insert("a", 1, now: clock.now()).slot
        _ = t.insert("b", 2, now: clock.now())
        clock.set(4)
        t.touch(a, now: clock.now())
        clock.set(5)
        #expect(t.popExpired(now: clock.now())?.key == "b")
        #expect(t.popExpired(now: clock.now()) == nil)
        clock.set(9)
        #expect(t.popExpired(now: clock.now())?.key == "a")
        #expect(t.isEmpty)
        #expect(t.expirations == 2)
        #expect(t.evictions == 0)
    }
}
