import Testing
@testable import FlowgateCore

private func parseAll(_ text: String, chunkSize: Int = Int.max, limits: HTTPLimits = HTTPLimits()) -> (requests: [HTTPRequest], error: HTTPParseError?, midRequest: Bool) {
    var parser = HTTPRequestParser(limits: limits)
    var out: [HTTPRequest] = []
    let bytes = Array(text.utf8)
    var i = 0
    while i < bytes.count {
        let end = min(bytes.count, i + chunkSize)
        parser.append(Array(bytes[i..<end]))
        i = end
        while let r = parser.next() {
            switch r {
            case let .success(req): out.append(req)
            case let .failure(e): return (out, e, parser.isMidRequest)
            }
        }
    }
    return (out, nil, parser.isMidRequest)
}

@Suite struct HTTPRequestParserTests {
    @Test func pipelinedRequestsComeOutInOrderWhateverTheChunking() {
        let text = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
            + "POST /a?b=c HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
            + "PUT /v3/p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: t\r\n\r\n"
            + "GET /last HTTP/1.0\r\n\r\n"
        for chunk in [1, 2, 3, 7, 64, Int.max] {
            let (reqs, err, mid) = parseAll(text, chunkSize: chunk)
            #expect(err == nil)
            #expect(!mid)
            #expect(reqs.map(\.head.method) == ["GET", "POST", "PUT", "GET"])
            #expect(reqs.map(\.head.target) == ["/healthz", "/a?b=c", "/v3/p", "/last"])
            #expect(reqs.map { String(decoding: $0.body, as: UTF8.self) } == ["", "hello", "abcde", ""])
            #expect(reqs.map(\.head.keepAlive) == [true, true, true, false])
        }
    }

    @Test func headerValuesAreTrimmedAndLookedUpCaseInsensitively() {
        let (reqs, err, _) = parseAll("GET / HTTP/1.1\r\nHOST: x\r\nX-Amz-Target:  \tOp \t\r\nConnection: keep-alive, Close\r\n\r\n")
        #expect(err == nil)
        #expect(reqs[0].head.value("x-amz-target") == "Op")
        #expect(reqs[0].head.keepAlive == false)
    }

