// Issue 11 §3: the operation label takes only known operation names, every
// label value is escaped, and GET /metrics over TCP is signed unless the
// endpoint is loopback with allow_unsigned.
import Testing
import FlowgateSystem
@testable import FlowgateControl
import FlowgateCore

@Suite struct MetricsLabelTests {
    @Test func unknownOperationsCountAsUnknownAndTheSeriesStayBounded() {
        let m = MetricsRegistry()
        m.countRequest(operation: "UpdateListener", status: 200)
        m.countRequest(operation: #"Evil"} 1\"#, status: 400)
        for i in 0..<300 { m.countRequest(operation: String(repeating: "x", count: 1000) + "\(i)", status: 400) }
        m.countRequest(operation: "ListPools", status: 999)
        let lines = m.render().split(separator: "\n").filter { $0.hasPrefix("flowgate_control_requests_total{") }
        #expect(lines == [
            #"flowgate_control_requests_total{operation="ListPools",status="other"} 1"#,
            #"flowgate_control_requests_total{operation="UpdateListener",status="200"} 1"#,
            #"flowgate_control_requests_total{operation="unknown",status="400"} 301"#,
        ])
    }

    @Test func labelValuesAreEscaped() {
        #expect(PrometheusWriter.escape(#"a\b"c"# + "\nd") == #"a\\b\"c\nd"#)
    }

    @Test func everyRoutedOperationIsKnown() {
        // Every operation the two APIs answer must be a label of its own, not `unknown`.
        let (router, _) = Fixture.router()
        for op in ControlOperations.awsReadOnly.union(ControlOperations.awsMutating) {
            _ = Fixture.aws(router, op, "{}")
        }
        let p = "pools/\(Fixture.tcpPool)"
        let calls: [(String, String)] = [("GET", "pools"), ("GET", p), ("PUT", p), ("GET", "\(p)/members"), ("POST", "\(p)/members"),
                                         ("GET", "\(p)/members/\(Fixture.member1)"), ("PUT", "\(p)/members/\(Fixture.member1)"),
                                         ("DELETE", "\(p)/members/x"), ("GET", "healthmonitors"), ("POST", "healthmonitors"),
                                         ("GET", "healthmonitors/x"), ("PUT", "healthmonitors/x"), ("DELETE", "healthmonitors/x")]
        for (method, path) in calls { _ = Fixture.elb(router, method, path, "{}") }
        let text = router.service.metrics.render()
        for op in ControlOperations.known.subtracting(ControlOperations.flowgate) {
            #expect(text.contains("operation=\"\(op)\""), "\(op) is not counted under its own name")
        }
        #expect(!text.contains("operation=\"unknown\""))
    }

    static let control = ControlConfig(unixSocket: nil, listen: "127.0.0.1:9900",
                                       awsCredentials: SignatureVectorTests.aws, huaweiCredentials: SignatureVectorTests.huawei)

    func metrics(_ router: ControlRouter, headers: [(String, String)] = [], overTCP: Bool = true) -> ControlResponse {
        router.route(ControlRequest(method: "GET", path: "/metrics", headers: headers, overTCP: overTCP))
    }

    @Test func unsignedMetricsOverTCPOnlyOnLoopbackWithAllowUnsigned() {
        let (service, _) = Fixture.service()
        var open = Self.control
        open.allowUnsigned = true
        #expect(metrics(ControlRouter(service: service, control: open, tcpIsLoopback: true)).status == 200)
        let refused = metrics(ControlRouter(service: service, control: Self.control, tcpIsLoopback: true))
        #expect(refused.status == 401)
        #expect(refused.json?["error_msg"] == "Incorrect IAM authentication information: GET /metrics over TCP needs a signature (AWS4-HMAC-SHA256 or SDK-HMAC-SHA256), or use the Unix socket, or a loopback endpoint with allow_unsigned")
        #expect(metrics(ControlRouter(service: service, control: open, tcpIsLoopback: false)).status == 401)
        // The Unix socket stays open to its owner.
        #expect(metrics(ControlRouter(service: service, control: Self.control, tcpIsLoopback: false), overTCP: false).status == 200)
    }

    @Test func signedMetricsOverTCPInEitherShape() {
        let (service, _) = Fixture.service()
        let router = ControlRouter(service: service, control: Self.control, tcpIsLoopback: false)
        let t: Int64 = 1_795_409_100
        router.now = { t }
        func signed(_ scheme: SignatureScheme, secret: String) -> [(String, String)] {
            let date = BasicISODate.format(t)
            var headers: [(name: String, value: String)] = [(scheme == .sigV4 ? "X-Amz-Date" : "X-Sdk-Date", date), ("Host", "127.0.0.1:9900")]
            let signedNames = CanonicalRequest.signedHeaderNames(headers)
            let canonical = try! CanonicalRequest.build(scheme, method: "GET", rawPath: "/metrics", query: [], headers: headers,
                                                        signedHeaders: signedNames, payloadHash: CanonicalRequest.payloadHash([]))
            let auth: String
            switch scheme {
            case .sigV4:
                let mac = RequestSignature.sigV4(canonical: canonical, amzDate: date, secret: secret, region: "us-west-2", service: "globalaccelerator")
                auth = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/\(date.prefix(8))/us-west-2/globalaccelerator/aws4_request, SignedHeaders=\(signedNames.joined(separator: ";")), Signature=\(Hex.encode(mac))"
            case .sdkHMAC:
                let mac = RequestSignature.sdkHMAC(canonical: canonical, sdkDate: date, sk: secret)
                auth = "SDK-HMAC-SHA256 Access=HWAKEXAMPLE, SignedHeaders=\(signedNames.joined(separator: ";")), Signature=\(Hex.encode(mac))"
            }
            headers.append(("Authorization", auth))
            return headers.map { ($0.name, $0.value) }
        }
        #expect(metrics(router, headers: signed(.sigV4, secret: SignatureVectorTests.aws[0].secretAccessKey)).status == 200)
        #expect(metrics(router, headers: signed(.sdkHMAC, secret: SignatureVectorTests.huawei[0].sk)).status == 200)
        // Scrapes are reads: the same signature is served again.
        #expect(metrics(router, headers: signed(.sdkHMAC, secret: SignatureVectorTests.huawei[0].sk)).status == 200)
        let badAWS = metrics(router, headers: signed(.sigV4, secret: "wrong"))
        #expect(badAWS.status == 403)
        #expect(badAWS.json?["__type"] == "InvalidSignatureException")
        #expect(metrics(router, headers: signed(.sdkHMAC, secret: "wrong")).status == 401)
    }
}
