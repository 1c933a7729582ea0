// Shared fixtures: a recording applier and a small configuration.
import Synchronization
@testable import FlowgateControl
import FlowgateCore

/// A `ConfigApplier` that records every committed config and can be told to
/// fail `prepare` (as a port already in use would).
final class RecordingApplier: ConfigApplier, @unchecked Sendable {
    typealias Prepared = FlowgateConfig
    private let state: Mutex<(current: FlowgateConfig, commits: [FlowgateConfig], aborts: Int, failNext: ApplyError?)>
    init(_ config: FlowgateConfig) { state = Mutex((config, [], 0, nil)) }
    var current: FlowgateConfig { state.withLock { $0.current } }
    var commits: [FlowgateConfig] { state.withLock { $0.commits } }
    var aborts: Int { state.withLock { $0.aborts } }
    func failNextPrepare(_ e: ApplyError) { state.withLock { $0.failNext = e } }
    func prepare(_ new: FlowgateConfig) throws(ApplyError) -> FlowgateConfig {
        if let e = state.withLock({ s -> ApplyError? in let e = s.failNext; s.failNext = nil; return e }) { throw e }
        return new
    }
    func commit(_ prepared: FlowgateConfig) { state.withLock { $0.current = prepared; $0.commits.append(prepared) } }
    func abort(_ prepared: FlowgateConfig) { state.withLock { $0.aborts += 1 } }
}

enum Fixture {
    static let accelerator = "arn:aws:globalaccelerator::123456789012:accelerator/75702d00-f682-4895-b84d-eb47d3db0c81"
    static let listenerA = accelerator + "/listener/0a1b2c3d"
    static let listenerB = accelerator + "/listener/0b1b2c3d"
    static let listenerU = accelerator + "/listener/0c1b2c3d"
    static let project = "ac80359381a34f04b39a333b0ea5117a"
    static let tcpPool = "161835ef-0207-4300-ab5a-cf9c48f9f5ad"
    static let httpPool = "261835ef-0207-4300-ab5a-cf9c48f9f5ad"
    static let udpPool = "361835ef-0207-4300-ab5a-cf9c48f9f5ad"
    static let member1 = "aaaaaaaa-0000-4000-8000-000000000001"

    static func config() -> FlowgateConfig {
        FlowgateConfig(
            projectID: project,
            accelerators: [Accelerator(acceleratorArn: accelerator, name: "edge", listeners: [
                Listener(listenerArn: listenerA, portRanges: [PortRange(fromPort: 8000, toPort: 8009)], protocol: .tcp, poolID: tcpPool, bind: "127.0.0.1"),
                Listener(listenerArn: listenerB, portRanges: [PortRange(fromPort: 9000, toPort: 9000)], protocol: .tcp, poolID: httpPool, bind: "127.0.0.1"),
                Listener(listenerArn: listenerU, portRanges: [PortRange(fromPort: 8000, toPort: 8000)], protocol: .udp, poolID: udpPool, bind: "127.0.0.1"),
            ])],
            pools: [
                Pool(id: tcpPool, name: "web", protocol: .tcp, members: [
                    Member(id: member1, address: "127.0.0.1", protocolPort: 9001, weight: 3),
                ]),
                Pool(id: httpPool, name: "api", protocol: .http),
                Pool(id: udpPool, name: "dns", protocol: .udp),
            ])
    }

    static func service(_ config: FlowgateConfig = Fixture.config()) -> (ControlService, RecordingApplier) {
        let applier = RecordingApplier(config)
        return (ControlService(applier: AnyApplier(applier), store: nil, baseConfig: config), applier)
    }

    static func router(_ config: FlowgateConfig = Fixture.config(), control: ControlConfig = ControlConfig()) -> (ControlRouter, RecordingApplier) {
        let (service, applier) = Fixture.service(config)
        let router = ControlRouter(service: service, control: control, tcpIsLoopback: true)
        router.newRequestID = { "11111111-2222-4333-8444-555555555555" }
        var n = 0
        let ids = Mutex(0)
        _ = n; n = 0
        router.elb.newID = { ids.withLock { $0 += 1; return "bbbbbbbb-0000-4000-8000-00000000000\($0)" } }
        return (router, applier)
    }

    static func aws(_ router: ControlRouter, _ op: String, _ body: String) -> ControlResponse {
        router.route(ControlRequest(method: "POST", path: "/", headers: [("X-Amz-Target", "GlobalAccelerator_V20180706.\(op)"),
                                                                         ("Content-Type", "application/x-amz-json-1.1")], body: Array(body.utf8)))
    }

    static func elb(_ router: ControlRouter, _ method: String, _ path: String, _ body: String = "") -> ControlResponse {
        router.route(ControlRequest(method: method, path: "/v3/\(project)/elb/\(path)",
                                    headers: [("Content-Type", "application/json;charset=utf-8")], body: Array(body.utf8)))
    }
}

extension ControlResponse {
    var json: JSONValue? { try? JSONValue.parse(body) }
}
