import Testing
@testable import FlowgateCore

/// Golden cases for the data plane's head parser: what it accepts, and every
/// refusal with its exact status and message (requests: the status the client
/// gets; responses: always 502, the client is told the backend failed).
@Suite struct HTTPHeadParserTests {
    static let splits = [1, 2, 5, Int.max]

    @Test func requestsArePipelinedAndFramedWhateverTheReadSizes() {
        let text = "GET /a?b=c HTTP/1.1\r\nHost: x\r\nX-Empty:\r\nX-Pad: \t v \t\r\n\r\n"
            + "POST http://h:8/p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
            + "PUT /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n3;a=b;c=\"q \\\" d\"\r\nabc\r\n2\r\nde\r\n0\r\nT: 1\r\n\r\n"
            + "\r\nOPTIONS * HTTP/1.0\r\n\r\n"
        for chunk in Self.splits {
            let d = HTTPStreamDriver(text, kind: .request, chunk: chunk)
            #expect(d.error == nil)
            #expect(!d.midMessage)
            #expect(d.messages.map(\.startLine) == ["GET /a?b=c HTTP/1.1", "POST http://h:8/p HTTP/1.1", "PUT /c HTTP/1.1", "OPTIONS * HTTP/1.0"])
            #expect(d.messages[0].fields == ["Host=x", "X-Empty=", "X-Pad=v"])
            #expect(d.messages.map(\.framing) == [.none, .length(5), .chunked, .none])
            #expect(d.messages.map(\.payload) == ["", "hello", "abcde", ""])
            #expect(d.messages[2].bodyBytes == "3;a=b;c=\"q \\\" d\"\r\nabc\r\n2\r\nde\r\n0\r\nT: 1\r\n\r\n".utf8.count)
            #expect(d.messages[2].trailers == "T: 1\r\n\r\n")
        }
    }

    @Test func headFlagsAndAccessors() {
        var p = HTTPHeadParser(kind: .request)
        let text = Array("GET / HTTP/1.0\r\nHost: x\r\nConnection: Keep-Alive, Upgrade\r\nUpgrade: websocket\r\nExpect: 100-Continue\r\n\r\nrest".utf8)
        #expect(parseHead(&p, text) == true)
        let h = p.head
        #expect(h.method == .get && h.minorVersion == 0 && h.keepAlive && h.requestsUpgrade && h.expectsContinue)
        #expect(h.length == text.count - 4)
        text.withUnsafeBytes { b in
            #expect(h.value("upgrade", in: b) == "websocket")
            #expect(h.value("missing", in: b) == nil)
        }
        // A partial head: nothing yet, and the parser resumes where it stopped.
        var q = HTTPHeadParser(kind: .response)
        let partial = Array("HTTP/1.1 200 OK\r\nContent-Le".utf8)
        #expect(parseHead(&q, partial) == false)
        #expect(q.hasStarted)
        #expect(parseHead(&q, partial + Array("ngth: 0\r\nConnection: close\r\n\r\n".utf8)) == true)
        #expect(q.head.status == 200 && q.head.framing == .length(0) && !q.head.keepAlive)
        // Empty lines alone are not a started message.
        var r = HTTPHeadParser(kind: .request)
        #expect(parseHead(&r, Array("\r\n\r\n\r".utf8)) == false)
        #expect(!r.hasStarted)
    }

