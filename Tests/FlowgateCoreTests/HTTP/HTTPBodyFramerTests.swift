import Testing
@testable import FlowgateCore

/// The streaming body framer: byte counts that let a relay forward a body
/// without copying it, at any read boundary, and the exact refusal for every
/// malformed chunked body (400 for requests, 502 for responses).
@Suite struct HTTPBodyFramerTests {
    static func chunked(_ body: String, kind: HTTPMessageKind = .request, chunk: Int = Int.max) -> HTTPStreamDriver {
        let head = kind == .request ? "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                                    : "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        return HTTPStreamDriver(head + body, kind: kind, chunk: chunk)
    }

    @Test func consumeCountsTheWholeBodyAndStopsAtTheNextMessage() throws {
        let body = Array("5;ext=\"a;b\"\r\nhello\r\n00000A\r\n0123456789\r\n0\r\nT: v\r\nU:\r\n\r\n".utf8)
        let next = Array("GET / HTTP/1.1\r\n".utf8)
        for split in 1...body.count {
            var f = HTTPBodyFramer(.chunked, kind: .request)
            var total = 0
            var bytes = body + next
            var done = false
            while !done {
                let piece = Array(bytes.prefix(split))
                let (n, d) = try withBytes(piece) { p throws(HTTPParseError) in try f.consume(p) }
                total += n; done = d
                bytes.removeFirst(n)
                if !d { #expect(n == piece.count) } // nothing left behind mid-body
            }
            #expect(total == body.count, "split \(split)")
            #expect(bytes == next)
        }
        var l = HTTPBodyFramer(.length(4), kind: .response)
        let r = try withBytes(Array("abcdefg".utf8)) { p throws(HTTPParseError) in try l.consume(p) }
        #expect(r.bodyBytes == 4 && r.done)
        #expect(HTTPBodyFramer(.length(0), kind: .request).isDone && HTTPBodyFramer(.none, kind: .request).isDone)
    }

    @Test func aBodyReadUntilCloseEndsOnlyAtClose() throws {
        var f = HTTPBodyFramer(.untilClose, kind: .response)
        let r = try withBytes(Array("anything\r\n0\r\n\r\n".utf8)) { p throws(HTTPParseError) in try f.consume(p) }
        #expect(r.bodyBytes == 15 && !r.done)
        try f.finish()
        #expect(f.isDone)
        var g = HTTPBodyFramer(.length(3), kind: .request)
        #expect(throws: HTTPParseError(400, "connection closed inside the request body")) { try g.finish() }
        var h = HTTPBodyFramer(.chunked, kind: .response)
        #expect(throws: HTTPParseError(502, "connection closed inside the response body")) { try h.finish() }
    }

    @Test func segmentsSeparatePayloadFramingAndTrailers() throws {
        var f = HTTPBodyFramer(.chunked, kind: .request)
        let bytes = Array("3\r\nabc\r\n0\r\nT: 1\r\n\r\n".utf8)
        var segments: [(HTTPBodyFramer.Segment, String)] = []
        var at = 0
        while !f.isDone {
            let (s, n) = try withBytes(Array(bytes[at...])) { p throws(HTTPParseError) in try f.next(p) }
            segments.append((s, String(decoding: bytes[at..<(at + n)], as: UTF8.self)))
            at += n
        }
        #expect(segments.map(\.0) == [.chunkFraming, .data, .chunkFraming, .trailer])
        #expect(segments.map(\.1) == ["3\r\n", "abc", "\r\n0\r\n", "T: 1\r\n\r\n"])
    }

    /// Every chunked-body refusal (RFC 9112 §7.1), exact.
    @Test(arguments: [
        ("zz\r\n", "chunk size is not hexadecimal"),
        ("\r\n", "chunk size is not hexadecimal"),
        ("-1\r\n", "chunk size is not hexadecimal"),
        ("10000000000000000\r\n", "chunk size has more than 15 hex digits"),
        ("0000000000000003\r\nabc\r\n0\r\n\r\n", "chunk size has more than 15 hex digits"),
        ("3 \r\nabc\r\n", "whitespace in a chunk-size line"),
        ("3\t;a\r\n", "whitespace in a chunk-size line"),
        ("3x\r\n", "chunk-size line has an invalid character"),
        ("3;a b\r\n", "whitespace in a chunk extension"),
        ("3;=b\r\n", "chunk extension name is not a token"),
        ("3;\r\n", "chunk extension name is not a token"),
        ("3;a=\r\n", "chunk extension value is not a token or a quoted string"),
        ("3;a=b\"c\"\r\n", "chunk extension has an invalid character"),
        ("3;a=\"x\u{01}\"\r\n", "chunk extension quoted string has a control character"),
        ("3;a=\"x\r\n", "chunk extension quoted string has a control character"),
        ("3\rX", "bare CR in a chunk-size line"),
        ("3\nabc\r\n", "bare LF in a chunked body: lines end with CRLF"),
        ("3\r\nabcX\r\n", "chunk data is not followed by CRLF"),
        ("3\r\nabc\rX", "chunk data is not followed by CRLF"),
        ("3\r\nabc\n0\r\n\r\n", "bare LF in a chunked body: lines end with CRLF"),
        ("0\r\n folded: x\r\n\r\n", "obsolete line folding (a trailer line starting with whitespace)"),
        ("0\r\nT : v\r\n\r\n", "whitespace between a trailer name and ':'"),
        ("0\r\nT(: v\r\n\r\n", "trailer name has a character that is not a token character"),
        ("0\r\n: v\r\n\r\n", "trailer line with an empty name"),
        ("0\r\nT: a\u{01}\r\n\r\n", "a trailer has a control character in its value"),
        ("0\r\nT: v\rX\r\n\r\n", "bare CR in the trailer section"),
        ("0\r\nT: v\nU: w\r\n\r\n", "bare LF in a chunked body: lines end with CRLF"),
        ("0\r\n\rX", "bare CR in the trailer section"),
        ("0\r\nContent-Length: 5\r\n\r\n", "Content-Length or Transfer-Encoding in the trailer section"),
        ("0\r\ntransfer-ENCODING: chunked\r\n\r\n", "Content-Length or Transfer-Encoding in the trailer section"),
    ])
    func chunkedRefusals(_ body: String, _ message: String) {
        for chunk in [1, 3, Int.max] {
            let q = Self.chunked(body, kind: .request, chunk: chunk)
            #expect(q.error == HTTPParseError(400, message), "\(body.debugDescription) split \(chunk)")
            let r = Self.chunked(body, kind: .response, chunk: chunk)
            #expect(r.error == HTTPParseError(502, message), "\(body.debugDescription) split \(chunk)")
        }
    }

    @Test func trailerNamesThatOnlyResembleFramingFieldsPass() {
        let d = Self.chunked("0\r\nContent-Lengths: 1\r\nContent-Lengt: 1\r\nTransfer-Encodin: x\r\nX-Content-Length: 1\r\n\r\n")
        #expect(d.error == nil && d.messages.count == 1)
    }

    @Test func trailerAndChunkLineLimits() {
        var limits = HTTPLimits()
        limits.maxLineBytes = 64
        limits.maxHeaders = 2
        limits.maxHeadBytes = 100
        let head = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        let ext = HTTPStreamDriver(head + "1;" + String(repeating: "a", count: 70), kind: .request, limits: limits)
        #expect(ext.error == HTTPParseError(400, "a chunk-size line is longer than 64 bytes"))
        let line = HTTPStreamDriver(head + "0\r\nT: " + String(repeating: "v", count: 70), kind: .request, limits: limits)
        #expect(line.error == HTTPParseError(431, "a trailer line is longer than 64 bytes"))
        let count = HTTPStreamDriver(head + "0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", kind: .request, limits: limits)
        #expect(count.error == HTTPParseError(431, "more than 2 trailer fields"))
        let size = HTTPStreamDriver(head + "0\r\nA: " + String(repeating: "v", count: 50) + "\r\nB: " + String(repeating: "v", count: 50) + "\r\n\r\n",
                                    kind: .request, limits: limits)
        #expect(size.error == HTTPParseError(431, "trailer section is larger than 100 bytes"))
    }
}
