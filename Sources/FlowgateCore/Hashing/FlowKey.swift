/// The key a flow is known by, from the listener's ClientAffinity
/// (docs/architecture.md §3.1): NONE keeps the 5-tuple; SOURCE_IP keeps only (client IP, listener
/// IP), so every source port of one client maps to the same key.
public struct FlowKey: Sendable, Hashable {
    public var transport: TransportProtocol
    public var client: IPAddress
    public var clientPort: UInt16
    public var local: IPAddress
    public var localPort: UInt16

    public init(_ flow: FlowContext, affinity: ClientAffinity) {
        transport = flow.transport
        client = flow.client
        local = flow.local
        switch affinity {
        case .none: clientPort = flow.clientPort; localPort = flow.localPort
        case .sourceIP: clientPort = 0; localPort = 0
        }
    }

    /// Hand-written because the synthesized version hashes `transport` through
    /// its String raw value (RawRepresentable's default): callgrind showed
    /// `String.hash(into:)` on every UDP datagram's flow-table lookup
    /// (bench/callgrind). The IP protocol number says the same in one byte.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(transport == .tcp ? UInt8(6) : UInt8(17))
        hasher.combine(client)
        hasher.combine(clientPort)
        hasher.combine(local)
        hasher.combine(localPort)
    }
}

extension FlowKey {
    /// A hash of the key that is the same in every process and on every
    /// instance (SipHash-2-4 with a fixed key), unlike `hashValue`.
    public var stableHash: UInt64 {
        var bytes: [UInt8] = [transport == .tcp ? 6 : 17]
        bytes += client.unmapped.bytes16
        bytes += [UInt8(clientPort >> 8), UInt8(clientPort & 0xff)]
        bytes += local.unmapped.bytes16
        bytes += [UInt8(localPort >> 8), UInt8(localPort & 0xff)]
        return SipHash24.hash(bytes, k0: StableHash.commonK0, k1: StableHash.flowK1)
    }
}
