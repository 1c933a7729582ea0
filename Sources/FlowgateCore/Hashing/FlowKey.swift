/// The key a flow is known by, from the listener's ClientAffinity (design §3
/// step 1): NONE keeps the 5-tuple; SOURCE_IP keeps only (client IP, listener
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
}
