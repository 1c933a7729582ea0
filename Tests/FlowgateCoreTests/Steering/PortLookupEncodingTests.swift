import Testing
@testable import FlowgateCore

/// The sk_lookup program's bytes and the port map's keys (docs/architecture.md §20). The kernel reads these
/// bytes as they are: a changed instruction, offset or key layout must show up here first.
@Suite struct PortLookupEncodingTests {
    /// The whole program with map descriptors 3 (ports) and 4 (sockets), one instruction per group. Checked by
    /// hand against PortLookupProgram's listing (jumps: family==AF_INET6 +7, v4 done +8, first lookup hit +10,
    /// second lookup miss +15, socket miss +7) and accepted by the kernel's verifier (PortLookupSteeringTests).
    static let golden = """
    bf16000000000000 61620c0000000000 632ae4ff00000000 620ae0ffb0000000
    61623c0000000000 dc02000010000000 6b2af8ff00000000 b707000000000000
    6162080000000000 150207000a000000 620ae8ff00000000 620aecff00000000
    620af0ff0000ffff b70700000000ffff 6162280000000000 632af4ff00000000
    0500080000000000 61622c0000000000 632ae8ff00000000 6162300000000000
    632aecff00000000 6162340000000000 632af0ff00000000 6162380000000000
    632af4ff00000000 1811000003000000 0000000000000000 bfa2000000000000
    07020000e0ffffff 8500000001000000 55000a0000000000 620ae8ff00000000
    620aecff00000000 637af0ff00000000 620af4ff00000000 1811000003000000
    0000000000000000 bfa2000000000000 07020000e0ffffff 8500000001000000
    15000f0000000000 6102000000000000 632adcff00000000 1811000004000000
    0000000000000000 bfa2000000000000 07020000dcffffff 8500000001000000
    1500070000000000 bf08000000000000 bf61000000000000 bf82000000000000
    b703000000000000 850000007c000000 bf81000000000000 8500000056000000
    b700000001000000 9500000000000000
    """

    static func hex(_ bytes: [UInt8]) -> String {
        stride(from: 0, to: bytes.count, by: 8).map { i in
            bytes[i..<min(i + 8, bytes.count)].map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
        }.joined(separator: " ")
    }

    @Test func programBytesAreTheGoldenEncoding() {
        let want = PortLookupEncodingTests.golden.split(whereSeparator: { $0 == " " || $0 == "\n" }).joined(separator: " ")
        #expect(PortLookupEncodingTests.hex(PortLookupProgram.bytes(portMap: 3, socketMap: 4)) == want)
    }

    @Test func programShape() {
        let code = PortLookupProgram.instructions(portMap: 3, socketMap: 4)
        #expect(code.count == 58)
        #expect(code.last == .exit)
        // Every jump lands inside the program, forward.
        for (i, ins) in code.enumerated() where ins.opcode & 0x07 == 0x05 && ins.opcode != 0x85 && ins.opcode != 0x95 {
            #expect(ins.offset > 0 && i + 1 + Int(ins.offset) < code.count)
        }
        // Both maps are referenced through BPF_PSEUDO_MAP_FD loads, and the helpers are lookup, assign, release.
        let maps = code.filter { $0.opcode == 0x18 }.map(\.imm)
        #expect(maps == [3, 3, 4])
        #expect(code.filter { $0.opcode == 0x85 }.map(\.imm) == [1, 1, 1, 124, 86])
    }

    @Test func instructionLayout() {
        // r2 = *(u32 *)(r6 + 12): opcode, src<<4|dst, offset and immediate little-endian.
        #expect(BPFInstruction.load32(2, 6, 12).bytes == [0x61, 0x62, 0x0c, 0x00, 0, 0, 0, 0])
        #expect(BPFInstruction.store32(10, -8, imm: -65536).bytes == [0x62, 0x0a, 0xf8, 0xff, 0x00, 0x00, 0xff, 0xff])
    }

