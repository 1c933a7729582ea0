import Testing
@testable import FlowgateControl
import FlowgateCore

@Suite struct ControlServerTests {
    @Test func splitHostPort() {
        #expect(ControlServer.splitHostPort("127.0.0.1:9900").map { "\($0.0)|\($0.1)" } == "127.0.0.1|9900")
        #expect(ControlServer.splitHostPort("[::1]:9900").map { "\($0.0)|\($0.1)" } == "::1|9900")
        #expect(ControlServer.splitHostPort("::1:9900") == nil)
        #expect(ControlServer.splitHostPort("127.0.0.1") == nil)
        #expect(ControlServer.splitHostPort("127.0.0.1:70000") == nil)
        #expect(ControlServer.splitHostPort(":9900") == nil)
    }

    @Test func ownEndpoints() {
        let (router, _) = Fixture.router()
        let h = router.route(ControlRequest(method: "GET", path: "/healthz"))
        #expect(h.status == 200 && h.bodyText == "ok\n")
        _ = Fixture.aws(router, "ListAccelerators", "{}")
        let m = router.route(ControlRequest(method: "GET", path: "/metrics"))
        #expect(m.header("Content-Type") == "text/plain; version=0.0.4")
        #expect(m.bodyText.contains("flowgate_control_requests_total{operation=\"ListAccelerators\",status=\"200\"} 1\n"))
        router.service.metrics.register("test") { "# TYPE flowgate_test gauge\nflowgate_test 7" }
        #expect(router.route(ControlRequest(method: "GET", path: "/metrics")).bodyText.hasSuffix("flowgate_test 7\n"))
        let info = router.route(ControlRequest(method: "GET", path: "/flowgate/info"))
        #expect(info.json?["project_id"] == .string(Fixture.project))
        let missing = router.route(ControlRequest(method: "GET", path: "/nope"))
        #expect(missing.status == 404)
        #expect(missing.header("X-Request-Id") == "11111111-2222-4333-8444-555555555555")
    }

    /// A reload keeps what the API changed. (Serialisation of API calls with
    /// reloads is tested concurrently in Tests/IntegrationTests/test_control_races.py.)
    @Test func reloadKeepsStateFileUpdates() throws {
        var template = Array("/tmp/fg-reload-XXXXXX".utf8CString)
        let dir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
        let config = Fixture.config()
        let applier = RecordingApplier(config)
        let service = ControlService(applier: AnyApplier(applier), store: StateStore(path: dir + "/state.json"), baseConfig: config)
        let router = ControlRouter(service: service, control: ControlConfig(), tcpIsLoopback: true)
        #expect(Fixture.elb(router, "PUT", "pools/\(Fixture.tcpPool)", #"{"pool": {"lb_algorithm": "SOURCE_IP"}}"#).status == 200)
        var newFile = config
        newFile.pools[2].name = "edited-in-file"
        try service.reload(fileConfig: newFile)
        // The state file holds every object as of the last update, so it wins for all of them.
        #expect(applier.current.pool(id: Fixture.tcpPool)?.lbAlgorithm == "SOURCE_IP")
        #expect(service.baseConfig == newFile)
        #expect(applier.commits.count == 2)
    }
}

#if canImport(Glibc)
import Glibc
#endif

@Suite struct RefusingChangesTests {
    @Test func drainingDaemonRefusesChangesInEachShape() {
        let (router, applier) = Fixture.router()
        router.service.refusingChanges = { "flowgated is draining" }
        let a = Fixture.aws(router, "UpdateListener", #"{"ListenerArn":"\#(Fixture.listenerA)","ClientAffinity":"SOURCE_IP"}"#)
        #expect(a.status == 500)
        #expect(a.json?["__type"] == "InternalServiceErrorException")
        #expect(a.json?["message"] == "the update was not applied: flowgated is draining")
        let e = Fixture.elb(router, "PUT", "pools/\(Fixture.tcpPool)", #"{"pool": {"name": "x"}}"#)
        #expect(e.status == 503)
        #expect(e.json?["error_code"] == "ELB.8906")
        #expect(applier.commits.isEmpty)
        // Reads still answer.
        #expect(Fixture.aws(router, "DescribeListener", #"{"ListenerArn":"\#(Fixture.listenerA)"}"#).status == 200)
    }
}

@Suite struct UnconfiguredAPITests {
    /// Credentials for one API only must not leave the other open on a
    /// non-loopback endpoint (found in review: ELB changes were served unsigned).
    @Test func anAPIWithoutCredentialsIsRefusedOffLoopback() {
        var control = ControlConfig()
        control.awsCredentials = [AWSCredential(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "secret")]
        let (service, applier) = Fixture.service(Fixture.config())
        let router = ControlRouter(service: service, control: control, tcpIsLoopback: false)
        let put = router.route(ControlRequest(method: "PUT", path: "/v3/\(Fixture.project)/elb/pools/\(Fixture.tcpPool)",
                                              headers: [("Content-Type", "application/json")], body: Array(#"{"pool":{"name":"x"}}"#.utf8), overTCP: true))
        #expect(put.status == 401)
        #expect(put.json?["error_code"] == "APIGW.0301")
        #expect(put.json?["error_msg"] == "Incorrect IAM authentication information: this API has no credentials (control.credentials.huawei) and is not served on a non-loopback endpoint; configure them or use the Unix socket")
        #expect(applier.commits.isEmpty)
        // The same router on loopback keeps serving it unsigned, as before.
        let loopback = ControlRouter(service: service, control: control, tcpIsLoopback: true)
        #expect(loopback.route(ControlRequest(method: "GET", path: "/v3/\(Fixture.project)/elb/pools", overTCP: true)).status == 200)
        // Over the Unix socket nothing changes.
        #expect(router.route(ControlRequest(method: "GET", path: "/v3/\(Fixture.project)/elb/pools")).status == 200)
    }
}
