/// What the data plane knows about a new flow when it asks for a backend:
/// client `c:cp` reached listener address `d:p` (docs/architecture.md §3).
public struct FlowContext: Sendable, Hashable {
    public var transport: TransportProtocol
    public var client: IPAddress
    public var clientPort: UInt16
    public var local: IPAddress
    public var localPort: UInt16
    public init(transport: TransportProtocol, client: IPAddress, clientPort: UInt16, local: IPAddress, localPort: UInt16) {
        self.transport = transport; self.client = client.unmapped; self.clientPort = clientPort
        self.local = local.unmapped; self.localPort = localPort
    }
}

/// The member a flow was given: where to connect, and the identity used to
/// count the flow against the member (least connections, metrics).
public struct BackendTarget: Sendable, Hashable {
    public var memberID: String
    public var address: IPAddress
    public var port: UInt16
    public init(memberID: String, address: IPAddress, port: UInt16) {
        self.memberID = memberID; self.address = address; self.port = port
    }
}
