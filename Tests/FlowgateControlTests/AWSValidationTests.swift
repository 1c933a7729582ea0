// Every UpdateListener / ListListeners rule of docs/api.md §3: status, __type,
// message, and that nothing changed.
import Testing
@testable import FlowgateControl
import FlowgateCore

@Suite struct AWSValidationTests {
    static let arn = Fixture.listenerA

    struct Case: Sendable, CustomStringConvertible {
        var body: String
        var code: String
        var message: String
        var op = "UpdateListener"
        var description: String { body }
    }

    static let cases: [Case] = [
        Case(body: "{not json", code: "InvalidArgumentException", message: "The request body is not valid JSON: malformed JSON at byte 1: expected a member name"),
        Case(body: "[1]", code: "InvalidArgumentException", message: "The request body must be a JSON object, not array"),
        Case(body: "{}", code: "InvalidArgumentException", message: "ListenerArn is required"),
        Case(body: #"{"ListenerArn": 5}"#, code: "InvalidArgumentException", message: "ListenerArn must be a string, not number"),
        Case(body: #"{"ListenerArn": ""}"#, code: "InvalidArgumentException", message: "ListenerArn must not be empty"),
        Case(body: #"{"ListenerArn": "\#(String(repeating: "a", count: 256))"}"#, code: "InvalidArgumentException",
             message: "ListenerArn is 256 characters; at most 255 are allowed"),
        Case(body: #"{"ListenerArn": "\#(Fixture.accelerator)"}"#, code: "InvalidArgumentException",
             message: "ListenerArn \(Fixture.accelerator) is not of the form arn:aws:globalaccelerator::<account>:accelerator/<id>/listener/<id>"),
        Case(body: #"{"ListenerArn": "\#(arn)", "PortRanges": {}}"#, code: "InvalidArgumentException", message: "PortRanges must be a list, not object"),
        Case(body: #"{"ListenerArn": "\#(arn)", "PortRanges": []}"#, code: "InvalidPortRangeException", message: "PortRanges: at least 1 port range is required"),
        Case(body: #"{"ListenerArn": "\#(arn)", "PortRanges": [\#((1...11).map { "{\"FromPort\":\($0),\"ToPort\":\($0)}" }.joined(separator: ","))]}"#,
             code: "LimitExceededException", message: "PortRanges: at most 10 port ranges per listener, got 11"),
        Case(body: #"{"ListenerArn": "\#(arn)", "PortRanges": [5]}"#, code: "InvalidArgumentException", message: "PortRanges[0] must be an object with FromPort and ToPort, not number"),
        Case(body: #"{"ListenerArn": "\#(arn)", "PortRanges": [{"FromPort": 80}]}"#, code: "InvalidPortRangeException", message: "PortRanges[0].ToPort is required"),
        Case(body: #"{"ListenerArn": "\#(arn)", "PortRanges": [{"ToPort": 80}]}"#, code: "InvalidPortRangeException", message: "PortRanges[0].FromPort is required"),
        Case(body: #"{"ListenerArn": "\#(arn)", "PortRanges": [{"FromPort": "80", "ToPort": 80}]}"#, code: "InvalidArgumentException",
             message: "PortRanges[0].FromPort must be an integer, not string"),
        Case(body: #"{"ListenerArn": "\#(arn)", "PortRanges": [{"FromPort": 80.5, "ToPort": 81}]}"#, code: "InvalidArgumentException",
             message: "PortRanges[0].FromPort must be an integer, not number"),
        Case(body: #"{"ListenerArn": "\#(arn)", "PortRanges": [{"FromPort": 0, "ToPort": 80}]}"#, code: "InvalidPortRangeException",
             message: "PortRanges[0].FromPort: 0 is not in 1..65535"),
        Case(body: #"{"ListenerArn": "\#(arn)", "PortRanges": [{"FromPort": 80, "ToPort": 65536}]}"#, code: "InvalidPortRangeException",
             message: "PortRanges[0].ToPort: 65536 is not in 1..65535"),
        Case(body: #"{"ListenerArn": "\#(arn)", "PortRanges": [{"FromPort": 90, "ToPort": 80}]}"#, code: "InvalidPortRangeException",
             message: "PortRanges[0].ToPort: ToPort 80 is less than FromPort 90"),
        Case(body: #"{"ListenerArn": "\#(arn)", "PortRanges": [{"FromPort": 80, "ToPort": 90}, {"FromPort": 90, "ToPort": 95}]}"#, code: "InvalidPortRangeException",
             message: "PortRanges[1]: 90-95 overlaps PortRanges[0] (80-90)"),
        Case(body: #"{"ListenerArn": "\#(arn)", "PortRanges": [{"FromPort": 80, "ToPort": 80}, {"FromPort": 80, "ToPort": 80}]}"#, code: "InvalidPortRangeException",
             message: "PortRanges[1]: 80 overlaps PortRanges[0] (80)"),
        Case(body: #"{"ListenerArn": "\#(arn)", "PortRanges": [{"FromPort": 8995, "ToPort": 9005}]}"#, code: "InvalidPortRangeException",
             message: "accelerators[0].listeners[1].PortRanges[0]: port 9000/TCP of listener \(Fixture.listenerB) on 127.0.0.1 (9000) "
                + "is already served by listener \(arn) on 127.0.0.1 (8995-9005)"),
        Case(body: #"{"ListenerArn": "\#(arn)", "Protocol": "SCTP"}"#, code: "InvalidArgumentException", message: "Protocol \"SCTP\" is not one of TCP, UDP"),
        Case(body: #"{"ListenerArn": "\#(arn)", "Protocol": "tcp"}"#, code: "InvalidArgumentException", message: "Protocol \"tcp\" is not one of TCP, UDP"),
        Case(body: #"{"ListenerArn": "\#(arn)", "Protocol": 6}"#, code: "InvalidArgumentException", message: "Protocol must be a string, not number"),
        // Moving listener A to UDP collides with the UDP listener on 8000.
        Case(body: #"{"ListenerArn": "\#(arn)", "Protocol": "UDP"}"#, code: "InvalidPortRangeException",
             message: "accelerators[0].listeners[2].PortRanges[0]: port 8000/UDP of listener \(Fixture.listenerU) on 127.0.0.1 (8000) "
                + "is already served by listener \(arn) on 127.0.0.1 (8000-8009)"),
        Case(body: #"{"ListenerArn": "\#(arn)", "ClientAffinity": "STICKY"}"#, code: "InvalidArgumentException",
             message: "ClientAffinity \"STICKY\" is not one of NONE, SOURCE_IP"),
        Case(body: #"{"ListenerArn": "\#(Fixture.accelerator)/listener/ffffffff"}"#, code: "ListenerNotFoundException",
             message: "Listener \(Fixture.accelerator)/listener/ffffffff could not be found"),
        Case(body: #"{"ListenerArn": "\#(Fixture.accelerator)/listener/ffffffff"}"#, code: "ListenerNotFoundException",
             message: "Listener \(Fixture.accelerator)/listener/ffffffff could not be found", op: "DescribeListener"),
        Case(body: #"{"AcceleratorArn": "\#(Fixture.accelerator)", "MaxResults": 0}"#, code: "InvalidArgumentException", message: "MaxResults 0 is outside 1..100", op: "ListListeners"),
        Case(body: #"{"AcceleratorArn": "\#(Fixture.accelerator)", "MaxResults": 101}"#, code: "InvalidArgumentException", message: "MaxResults 101 is outside 1..100", op: "ListListeners"),
        Case(body: #"{"AcceleratorArn": "\#(Fixture.accelerator)", "NextToken": "bogus"}"#, code: "InvalidNextTokenException",
             message: "NextToken bogus was not issued for this list", op: "ListListeners"),
        Case(body: #"{"AcceleratorArn": "arn:aws:globalaccelerator::123456789012:accelerator/00000000"}"#, code: "AcceleratorNotFoundException",
             message: "Accelerator arn:aws:globalaccelerator::123456789012:accelerator/00000000 could not be found", op: "ListListeners"),
        Case(body: "{}", code: "UnknownOperationException", message: "unknown operation GlobalAccelerator_V20180706.CreateListener", op: "CreateListener"),
    ]

    @Test(arguments: cases) func rejected(_ c: Case) {
        let (router, applier) = Fixture.router()
        let before = applier.current
        let r = Fixture.aws(router, c.op, c.body)
        #expect(r.status == 400)
        #expect(r.json?["__type"] == .string(c.code))
        #expect(r.json?["message"] == .string(c.message))
        #expect(r.header("x-amzn-RequestId") == "11111111-2222-4333-8444-555555555555")
        #expect(applier.commits.isEmpty)
        #expect(applier.current == before)
    }

    @Test func updateListenerAppliesOnlyWhatWasSent() {
        let (router, applier) = Fixture.router()
        let r = Fixture.aws(router, "UpdateListener", #"{"ListenerArn":"\#(Self.arn)","PortRanges":[{"FromPort":7000,"ToPort":7004},{"FromPort":7100,"ToPort":7100}],"ClientAffinity":"SOURCE_IP"}"#)
        #expect(r.status == 200)
        #expect(r.bodyText == #"{"Listener":{"ListenerArn":"\#(Self.arn)","PortRanges":[{"FromPort":7000,"ToPort":7004},{"FromPort":7100,"ToPort":7100}],"Protocol":"TCP","ClientAffinity":"SOURCE_IP"}}"#)
        #expect(applier.commits.count == 1)
        let l = applier.current.allListeners[0]
        #expect(l.portRanges == [PortRange(fromPort: 7000, toPort: 7004), PortRange(fromPort: 7100, toPort: 7100)])
        #expect(l.clientAffinity == .sourceIP)
        #expect(l.poolID == Fixture.tcpPool)
        // ListenerArn alone is a valid update that changes nothing.
        #expect(Fixture.aws(router, "UpdateListener", #"{"ListenerArn":"\#(Self.arn)"}"#).status == 200)
        #expect(applier.current.allListeners[0] == l)
    }

    @Test func protocolChangeMovesIdleTimeoutDefault() {
        let (router, applier) = Fixture.router()
        let r = Fixture.aws(router, "UpdateListener", #"{"ListenerArn":"\#(Fixture.listenerB)","Protocol":"UDP"}"#)
        #expect(r.status == 200)
        let l = applier.current.allListeners[1]
        #expect(l.protocol == .udp)
        #expect(l.idleTimeout == 30)
    }

    @Test func bindFailureRejectsWithNothingChanged() {
        let (router, applier) = Fixture.router()
        let before = applier.current
        applier.failNextPrepare(ApplyError(.addressInUse, "port 7000/TCP on 127.0.0.1: address already in use"))
        let r = Fixture.aws(router, "UpdateListener", #"{"ListenerArn":"\#(Self.arn)","PortRanges":[{"FromPort":7000,"ToPort":7000}]}"#)
        #expect(r.status == 400)
        #expect(r.json?["__type"] == "InvalidPortRangeException")
        #expect(r.json?["message"] == "port 7000/TCP on 127.0.0.1: address already in use")
        #expect(applier.current == before)
        #expect(applier.commits.isEmpty)
    }

    @Test func listListenersPaginates() {
        let (router, _) = Fixture.router()
        let p1 = Fixture.aws(router, "ListListeners", #"{"AcceleratorArn":"\#(Fixture.accelerator)","MaxResults":2}"#)
        #expect(p1.status == 200)
        #expect(p1.json?["Listeners"]?.arrayValue?.count == 2)
        guard let token = p1.json?["NextToken"]?.stringValue else { Issue.record("no NextToken"); return }
        let p2 = Fixture.aws(router, "ListListeners", #"{"AcceleratorArn":"\#(Fixture.accelerator)","MaxResults":2,"NextToken":"\#(token)"}"#)
        #expect(p2.json?["Listeners"]?.arrayValue?.map { $0["ListenerArn"] } == [.string(Fixture.listenerU)])
        #expect(p2.json?["NextToken"] == nil)
        let all = Fixture.aws(router, "ListListeners", #"{"AcceleratorArn":"\#(Fixture.accelerator)"}"#)
        #expect(all.json?["Listeners"]?.arrayValue?.count == 3)
        #expect(all.json?["NextToken"] == nil)
        // A token from another list is refused.
        let other = Fixture.aws(router, "ListAccelerators", #"{"NextToken":"\#(token)"}"#)
        #expect(other.json?["__type"] == "InvalidNextTokenException")
    }

    @Test func describeAndAccelerators() {
        let (router, _) = Fixture.router()
        let d = Fixture.aws(router, "DescribeListener", #"{"ListenerArn":"\#(Fixture.listenerU)"}"#)
        #expect(d.bodyText == #"{"Listener":{"ListenerArn":"\#(Fixture.listenerU)","PortRanges":[{"FromPort":8000,"ToPort":8000}],"Protocol":"UDP","ClientAffinity":"NONE"}}"#)
        let a = Fixture.aws(router, "DescribeAccelerator", #"{"AcceleratorArn":"\#(Fixture.accelerator)"}"#)
        #expect(a.json?["Accelerator"]?["Name"] == "edge")
        let l = Fixture.aws(router, "ListAccelerators", "{}")
        #expect(l.json?["Accelerators"]?.arrayValue?.count == 1)
    }

    @Test func listenerLimitPerAccelerator() {
        var config = Fixture.config()
        for i in 0..<8 {
            config.accelerators[0].listeners.append(Listener(listenerArn: Fixture.accelerator + "/listener/1000000\(i)",
                                                            portRanges: [PortRange(fromPort: 10000 + i, toPort: 10000 + i)], protocol: .tcp, poolID: Fixture.tcpPool, bind: "127.0.0.1"))
        }
        let (router, applier) = Fixture.router(config)
        let r = Fixture.aws(router, "UpdateListener", #"{"ListenerArn":"\#(Self.arn)"}"#)
        #expect(r.json?["__type"] == "LimitExceededException")
        #expect(r.json?["message"] == .string("accelerators[0].listeners: at most 10 listeners per accelerator, got 11"))
        #expect(applier.commits.isEmpty)
    }
}
