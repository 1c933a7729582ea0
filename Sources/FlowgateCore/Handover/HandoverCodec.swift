/// The takeover state blob (docs/architecture.md §16.2): a header the next
/// process checks before it reads a byte of the body, then the body.
///
///   offset  size  field
///        0     4  magic "FGTS"
///        4     2  version (big endian; this build writes and reads 1)
///        6     2  reserved, 0
///        8     8  body length (big endian)
///       16    32  SHA-256 of the body
///       48     …  body: fields in HandoverState order, integers big endian,
///                 strings and addresses length-prefixed
///
/// Pure: no descriptors, so every refusal is unit tested
/// (Tests/FlowgateCoreTests/Handover/HandoverCodecTests.swift).
public enum HandoverCodec {
    public static let magic: [UInt8] = Array("FGTS".utf8)
    public static let version: UInt16 = 1
    public static let headerSize = 48
    /// A blob larger than this is refused before it is read (a sticky table
    /// holds at most `tuning.max_sticky_entries` per pool; this is far above).
    public static let maxBody = 1 << 30

    public static func encode(_ s: HandoverState) -> [UInt8] {
        var w = Writer()
        w.u64(s.snapshotGeneration)
        w.u64(s.takeoverGeneration)
        w.u32(s.members.count)
        for m in s.members {
            w.string(m.poolID); w.string(m.memberID); w.u8(m.up ? 1 : 0)
            w.optionalDouble(m.rampAge); w.u64(UInt64(max(0, m.activeFlows)))
        }
        w.u32(s.roundRobin.count)
        for r in s.roundRobin {
            w.string(r.poolID); w.u32(r.scores.count)
            for sc in r.scores { w.string(sc.memberID); w.u64(UInt64(bitPattern: Int64(sc.score))) }
        }
        w.u32(s.persistence.count)
        for e in s.persistence { w.string(e.poolID); w.address(e.client); w.string(e.memberID); w.optionalDouble(e.ttl) }
        w.u32(s.affinity.count)
        for e in s.affinity {
            w.string(e.poolID); w.address(e.key.client); w.address(e.key.listenerAddress); w.string(e.memberID); w.optionalDouble(e.ttl)
        }
        var out = magic
        out += [UInt8(version >> 8), UInt8(version & 0xff), 0, 0]
        let n = UInt64(w.bytes.count)
        for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: n >> (56 - 8 * UInt64(i)))) }
        out += SHA256.hash(w.bytes)
        out += w.bytes
        return out
    }

    public static func decode(_ blob: [UInt8]) throws(HandoverBlobError) -> HandoverState {
        guard blob.count >= headerSize else { throw .truncated(needed: headerSize, present: blob.count, what: "header") }
        guard Array(blob[0..<4]) == magic else { throw .badMagic(Array(blob[0..<4])) }
        let v = UInt16(blob[4]) << 8 | UInt16(blob[5])
        guard v == version else { throw .unsupportedVersion(found: v, supported: version) }
        var length: UInt64 = 0
        for i in 8..<16 { length = length << 8 | UInt64(blob[i]) }
        guard length <= UInt64(maxBody) else { throw .tooLarge(length: length, limit: maxBody) }
        let body = Array(blob[headerSize...])
        guard body.count >= Int(length) else { throw .truncated(needed: headerSize + Int(length), present: blob.count, what: "body") }
        guard body.count == Int(length) else { throw .trailingBytes(Int(length), body.count - Int(length)) }
        guard constantTimeEqual(SHA256.hash(body), Array(blob[16..<48])) else { throw .checksumMismatch }
        var r = Reader(bytes: body)
        var s = HandoverState(snapshotGeneration: try r.u64("snapshot_generation"), takeoverGeneration: try r.u64("takeover_generation"))
        for _ in 0..<(try r.count("members")) {
            s.members.append(.init(poolID: try r.string("member.pool_id"), memberID: try r.string("member.id"),
                                   up: try r.u8("member.up") != 0, rampAge: try r.optionalDouble("member.ramp_age"),
                                   activeFlows: Int(clamping: try r.u64("member.active_flows"))))
        }
        for _ in 0..<(try r.count("round_robin")) {
            var rr = HandoverState.RoundRobinScores(poolID: try r.string("round_robin.pool_id"), scores: [])
            for _ in 0..<(try r.count("round_robin.scores")) {
                rr.scores.append(.init(memberID: try r.string("round_robin.member_id"),
                                       score: Int(truncatingIfNeeded: Int64(bitPattern: try r.u64("round_robin.score")))))
            }
            s.roundRobin.append(rr)
        }
        for _ in 0..<(try r.count("persistence")) {
            s.persistence.append(.init(poolID: try r.string("persistence.pool_id"), client: try r.address("persistence.client"),
                                       memberID: try r.string("persistence.member_id"), ttl: try r.optionalDouble("persistence.ttl")))
        }
        for _ in 0..<(try r.count("affinity")) {
            let pool = try r.string("affinity.pool_id")
            let key = AffinityKey(client: try r.address("affinity.client"), listenerAddress: try r.address("affinity.listener"))
            s.affinity.append(.init(poolID: pool, key: key, memberID: try r.string("affinity.member_id"),
                                    ttl: try r.optionalDouble("affinity.ttl")))
        }
        guard r.offset == body.count else { throw .trailingBytes(r.offset, body.count - r.offset) }
        return s
    }

    struct Writer {
        var bytes: [UInt8] = []
        mutating func u8(_ v: UInt8) { bytes.append(v) }
        mutating func u32(_ v: Int) { let x = UInt32(v); for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: x >> (24 - 8 * UInt32(i)))) } }
        mutating func u64(_ x: UInt64) { for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: x >> (56 - 8 * UInt64(i)))) } }
        mutating func string(_ s: String) { let b = Array(s.utf8); u32(b.count); bytes += b }
        mutating func address(_ a: IPAddress) { bytes += a.unmapped.bytes16 }
        mutating func optionalDouble(_ d: Double?) {
            if let d, d.isFinite { u8(1); u64(d.bitPattern) } else { u8(0) }
        }
    }

    struct Reader {
        let bytes: [UInt8]
        var offset = 0
        mutating func take(_ n: Int, _ field: String) throws(HandoverBlobError) -> ArraySlice<UInt8> {
            guard n >= 0, bytes.count - offset >= n else { throw .malformed(field: field, offset: offset) }
            defer { offset += n }
            return bytes[offset..<(offset + n)]
        }
        mutating func u8(_ f: String) throws(HandoverBlobError) -> UInt8 { try take(1, f).first! }
        mutating func u32(_ f: String) throws(HandoverBlobError) -> Int { try take(4, f).reduce(0) { $0 << 8 | Int($1) } }
        mutating func u64(_ f: String) throws(HandoverBlobError) -> UInt64 { try take(8, f).reduce(0) { $0 << 8 | UInt64($1) } }
        /// An element count, bounded by the bytes left (each element takes at least one).
        mutating func count(_ f: String) throws(HandoverBlobError) -> Int {
            let n = try u32(f)
            guard n <= bytes.count - offset else { throw .malformed(field: f, offset: offset - 4) }
            return n
        }
        mutating func string(_ f: String) throws(HandoverBlobError) -> String {
            let n = try u32(f)
            let b = try take(n, f)
            guard let s = String(validating: b, as: UTF8.self) else { throw .malformed(field: f, offset: offset - n) }
            return s
        }
        mutating func address(_ f: String) throws(HandoverBlobError) -> IPAddress {
            let b = Array(try take(16, f))
            var hi: UInt64 = 0, lo: UInt64 = 0
            for i in 0..<8 { hi = hi << 8 | UInt64(b[i]); lo = lo << 8 | UInt64(b[8 + i]) }
            return IPAddress.v6(hi: hi, lo: lo).unmapped
        }
        mutating func optionalDouble(_ f: String) throws(HandoverBlobError) -> Double? {
            switch try u8(f) {
            case 0: return nil
            case 1:
                let d = Double(bitPattern: try u64(f))
                guard d.isFinite, d >= 0 else { throw .malformed(field: f, offset: offset - 8) }
                return d
            default: throw .malformed(field: f, offset: offset - 1)
            }
        }
    }
}

