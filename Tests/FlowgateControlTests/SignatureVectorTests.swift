// Known-good requests signed by the real signers at 2026-11-23T04:45:00Z
// (botocore SigV4Auth, huaweicloudsdkcore Signer; generated once by
// Tests/IntegrationTests/sdk/make_signature_vectors.py), verified here, and
// every tampered part rejected.
import Testing
@testable import FlowgateControl
import FlowgateCore

@Suite struct SignatureVectorTests {
    static let signedAt: Int64 = 1_795_409_100
    static let aws = [AWSCredential(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")]
    static let huawei = [HuaweiCredential(ak: "HWAKEXAMPLE", sk: "HWSKEXAMPLESECRET")]

    static let sigv4Body = #"{"ListenerArn":"arn:aws:globalaccelerator::123456789012:accelerator/75702d00-f682-4895-b84d-eb47d3db0c81/listener/0a1b2c3d","PortRanges":[{"FromPort":8000,"ToPort":8009}]}"#
    static func sigv4Request(headers edit: (inout [(String, String)]) -> Void = { _ in }, body: String = sigv4Body) -> ControlRequest {
        var headers: [(String, String)] = [
            ("X-Amz-Target", "GlobalAccelerator_V20180706.UpdateListener"),
            ("Content-Type", "application/x-amz-json-1.1"),
            ("X-Amz-Date", "20261123T044500Z"),
            ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261123/us-west-2/globalaccelerator/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=4ebb5354b16f98559684a7f7fce79e937a891f130a68e3b5d1f70d3a685ee89f"),
            ("Host", "127.0.0.1:9900"),
        ]
        edit(&headers)
        return ControlRequest(method: "POST", path: "/", headers: headers, body: Array(body.utf8), overTCP: true)
    }

    static func replace(_ headers: inout [(String, String)], _ name: String, _ value: String) {
        headers = headers.map { $0.0 == name ? ($0.0, value) : $0 }
    }

    func sigv4(_ r: ControlRequest, now: Int64 = signedAt, region: String = "us-west-2", creds: [AWSCredential] = aws) -> AuthFailure? {
        do throws(AuthFailure) { try SigV4Verifier(region: region, credentials: creds).verify(r, now: now) } catch { return error }
        return nil
    }

    @Test func sigv4KnownGoodVerifies() {
        #expect(sigv4(Self.sigv4Request()) == nil)
        // Within the 15-minute window either way.
        #expect(sigv4(Self.sigv4Request(), now: Self.signedAt + 899) == nil)
        #expect(sigv4(Self.sigv4Request(), now: Self.signedAt - 899) == nil)
    }

    @Test func sigv4TamperedPartsRejected() {
        #expect(sigv4(Self.sigv4Request(body: Self.sigv4Body.replacingOccurrences("8009", "8010")))?.kind == .badSignature)
        #expect(sigv4(Self.sigv4Request { Self.replace(&$0, "X-Amz-Date", "20261123T044501Z") })?.kind == .badSignature)
        #expect(sigv4(Self.sigv4Request { Self.replace(&$0, "X-Amz-Target", "GlobalAccelerator_V20180706.DescribeListener") })?.kind == .badSignature)
        #expect(sigv4(Self.sigv4Request { Self.replace(&$0, "Host", "127.0.0.1:9901") })?.kind == .badSignature)
        let wrongSecret = [AWSCredential(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "another")]
        #expect(sigv4(Self.sigv4Request(), creds: wrongSecret)?.kind == .badSignature)
        #expect(sigv4(Self.sigv4Request(), creds: [AWSCredential(accessKeyID: "AKIDOTHER", secretAccessKey: "x")])?.kind == .unknownKey)
        #expect(sigv4(Self.sigv4Request(), region: "eu-west-1")?.kind == .badSignature)
        #expect(sigv4(Self.sigv4Request { $0.removeAll { $0.0 == "Authorization" } })?.kind == .missing)
        let expired = sigv4(Self.sigv4Request(), now: Self.signedAt + 901)
        #expect(expired?.kind == .badSignature)
        #expect(expired?.message.hasPrefix("Signature expired: 20261123T044500Z") == true)
    }

    static let putBody = #"{"pool": {"lb_algorithm": "LEAST_CONNECTIONS"}}"#
    static func sdkRequest(method: String, path: String, signature: String, body: String,
                           edit: (inout [(String, String)]) -> Void = { _ in }) -> ControlRequest {
        var headers: [(String, String)] = [
            ("Content-Type", "application/json;charset=utf-8"),
            ("X-Project-Id", "ac80359381a34f04b39a333b0ea5117a"),
            ("User-Agent", "huaweicloud-usdk-python/3.0"),
            ("X-Sdk-Date", "20261123T044500Z"),
            ("Host", "127.0.0.1:9900"),
            ("Authorization", "SDK-HMAC-SHA256 Access=HWAKEXAMPLE, SignedHeaders=content-type;host;user-agent;x-project-id;x-sdk-date, Signature=\(signature)"),
        ]
        edit(&headers)
        return ControlRequest(method: method, path: path, headers: headers, body: Array(body.utf8), overTCP: true)
    }
    static func put(body: String = putBody, edit: (inout [(String, String)]) -> Void = { _ in }) -> ControlRequest {
        sdkRequest(method: "PUT", path: "/v3/ac80359381a34f04b39a333b0ea5117a/elb/pools/161835ef-0207-4300-ab5a-cf9c48f9f5ad",
                   signature: "b696fc45f37e77bb8610ae275339207136800af94d6af400461d2f673a6010e7", body: body, edit: edit)
    }
    static func list(path: String = "/v3/ac80359381a34f04b39a333b0ea5117a/elb/pools?id=a&id=b&limit=10&protocol=TCP") -> ControlRequest {
        sdkRequest(method: "GET", path: path, signature: "d992b70f8849dbfbfc3e159e586a51e0c07ab1f3bf1e5a7ce6f26191703bd8dc", body: "")
    }

    func sdk(_ r: ControlRequest, now: Int64 = signedAt, creds: [HuaweiCredential] = huawei) -> AuthFailure? {
        do throws(AuthFailure) { try SDKHMACVerifier(credentials: creds).verify(r, now: now) } catch { return error }
        return nil
    }

    @Test func sdkHMACKnownGoodVerifies() {
        #expect(sdk(Self.put()) == nil)
        #expect(sdk(Self.list()) == nil)
        // Query order on the wire does not matter: the canonical form sorts it.
        #expect(sdk(Self.list(path: "/v3/ac80359381a34f04b39a333b0ea5117a/elb/pools?protocol=TCP&limit=10&id=b&id=a")) == nil)
    }

    @Test func sdkHMACTamperedPartsRejected() {
        #expect(sdk(Self.put(body: Self.putBody.replacingOccurrences("LEAST_CONNECTIONS", "SOURCE_IP")))?.kind == .badSignature)
        #expect(sdk(Self.put { Self.replace(&$0, "X-Sdk-Date", "20261123T044501Z") })?.kind == .badSignature)
        #expect(sdk(Self.put { Self.replace(&$0, "X-Project-Id", "bc80359381a34f04b39a333b0ea5117a") })?.kind == .badSignature)
        #expect(sdk(Self.list(path: "/v3/ac80359381a34f04b39a333b0ea5117a/elb/pools?id=a&id=c&limit=10&protocol=TCP"))?.kind == .badSignature)
        #expect(sdk(Self.put(), creds: [HuaweiCredential(ak: "HWAKEXAMPLE", sk: "wrong")])?.kind == .badSignature)
        #expect(sdk(Self.put(), creds: [HuaweiCredential(ak: "OTHER", sk: "HWSKEXAMPLESECRET")])?.kind == .unknownKey)
        #expect(sdk(Self.put { $0.removeAll { $0.0 == "Authorization" } })?.kind == .missing)
        #expect(sdk(Self.put(), now: Self.signedAt + 901)?.kind == .badSignature)
    }

    @Test func routerAnswersAuthFailuresInEachAPIsShape() {
        let control = ControlConfig(unixSocket: nil, listen: "127.0.0.1:9900", awsCredentials: Self.aws, huaweiCredentials: Self.huawei)
        let (router, applier) = Fixture.router(control: control)
        router.now = { Self.signedAt }
        let good = router.route(Self.sigv4Request())
        #expect(good.status == 200)
        #expect(applier.commits.count == 1)

        let unsigned = router.route(Self.sigv4Request { $0.removeAll { $0.0 == "Authorization" } })
        #expect(unsigned.status == 403)
        #expect(unsigned.json?["__type"] == "MissingAuthenticationTokenException")
        let unknown = router.route(Self.sigv4Request { Self.replace(&$0, "Authorization", $0.first { $0.0 == "Authorization" }!.1.replacingOccurrences("AKIDEXAMPLE", "AKIDNOPE")) })
        #expect(unknown.json?["__type"] == "UnrecognizedClientException")
        let tampered = router.route(Self.sigv4Request(body: Self.sigv4Body.replacingOccurrences("8009", "8010")))
        #expect(tampered.status == 403)
        #expect(tampered.json?["__type"] == "InvalidSignatureException")
        #expect(tampered.header("x-amzn-RequestId") == "11111111-2222-4333-8444-555555555555")

        let elbBad = router.route(Self.put { Self.replace(&$0, "X-Sdk-Date", "20261123T044501Z") })
        #expect(elbBad.status == 401)
        #expect(elbBad.json?["error_code"] == "APIGW.0301")
        #expect(elbBad.header("X-Request-Id") == "11111111-2222-4333-8444-555555555555")
        #expect(applier.commits.count == 1)
        #expect(router.route(Self.put()).status == 200)
        #expect(applier.commits.count == 2)
    }

    @Test func allowUnsignedOnlyOnLoopback() {
        let control = ControlConfig(unixSocket: nil, listen: "127.0.0.1:9900", allowUnsigned: true, awsCredentials: Self.aws)
        let (service, _) = Fixture.service()
        let loop = ControlRouter(service: service, control: control, tcpIsLoopback: true)
        let remote = ControlRouter(service: service, control: control, tcpIsLoopback: false)
        let unsigned = Self.sigv4Request { $0.removeAll { $0.0 == "Authorization" } }
        #expect(loop.route(unsigned).status == 200)
        #expect(remote.route(unsigned).status == 403)
    }
}

extension String {
    func replacingOccurrences(_ a: String, _ b: String) -> String {
        var out = ""
        var rest = Substring(self)
        while let r = rest.firstRange(of: a) { out += rest[..<r.lowerBound]; out += b; rest = rest[r.upperBound...] }
        return out + rest
    }
}
