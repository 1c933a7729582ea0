import Testing
import FlowgateCore
@testable import FlowgateDataPlane

/// The heads an HTTP pool forwards: X-Forwarded-* added (the client's
/// X-Forwarded-For kept and extended, its -Proto/-Port replaced), every
/// other byte unchanged; Flowgate's Set-Cookie added to a response head.
struct HTTPHeadRewriteTests {
    static func rewriteRequest(_ text: String) -> String {
        var p = HTTPHeadParser(kind: .request)
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { b in
            guard (try? p.parse(b)) == true else { return "unparsed" }
            return String(decoding: HTTPHeadRewrite.request(p.head, b, client: "192.0.2.7", port: 8080), as: UTF8.self)
        }
    }

    @Test func requestGetsForwardedFieldsAndKeepsEverythingElse() {
        #expect(Self.rewriteRequest("GET /a?b HTTP/1.1\r\nHost: example.test\r\nCookie: x=1\r\n\r\n")
                == "GET /a?b HTTP/1.1\r\nHost: example.test\r\nCookie: x=1\r\n"
                + "X-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Port: 8080\r\n\r\n")
    }

    @Test func clientForwardedForIsExtendedAndProtoPortReplaced() {
        let out = Self.rewriteRequest("POST / HTTP/1.1\r\nx-forwarded-for: 10.0.0.1\r\nHost: h\r\nX-Forwarded-Proto: https\r\n"
                                      + "X-Forwarded-For: 10.0.0.2\r\nX-Forwarded-Port: 443\r\nContent-Length: 0\r\n\r\n")
        #expect(out == "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n"
                + "X-Forwarded-For: 10.0.0.1, 10.0.0.2, 192.0.2.7\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Port: 8080\r\n\r\n")
    }

    @Test func emptyLinesBeforeTheRequestLineAreDropped() {
        #expect(Self.rewriteRequest("\r\nGET / HTTP/1.0\r\n\r\n")
                == "GET / HTTP/1.0\r\nX-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Port: 8080\r\n\r\n")
    }

    @Test func responseGetsTheCookieBeforeTheBlankLine() {
        var p = HTTPHeadParser(kind: .response)
        let bytes = Array("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".utf8)
        bytes.withUnsafeBytes { b in
            #expect((try? p.parse(b)) == true)
            #expect(String(decoding: HTTPHeadRewrite.response(p.head, b, setCookie: "FLOWGATE_SRV=00; Path=/"), as: UTF8.self)
                    == "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nSet-Cookie: FLOWGATE_SRV=00; Path=/\r\n\r\n")
            #expect(String(decoding: HTTPHeadRewrite.response(p.head, b, setCookie: nil), as: UTF8.self)
                    == "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n")
        }
    }

    static func rewrite(_ text: String, forwarded: Bool, keepMember: Bool) -> String {
        var p = HTTPHeadParser(kind: .request)
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { b in
            guard (try? p.parse(b)) == true else { return "unparsed" }
            let pool = HTTPBufferPool()
            var q = ByteQueue(pool: pool)
            defer { q.free() }
            HTTPHeadRewrite.request(p.head, b, forwarded: forwarded ? .init(client: "192.0.2.7", port: 80) : nil,
                                    keepMemberConnection: keepMember, into: &q)
            return String(decoding: q.bytes, as: UTF8.self)
        }
    }

    @Test func forwardedHeadersOffPassesTheHeadUnchanged() {
        let head = "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: https\r\n\r\n"
        #expect(Self.rewrite(head, forwarded: false, keepMember: false) == head)
    }

    @Test func theClientsConnectionCloseIsNotPassedToTheMember() {
        #expect(Self.rewrite("GET / HTTP/1.1\r\nConnection: close\r\nHost: h\r\n\r\n", forwarded: false, keepMember: true)
                == "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(Self.rewrite("GET / HTTP/1.1\r\nHost: h\r\nconnection: CLOSE\r\n\r\n", forwarded: true, keepMember: true)
                == "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Port: 80\r\n\r\n")
        // Other tokens, and HTTP/1.0 (which closes by default), pass unchanged.
        let listed = "GET / HTTP/1.1\r\nHost: h\r\nConnection: close, x-trace\r\n\r\n"
        #expect(Self.rewrite(listed, forwarded: false, keepMember: true) == listed)
        let old = "GET / HTTP/1.0\r\nConnection: close\r\n\r\n"
        #expect(Self.rewrite(old, forwarded: false, keepMember: true) == old)
    }

    @Test func aClosingResponseSaysConnectionClose() {
        var p = HTTPHeadParser(kind: .response)
        let bytes = Array("HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\nok".utf8)
        bytes.withUnsafeBytes { b in
            #expect((try? p.parse(b)) == true)
            let pool = HTTPBufferPool()
            var q = ByteQueue(pool: pool)
            defer { q.free() }
            HTTPHeadRewrite.response(p.head, b, setCookie: nil, close: true, into: &q)
            #expect(String(decoding: q.bytes, as: UTF8.self) == "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n")
        }
    }

    @Test func errorAnswersAreShortAndClose() {
        let text = String(decoding: HTTPHeadRewrite.answer(504, "no member answered"), as: UTF8.self)
        #expect(text == "HTTP/1.1 504 Gateway Timeout\r\nContent-Type: text/plain\r\nContent-Length: 40\r\nConnection: close\r\n\r\n"
                + "504 Gateway Timeout: no member answered\n")
    }
}
