// Pick-path micro-benchmark (issue 4): picks per second per algorithm, single
// thread, with 2, 16 and 256 members. Each iteration is one
// `ListenerPlan.pick` plus its `release` (the data plane always pairs them),
// over 4096 distinct client addresses. Plain ContinuousClock timing; build
// with `swift build -c release --product flowgate-pickbench`.
import FlowgateCore

let poolID = "161835ef-0207-4300-ab5a-cf9c48f9f5ad"
let arn = "arn:aws:globalaccelerator::123456789012:accelerator/75702d00-f682-4895-b84d-eb47d3db0c81"

func config(algorithm: String, members n: Int, persistence: Bool, affinity: ClientAffinity) -> FlowgateConfig {
    let members = (0..<n).map { i in
        Member(id: "member-\(i)", address: "10.\(i / 65536 % 256).\(i / 250 % 256).\(i % 250 + 1)",
               protocolPort: 9000, weight: 1 + i % 3)
    }
    let pool = Pool(id: poolID, protocol: .tcp, lbAlgorithm: algorithm,
                    sessionPersistence: persistence ? SessionPersistence(type: .sourceIP, persistenceTimeout: 5) : nil,
                    members: members)
    let listener = Listener(listenerArn: arn + "/listener/0a1b2c3d", portRanges: [PortRange(fromPort: 8000, toPort: 8000)],
                            protocol: .tcp, clientAffinity: affinity, poolID: poolID, bind: "127.0.0.1")
    return FlowgateConfig(projectID: "ac80359381a34f04b39a333b0ea5117a",
                          accelerators: [Accelerator(acceleratorArn: arn, listeners: [listener])], pools: [pool])
}

let flows = (0..<4096).map { i in
    FlowContext(transport: .tcp, client: .v4(0x6440_0000 &+ UInt32(i) &* 2_654_435_761 % 0x3f_ffff),
                clientPort: UInt16(1024 + i % 60000), local: .v4(0x7f00_0001), localPort: 8000)
}

/// Picks per second over `iterations` pick+release pairs (best of 3 runs).
func measure(_ plan: ListenerPlan, iterations: Int) -> Double {
    var best = 0.0
    var sink = 0
    for _ in 0..<3 {
        let clock = ContinuousClock()
        let start = clock.now
        for i in 0..<iterations {
            let f = flows[i & 4095]
            if let t = plan.pick(f) {
                sink &+= Int(t.port)
                plan.release(f, target: t, connected: true)
            }
        }
        let d = start.duration(to: clock.now)
        let seconds = Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
        best = max(best, Double(iterations) / seconds)
    }
    precondition(sink != 0)
    return best
}

let cases: [(String, String, Bool, ClientAffinity)] = [
    ("ROUND_ROBIN", "ROUND_ROBIN", false, .none),
    ("LEAST_CONNECTIONS", "LEAST_CONNECTIONS", false, .none),
    ("SOURCE_IP", "SOURCE_IP", false, .none),
    ("ROUND_ROBIN + persistence", "ROUND_ROBIN", true, .none),
    ("ROUND_ROBIN + affinity", "ROUND_ROBIN", false, .sourceIP),
]
let sizes = [2, 16, 256]
let iterations = Int(CommandLine.arguments.dropFirst().first ?? "") ?? 400_000

func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
func lpad(_ s: String, _ n: Int) -> String { s.count >= n ? s : String(repeating: " ", count: n - s.count) + s }

print("picks/s (pick + release, one thread, \(iterations) iterations, best of 3)")
print(pad("algorithm", 28) + sizes.map { lpad("\($0) members", 14) }.joined())
for (label, algorithm, persistence, affinity) in cases {
    var row = pad(label, 28)
    for n in sizes {
        let snap = SnapshotBuilder().build(config(algorithm: algorithm, members: n, persistence: persistence, affinity: affinity),
                                           generation: 1)
        let rate = measure(snap.listeners[0], iterations: iterations)
        row += lpad(String(Int(rate.rounded())), 14)
    }
    print(row)
}
