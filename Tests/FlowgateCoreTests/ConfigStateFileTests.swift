#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Testing
@testable import FlowgateCore

private let acc = "arn:aws:globalaccelerator::123456789012:accelerator/75702d00-f682-4895-b84d-eb47d3db0c81"
private let poolA = "161835ef-0207-4300-ab5a-cf9c48f9f5ad"
private let poolB = "5f3a4bd4-2d4e-4c3e-9a43-0c7c1b0f7e21"
private let poolOnlyInState = "00000000-0000-4000-8000-000000000001"

private func sampleConfig() -> FlowgateConfig {
    var control = ControlConfig(listen: "127.0.0.1:9900")
    control.awsCredentials = [AWSCredential(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "very-secret")]
    return FlowgateConfig(
        workers: 2, control: control, projectID: "ac80359381a34f04b39a333b0ea5117a",
        accelerators: [Accelerator(acceleratorArn: acc, name: "local", listeners: [
            Listener(listenerArn: acc + "/listener/0a1b2c3d", portRanges: [PortRange(fromPort: 8000, toPort: 8009)],
                     protocol: .tcp, poolID: poolA, bind: "127.0.0.1"),
            Listener(listenerArn: acc + "/listener/0a1b2c3e", portRanges: [PortRange(fromPort: 8000, toPort: 8009)],
                     protocol: .udp, poolID: poolB, bind: "127.0.0.1"),
        ])],
        pools: [
            Pool(id: poolA, name: "web", protocol: .tcp, members: [
                Member(id: "806c0edb-0786-5069-84af-f3c394b37003", address: "127.0.0.1", protocolPort: 9001, weight: 3),
            ]),
            Pool(id: poolB, name: "udp", protocol: .udp,
                 sessionPersistence: SessionPersistence(type: .sourceIP, persistenceTimeout: 5)),
        ])
}

@Test func stateFileRoundTripsTheObjects() throws {
    let c = sampleConfig()
    let decoded = try StateFile.decode(StateFile.encode(c))
    #expect(decoded.accelerators == c.accelerators)
    #expect(decoded.pools == c.pools)
    #expect(decoded.healthmonitors == c.healthmonitors)
    #expect(decoded.projectID == c.projectID)
}

@Test func stateFileIsSortedPrettyAndHoldsNoDaemonSettings() throws {
    let data = StateFile.encode(sampleConfig())
    #expect(StateFile.encode(sampleConfig()) == data)
    let text = try #require(String(validating: data, as: UTF8.self))
    #expect(text.hasPrefix("{\n  \"accelerators\" : ["))
    #expect(text.hasSuffix("}\n"))
    #expect(text.contains("\"format\" : 1"))
    // Sorted keys: FromPort before ToPort, ListenerArn before PortRanges.
    let from = try #require(text.firstRange(of: "\"FromPort\""))
    let to = try #require(text.firstRange(of: "\"ToPort\""))
    #expect(from.lowerBound < to.lowerBound)
    // Secrets and daemon settings stay in the config file.
    #expect(!text.contains("very-secret"))
    #expect(!text.contains("\"workers\""))
    #expect(!text.contains("\"control\""))
}

@Test func overlayTakesStateObjectsAndConfigSettings() {
    let config = sampleConfig()
    var state = sampleConfig()
    state.workers = 7
    state.control = ControlConfig()
    state.accelerators[0].listeners[0].portRanges = [PortRange(fromPort: 8100, toPort: 8101)]
    state.pools[0].members[0].weight = 0
    state.pools.append(Pool(id: poolOnlyInState, protocol: .tcp))
    state.accelerators[0].listeners.remove(at: 1)

    let merged = StateFile.overlay(config: config, state: state)
    #expect(merged.workers == 2)
    #expect(merged.control == config.control)
    #expect(merged.accelerators[0].listeners[0].portRanges == [PortRange(fromPort: 8100, toPort: 8101)])
    // Only in the config: kept as the config says.
    #expect(merged.accelerators[0].listeners[1] == config.accelerators[0].listeners[1])
    #expect(merged.pools.map(\.id) == [poolA, poolB])
    #expect(merged.pools[0].members[0].weight == 0)
    #expect(merged.pools[1] == config.pools[1])
}

