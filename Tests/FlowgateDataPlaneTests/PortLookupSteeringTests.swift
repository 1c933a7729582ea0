#if canImport(Glibc)
import Glibc
#endif
import Testing
import FlowgateCore
import FlowgateSystem
@testable import FlowgateDataPlane

/// The kernel accepts the hand-encoded program and the map encodings (needs
/// root or CAP_BPF + CAP_NET_ADMIN; the test says so and stops otherwise).
/// Attaching in the test's own network namespace steers nothing: the map
/// stays empty except for a port nobody else uses here.
@Suite struct PortLookupSteeringTests {
    @Test func programLoadsAndMapsTakeEntries() throws {
        let steering: PortLookupSteering
        do throws(SteeringError) { steering = try PortLookupSteering.open() } catch {
            print("sk_lookup unavailable here: \(error)"); return
        }
        defer { steering.close() }
        // A listening TCP socket in slot 0, one entry pointing at it.
        let fd = try System.streamSocket(family: AF_INET)
        defer { System.close(fd) }
        try System.bind(fd, SocketAddress(ipv4: 0x7f00_0001, port: 0))
        try System.listen(fd, backlog: 8)
        let slot = try #require(steering.allocateSlot())
        try steering.setSocket(slot, fd: fd)
        let desired = PortLookupTable.entries([.init(transport: .tcp, bind: IPAddress("127.0.0.1")!,
                                                     ranges: [PortRange(fromPort: 1, toPort: 3)], slot: slot)])
        #expect(steering.apply(desired) == nil)
        #expect(steering.entryCount == 2)   // 1/16 and 2-3/15
        let key = PortLookupKey(protocolNumber: 6, address: IPAddress("127.0.0.1")!, port: 2, portBits: 15)
        #expect(try System.bpfMapLookup(steering.portMap, key: key.bytes, valueSize: 4) == PortLookupSteering.slotKey(slot))
        #expect(steering.apply([:]) == nil)
        #expect(try System.bpfMapLookup(steering.portMap, key: key.bytes, valueSize: 4) == nil)
        steering.releaseSlot(slot)
    }
}
