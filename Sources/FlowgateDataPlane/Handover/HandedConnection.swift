// An established TCP connection on its way from one process to the next
// (docs/architecture.md §16.3): its two sockets and what the next process
// needs to relay it and to count it.
import FlowgateCore

public struct HandedConnection: Sendable {
    /// Its position in this hand-over (the commit names declined ones by it).
    public var id: Int
    /// The listening socket that accepted it (bind address and port).
    public var key: ListeningSocketKey
    public var flow: FlowContext
    public var memberID: String
    public var memberAddress: IPAddress
    public var memberPort: UInt16
    /// Bytes relayed so far, client → member and member → client.
    public var bytesIn: Int
    public var bytesOut: Int
    /// Seconds left before the listener's idle timeout.
    public var idleLeft: Int
    public var client: Int32
    public var backend: Int32

    public init(id: Int, key: ListeningSocketKey, flow: FlowContext, memberID: String, memberAddress: IPAddress,
                memberPort: UInt16, bytesIn: Int, bytesOut: Int, idleLeft: Int, client: Int32, backend: Int32) {
        self.id = id; self.key = key; self.flow = flow; self.memberID = memberID; self.memberAddress = memberAddress
        self.memberPort = memberPort; self.bytesIn = bytesIn; self.bytesOut = bytesOut; self.idleLeft = idleLeft
        self.client = client; self.backend = backend
    }

    /// One line of a `conns` message (Sources/flowgated/Takeover/TakeoverWire.swift).
    public var line: String {
        "c \(id) \(key.bind) \(key.port) \(flow.client) \(flow.clientPort) \(flow.local) \(memberID) \(memberAddress) \(memberPort) \(bytesIn) \(bytesOut) \(idleLeft)"
    }

    /// Parses `line` with the two descriptors it came with; nil when malformed.
    public static func parse(_ line: Substring, client: Int32, backend: Int32) -> HandedConnection? {
        let f = line.split(separator: " ")
        guard f.count == 13, f[0] == "c", let id = Int(f[1]), let bind = IPAddress(f[2]), let port = Int(f[3]),
              (1...65535).contains(port), let cip = IPAddress(f[4]), let cport = UInt16(f[5]), let local = IPAddress(f[6]),
              let maddr = IPAddress(f[8]), let mport = UInt16(f[9]), let bin = Int(f[10]), let bout = Int(f[11]),
              let idle = Int(f[12]) else { return nil }
        let key = ListeningSocketKey(transport: .tcp, bind: bind, port: port)
        let flow = FlowContext(transport: .tcp, client: cip, clientPort: cport, local: local, localPort: UInt16(port))
        return HandedConnection(id: id, key: key, flow: flow, memberID: String(f[7]), memberAddress: maddr, memberPort: mport,
                                bytesIn: bin, bytesOut: bout, idleLeft: idle, client: client, backend: backend)
    }
}
