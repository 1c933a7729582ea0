import Testing
@testable import FlowgateCore

/// The takeover state blob (docs/architecture.md §16.2): round trip, and each
/// kind of damage refused with its own message.
@Suite("HandoverCodec") struct HandoverCodecTests {
    static let sample = HandoverState(
        snapshotGeneration: 41, takeoverGeneration: 3,
        members: [.init(poolID: "p", memberID: "a", up: false, rampAge: 12.5, activeFlows: 7),
                  .init(poolID: "p", memberID: "b", up: true, rampAge: nil, activeFlows: 0)],
        roundRobin: [.init(poolID: "p", scores: [.init(memberID: "a", score: -3), .init(memberID: "b", score: 3)])],
        persistence: [.init(poolID: "p", client: IPAddress("198.51.100.7")!, memberID: "a", ttl: nil),
                      .init(poolID: "p", client: IPAddress("2001:db8::1")!, memberID: "b", ttl: 59.25)],
        affinity: [.init(poolID: "p", key: AffinityKey(client: IPAddress("198.51.100.8")!, listenerAddress: IPAddress("127.0.0.1")!),
                         memberID: "b", ttl: 1)])

    @Test func roundTrip() throws {
        let blob = HandoverCodec.encode(Self.sample)
        #expect(Array(blob.prefix(4)) == Array("FGTS".utf8))
        #expect(try HandoverCodec.decode(blob) == Self.sample)
    }

    @Test func wrongVersionRefused() {
        var blob = HandoverCodec.encode(Self.sample)
        blob[5] = 2
        #expect(throws: HandoverBlobError.unsupportedVersion(found: 2, supported: 1)) { try HandoverCodec.decode(blob) }
        #expect(HandoverBlobError.unsupportedVersion(found: 2, supported: 1).description
                == "takeover state blob has version 2; this flowgated reads only version 1")
    }

    @Test func badChecksumRefused() {
        var blob = HandoverCodec.encode(Self.sample)
        blob[HandoverCodec.headerSize + 3] ^= 0x01   // one bit of the body
        #expect(throws: HandoverBlobError.checksumMismatch) { try HandoverCodec.decode(blob) }
        var header = HandoverCodec.encode(Self.sample)
        header[20] ^= 0x80                           // one bit of the stored checksum
        #expect(throws: HandoverBlobError.checksumMismatch) { try HandoverCodec.decode(header) }
    }

    @Test func truncationRefused() {
        let blob = HandoverCodec.encode(Self.sample)
        #expect(throws: HandoverBlobError.truncated(needed: 48, present: 20, what: "header")) {
            try HandoverCodec.decode(Array(blob.prefix(20)))
        }
        #expect(throws: HandoverBlobError.truncated(needed: blob.count, present: blob.count - 1, what: "body")) {
            try HandoverCodec.decode(Array(blob.dropLast()))
        }
    }

    @Test func badMagicAndTrailingBytesRefused() {
        var blob = HandoverCodec.encode(Self.sample)
        #expect(throws: HandoverBlobError.trailingBytes(blob.count - 48, 1)) { try HandoverCodec.decode(blob + [0]) }
        blob[0] = UInt8(ascii: "X")
        #expect(throws: HandoverBlobError.badMagic(Array("XGTS".utf8))) { try HandoverCodec.decode(blob) }
    }

    /// A body whose checksum matches but whose counts lie is refused by field,
    /// never read past its end.
    @Test func malformedBodyRefused() {
        var w = HandoverCodec.Writer()
        w.u64(1); w.u64(0); w.u32(1_000_000)   // a million members in a few bytes
        var blob = HandoverCodec.magic + [0, 1, 0, 0]
        let n = UInt64(w.bytes.count)
        for i in 0..<8 { blob.append(UInt8(truncatingIfNeeded: n >> (56 - 8 * UInt64(i)))) }
        blob += SHA256.hash(w.bytes) + w.bytes
        #expect(throws: HandoverBlobError.malformed(field: "members", offset: 16)) { try HandoverCodec.decode(blob) }
    }

    /// Export from one snapshot and restore into a fresh one: persistence and
    /// affinity entries, health marks and round-robin scores come back.
    @Test func snapshotStateCarries() throws {
        let config = Fixture.config(members: Fixture.members([1, 1, 1]), affinity: .sourceIP,
                                    persistence: SessionPersistence(type: .sourceIP, persistenceTimeout: 5))
        let old = SnapshotBuilder().build(config, generation: 7)
        let l = old.listeners[0]
        var chosen: [String: String] = [:]
        for i in 0..<20 {
            let f = Fixture.clientFlow(i)
            let t = try #require(l.pick(f))
            chosen["\(f.client)"] = t.memberID
            if i % 2 == 0 { l.release(f, target: t, connected: true) }
        }
        old.selection.setMemberUp(poolID: Fixture.poolID, memberID: "member-c", up: false)
        let blob = HandoverCodec.encode(old.handoverState(takeoverGeneration: 2))
        let state = try HandoverCodec.decode(blob)
        #expect(state.snapshotGeneration == 7 && state.takeoverGeneration == 2)
        let new = SnapshotBuilder().build(config, generation: 8)
        let restored = new.restore(state)
        #expect(restored.entries == 40)
        #expect(!new.selection.isMemberUp(poolID: Fixture.poolID, memberID: "member-c"))
        new.selection.setMemberUp(poolID: Fixture.poolID, memberID: "member-c", up: true)
        old.selection.setMemberUp(poolID: Fixture.poolID, memberID: "member-c", up: true)
        for i in 0..<20 {
            let f = Fixture.clientFlow(i)
            #expect(new.listeners[0].pick(f)?.memberID == chosen["\(f.client)"])
        }
    }
}