    @Test func rangesBecomeTheFewestPrefixes() {
        func cover(_ from: Int, _ to: Int) -> [ClosedRange<Int>] {
            PortLookupKey.prefixes(from: from, to: to).map { PortLookupKey(protocolNumber: 6, address: .v4(0), port: $0.port, portBits: $0.bits).ports }
        }
        #expect(PortLookupKey.prefixes(from: 1, to: 65535).count == 16)
        #expect(cover(1, 65535).first == 1...1 && cover(1, 65535).last == 32768...65535)
        #expect(cover(80, 80) == [80...80])
        #expect(cover(0, 65535) == [0...65535])
        #expect(cover(8000, 8009) == [8000...8007, 8008...8009])
        // Exact cover, no overlap, for a spread of ranges.
        for (from, to) in [(1, 1), (2, 3), (1, 30000), (30001, 65535), (1023, 1025), (4097, 61439), (65535, 65535)] {
            let ranges = cover(from, to)
            #expect(ranges.first?.lowerBound == from && ranges.last?.upperBound == to)
            for (a, b) in zip(ranges, ranges.dropFirst()) { #expect(a.upperBound + 1 == b.lowerBound) }
            #expect(ranges.count <= 30)
        }
    }

    @Test func keyBytes() {
        // TCP, 198.18.0.1, ports 2-3 (15 bits): prefix 32+128+15 = 175.
        let k = PortLookupKey(protocolNumber: 6, address: IPAddress("198.18.0.1")!, port: 2, portBits: 15)
        #expect(k.bytes == [175, 0, 0, 0, 6, 0, 0, 0] + [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 18, 0, 1] + [0, 2])
        #expect(k.bytes.count == PortLookupKey.byteCount)
        let v6 = PortLookupKey(protocolNumber: 17, address: IPAddress("2001:db8::1")!, port: 65535, portBits: 16)
        #expect(Array(v6.bytes[0..<8]) == [176, 0, 0, 0, 17, 0, 0, 0])
        #expect(Array(v6.bytes[8..<10]) == [0x20, 0x01] && Array(v6.bytes[24..<26]) == [0xff, 0xff])
    }

    @Test func wildcardBindsAndDiff() {
        let any6 = IPAddress("::")!
        #expect(PortLookupKey.addresses(forBind: any6) == [any6, .v4(0)])
        #expect(PortLookupKey.addresses(forBind: IPAddress("0.0.0.0")!) == [.v4(0)])
        let bind = IPAddress("198.18.0.1")!
        let before = PortLookupTable.entries([.init(transport: .tcp, bind: bind, ranges: [PortRange(fromPort: 1, toPort: 65535)], slot: 0),
                                              .init(transport: .udp, bind: bind, ranges: [PortRange(fromPort: 1, toPort: 65535)], slot: 1)])
        #expect(before.count == 32)
        // Shrinking TCP to 1..30000 only touches TCP entries; UDP's stay.
        let after = PortLookupTable.entries([.init(transport: .tcp, bind: bind, ranges: [PortRange(fromPort: 1, toPort: 30000)], slot: 0),
                                             .init(transport: .udp, bind: bind, ranges: [PortRange(fromPort: 1, toPort: 65535)], slot: 1)])
        let (writes, deletes) = PortLookupTable.diff(current: before, desired: after)
        #expect(writes.allSatisfy { $0.key.protocolNumber == 6 && $0.slot == 0 })
        #expect(deletes.allSatisfy { $0.protocolNumber == 6 })
        var applied = before
        for w in writes { applied[w.key] = w.slot }
        for d in deletes { applied[d] = nil }
        #expect(applied == after)
        // Every TCP port 1..30000 is covered once, none above.
        let tcp = after.keys.filter { $0.protocolNumber == 6 }.map(\.ports).sorted { $0.lowerBound < $1.lowerBound }
        #expect(tcp.first?.lowerBound == 1 && tcp.last?.upperBound == 30000)
        // Moving a listener to another slot rewrites its entries in place, deleting nothing.
        let moved = after.mapValues { $0 == 1 ? 7 : $0 }
        let (w2, d2) = PortLookupTable.diff(current: after, desired: moved)
        #expect(d2.isEmpty && w2.count == 16 && w2.allSatisfy { $0.slot == 7 })
    }
}
