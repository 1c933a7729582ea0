// Issue 11 §1: the payload hash is the body's, whatever a header claims, and a
// change whose exact signature was already accepted is refused. The vectors are
// SignatureVectorTests' (made by Tests/IntegrationTests/sdk/make_signature_vectors.py).
import Testing
@testable import FlowgateControl
import FlowgateCore

@Suite struct PayloadAndReplayTests {
    typealias V = SignatureVectorTests
    static let otherBody = V.sigv4Body.replacingOccurrences("8009", "8010")
    static let originalHash = Hex.encode(SHA256.hash(Array(V.sigv4Body.utf8)))

    func sigv4(_ r: ControlRequest) -> AuthFailure? {
        do throws(AuthFailure) { try SigV4Verifier(region: "us-west-2", credentials: V.aws).verify(r, now: V.signedAt) } catch { return error }
        return nil
    }

    func sdk(_ r: ControlRequest) -> AuthFailure? {
        do throws(AuthFailure) { try SDKHMACVerifier(credentials: V.huawei).verify(r, now: V.signedAt) } catch { return error }
        return nil
    }

    /// The captured signed UpdateListener, replayed with another body and the
    /// original body's hash in X-Amz-Content-Sha256 (not a signed header).
    static func bodySwap() -> ControlRequest {
        V.sigv4Request(headers: { $0.append(("X-Amz-Content-Sha256", originalHash)) }, body: otherBody)
    }

    @Test func sigv4HashHeaderCannotStandInForTheBody() {
        let failure = sigv4(Self.bodySwap())
        #expect(failure?.kind == .badSignature)
        #expect(failure?.message == "X-Amz-Content-Sha256 does not match the SHA-256 of the request body")
        // Claiming the swapped body's own hash only breaks the signature.
        let honest = V.sigv4Request(headers: { $0.append(("X-Amz-Content-Sha256", Hex.encode(SHA256.hash(Array(Self.otherBody.utf8))))) },
                                    body: Self.otherBody)
        #expect(sigv4(honest)?.kind == .badSignature)
        // The unmodified request with a correct (unsigned) hash header still verifies.
        #expect(sigv4(V.sigv4Request(headers: { $0.append(("X-Amz-Content-Sha256", Self.originalHash)) })) == nil)
    }

    @Test func sigv4UnsignedPayloadRefused() {
        let failure = sigv4(V.sigv4Request(headers: { $0.append(("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")) }))
        #expect(failure?.kind == .badSignature)
        #expect(failure?.message == "X-Amz-Content-Sha256: UNSIGNED-PAYLOAD is not accepted by this endpoint; sign the SHA-256 of the body")
    }

    /// botocore signed with its own upper-case X-Amz-Content-Sha256 (a signed header).
    static func contentShaVector(body: String = V.sigv4Body) -> ControlRequest {
        let headers: [(String, String)] = [
            ("X-Amz-Target", "GlobalAccelerator_V20180706.UpdateListener"),
            ("Content-Type", "application/x-amz-json-1.1"),
            ("X-Amz-Content-Sha256", "368DC98EBEDF25A7DF9D35E1367C08CD2B1EF4D3B53BBEC5E6075AF0EB200CDF"),
            ("X-Amz-Date", "20261123T044500Z"),
            ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261123/us-west-2/globalaccelerator/aws4_request, SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-target, Signature=207b049f970c3262c73c508eb688d35d0446f563d4062adf25bb090b070e9bba"),
            ("Host", "127.0.0.1:9900"),
        ]
        return ControlRequest(method: "POST", path: "/", headers: headers, body: Array(body.utf8), overTCP: true)
    }

    @Test func sigv4SignedHashHeaderMustMatchTheBodyCaseInsensitively() {
        #expect(sigv4(Self.contentShaVector()) == nil)
        #expect(sigv4(Self.contentShaVector(body: Self.otherBody))?.message == "X-Amz-Content-Sha256 does not match the SHA-256 of the request body")
    }

    /// huaweicloudsdkcore signed a text/plain PUT with X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD:
    /// its signature covers no body at all, so any body could ride on it.
    static func sdkUnsignedPayload(body: String = V.putBody) -> ControlRequest {
        V.sdkRequest(method: "PUT", path: "/v3/ac80359381a34f04b39a333b0ea5117a/elb/pools/161835ef-0207-4300-ab5a-cf9c48f9f5ad",
                     signature: "ca92bd550b9b981197c8d6b0d76efbf771c6c0ec8e2d8b0da580d7f6973d0be3", body: body) { h in
            V.replace(&h, "Content-Type", "text/plain")
            h.insert(("X-Sdk-Content-Sha256", "UNSIGNED-PAYLOAD"), at: 4)
            V.replace(&h, "Authorization", "SDK-HMAC-SHA256 Access=HWAKEXAMPLE, SignedHeaders=content-type;host;user-agent;x-project-id;x-sdk-content-sha256;x-sdk-date, Signature=ca92bd550b9b981197c8d6b0d76efbf771c6c0ec8e2d8b0da580d7f6973d0be3")
        }
    }

