@testable import FlowgateCore

/// Builders for selection tests: one accelerator, listeners on one pool.
enum Fixture {
    static let poolID = "161835ef-0207-4300-ab5a-cf9c48f9f5ad"
    static let listenerArn = "arn:aws:globalaccelerator::123456789012:accelerator/75702d00-f682-4895-b84d-eb47d3db0c81/listener/0a1b2c3d"

    static func member(_ name: String, _ last: Int, weight: Int = 1, port: Int? = 9000, up: Bool = true) -> Member {
        Member(id: "member-\(name)", name: name, address: "10.1.0.\(last)", protocolPort: port, weight: weight, adminStateUp: up)
    }

    /// Members a, b, c, ... at 10.1.0.1, .2, ... with the given weights.
    static func members(_ weights: [Int]) -> [Member] {
        weights.enumerated().map { i, w in member(String(UnicodeScalar(UInt8(97 + i))), i + 1, weight: w) }
    }

    static func config(algorithm: String = "ROUND_ROBIN", members: [Member],
                       affinity: ClientAffinity = .none, idleTimeout: Int = 340,
                       persistence: SessionPersistence? = nil, slowStart: SlowStart = SlowStart(),
                       maxSticky: Int? = nil) -> FlowgateConfig {
        let pool = Pool(id: poolID, name: "web", protocol: .tcp, lbAlgorithm: algorithm,
                        sessionPersistence: persistence, slowStart: slowStart, members: members)
        let listener = Listener(listenerArn: listenerArn, portRanges: [PortRange(fromPort: 8000, toPort: 8009)],
                                protocol: .tcp, clientAffinity: affinity, poolID: poolID,
                                bind: "127.0.0.1", idleTimeout: idleTimeout)
        var tuning = Tuning()
        if let maxSticky { tuning.maxStickyEntries = maxSticky }
        return FlowgateConfig(tuning: tuning, projectID: "ac80359381a34f04b39a333b0ea5117a",
                              accelerators: [Accelerator(acceleratorArn: "arn:aws:globalaccelerator::123456789012:accelerator/75702d00-f682-4895-b84d-eb47d3db0c81",
                                                         listeners: [listener])],
                              pools: [pool])
    }

    static func flow(_ client: String = "198.51.100.7", port: UInt16 = 40000, local: String = "127.0.0.1") -> FlowContext {
        FlowContext(transport: .tcp, client: IPAddress(client)!, clientPort: port, local: IPAddress(local)!, localPort: 8000)
    }

    /// The i-th of many distinct client addresses (100.64.0.0/10 and up).
    static func client(_ i: Int) -> IPAddress { .v4(0x6440_0000 &+ UInt32(i) &* 2_654_435_761 % 0x3f_ffff) }

    static func clientFlow(_ i: Int) -> FlowContext {
        FlowContext(transport: .tcp, client: client(i), clientPort: 40000, local: IPAddress("127.0.0.1")!, localPort: 8000)
    }

    /// Picks and immediately releases: the member name (id without prefix).
    static func pickName(_ plan: ListenerPlan, _ flow: FlowContext, excluding: [String] = []) -> String? {
        guard let t = plan.pick(flow, excluding: excluding) else { return nil }
        plan.release(flow, target: t, connected: true)
        return String(t.memberID.dropFirst("member-".count))
    }
}
