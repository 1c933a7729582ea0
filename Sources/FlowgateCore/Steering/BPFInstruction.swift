// Hand-encoded eBPF instructions (the kernel's Documentation/bpf/
// standardization/instruction-set.rst): 8 bytes each, opcode, dst/src
// registers in one byte (src high nibble), a 16-bit offset and a 32-bit
// immediate, little-endian (x86-64 and arm64 here). No compiler is needed at
// build or run time: the sk_lookup program (PortLookupProgram.swift) is a
// few dozen of these, and its bytes are fixed by a golden unit test.

/// One 8-byte eBPF instruction.
public struct BPFInstruction: Sendable, Hashable {
    public var opcode: UInt8
    public var dst: UInt8
    public var src: UInt8
    public var offset: Int16
    public var imm: Int32

    public init(_ opcode: UInt8, dst: UInt8 = 0, src: UInt8 = 0, offset: Int16 = 0, imm: Int32 = 0) {
        self.opcode = opcode; self.dst = dst; self.src = src; self.offset = offset; self.imm = imm
    }

    /// The 8 bytes the kernel reads.
    public var bytes: [UInt8] {
        let o = UInt16(bitPattern: offset), i = UInt32(bitPattern: imm)
        return [opcode, (src << 4) | (dst & 0x0f), UInt8(o & 0xff), UInt8(o >> 8),
                UInt8(i & 0xff), UInt8((i >> 8) & 0xff), UInt8((i >> 16) & 0xff), UInt8(i >> 24)]
    }

    // Opcode parts (instruction-set.rst §3-§5).
    static let opLdx: UInt8 = 0x01, opSt: UInt8 = 0x02, opStx: UInt8 = 0x03, opAlu: UInt8 = 0x04
    static let opJmp: UInt8 = 0x05, opAlu64: UInt8 = 0x07, opLd: UInt8 = 0x00
    static let opW: UInt8 = 0x00, opH: UInt8 = 0x08, opDw: UInt8 = 0x18
    static let opMem: UInt8 = 0x60, opImm64: UInt8 = 0x00
    static let opK: UInt8 = 0x00, opX: UInt8 = 0x08
    static let opAdd: UInt8 = 0x00, opMov: UInt8 = 0xb0, opEnd: UInt8 = 0xd0, opToBE: UInt8 = 0x08
    static let opJa: UInt8 = 0x00, opJeq: UInt8 = 0x10, opJne: UInt8 = 0x50, opCall: UInt8 = 0x80, opExit: UInt8 = 0x90
    /// src of a 64-bit immediate load whose immediate is a map descriptor.
    public static let pseudoMapFD: UInt8 = 1

    /// dst = src (64-bit).
    public static func mov(_ dst: UInt8, _ src: UInt8) -> BPFInstruction { .init(opAlu64 | opMov | opX, dst: dst, src: src) }
    /// dst = imm (64-bit, sign-extended).
    public static func mov(_ dst: UInt8, imm: Int32) -> BPFInstruction { .init(opAlu64 | opMov | opK, dst: dst, imm: imm) }
    /// dst += imm (64-bit).
    public static func add(_ dst: UInt8, imm: Int32) -> BPFInstruction { .init(opAlu64 | opAdd | opK, dst: dst, imm: imm) }
    /// dst = htobe16(dst).
    public static func be16(_ dst: UInt8) -> BPFInstruction { .init(opAlu | opEnd | opToBE, dst: dst, imm: 16) }
    /// dst = *(u32 *)(src + off).
    public static func load32(_ dst: UInt8, _ src: UInt8, _ off: Int16) -> BPFInstruction { .init(opLdx | opMem | opW, dst: dst, src: src, offset: off) }
    /// *(u32 *)(dst + off) = src.
    public static func store32(_ dst: UInt8, _ off: Int16, _ src: UInt8) -> BPFInstruction { .init(opStx | opMem | opW, dst: dst, src: src, offset: off) }
    /// *(u16 *)(dst + off) = src.
    public static func store16(_ dst: UInt8, _ off: Int16, _ src: UInt8) -> BPFInstruction { .init(opStx | opMem | opH, dst: dst, src: src, offset: off) }
    /// *(u32 *)(dst + off) = imm.
    public static func store32(_ dst: UInt8, _ off: Int16, imm: Int32) -> BPFInstruction { .init(opSt | opMem | opW, dst: dst, offset: off, imm: imm) }
    /// dst = map (two instructions: the descriptor, then a zero upper half).
    public static func loadMap(_ dst: UInt8, fd: Int32) -> [BPFInstruction] {
        [.init(opLd | opImm64 | opDw, dst: dst, src: pseudoMapFD, imm: fd), .init(0)]
    }
    /// if dst == imm goto +off.
    public static func jeq(_ dst: UInt8, imm: Int32, _ off: Int16) -> BPFInstruction { .init(opJmp | opJeq | opK, dst: dst, offset: off, imm: imm) }
    /// if dst != imm goto +off.
    public static func jne(_ dst: UInt8, imm: Int32, _ off: Int16) -> BPFInstruction { .init(opJmp | opJne | opK, dst: dst, offset: off, imm: imm) }
    /// goto +off.
    public static func ja(_ off: Int16) -> BPFInstruction { .init(opJmp | opJa, offset: off) }
    /// r0 = helper(r1..r5).
    public static func call(_ helper: Int32) -> BPFInstruction { .init(opJmp | opCall, imm: helper) }
    public static let exit = BPFInstruction(opJmp | opExit)
}