    @Test func sdkUnsignedPayloadCannotStandInForTheBody() {
        let message = "X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD is not accepted by this endpoint; sign the SHA-256 of the body"
        #expect(sdk(Self.sdkUnsignedPayload())?.message == message)
        #expect(sdk(Self.sdkUnsignedPayload(body: V.putBody.replacingOccurrences("LEAST_CONNECTIONS", "SOURCE_IP")))?.message == message)
        // A hash header that is not the body's is refused by name.
        #expect(sdk(V.put { $0.append(("X-Sdk-Content-Sha256", Hex.encode(SHA256.hash(Array("{}".utf8))))) })?.message
                == "X-Sdk-Content-Sha256 does not match the SHA-256 of the request body")
        // The signer ignores the header for an empty body; so does the verifier (the GET vector still verifies).
        #expect(sdk(V.list()) == nil)
    }

    @Test func routerRefusesTheBodySwapAndReplays() {
        let control = ControlConfig(unixSocket: nil, listen: "127.0.0.1:9900", awsCredentials: V.aws, huaweiCredentials: V.huawei)
        let (router, applier) = Fixture.router(control: control)
        router.now = { V.signedAt }
        let swapped = router.route(Self.bodySwap())
        #expect(swapped.status == 403)
        #expect(swapped.json?["__type"] == "InvalidSignatureException")
        #expect(applier.commits.isEmpty)

        #expect(router.route(V.sigv4Request()).status == 200)
        let replay = router.route(V.sigv4Request())
        #expect(replay.status == 403)
        #expect(replay.json?["__type"] == "InvalidSignatureException")
        #expect(replay.json?["message"] == "request replayed: this signature was already accepted at 20261123T044500Z; sign each change anew")
        #expect(applier.commits.count == 1)

        #expect(router.route(V.put()).status == 200)
        let elbReplay = router.route(V.put())
        #expect(elbReplay.status == 401)
        #expect(elbReplay.json?["error_code"] == "APIGW.0301")
        #expect(elbReplay.json?["error_msg"]?.stringValue?.contains("request replayed") == true)
        #expect(applier.commits.count == 2)

        // Reads are not cached: the same signed GET answers every time.
        #expect(router.route(V.list()).status == 200)
        #expect(router.route(V.list()).status == 200)
        #expect(router.replayCache.count == 2)
    }

    @Test func aChangeThatWasNotAppliedMayBeRetriedWithTheSameSignature() {
        // boto3 retries LimitExceededException, throttling and 5xx answers within the same second with
        // the same signature (its retry headers are added after signing): those retries must be served.
        let control = ControlConfig(unixSocket: nil, listen: "127.0.0.1:9900", awsCredentials: V.aws, huaweiCredentials: V.huawei)
        let (router, applier) = Fixture.router(control: control)
        router.now = { V.signedAt }
        applier.failNextPrepare(ApplyError(.addressInUse, "port 8000 is in use"))
        let failed = router.route(V.sigv4Request())
        #expect(failed.status == 400)
        #expect(failed.json?["__type"] == "InvalidPortRangeException")
        #expect(router.replayCache.count == 0)
        #expect(router.route(V.sigv4Request()).status == 200)
        // Applied: from now on the same signature is a replay.
        #expect(router.route(V.sigv4Request()).status == 403)
        #expect(applier.commits.count == 1)
    }

    @Test func replayCacheIsBoundedAndForgetsExpiredSignatures() {
        let cache = ReplayCache(capacity: 2, window: 900)
        func sig(_ n: UInt8, at t: Int64) -> VerifiedSignature {
            VerifiedSignature(scheme: .sigV4, mac: [UInt8](repeating: n, count: 32), signedAt: t)
        }
        #expect(cache.admit(sig(1, at: 1000), now: 1000) == .fresh)
        #expect(cache.admit(sig(1, at: 1000), now: 1899) == .replayed(firstSeen: 1000))
        #expect(cache.admit(sig(2, at: 1100), now: 1100) == .fresh)
        // Full of unexpired signatures: refuse rather than forget one (which would reopen its replay window).
        #expect(cache.admit(sig(3, at: 1200), now: 1200) == .full)
        #expect(cache.count == 2)
        // Once the first one's window (signedAt + 900) has passed, its place is free.
        #expect(cache.admit(sig(3, at: 1901), now: 1901) == .fresh)
        #expect(cache.admit(sig(2, at: 1100), now: 1901) == .replayed(firstSeen: 1100))
        #expect(cache.count == 2)
    }

    @Test func fullReplayCacheAnswersThrottlingInEachShape() {
        let control = ControlConfig(unixSocket: nil, listen: "127.0.0.1:9900", awsCredentials: V.aws, huaweiCredentials: V.huawei)
        let (service, applier) = Fixture.service()
        let router = ControlRouter(service: service, control: control, tcpIsLoopback: true, replayCache: ReplayCache(capacity: 1))
        router.now = { V.signedAt }
        #expect(router.route(V.sigv4Request()).status == 200)
        let aws = router.route(Self.contentShaVector())
        #expect(aws.status == 400)
        #expect(aws.json?["__type"] == "ThrottlingException")
        let elb = router.route(V.put())
        #expect(elb.status == 429)
        #expect(elb.json?["error_code"] == "APIGW.0308")
        #expect(applier.commits.count == 1)
    }
}