/// Why a state blob was refused; the message names what was wrong.
public enum HandoverBlobError: Error, Equatable, CustomStringConvertible {
    case truncated(needed: Int, present: Int, what: String)
    case badMagic([UInt8])
    case unsupportedVersion(found: UInt16, supported: UInt16)
    case tooLarge(length: UInt64, limit: Int)
    case trailingBytes(Int, Int)
    case checksumMismatch
    case malformed(field: String, offset: Int)

    public var description: String {
        switch self {
        case let .truncated(needed, present, what):
            return "takeover state blob is truncated: its \(what) needs \(needed) bytes, \(present) present"
        case let .badMagic(m):
            return "takeover state blob does not start with FGTS (found \(Hex.encode(m)))"
        case let .unsupportedVersion(found, supported):
            return "takeover state blob has version \(found); this flowgated reads only version \(supported)"
        case let .tooLarge(length, limit):
            return "takeover state blob declares a \(length)-byte body, over the \(limit)-byte limit"
        case let .trailingBytes(at, extra):
            return "takeover state blob has \(extra) bytes past its end at offset \(at)"
        case .checksumMismatch:
            return "takeover state blob failed its SHA-256 check (the body does not match the header's checksum)"
        case let .malformed(field, offset):
            return "takeover state blob: \(field) at body offset \(offset) is malformed"
        }
    }
}
