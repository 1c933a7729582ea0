import Testing
@testable import FlowgateCore

@Suite("SelectionHashing") struct SelectionHashingTests {
    /// The reference key 00 01 .. 0f of the SipHash paper and vectors.h.
    static let k0: UInt64 = 0x0706_0504_0302_0100
    static let k1: UInt64 = 0x0f0e_0d0c_0b0a_0908

    @Test func sipHashReferenceVectors() {
        // vectors.h, first entry: the empty message.
        #expect(SipHash24.hash([], k0: Self.k0, k1: Self.k1) == 0x726f_db47_dd0e_0e31)
        // The paper's Appendix A example: message 00 01 .. 0e (15 bytes).
        #expect(SipHash24.hash((0..<15).map { UInt8($0) }, k0: Self.k0, k1: Self.k1) == 0xa129_ca61_49be_45e5)
    }

    /// Golden values: these must never change, or instances running different
    /// Flowgate versions would send the same client to different members.
    @Test func stableHashGoldenValues() {
        #expect(StableHash.clientSlot(IPAddress("192.0.2.1")!) == 0xc7c6_09d4_e9b0_23f4)
        #expect(StableHash.clientSlot(IPAddress("2001:db8::1")!) == 0xc299_a280_bf03_85e4)
        #expect(StableHash.clientRamp(IPAddress("192.0.2.1")!) == 0.11394502169280529)
        #expect(StableHash.memberOffset("10.1.0.1:9000") == 0x3fc0_a554_08c7_09a3)
        #expect(StableHash.memberSkip("10.1.0.1:9000") == 0x3c6a_2f3e_3c91_dc75)
        #expect(FlowKey(Fixture.flow(), affinity: .none).stableHash == 0xb2f7_afe5_261d_174e)
    }

    @Test func mappedIPv4HashesLikeIPv4() {
        #expect(StableHash.clientSlot(IPAddress("::ffff:192.0.2.1")!) == StableHash.clientSlot(IPAddress("192.0.2.1")!))
        #expect(StableHash.clientSlot(IPAddress("192.0.2.2")!) != StableHash.clientSlot(IPAddress("192.0.2.1")!))
    }

    @Test func offsetAndSkipAreIndependentHashes() {
        #expect(StableHash.memberOffset("10.1.0.1:9000") != StableHash.memberSkip("10.1.0.1:9000"))
        #expect(StableHash.clientSlot(IPAddress("192.0.2.1")!) >> 11 != UInt64(StableHash.clientRamp(IPAddress("192.0.2.1")!) * 0x1p53))
    }

    @Test func affinityFlowKeyIgnoresPorts() {
        let a = FlowKey(Fixture.flow(port: 1111), affinity: .sourceIP)
        let b = FlowKey(Fixture.flow(port: 2222), affinity: .sourceIP)
        #expect(a.stableHash == b.stableHash)
        #expect(FlowKey(Fixture.flow(port: 1111), affinity: .none).stableHash != FlowKey(Fixture.flow(port: 2222), affinity: .none).stableHash)
    }
}