    @Test func anEmptyLineBeforeTheRequestLineIsIgnored() {
        let (reqs, err, _) = parseAll("\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(err == nil && reqs.count == 1)
    }

    /// Each refusal closes the gaps request smuggling goes through (RFC 9112 §6.1, §6.3, §11.2).
    @Test(arguments: [
        ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "both Content-Length and Transfer-Encoding"),
        ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400, "conflicting Content-Length"),
        ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 2\r\n\r\n", 400, "conflicting Content-Length"),
        ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", 400, "repeated Content-Length"),
        ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\n", 400, "not a decimal number"),
        ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n", 400, "not a decimal number"),
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 501, "only chunked"),
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n", 400, "only chunked"),
        ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "HTTP/1.0"),
        ("GET / HTTP/1.1\nHost: x\r\n\r\n", 400, "bare LF"),
        ("GET / HTTP/1.1\r\nHost: x\rY: z\r\n\r\n", 400, "bare CR"),
        ("GET / HTTP/1.1\r\nHost: x\r\n  folded\r\n\r\n", 400, "obsolete line folding"),
        ("GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400, "whitespace between a header name and ':'"),
        ("GET / HTTP/1.1\r\nHo(st: x\r\n\r\n", 400, "not a token character"),
        ("GET / HTTP/1.1\r\nHost: x\u{01}\r\n\r\n", 400, "control character"),
        ("GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400, "single spaces"),
        ("G@T / HTTP/1.1\r\nHost: x\r\n\r\n", 400, "method is not a token"),
        ("GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n", 400, "origin form"),
        ("GET / HTTP/1.1\r\n\r\n", 400, "without a Host header"),
        ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "more than one Host"),
        ("GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505, "not supported"),
        ("GET / HTTP/1.2\r\nHost: x\r\n\r\n", 505, "not supported"),
        ("GET / HTTX/1.1\r\nHost: x\r\n\r\n", 400, "HTTP/1.0 or HTTP/1.1"),
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffffffff\r\n", 400, "more than 8 hex digits"),
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400, "not hexadecimal"),
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n", 400, "not followed by CRLF"),
        ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n", 413, "larger than 1048576"),
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n200000\r\n", 413, "larger than 1048576"),
    ])
    func refusals(_ text: String, _ status: Int, _ fragment: String) {
        for chunk in [1, Int.max] {
            let (reqs, err, _) = parseAll(text, chunkSize: chunk)
            #expect(reqs.isEmpty)
            #expect(err?.status == status, "\(text.debugDescription)")
            #expect(err?.message.contains(fragment) == true, "\(String(describing: err)) for \(text.debugDescription)")
        }
    }

    @Test func limitsAreEnforcedBeforeTheHeadIsComplete() {
        var limits = HTTPLimits()
        limits.maxLineBytes = 100
        limits.maxHeadBytes = 1000
        limits.maxHeaders = 3
        // An endless header line is refused once it passes the line limit, head incomplete.
        let line = parseAll("GET / HTTP/1.1\r\nHost: x\r\nX: " + String(repeating: "a", count: 200), chunkSize: 1, limits: limits)
        #expect(line.error?.status == 431)
        let requestLine = parseAll("GET /" + String(repeating: "a", count: 200), chunkSize: 1, limits: limits)
        #expect(requestLine.error?.status == 414)
        let head = parseAll("GET / HTTP/1.1\r\n" + String(repeating: "X: 1234567890\r\n", count: 80), chunkSize: 5, limits: limits)
        #expect(head.error?.status == 431)
        #expect(head.error?.message == "request head is larger than 1000 bytes")
        let count = parseAll("GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", limits: limits)
        #expect(count.error?.message == "more than 3 header fields")
    }

    @Test func afterAnErrorTheParserStaysFailed() {
        var parser = HTTPRequestParser()
        parser.append(Array("GET / HTTP/1.1\nHost: x\r\n\r\n".utf8))
        #expect(parser.next().map { if case .failure = $0 { true } else { false } } == true)
        parser.append(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        #expect(parser.next().map { if case .failure = $0 { true } else { false } } == true)
    }

    @Test func expectContinueIsVisibleWhileTheBodyIsAwaited() {
        var parser = HTTPRequestParser()
        parser.append(Array("PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n".utf8))
        #expect(parser.next() == nil)
        #expect(parser.headAwaitingBody?.expectsContinue == true)
        #expect(parser.isMidRequest)
        parser.append(Array("abc".utf8))
        guard case let .success(req)? = parser.next() else { Issue.record("no request"); return }
        #expect(req.body == Array("abc".utf8))
        #expect(!parser.isMidRequest && parser.headAwaitingBody == nil)
    }

    @Test func responsesCarryTheirOwnFraming() {
        let bytes = HTTPResponseText.serialize(status: 200, headers: [("Content-Type", "text/plain"), ("Content-Length", "99"), ("X-Bad", "a\r\nInjected: 1")],
                                               body: Array("ok\n".utf8), keepAlive: true, date: "Thu, 01 Jan 1970 00:00:00 GMT")
        #expect(String(decoding: bytes, as: UTF8.self) == "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nok\n")
        let head = HTTPResponseText.serialize(status: 404, headers: [], body: Array("x".utf8), keepAlive: false, headOnly: true, date: "D")
        #expect(String(decoding: head, as: UTF8.self) == "HTTP/1.1 404 Not Found\r\nDate: D\r\nContent-Length: 1\r\nConnection: close\r\n\r\n")
        // RFC 9110 §8.6: a 204 carries neither Content-Length nor a body.
        let noContent = HTTPResponseText.serialize(status: 204, headers: [("X-Request-Id", "r")], body: [], keepAlive: true, date: "D")
        #expect(String(decoding: noContent, as: UTF8.self) == "HTTP/1.1 204 No Content\r\nX-Request-Id: r\r\nDate: D\r\nConnection: keep-alive\r\n\r\n")
    }

    @Test func imfDate() {
        #expect(HTTPResponseText.imfDate(0) == "Thu, 01 Jan 1970 00:00:00 GMT")
        #expect(HTTPResponseText.imfDate(784_111_777) == "Sun, 06 Nov 1994 08:49:37 GMT") // RFC 9110's example
        #expect(HTTPResponseText.imfDate(1_796_169_600) == "Wed, 02 Dec 2026 00:00:00 GMT")
        #expect(HTTPResponseText.imfDate(951_782_400) == "Tue, 29 Feb 2000 00:00:00 GMT")
    }
}