@Test func overlayOfADecodedStateFile() throws {
    var changed = sampleConfig()
    changed.pools[0].lbAlgorithm = "LEAST_CONNECTIONS"
    let state = try StateFile.decode(StateFile.encode(changed))
    let merged = StateFile.overlay(config: sampleConfig(), state: state)
    #expect(merged.pools[0].lbAlgorithm == "LEAST_CONNECTIONS")
    #expect(merged.control.awsCredentials.count == 1)
    #expect(merged.workers == 2)
}

@Test func overlayKeepsMonitorsCreatedThroughTheAPIWhileAPoolLinksThem() {
    let fileMonitor = "dddddddd-0000-4000-8000-00000000000f"
    let created = "dddddddd-0000-4000-8000-000000000001"
    let orphan = "dddddddd-0000-4000-8000-000000000002"
    let onDroppedPool = "dddddddd-0000-4000-8000-000000000003"
    var config = sampleConfig()
    config.healthmonitors = [HealthMonitor(id: fileMonitor, type: .tcp)]
    config.pools[1].healthmonitorID = fileMonitor
    var state = config
    state.healthmonitors[0].delay = 9
    // CreateHealthMonitor on pool A, one monitor no pool links, and one on a
    // pool the config file no longer has.
    state.healthmonitors += [HealthMonitor(id: created, type: .tcp), HealthMonitor(id: orphan, type: .tcp),
                             HealthMonitor(id: onDroppedPool, type: .tcp)]
    state.pools[0].healthmonitorID = created
    state.pools.append(Pool(id: poolOnlyInState, protocol: .tcp, healthmonitorID: onDroppedPool))

    let merged = StateFile.overlay(config: config, state: state)
    #expect(merged.healthmonitors.map(\.id) == [fileMonitor, created])
    #expect(merged.healthmonitors[0].delay == 9)
    #expect(merged.pools.map(\.healthmonitorID) == [created, fileMonitor])
    // Without the state file nothing is added.
    #expect(StateFile.overlay(config: config, state: config).healthmonitors.map(\.id) == [fileMonitor])
}

private func decodeError(_ json: String) -> String {
    do {
        _ = try StateFile.decode(Array(json.utf8))
        return "decoded"
    } catch {
        return error.description
    }
}

@Test func stateFileDecodeErrorsNameThePath() {
    let pool = #"{"id":"\#(poolA)","name":"","description":"","protocol":"TCP","lb_algorithm":"ROUND_ROBIN","slow_start":{"enable":false,"duration":30},"connection_drain":{"enable":false,"timeout":300},"admin_state_up":true,"members":[{"id":"x","name":"","address":"127.0.0.1","weight":"heavy","admin_state_up":true}]}"#
    let doc = #"{"format":1,"project_id":"p","accelerators":[],"healthmonitors":[],"pools":[POOL]}"#
    #expect(decodeError(doc.replacingFirst("POOL", with: pool)) == "state file: pools[0].members[0].weight: expected Int")
    #expect(decodeError(doc.replacingFirst("POOL", with: pool.replacingFirst(#""protocol":"TCP","#, with: "")))
        == "state file: pools[0].protocol: required key is missing")
    #expect(decodeError(doc.replacingFirst("POOL", with: pool.replacingFirst(#""TCP""#, with: #""SCTP""#)))
        .hasPrefix("state file: pools[0].protocol: "))
    #expect(decodeError(#"{"format":2,"project_id":"p","accelerators":[],"healthmonitors":[],"pools":[]}"#)
        == "state file: format: 2 is not a known state file format (expected 1)")
    #expect(decodeError("{not json").hasPrefix("state file: not valid JSON"))
}
