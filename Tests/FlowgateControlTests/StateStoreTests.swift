// The state file: round trip, missing file, corrupt file, reset (the overlay
// itself is StateFile.overlay, tested in FlowgateCoreTests).
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

    @Test func staleTemporariesOfDeadProcessesAreRemovedAndNothingElse() throws {
        let path = Self.tempPath("state.json")
        let dir = String(path[..<path.lastIndex(of: "/")!])
        // Above PID_MAX_LIMIT (2^22): never a live process.
        let dead = ["state.json.tmp.4194305", "state.json.tmp.4194399"]
        let kept = ["state.json", "state.json.tmp.\(getpid())", "state.json.tmp.1", "state.json.tmp.12x", "state.json.tmp.",
                    "state.json.tmp.-4194305", "state.json.tmp.04194305", "other.json.tmp.4194305", "state.json.tmp.4194305.bak"]
        for name in dead + kept {
            let fd = open(dir + "/" + name, O_WRONLY | O_CREAT, 0o600)
            close(fd)
        }
        let removed = StateStore(path: path).removeStaleTemporaries()
        #expect(removed.sorted() == dead.map { dir + "/" + $0 })
        #expect(StateStore.directoryEntries(dir).sorted() == kept.sorted())
        // A directory that does not exist yet has nothing to clean.
        #expect(StateStore(path: dir + "/absent/state.json").removeStaleTemporaries() == [])
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

    @Test func failuresNameTheStepAndTheReason() throws {
        // A regular file where the state file's directory should be.
        let blocker = Self.tempPath("blocker")
        let fd = open(blocker, O_WRONLY | O_CREAT, 0o600)
        close(fd)
        let store = StateStore(path: blocker + "/sub/state.json")
        #expect(throws: StateFileError(path: store.path, message: "cannot create directory \(blocker)/sub: Not a directory")) {
            try store.save(Fixture.config())
        }
        #expect(throws: StateFileError(path: store.path, message: "cannot open: Not a directory")) { try store.load() }
        #expect(throws: StateFileError(path: store.path, message: "cannot remove: Not a directory")) { try store.remove() }
        // A directory where the state file should be.
        let dir = Self.tempPath("state.json")
        mkdir(dir, 0o700)
        #expect(throws: StateFileError(path: dir, message: "cannot read: Is a directory")) { try StateStore(path: dir).load() }
        // Removing a state file that is not there is not an error.
        try StateStore(path: Self.tempPath("absent.json")).remove()
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
        #expect(tcp.json?["error_code"] == "Forbidden")
        #expect(tcp.json?["error_msg"] == "state reset is served on the Unix control socket only")
        let get = router.route(ControlRequest(method: "GET", path: "/flowgate/state/reset"))
        #expect(get.status == 405)
        #expect(get.json?["error_code"] == "MethodNotAllowed")
    }
}