    /// Every request refusal, exact (RFC 9112 §2.2, §3, §5, §6; RFC 9110 §5.6.2, §9.1).
    @Test(arguments: [
        // CL.TE and TE.CL
        ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "both Content-Length and Transfer-Encoding: refused (request smuggling)"),
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400, "both Content-Length and Transfer-Encoding: refused (request smuggling)"),
        // TE.TE obfuscations
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n", 400, "Transfer-Encoding does not end with chunked: the body length is unknown"),
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n", 400, "Transfer-Encoding does not end with chunked: the body length is unknown"),
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n", 400, "Transfer-Encoding does not end with chunked: the body length is unknown"),
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400, "Transfer-Encoding applies chunked more than once"),
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "Transfer-Encoding applies chunked more than once"),
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\t\r\n\r\n", 400, "Transfer-Encoding with trailing whitespace"),
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked;q=1\r\n\r\n", 400, "Transfer-Encoding has an empty element or one that is not a token"),
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: , chunked\r\n\r\n", 400, "Transfer-Encoding has an empty element or one that is not a token"),
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", 400, "Transfer-Encoding has an empty element or one that is not a token"),
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n", 400, "whitespace between a header name and ':'"),
        ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "Transfer-Encoding in an HTTP/1.0 request"),
        // duplicate and malformed Content-Length
        ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", 400, "more than one Content-Length header"),
        ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400, "more than one Content-Length header"),
        ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 1\r\n\r\n", 400, "Content-Length \"1, 1\" is not a decimal number of at most 18 digits"),
        ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\n", 400, "Content-Length \"+1\" is not a decimal number of at most 18 digits"),
        ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1234567890123456789\r\n\r\n", 400, "Content-Length \"1234567890123456789\" is not a decimal number of at most 18 digits"),
        ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n", 400, "Content-Length \"\" is not a decimal number of at most 18 digits"),
        // line endings, folding, tokens
        ("GET / HTTP/1.1\nHost: x\r\n\r\n", 400, "bare LF in the request head: lines end with CRLF"),
        ("\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bare LF in the request head: lines end with CRLF"),
        ("GET / HTTP/1.1\r\nHost: x\rY: z\r\n\r\n", 400, "bare CR in the request head"),
        ("GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400, "obsolete line folding (a header line starting with whitespace)"),
        ("GET / HTTP/1.1\r\nHost: x\r\n\tfolded\r\n\r\n", 400, "obsolete line folding (a header line starting with whitespace)"),
        ("GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400, "whitespace between a header name and ':'"),
        ("GET / HTTP/1.1\r\nHo(st: x\r\n\r\n", 400, "header name has a character that is not a token character"),
        ("GET / HTTP/1.1\r\nHo\u{80}st: x\r\n\r\n", 400, "header name has a character that is not a token character"),
        ("GET / HTTP/1.1\r\nHost x\r\n\r\n", 400, "header name has a character that is not a token character"),
        ("GET / HTTP/1.1\r\nHostx\r\n\r\n", 400, "header line without ':'"),
        ("GET / HTTP/1.1\r\n: x\r\n\r\n", 400, "header line with an empty name"),
        ("GET / HTTP/1.1\r\nHost: x\u{01}\r\n\r\n", 400, "header Host has a control character in its value"),
        ("GET / HTTP/1.1\r\nHost: x\u{7F}\r\n\r\n", 400, "header Host has a control character in its value"),
        ("GET / HTTP/1.1\r\nHost: x\0y\r\n\r\n", 400, "header Host has a control character in its value"),
        // request line
        ("GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400, "request line is not `METHOD target HTTP/1.x` with single spaces"),
        ("GET / HTTP/1.1 \r\nHost: x\r\n\r\n", 400, "request line does not end with HTTP/1.0 or HTTP/1.1"),
        ("GET / a HTTP/1.1\r\nHost: x\r\n\r\n", 400, "request line is not `METHOD target HTTP/1.x` with single spaces"),
        ("GET /\r\nHost: x\r\n\r\n", 400, "request line has no HTTP version (HTTP/0.9 is not supported)"),
        ("G@T / HTTP/1.1\r\nHost: x\r\n\r\n", 400, "method is not a token"),
        ("FOO / HTTP/1.1\r\nHost: x\r\n\r\n", 501, "method FOO is not implemented"),
        ("get / HTTP/1.1\r\nHost: x\r\n\r\n", 501, "method get is not implemented"),
        ("CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", 501, "CONNECT is not supported: an HTTP pool does not open tunnels"),
        ("GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400, "request target * is only for OPTIONS"),
        ("GET h:443 HTTP/1.1\r\nHost: x\r\n\r\n", 400, "request target is neither origin form (/path) nor absolute form (http://host/path)"),
        ("GET ftp://h/ HTTP/1.1\r\nHost: x\r\n\r\n", 400, "request target is neither origin form (/path) nor absolute form (http://host/path)"),
        ("GET http:///x HTTP/1.1\r\nHost: x\r\n\r\n", 400, "request target is neither origin form (/path) nor absolute form (http://host/path)"),
        ("GET http://h{/ HTTP/1.1\r\nHost: x\r\n\r\n", 400, "request target's authority has a character RFC 3986 does not allow there"),
        ("GET /\u{80} HTTP/1.1\r\nHost: x\r\n\r\n", 400, "request target has a control, space or non-ASCII byte"),
        ("GET /\u{7F} HTTP/1.1\r\nHost: x\r\n\r\n", 400, "request target has a control, space or non-ASCII byte"),
        ("GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505, "HTTP version 2.0 is not supported: only 1.0 and 1.1"),
        ("GET / HTTP/1.2\r\nHost: x\r\n\r\n", 505, "HTTP version 1.2 is not supported: only 1.0 and 1.1"),
        ("GET / HTTX/1.1\r\nHost: x\r\n\r\n", 400, "request line does not end with HTTP/1.0 or HTTP/1.1"),
        ("GET / http/1.1\r\nHost: x\r\n\r\n", 400, "request line does not end with HTTP/1.0 or HTTP/1.1"),
        // Host
        ("GET / HTTP/1.1\r\n\r\n", 400, "HTTP/1.1 request without a Host header"),
        ("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 400, "more than one Host header"),
    ])
    func requestRefusals(_ text: String, _ status: Int, _ message: String) {
        for chunk in Self.splits {
            let d = HTTPStreamDriver(text, kind: .request, chunk: chunk)
            #expect(d.messages.isEmpty, "\(text.debugDescription)")
            #expect(d.error == HTTPParseError(status, message), "\(text.debugDescription) split \(chunk)")
        }
    }

    /// Every response refusal: always 502 (the backend is at fault), same rules as requests plus the status line.
    @Test(arguments: [
        ("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", "both Content-Length and Transfer-Encoding: refused (response splitting)"),
        ("HTTP/1.1 304 Not Modified\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", "both Content-Length and Transfer-Encoding: refused (response splitting)"),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "Transfer-Encoding does not end with chunked: the body length is unknown"),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", "Transfer-Encoding applies chunked more than once"),
        ("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "Transfer-Encoding in an HTTP/1.0 response"),
        ("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", "more than one Content-Length header"),
        ("HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n", "Content-Length \"0x10\" is not a decimal number of at most 18 digits"),
        ("HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", "bare LF in the response head: lines end with CRLF"),
        ("HTTP/1.1 200 OK\r\nA: b\rContent-Length: 0\r\n\r\n", "bare CR in the response head"),
        ("HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n", "obsolete line folding (a header line starting with whitespace)"),
        ("HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n", "whitespace between a header name and ':'"),
        ("HTTP/1.1 200 OK\r\nSet-Cookie\u{01}: a\r\n\r\n", "header name has a character that is not a token character"),
        ("HTTP/1.1 200 OK\r\nSet-Cookie: a\u{0B}\r\n\r\n", "header Set-Cookie has a control character in its value"),
        ("HTTP/1.1 99 OK\r\n\r\n", "status code is not three digits"),
        ("HTTP/1.1 2x0 OK\r\n\r\n", "status code is not three digits"),
        ("HTTP/1.1 2000 OK\r\n\r\n", "status code is not three digits"),
        ("HTTP/1.1 600 OK\r\n\r\n", "status code 600 is outside 100...599"),
        ("HTTP/1.1 200 O\u{01}K\r\n\r\n", "reason phrase has a control character"),
        ("HTTP/2 200 OK\r\n\r\n", "status line is not `HTTP/1.x NNN reason`"),
        ("HTTP/1.1\r\n\r\n", "status line is not `HTTP/1.x NNN reason`"),
        ("HTTP/2.0 200 OK\r\n\r\n", "HTTP version 2.0 is not supported: only 1.0 and 1.1"),
        ("HTTX/1.1 200 OK\r\n\r\n", "status line does not start with HTTP/1.0 or HTTP/1.1"),
        ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", "101 response without both Upgrade and Connection: upgrade"),
        ("HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\n\r\n", "101 response without both Upgrade and Connection: upgrade"),
    ])
    func responseRefusals(_ text: String, _ message: String) {
        for chunk in Self.splits {
            let d = HTTPStreamDriver(text, kind: .response, chunk: chunk)
            #expect(d.messages.isEmpty, "\(text.debugDescription)")
            #expect(d.error == HTTPParseError(502, message), "\(text.debugDescription) split \(chunk)")
        }
    }

    @Test func limitsAreEnforcedAsBytesArriveWithExactMessages() {
        let line = String(repeating: "a", count: 8 << 10)
        // Request line of 8 KiB + 1 byte: 414, before the line ends.
        let longTarget = HTTPStreamDriver("GET /" + line, kind: .request, chunk: 100)
        #expect(longTarget.error == HTTPParseError(414, "request line is longer than 8192 bytes"))
        // A request line of exactly 8 KiB is fine.
        let exact = HTTPStreamDriver("GET /" + String(repeating: "a", count: (8 << 10) - 14) + " HTTP/1.1\r\nHost: x\r\n\r\n", kind: .request)
        #expect(exact.error == nil && exact.messages.count == 1)
        let longHeader = HTTPStreamDriver("GET / HTTP/1.1\r\nX: " + line, kind: .request, chunk: 100)
        #expect(longHeader.error == HTTPParseError(431, "a header line is longer than 8192 bytes"))
        let fields = String(repeating: "X: " + String(repeating: "v", count: 1000) + "\r\n", count: 70)
        let bigHead = HTTPStreamDriver("GET / HTTP/1.1\r\nHost: x\r\n" + fields + "\r\n", kind: .request, chunk: 1000)
        #expect(bigHead.error == HTTPParseError(431, "request head is larger than 65536 bytes"))
        let many = HTTPStreamDriver("GET / HTTP/1.1\r\nHost: x\r\n" + String(repeating: "A: 1\r\n", count: 100) + "\r\n", kind: .request)
        #expect(many.error == HTTPParseError(431, "more than 100 header fields"))
        let hundred = HTTPStreamDriver("GET / HTTP/1.1\r\nHost: x\r\n" + String(repeating: "A: 1\r\n", count: 99) + "\r\n", kind: .request)
        #expect(hundred.error == nil && hundred.messages.count == 1)
        // Responses: the same limits, answered 502.
        let longStatus = HTTPStreamDriver("HTTP/1.1 200 " + line, kind: .response, chunk: 100)
        #expect(longStatus.error == HTTPParseError(502, "status line is longer than 8192 bytes"))
        let bigResponse = HTTPStreamDriver("HTTP/1.1 200 OK\r\n" + fields, kind: .response, chunk: 1000)
        #expect(bigResponse.error == HTTPParseError(502, "response head is larger than 65536 bytes"))
        let manyResponse = HTTPStreamDriver("HTTP/1.1 200 OK\r\n" + String(repeating: "A: 1\r\n", count: 101) + "\r\n", kind: .response)
        #expect(manyResponse.error == HTTPParseError(502, "more than 100 header fields"))
    }

    /// The first limit a byte crosses decides the refusal, whatever bytes follow in the same read.
    @Test func theRefusalDoesNotDependOnReadSizes() {
        var limits = HTTPLimits()
        limits.maxLineBytes = 200
        limits.maxHeadBytes = 400
        let cases: [(String, HTTPParseError)] = [
            // A bare CR past the line limit: the line was too long first.
            ("GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 250) + "\rb\r\n\r\n", HTTPParseError(431, "a header line is longer than 200 bytes")),
            // A bare LF past the head limit: the head was too large first.
            ("GET / HTTP/1.1\r\n" + String(repeating: "X: " + String(repeating: "a", count: 100) + "\r\n", count: 4) + "\n", HTTPParseError(431, "request head is larger than 400 bytes")),
            // A bare CR before either limit is the refusal.
            ("GET / HTTP/1.1\r\nX: a\rb" + String(repeating: "a", count: 500), HTTPParseError(400, "bare CR in the request head")),
        ]
        for (text, expected) in cases {
            for reads in [[Int.max], [1], [7], [150, 3], [399, 1, 1]] {
                let d = HTTPStreamDriver(Array(text.utf8), kind: .request, reads: reads, limits: limits)
                #expect(d.error == expected, "reads \(reads) of \(text.prefix(40).debugDescription)")
            }
        }
    }

    /// RFC 9112 §6.3: which responses have a body, and how it ends.
    @Test func responseFramingFollowsStatusAndRequestMethod() {
        let stream = "HTTP/1.1 100 Continue\r\n\r\n"
            + "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
            + "HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n"
            + "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n"
            + "HTTP/1.0 200 OK\r\n\r\nuntil the end"
        for chunk in Self.splits {
            let d = HTTPStreamDriver(stream, kind: .response, chunk: chunk, closeAtEnd: true)
            #expect(d.error == nil)
            #expect(d.messages.map(\.framing) == [.none, .length(3), .none, .none, .chunked, .untilClose])
            #expect(d.messages.map(\.payload) == ["", "abc", "", "", "x", "until the end"])
        }
        // A response to HEAD has no body whatever its Content-Length says.
        let head = HTTPStreamDriver("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                                    kind: .response, respondingTo: .head)
        #expect(head.error == nil && head.messages.map(\.framing) == [.none, .none])
        // 101 with Upgrade and Connection: upgrade: everything after the head is the new protocol.
        var p = HTTPHeadParser(kind: .response)
        let switching = Array("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\u{81}\u{05}hello".utf8) // U+0081 is two bytes
        #expect(parseHead(&p, switching) == true)
        #expect(p.head.framing == .switchingProtocols && p.head.length == switching.count - 8)
        #expect(HTTPBodyFramer(.switchingProtocols, kind: .response).isDone)
        // An interim response is flagged; the final one follows for the same request.
        var q = HTTPHeadParser(kind: .response)
        #expect(parseHead(&q, Array("HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n".utf8)) == true)
        #expect(q.head.isInterim && q.head.framing == .none)
    }

    @Test func methodLookupKnowsExactlyTheRegisteredSpellings() {
        for m in HTTPMethod.allCases {
            Array(m.rawValue.utf8).withUnsafeBytes { #expect(HTTPMethod.lookup($0) == m) }
        }
        for s in ["GE", "GETS", "Get", "PRI", "DESCRIBE", ""] {
            Array(s.utf8).withUnsafeBytes { #expect(HTTPMethod.lookup($0) == nil, "\(s)") }
        }
    }
}

@Suite struct HTTPBytesTests {
    @Test func maskConstantsAreTheRFCSets() {
        let token = HTTPBytes.mask("!#$%&'*+-.^_`|~", alnum: true)
        #expect(token == (HTTPBytes.tokenLo, HTTPBytes.tokenHi))
        let authority = HTTPBytes.mask("-._~!$&'()*+,;=%:@[]", alnum: true)
        #expect(authority == (HTTPBytes.authorityLo, HTTPBytes.authorityHi))
        #expect(!(0...255).contains { HTTPBytes.isToken(UInt8($0)) && $0 >= 128 })
    }

    @Test func wordAtATimeValueCheckAgreesWithTheByteCheck() {
        var rng = FuzzRandom(state: 7)
        for _ in 0..<20_000 {
            let n = rng.below(40)
            let bytes = (0..<n).map { _ in rng.below(4) == 0 ? UInt8(rng.below(256)) : UInt8(0x20 + rng.below(0x5F)) }
            let expected = bytes.allSatisfy(HTTPBytes.isFieldValue)
            bytes.withUnsafeBytes { #expect(HTTPBytes.allFieldValue($0) == expected, "\(bytes)") }
        }
    }
}
