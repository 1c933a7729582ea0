// The fields that decide framing and connection handling, read while the head
// is parsed, and the body framing that follows from them (RFC 9112 §6.3).
// Everything that lets two parsers disagree about where a message ends is
// refused rather than resolved: both Content-Length and Transfer-Encoding, a
// repeated or list-valued Content-Length, chunked applied twice or not last,
// Transfer-Encoding in HTTP/1.0, and (requests) a missing or repeated Host.

struct HTTPFieldState {
    var hosts = 0
    var sawTransferEncoding = false
    var chunkedLast = false
    var chunkedCount = 0

    mutating func note(_ f: HTTPFieldSpan, in buffer: UnsafeRawBufferPointer, head: inout HTTPHead) throws(HTTPParseError) {
        let kind = head.kind
        let name = UnsafeRawBufferPointer(rebasing: buffer[f.name])
        let value = UnsafeRawBufferPointer(rebasing: buffer[f.value])
        switch name.count {
        case 4 where HTTPBytes.equalsLowercase(name, "host"):
            hosts += 1
        case 6 where HTTPBytes.equalsLowercase(name, "expect"):
            head.expectsContinue = HTTPBytes.equalsLowercase(value, "100-continue")
        case 7 where HTTPBytes.equalsLowercase(name, "upgrade"):
            head.hasUpgradeField = head.hasUpgradeField || !value.isEmpty
        case 10 where HTTPBytes.equalsLowercase(name, "connection"):
            forEachElement(value) { e in
                if HTTPBytes.equalsLowercase(e, "close") { head.connectionClose = true }
                else if HTTPBytes.equalsLowercase(e, "keep-alive") { head.connectionKeepAlive = true }
                else if HTTPBytes.equalsLowercase(e, "upgrade") { head.connectionUpgrade = true }
            }
        case 14 where HTTPBytes.equalsLowercase(name, "content-length"):
            guard head.contentLength == nil else { throw kind.error(400, "more than one Content-Length header") }
            guard !value.isEmpty, value.count <= 18, value.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                throw kind.error(400, "Content-Length \(String(decoding: value, as: UTF8.self).debugDescription) is not a decimal number of at most 18 digits")
            }
            head.contentLength = value.reduce(0) { $0 * 10 + Int($1 - 0x30) }
        case 17 where HTTPBytes.equalsLowercase(name, "transfer-encoding"):
            sawTransferEncoding = true
            // The value's span stops before trailing whitespace; the byte after it is CR when there is none.
            // llhttp does not see `chunked<HTAB>` as chunked: refuse what parsers read differently.
            let after = buffer[f.value.upperBound]
            if after == 32 || after == 9 { throw kind.error(400, "Transfer-Encoding with trailing whitespace") }
            var bad: String?
            forEachElement(value) { e in
                if e.isEmpty || !e.allSatisfy(HTTPBytes.isToken) {
                    bad = bad ?? "Transfer-Encoding has an empty element or one that is not a token"
                } else if HTTPBytes.equalsLowercase(e, "chunked") {
                    chunkedCount += 1
                    chunkedLast = true
                } else {
                    chunkedLast = false
                }
            }
            if let bad { throw kind.error(400, bad) }
        default:
            break
        }
    }

    func decideFraming(_ head: inout HTTPHead, respondingTo: HTTPMethod) throws(HTTPParseError) {
        let kind = head.kind
        let isRequest = head.kind == .request
        if isRequest {
            if hosts > 1 { throw kind.error(400, "more than one Host header") }
            if hosts == 0 && head.minorVersion >= 1 { throw kind.error(400, "HTTP/1.1 request without a Host header") }
        }
        if sawTransferEncoding {
            if head.contentLength != nil {
                throw kind.error(400, "both Content-Length and Transfer-Encoding: refused (\(isRequest ? "request smuggling" : "response splitting"))")
            }
            if head.minorVersion == 0 { throw kind.error(400, "Transfer-Encoding in an HTTP/1.0 \(head.kind.noun)") }
            if chunkedCount > 1 { throw kind.error(400, "Transfer-Encoding applies chunked more than once") }
            if !chunkedLast { throw kind.error(400, "Transfer-Encoding does not end with chunked: the body length is unknown") }
            head.chunked = true
        }
        if isRequest {
            head.framing = head.chunked ? .chunked : head.contentLength.map { .length($0) } ?? .none
            return
        }
        let status = head.status
        if status == 101 {
            guard head.hasUpgradeField && head.connectionUpgrade else {
                throw kind.error(502, "101 response without both Upgrade and Connection: upgrade")
            }
            head.framing = .switchingProtocols
        } else if status < 200 || status == 204 || status == 304 || respondingTo == .head {
            head.framing = .none
        } else if head.chunked {
            head.framing = .chunked
        } else if let n = head.contentLength {
            head.framing = .length(n)
        } else {
            head.framing = .untilClose
        }
    }

    /// Elements of a comma-separated list (RFC 9110 §5.6.1), each without surrounding whitespace.
    private func forEachElement(_ value: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> Void) {
        var s = 0
        while s <= value.count {
            var e = s
            while e < value.count && value[e] != 0x2C { e += 1 }
            var a = s, b = e
            while a < b && (value[a] == 32 || value[a] == 9) { a += 1 }
            while b > a && (value[b - 1] == 32 || value[b - 1] == 9) { b -= 1 }
            body(UnsafeRawBufferPointer(rebasing: value[a..<b]))
            s = e + 1
        }
    }
}
