// The state file: round trip, missing file, corrupt file, overlay, reset.
import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import FlowgateControl
import FlowgateCore

@Suite struct StateStoreTests {
    static func tempPath(_ name: String) -> String {
        var template = Array("/tmp/fg-state-XXXXXX".utf8CString)
        let dir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
        return dir + "/" + name
    }

    @Test func saveLoadRoundTripAndNoTempLeft() throws {
        let path = Self.tempPath("state.json")
        let store = StateStore(path: path)
        #expect(try store.load() == nil)
        var config = Fixture.config()
        config.pools[0].lbAlgorithm = "SOURCE_IP"
        try store.save(config)
        let loaded = try #require(try store.load())
        #expect(loaded.pools == config.pools)
        #expect(loaded.accelerators == config.accelerators)
        // Only the state file remains: the temp file was renamed over it.
        let dir = String(path[..<path.lastIndex(of: "/")!])
        let d = opendir(dir)!
        var names: [String] = []
        while let e = readdir(d) {
            let n = withUnsafeBytes(of: e.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if n != "." && n != ".." { names.append(n) }
        }
        closedir(d)
        #expect(names == ["state.json"])
        try store.remove()
        #expect(try store.load() == nil)
    }

    @Test func corruptFileIsAnErrorNamingTheFix() throws {
        let path = Self.tempPath("state.json")
        let fd = open(path, O_WRONLY | O_CREAT, 0o600)
        _ = "{\"format\": 1, \"pools\": [".withCString { write(fd, $0, strlen($0)) }
        close(fd)
        do {
            _ = try StateStore(path: path).load()
            Issue.record("a corrupt state file loaded")
        } catch {
            #expect(error.path == path)
            #expect(error.message.contains("not valid JSON"))
            #expect(error.message.hasSuffix("fix it, or delete it (flowgatectl state reset) to start from the config file"))
        }
    }

    @Test func overlayReplacesSameObjectsAndKeepsAPIMonitors() {
        let file = Fixture.config()
        var state = file
        state.accelerators[0].listeners[0].portRanges = [PortRange(fromPort: 7000, toPort: 7001)]
        state.pools[0].lbAlgorithm = "LEAST_CONNECTIONS"
        state.healthmonitors = [HealthMonitor(id: "dddddddd-0000-4000-8000-000000000001", type: .tcp)]
        state.pools[0].healthmonitorID = "dddddddd-0000-4000-8000-000000000001"
        var changedFile = file
        changedFile.control.region = "eu-west-1"
        let merged = StateOverlay.apply(state: state, over: changedFile)
        #expect(merged.allListeners[0].portRanges == [PortRange(fromPort: 7000, toPort: 7001)])
        #expect(merged.pools[0].lbAlgorithm == "LEAST_CONNECTIONS")
        #expect(merged.healthmonitors.map(\.id) == ["dddddddd-0000-4000-8000-000000000001"])
        #expect(merged.control.region == "eu-west-1")
    }

    @Test func resetGoesBackToTheFileAndDeletesTheState() throws {
        let path = Self.tempPath("state.json")
        let config = Fixture.config()
        let applier = RecordingApplier(config)
        let service = ControlService(applier: AnyApplier(applier), store: StateStore(path: path), baseConfig: config)
        let router = ControlRouter(service: service, control: ControlConfig(), tcpIsLoopback: true)
        #expect(Fixture.elb(router, "PUT", "pools/\(Fixture.tcpPool)", #"{"pool": {"name": "changed"}}"#).status == 200)
        #expect(try StateStore(path: path).load()?.pools[0].name == "changed")
        let r = router.route(ControlRequest(method: "POST", path: "/flowgate/state/reset"))
        #expect(r.status == 200)
        #expect(applier.current == config)
        #expect(try StateStore(path: path).load() == nil)
        // Over TCP without allow_unsigned it is refused.
        let tcp = router.route(ControlRequest(method: "POST", path: "/flowgate/state/reset", overTCP: true))
        #expect(tcp.status == 403)
    }
}
