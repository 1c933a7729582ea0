/// SipHash-2-4 (Aumasson & Bernstein, "SipHash: a fast short-input PRF",
/// INDOCRYPT 2012), written out here because Swift's `Hasher` is seeded
/// randomly per process: selection hashes must be the same on every Flowgate
/// instance and every run, or two instances with one config would disagree
/// (docs/architecture.md §3.4).
public enum SipHash24 {
    /// Hashes `bytes` under the 128-bit key (k0, k1), k0 being the key's first
    /// 8 bytes read little-endian, as in the reference implementation.
    public static func hash(_ bytes: UnsafeRawBufferPointer, k0: UInt64, k1: UInt64) -> UInt64 {
        var v0: UInt64 = k0 ^ 0x736f_6d65_7073_6575
        var v1: UInt64 = k1 ^ 0x646f_7261_6e64_6f6d
        var v2: UInt64 = k0 ^ 0x6c79_6765_6e65_7261
        var v3: UInt64 = k1 ^ 0x7465_6462_7974_6573

        @inline(__always) func round() {
            v0 &+= v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32)
            v2 &+= v3; v3 = rotl(v3, 16); v3 ^= v2
            v0 &+= v3; v3 = rotl(v3, 21); v3 ^= v0
            v2 &+= v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32)
        }

        let count = bytes.count
        let whole = count & ~7
        var i = 0
        while i < whole {
            var m: UInt64 = 0
            for b in 0..<8 { m |= UInt64(bytes[i + b]) << (8 * UInt64(b)) }
            v3 ^= m; round(); round(); v0 ^= m
            i += 8
        }
        var last = UInt64(truncatingIfNeeded: count) << 56
        for b in 0..<(count - whole) { last |= UInt64(bytes[whole + b]) << (8 * UInt64(b)) }
        v3 ^= last; round(); round(); v0 ^= last
        v2 ^= 0xff
        round(); round(); round(); round()
        return v0 ^ v1 ^ v2 ^ v3
    }

    public static func hash(_ bytes: [UInt8], k0: UInt64, k1: UInt64) -> UInt64 {
        bytes.withUnsafeBytes { hash($0, k0: k0, k1: k1) }
    }

    public static func hash(_ text: String, k0: UInt64, k1: UInt64) -> UInt64 {
        var copy = text
        return copy.withUTF8 { hash(UnsafeRawBufferPointer($0), k0: k0, k1: k1) }
    }

    @inline(__always) static func rotl(_ x: UInt64, _ b: UInt64) -> UInt64 { (x << b) | (x >> (64 - b)) }
}
