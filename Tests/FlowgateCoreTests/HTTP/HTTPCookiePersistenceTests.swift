import Testing
@testable import FlowgateCore

/// HTTP_COOKIE values (a keyed SipHash of the member id, the key derived from
/// the pool id) and the APP_COOKIE table (bounded, expiring, on the pool
/// plan's injectable clock).
@Suite struct HTTPCookiePersistenceTests {
    static let members = ["member-a", "member-b", "member-c"]

    @Test func cookieValueIsAKeyedHashOfTheMemberIDTheSameOnEveryInstance() {
        let one = HTTPCookieCodec(poolID: "pool-1", memberIDs: Self.members)
        let other = HTTPCookieCodec(poolID: "pool-1", memberIDs: Self.members.reversed())
        let values = Self.members.map { one.value(for: $0) }
        // 16 hex digits, distinct per member, equal on another instance with the same config.
        #expect(values.allSatisfy { $0.count == 16 && $0.allSatisfy(\.isHexDigit) })
        #expect(Set(values).count == 3)
        #expect(values == Self.members.map { other.value(for: $0) })
        // The pinned value: changing the key derivation would break every fleet's live sessions.
        #expect(one.value(for: "member-a") == HTTPCookieCodec.encode("member-a",
            k0: SipHash24.hash(Array("pool-1".utf8), k0: StableHash.commonK0, k1: HTTPCookieCodec.seedK0),
            k1: SipHash24.hash(Array("pool-1".utf8), k0: StableHash.commonK0, k1: HTTPCookieCodec.seedK1)))
        // Not the id itself, and keyed: another pool's value for the same member differs.
        #expect(!values.contains { $0.contains("member") })
        #expect(HTTPCookieCodec(poolID: "pool-2", memberIDs: Self.members).value(for: "member-a") != values[0])
        for (id, v) in zip(Self.members, values) { #expect(one.member(for: v) == id) }
    }

    @Test func unknownOrTamperedValuesNameNoMember() {
        let codec = HTTPCookieCodec(poolID: "pool-1", memberIDs: Self.members)
        let v = codec.value(for: "member-b")
        var tampered = Array(v)
        tampered[0] = tampered[0] == "0" ? "1" : "0"
        #expect(codec.member(for: String(tampered)) == nil)
        #expect(codec.member(for: "") == nil)
        #expect(codec.member(for: "member-b") == nil)
        // A member removed from the pool: its old value names nobody.
        #expect(HTTPCookieCodec(poolID: "pool-1", memberIDs: ["member-a", "member-c"]).member(for: v) == nil)
    }

    @Test func cookiesAreReadFromRequestAndResponseHeads() {
        var p = HTTPHeadParser(kind: .request)
        let req = Array("GET / HTTP/1.1\r\nHost: x\r\nCookie: a=1; JSESSIONID=\"abc\"\r\nCookie: FLOWGATE_SRV=00ff\r\n\r\n".utf8)
        req.withUnsafeBytes { b in
            #expect((try? p.parse(b)) == true)
            #expect(HTTPCookies.requestCookie("JSESSIONID", head: p.head, in: b) == "abc")
            #expect(HTTPCookies.requestCookie("FLOWGATE_SRV", head: p.head, in: b) == "00ff")
            #expect(HTTPCookies.requestCookie("SESSIONID", head: p.head, in: b) == nil)
        }
        var r = HTTPHeadParser(kind: .response)
        let res = Array("HTTP/1.1 200 OK\r\nSet-Cookie: other=x; JSESSIONID=no\r\nSet-Cookie: JSESSIONID=s1; Path=/\r\nContent-Length: 0\r\n\r\n".utf8)
        res.withUnsafeBytes { b in
            #expect((try? r.parse(b)) == true)
            #expect(HTTPCookies.setCookie("JSESSIONID", head: r.head, in: b) == "s1")
            #expect(HTTPCookies.setCookie("other", head: r.head, in: b) == "x")
        }
    }

    static func appCookiePlan(time: ManualTime, capacity: Int, minutes: Int = 1) -> PoolPlan {
        let members = Self.members.enumerated().map { i, id in
            MemberPlan(member: Member(id: id, address: "10.0.0.\(i + 1)", protocolPort: 80), address: IPAddress("10.0.0.\(i + 1)")!)
        }
        let pool = Pool(id: "pool-1", protocol: .http,
                        sessionPersistence: SessionPersistence(type: .appCookie, cookieName: "JSESSIONID", persistenceTimeout: minutes),
                        members: members.map(\.member))
        return PoolPlan(pool: pool, members: members, state: SelectionState(time: time), time: time, stickyCapacity: capacity)
    }

    @Test func appCookieEntriesExpireAfterThePersistenceTimeout() {
        let time = ManualTime(100)
        let plan = Self.appCookiePlan(time: time, capacity: 8, minutes: 1)
        #expect(plan.appCookieName == "JSESSIONID")
        plan.learnAppCookie("s1", memberID: "member-b")
        #expect(plan.appCookieMember("s1") == "member-b")
        time.advance(59.9)
        #expect(plan.appCookieMember("s1") == "member-b")
        // Learnt again (the member set it again): the window restarts.
        plan.learnAppCookie("s1", memberID: "member-b")
        time.advance(59.9)
        #expect(plan.appCookieMember("s1") == "member-b")
        time.advance(0.2)
        #expect(plan.appCookieMember("s1") == nil)
        #expect(plan.appCookieMember("never-set") == nil)
    }

    @Test func appCookieTableIsBoundedAndCountsEvictions() {
        let time = ManualTime(0)
        let plan = Self.appCookiePlan(time: time, capacity: 4, minutes: 60)
        for i in 0..<10 {
            plan.learnAppCookie("s\(i)", memberID: Self.members[i % 3])
            time.advance(1)
        }
        #expect(plan.appCookies!.count <= 4)
        #expect(plan.appCookies!.evictions == 6)
        #expect(plan.state.stickyEvictions == 6)
        // The newest survive, the oldest were evicted.
        #expect(plan.appCookieMember("s9") == Self.members[0])
        #expect(plan.appCookieMember("s0") == nil)
    }

    @Test func aValidCookiePicksItsMemberOnlyWhileEligible() {
        let time = ManualTime(0)
        let plan = Self.appCookiePlan(time: time, capacity: 4)
        let listener = ListenerPlan(listener: Listener(listenerArn: "x", portRanges: [PortRange(fromPort: 1, toPort: 1)], protocol: .tcp, poolID: "pool-1"),
                                    bindAddress: IPAddress("0.0.0.0")!, pool: plan)
        let flow = FlowContext(transport: .tcp, client: IPAddress("192.0.2.1")!, clientPort: 1, local: IPAddress("127.0.0.1")!, localPort: 1)
        for _ in 0..<5 { #expect(listener.pick(flow, preferred: "member-c")?.memberID == "member-c") }
        plan.state.setMemberUp(poolID: "pool-1", memberID: "member-c", up: false)
        #expect(!plan.isUsable("member-c"))
        #expect(listener.pick(flow, preferred: "member-c")?.memberID != "member-c")
    }
}
