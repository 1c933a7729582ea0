/// The fixed-key hashes selection uses. Each purpose has its own SipHash key,
/// so the hashes are independent of each other (Maglev needs two independent
/// hashes of a member for offset and skip, §3.4; slow start needs a key hash
/// independent of the one that picks the table slot, docs/architecture.md §3.5).
/// Changing a key changes every instance's choices: never change one.
public enum StableHash {
    // ASCII "flowgate" / "maglevof", "maglevsk", "clientsl", "clientrp" as keys.
    static let commonK0: UInt64 = 0x6574_6167_776f_6c66
    static let offsetK1: UInt64 = 0x666f_7665_6c67_616d
    static let skipK1: UInt64 = 0x6b73_7665_6c67_616d
    static let slotK1: UInt64 = 0x6c73_746e_6569_6c63
    static let rampK1: UInt64 = 0x7072_746e_6569_6c63
    static let flowK1: UInt64 = 0x7965_6b77_6f6c_6600

    /// Maglev `offset` hash of a member's name (§3.4: h1).
    public static func memberOffset(_ name: String) -> UInt64 { SipHash24.hash(name, k0: commonK0, k1: offsetK1) }
    /// Maglev `skip` hash of a member's name (§3.4: h2).
    public static func memberSkip(_ name: String) -> UInt64 { SipHash24.hash(name, k0: commonK0, k1: skipK1) }

    /// The hash of a client address that picks its Maglev slot. IPv4 hashes
    /// its 4 bytes, IPv6 its 16, both in network order, after unmapping
    /// ::ffff:a.b.c.d, so a v4 client hashes the same on a dual-stack listener.
    public static func clientSlot(_ address: IPAddress) -> UInt64 { hash(address.unmapped, k1: slotK1) }

    /// A second, independent hash of the client address mapped to [0, 1):
    /// under slow start a ramping member takes the key only when this falls
    /// under its ramp fraction.
    public static func clientRamp(_ address: IPAddress) -> Double { unit(hash(address.unmapped, k1: rampK1)) }

    /// Maps a 64-bit hash to [0, 1) using its top 53 bits (a Double's precision).
    public static func unit(_ h: UInt64) -> Double { Double(h >> 11) * 0x1p-53 }

    static func hash(_ address: IPAddress, k1: UInt64) -> UInt64 {
        switch address {
        case let .v4(a):
            return withUnsafeBytes(of: a.bigEndian) { SipHash24.hash($0, k0: commonK0, k1: k1) }
        case let .v6(hi, lo):
            return withUnsafeBytes(of: (hi.bigEndian, lo.bigEndian)) { SipHash24.hash($0, k0: commonK0, k1: k1) }
        }
    }
}
