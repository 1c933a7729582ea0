// The sk_lookup program that serves a listener's whole port range from one
// socket per worker (docs/architecture.md §20). Linux runs it for every
// TCP SYN and UDP datagram that is about to look up a local socket
// (Documentation/bpf/prog_sk_lookup.rst); it steers only packets whose
// (protocol, destination address, destination port) match an entry of the
// port map, and passes every other packet on untouched (SK_PASS without a
// socket), so the ports of other services are never captured.
//
// In C it would read:
//
//   struct key { u32 prefixlen; u32 protocol; u8 addr[16]; be16 port; } k;
//   k.prefixlen = 176; k.protocol = ctx->protocol; k.port = htons(ctx->local_port);
//   k.addr = family == AF_INET6 ? local_ip6 : ::ffff:local_ip4;
//   u32 *slot = lookup(&ports, &k);
//   if (!slot) { k.addr = family == AF_INET6 ? :: : ::ffff:0.0.0.0; slot = lookup(&ports, &k); }
//   if (!slot) return SK_PASS;
//   sk = lookup(&sockets, slot);
//   if (sk) { bpf_sk_assign(ctx, sk, 0); bpf_sk_release(sk); }
//   return SK_PASS;
//
// `ports` is an LPM trie (PortLookupKey.swift): a port range is a few
// prefixes of the port's bits, so 1..65535 is 16 entries, not 65,535. The
// exact bind address is tried first, then the wildcard of the packet's
// family (a listener on 0.0.0.0 or ::). The socket found is the first of a
// listener's SO_REUSEPORT group: with flags 0 the kernel then picks among
// the group's sockets (one per worker) by the packet's 4-tuple hash.

public enum PortLookupProgram {
    /// Kernel numbers the program uses (include/uapi/linux/bpf.h).
    public static let helperMapLookup: Int32 = 1
    public static let helperSkRelease: Int32 = 86
    public static let helperSkAssign: Int32 = 124
    public static let skPass: Int32 = 1
    public static let afInet6: Int32 = 10
    /// struct bpf_sk_lookup field offsets.
    static let ctxFamily: Int16 = 8, ctxProtocol: Int16 = 12, ctxLocalIP4: Int16 = 40
    static let ctxLocalIP6: Int16 = 44, ctxLocalPort: Int16 = 60
    /// Stack layout: the trie key at -32 (26 bytes), the socket slot at -36.
    static let keyAt: Int16 = -32, slotAt: Int16 = -36

    /// The instructions with the two map descriptors filled in.
    public static func instructions(portMap: Int32, socketMap: Int32) -> [BPFInstruction] {
        typealias I = BPFInstruction
        var a = Assembler()
        let r0: UInt8 = 0, r1: UInt8 = 1, r2: UInt8 = 2, r3: UInt8 = 3, r6: UInt8 = 6, r7: UInt8 = 7, r8: UInt8 = 8, fp: UInt8 = 10
        let addr = keyAt + 8       // 16 address bytes
        a.emit(.mov(r6, r1))                                      // r6 = ctx
        a.emit(.load32(r2, r6, ctxProtocol))
        a.emit(.store32(fp, keyAt + 4, r2))                       // k.protocol
        a.emit(.store32(fp, keyAt, imm: Int32(PortLookupKey.fullPrefix)))   // k.prefixlen
        a.emit(.load32(r2, r6, ctxLocalPort))
        a.emit(.be16(r2))
        a.emit(.store16(fp, keyAt + 24, r2))                      // k.port, network order
        a.emit(.mov(r7, imm: 0))                                  // word 2 of the wildcard: :: ...
        a.emit(.load32(r2, r6, ctxFamily))
        a.jump(.jeq(r2, imm: afInet6, 0), to: "v6")
        a.emit(.store32(fp, addr, imm: 0))                        // ::ffff:a.b.c.d
        a.emit(.store32(fp, addr + 4, imm: 0))
        a.emit(.store32(fp, addr + 8, imm: -65536))               // bytes 00 00 ff ff
        a.emit(.mov(r7, imm: -65536))                             // ... or ::ffff:0.0.0.0
        a.emit(.load32(r2, r6, ctxLocalIP4))
        a.emit(.store32(fp, addr + 12, r2))
        a.jump(.ja(0), to: "lookup")
        a.label("v6")
        for w in 0..<4 {
            a.emit(.load32(r2, r6, ctxLocalIP6 + Int16(4 * w)))
            a.emit(.store32(fp, addr + Int16(4 * w), r2))
        }
        a.label("lookup")
        a.emit(I.loadMap(r1, fd: portMap))
        a.emit(.mov(r2, fp))
        a.emit(.add(r2, imm: Int32(keyAt)))
        a.emit(.call(helperMapLookup))
        a.jump(.jne(r0, imm: 0, 0), to: "found")
        a.emit(.store32(fp, addr, imm: 0))                        // the family's wildcard
        a.emit(.store32(fp, addr + 4, imm: 0))
        a.emit(.store32(fp, addr + 8, r7))
        a.emit(.store32(fp, addr + 12, imm: 0))
        a.emit(I.loadMap(r1, fd: portMap))
        a.emit(.mov(r2, fp))
        a.emit(.add(r2, imm: Int32(keyAt)))
        a.emit(.call(helperMapLookup))
        a.jump(.jeq(r0, imm: 0, 0), to: "pass")
        a.label("found")
        a.emit(.load32(r2, r0, 0))                                // the socket slot
        a.emit(.store32(fp, slotAt, r2))
        a.emit(I.loadMap(r1, fd: socketMap))
        a.emit(.mov(r2, fp))
        a.emit(.add(r2, imm: Int32(slotAt)))
        a.emit(.call(helperMapLookup))                            // takes a socket reference
        a.jump(.jeq(r0, imm: 0, 0), to: "pass")
        a.emit(.mov(r8, r0))
        a.emit(.mov(r1, r6))
        a.emit(.mov(r2, r8))
        a.emit(.mov(r3, imm: 0))                                  // flags 0: SO_REUSEPORT selection on
        a.emit(.call(helperSkAssign))
        a.emit(.mov(r1, r8))
        a.emit(.call(helperSkRelease))
        a.label("pass")
        a.emit(.mov(r0, imm: skPass))
        a.emit(.exit)
        return a.resolved()
    }

    /// The program as the kernel reads it (BPF_PROG_LOAD's `insns`).
    public static func bytes(portMap: Int32, socketMap: Int32) -> [UInt8] {
        instructions(portMap: portMap, socketMap: socketMap).flatMap(\.bytes)
    }

    /// Forward jumps to named labels, patched once every label is known.
    struct Assembler {
        var code: [BPFInstruction] = []
        var labels: [String: Int] = [:]
        var fixups: [(at: Int, label: String)] = []
        mutating func emit(_ i: BPFInstruction) { code.append(i) }
        mutating func emit(_ list: [BPFInstruction]) { code += list }
        mutating func jump(_ i: BPFInstruction, to label: String) { fixups.append((code.count, label)); code.append(i) }
        mutating func label(_ name: String) { labels[name] = code.count }
        func resolved() -> [BPFInstruction] {
            var out = code
            for f in fixups {
                guard let target = labels[f.label] else { preconditionFailure("no label \(f.label)") }
                out[f.at].offset = Int16(target - f.at - 1)
            }
            return out
        }
    }
}
