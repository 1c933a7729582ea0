// An incremental, strict HTTP/1.1 request parser (RFC 9112) for the control
// server: bytes go in as they arrive, whole requests come out in order, so
// pipelined requests are answered one by one. Pure: no sockets, no clock;
// the server owns deadlines. Strictness is deliberate: the control API's
// clients (botocore, huaweicloudsdkcore, flowgatectl, curl) all send clean
// HTTP/1.1, so anything ambiguous (both Content-Length and Transfer-Encoding,
// bare LF, obs-fold, whitespace before ':') is refused rather than guessed at.
// Every refusal carries the status to answer and a message naming the rule.

public struct HTTPLimits: Sendable, Equatable {
    /// Request line and each header line.
    public var maxLineBytes = 8 << 10
    /// The whole head: request line, headers, the blank line.
    public var maxHeadBytes = 64 << 10
    public var maxHeaders = 100
    public var maxBodyBytes = 1 << 20
    public init() {}
}

public struct HTTPRequestHead: Sendable, Equatable {
    public var method: String
    /// Request target as sent (origin form: path and query, still percent-encoded).
    public var target: String
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    public var minorVersion: Int
    /// Names as sent; values with surrounding whitespace removed.
    public var headers: [HTTPField]

    public func values(_ name: String) -> [String] {
        headers.filter { $0.name.caseInsensitiveEquals(name) }.map(\.value)
    }
    public func value(_ name: String) -> String? { values(name).last }

    /// Persistent connection per RFC 9112 §9.3: 1.1 unless `close`, 1.0 only with `keep-alive`.
    public var keepAlive: Bool {
        let tokens = values("Connection").flatMap { $0.split(separator: ",").map { $0.trimmingHTTPSpace().lowercased() } }
        if tokens.contains("close") { return false }
        return minorVersion >= 1 || tokens.contains("keep-alive")
    }

    public var expectsContinue: Bool { value("Expect")?.lowercased() == "100-continue" }
}

public struct HTTPField: Sendable, Equatable {
    public var name: String
    public var value: String
    public init(name: String, value: String) { self.name = name; self.value = value }
}

public struct HTTPRequest: Sendable, Equatable {
    public var head: HTTPRequestHead
    public var body: [UInt8]
}

public struct HTTPParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The status to answer with before closing the connection.
    public var status: Int
    public var message: String
    public init(_ status: Int, _ message: String) { self.status = status; self.message = message }
    public var description: String { "\(status): \(message)" }
}

/// Feed bytes with `append`, take requests with `next()` until it returns nil.
/// After an error the parser stays failed: the connection must be closed,
/// because the framing of whatever follows is unknown.
public struct HTTPRequestParser: Sendable {
    public let limits: HTTPLimits
    private var buffer: [UInt8] = []
    /// Bytes of `buffer` already handed out as requests.
    private var consumed = 0
    /// Where the search for the end of the head resumes (dribbled bytes are not rescanned).
    private var scanFrom = 0
    /// Start of the head line being scanned.
    private var lineStart = 0
    private var pending: PendingBody?
    private var failed: HTTPParseError?

    private struct PendingBody {
        var head: HTTPRequestHead
        var framing: Framing
        var body: [UInt8] = []
    }

    private enum Framing {
        case length(Int)
        case chunked(ChunkState)
    }

    private enum ChunkState {
        case size
        case data(remaining: Int)
        case dataEnd
        case trailers
    }

    public init(limits: HTTPLimits = HTTPLimits()) { self.limits = limits }

    /// Bytes received but not yet part of a returned request.
    public var bufferedBytes: Int { buffer.count - consumed }
    /// True while a request has begun but is not complete (the server's request deadline runs).
    public var isMidRequest: Bool { pending != nil || bufferedBytes > 0 }
    /// The head of the request whose body is still arriving, if any (for `Expect: 100-continue`).
    public var headAwaitingBody: HTTPRequestHead? { pending?.head }

    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard failed == nil else { return }
        if consumed > 0 && consumed == buffer.count {
            buffer.removeAll(keepingCapacity: true); consumed = 0; scanFrom = 0; lineStart = 0
        }
        buffer.append(contentsOf: bytes)
    }

    public mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    /// The next complete request, nil when more bytes are needed, or the error
    /// that ends the connection.
    public mutating func next() -> Result<HTTPRequest, HTTPParseError>? {
        if let failed { return .failure(failed) }
        do throws(HTTPParseError) {
            guard let request = try step() else { return nil }
            compact()
            return .success(request)
        } catch {
            failed = error
            return .failure(error)
        }
    }

    private mutating func compact() {
        // Keep the buffer from growing with pipelined traffic: drop what was handed out.
        if consumed > 0 && (consumed == buffer.count || consumed >= 16 << 10) {
            buffer.removeFirst(consumed)
            scanFrom = max(0, scanFrom - consumed)
            lineStart = max(0, lineStart - consumed)
            consumed = 0
        }
    }

    private mutating func step() throws(HTTPParseError) -> HTTPRequest? {
        if pending == nil {
            guard let head = try takeHead() else { return nil }
            let framing = try HTTPRequestParser.framing(of: head, limits: limits)
            pending = PendingBody(head: head, framing: framing)
        }
        guard var p = pending else { return nil }
        let done = try readBody(&p)
        pending = p
        guard done else { return nil }
        pending = nil
        scanFrom = consumed
        lineStart = consumed
        return HTTPRequest(head: p.head, body: p.body)
    }

    // MARK: head

    private mutating func takeHead() throws(HTTPParseError) -> HTTPRequestHead? {
        // RFC 9112 §2.2: empty lines before the request line are skipped.
        // One pass over bytes not seen before (a dribbling client costs O(n), not O(n^2)):
        // find the blank line, and refuse a bare LF or an over-long line as soon as it shows.
        var i = max(scanFrom, consumed)
        var end: Int?
        while i < buffer.count {
            if buffer[i] == 10 {
                guard i > consumed, buffer[i - 1] == 13 else { throw HTTPParseError(400, "bare LF in the request head: lines end with CRLF") }
                if i - 1 == lineStart {
                    if lineStart == consumed {
                        // An empty line before the request line: skip it.
                        consumed = i + 1; lineStart = consumed; i += 1; continue
                    }
                    end = lineStart; break
                }
                lineStart = i + 1
            } else if i - lineStart >= limits.maxLineBytes + 1 {
                throw HTTPParseError(lineStart == consumed ? 414 : 431, lineStart == consumed
                    ? "request line is longer than \(limits.maxLineBytes) bytes"
                    : "a header line is longer than \(limits.maxLineBytes) bytes")
            }
            i += 1
            if i - consumed > limits.maxHeadBytes {
                throw HTTPParseError(431, "request head is larger than \(limits.maxHeadBytes) bytes")
            }
        }
        guard let end else {
            scanFrom = buffer.count
            return nil
        }
        // `end` is the blank line's CR; the head is everything before it.
        let head = try HTTPRequestParser.parseHead(buffer[consumed..<max(consumed, end - 2)], limits: limits)
        consumed = end + 2
        scanFrom = consumed
        lineStart = consumed
        return head
    }

    static func parseHead(_ bytes: ArraySlice<UInt8>, limits: HTTPLimits) throws(HTTPParseError) -> HTTPRequestHead {
        var lines: [ArraySlice<UInt8>] = []
        var start = bytes.startIndex
        var i = bytes.startIndex
        while i < bytes.endIndex {
            let b = bytes[i]
            if b == 13 {
                guard i + 1 < bytes.endIndex, bytes[i + 1] == 10 else { throw HTTPParseError(400, "bare CR in the request head") }
                lines.append(bytes[start..<i]); i += 2; start = i; continue
            }
            if b == 10 { throw HTTPParseError(400, "bare LF in the request head: lines end with CRLF") }
            if b == 0 { throw HTTPParseError(400, "NUL byte in the request head") }
            i += 1
        }
        lines.append(bytes[start..<bytes.endIndex])
        for line in lines where line.count > limits.maxLineBytes {
            throw HTTPParseError(line.startIndex == bytes.startIndex ? 414 : 431, line.startIndex == bytes.startIndex
                ? "request line is longer than \(limits.maxLineBytes) bytes"
                : "a header line is longer than \(limits.maxLineBytes) bytes")
        }
        let (method, target, parsedMinor) = try parseRequestLine(lines[0])
        let fieldLines = lines.dropFirst()
        guard fieldLines.count <= limits.maxHeaders else {
            throw HTTPParseError(431, "more than \(limits.maxHeaders) header fields")
        }
        var headers: [HTTPField] = []
        headers.reserveCapacity(fieldLines.count)
        for line in fieldLines { headers.append(try parseField(line)) }
        if parsedMinor >= 1 && !headers.contains(where: { $0.name.caseInsensitiveEquals("Host") }) {
            throw HTTPParseError(400, "HTTP/1.1 request without a Host header")
        }
        if headers.filter({ $0.name.caseInsensitiveEquals("Host") }).count > 1 {
            throw HTTPParseError(400, "more than one Host header")
        }
        return HTTPRequestHead(method: method, target: target, minorVersion: parsedMinor, headers: headers)
    }

    static func parseRequestLine(_ line: ArraySlice<UInt8>) throws(HTTPParseError) -> (String, String, Int) {
        let parts = line.split(separator: 32, omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty else {
            throw HTTPParseError(400, "request line is not `METHOD target HTTP/1.x` with single spaces")
        }
        guard parts[0].allSatisfy(HTTPRequestParser.isTokenByte) else { throw HTTPParseError(400, "method is not a token") }
        guard parts[1].allSatisfy({ $0 > 32 && $0 < 127 }) else {
            throw HTTPParseError(400, "request target has a control, space or non-ASCII byte")
        }
        guard parts[1].first == UInt8(ascii: "/") || (parts[1].elementsEqual("*".utf8)) else {
            throw HTTPParseError(400, "request target must be in origin form (start with /)")
        }
        let version = Array(parts[2])
        guard version.count == 8, version[0..<7].elementsEqual("HTTP/1.".utf8) else {
            if version.count == 8, version[0..<5].elementsEqual("HTTP/".utf8), version[6] == UInt8(ascii: ".") {
                throw HTTPParseError(505, "HTTP version \(String(decoding: version[5...], as: UTF8.self)) is not supported; use HTTP/1.1")
            }
            throw HTTPParseError(400, "request line does not end with HTTP/1.0 or HTTP/1.1")
        }
        guard version[7] == UInt8(ascii: "0") || version[7] == UInt8(ascii: "1") else {
            throw HTTPParseError(505, "HTTP version 1.\(Character(UnicodeScalar(version[7]))) is not supported; use HTTP/1.1")
        }
        return (String(decoding: parts[0], as: UTF8.self), String(decoding: parts[1], as: UTF8.self), Int(version[7] - 48))
    }

    static func parseField(_ line: ArraySlice<UInt8>) throws(HTTPParseError) -> HTTPField {
        guard let first = line.first else { throw HTTPParseError(400, "empty header line") }
        if first == 32 || first == 9 { throw HTTPParseError(400, "obsolete line folding (a header line starting with whitespace)") }
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { throw HTTPParseError(400, "header line without ':'") }
        let name = line[line.startIndex..<colon]
        guard !name.isEmpty else { throw HTTPParseError(400, "header line with an empty name") }
        if let last = name.last, last == 32 || last == 9 { throw HTTPParseError(400, "whitespace between a header name and ':'") }
        guard name.allSatisfy(HTTPRequestParser.isTokenByte) else { throw HTTPParseError(400, "header name has a character that is not a token character") }
        var value = line[(colon + 1)...]
        while let f = value.first, f == 32 || f == 9 { value = value.dropFirst() }
        while let l = value.last, l == 32 || l == 9 { value = value.dropLast() }
        guard value.allSatisfy({ $0 == 9 || ($0 >= 32 && $0 != 127) }) else {
            throw HTTPParseError(400, "header \(String(decoding: name, as: UTF8.self)) has a control character in its value")
        }
        return HTTPField(name: String(decoding: name, as: UTF8.self), value: String(decoding: value, as: UTF8.self))
    }

    /// tchar of RFC 9110 §5.6.2.
    static func isTokenByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): return true
        default: return "!#$%&'*+-.^_`|~".utf8.contains(b)
        }
    }

    // MARK: body framing (RFC 9112 §6)

    private static func framing(of head: HTTPRequestHead, limits: HTTPLimits) throws(HTTPParseError) -> Framing {
        let te = head.values("Transfer-Encoding")
        let cl = head.values("Content-Length")
        if !te.isEmpty && !cl.isEmpty {
            throw HTTPParseError(400, "both Content-Length and Transfer-Encoding: refused (request smuggling)")
        }
        if !te.isEmpty {
            let codings = te.flatMap { $0.split(separator: ",").map { $0.trimmingHTTPSpace().lowercased() } }
            guard codings == ["chunked"] else {
                throw HTTPParseError(codings.last == "chunked" ? 501 : 400,
                                     "Transfer-Encoding \(te.joined(separator: ", ")) is not supported: only chunked")
            }
            if head.minorVersion == 0 { throw HTTPParseError(400, "Transfer-Encoding in an HTTP/1.0 request") }
            return .chunked(.size)
        }
        guard !cl.isEmpty else { return .length(0) }
        let values = cl.flatMap { $0.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingHTTPSpace() } }
        guard let first = values.first, values.allSatisfy({ $0 == first }) else {
            throw HTTPParseError(400, "conflicting Content-Length values")
        }
        guard values.count == 1 else { throw HTTPParseError(400, "repeated Content-Length") }
        guard !first.isEmpty, first.count <= 10, first.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let n = Int(first) else {
            throw HTTPParseError(400, "Content-Length \(first) is not a decimal number of bytes")
        }
        guard n <= limits.maxBodyBytes else {
            throw HTTPParseError(413, "request body of \(n) bytes is larger than \(limits.maxBodyBytes) bytes")
        }
        return .length(n)
    }

    private mutating func readBody(_ p: inout PendingBody) throws(HTTPParseError) -> Bool {
        switch p.framing {
        case let .length(n):
            let need = n - p.body.count
            let take = min(need, buffer.count - consumed)
            if take > 0 {
                p.body.append(contentsOf: buffer[consumed..<(consumed + take)])
                consumed += take
            }
            return p.body.count == n
        case let .chunked(state):
            var s = state
            defer { p.framing = .chunked(s) }
            while true {
                switch s {
                case .size:
                    guard let line = takeLine() else {
                        if buffer.count - consumed > 1024 { throw HTTPParseError(400, "chunk-size line is longer than 1024 bytes") }
                        return false
                    }
                    let size = try HTTPRequestParser.chunkSize(line)
                    guard p.body.count + size <= limits.maxBodyBytes else {
                        throw HTTPParseError(413, "chunked request body is larger than \(limits.maxBodyBytes) bytes")
                    }
                    s = size == 0 ? .trailers : .data(remaining: size)
                case let .data(remaining):
                    let take = min(remaining, buffer.count - consumed)
                    guard take > 0 else { return false }
                    p.body.append(contentsOf: buffer[consumed..<(consumed + take)])
                    consumed += take
                    s = take == remaining ? .dataEnd : .data(remaining: remaining - take)
                case .dataEnd:
                    guard buffer.count - consumed >= 2 else { return false }
                    guard buffer[consumed] == 13 && buffer[consumed + 1] == 10 else { throw HTTPParseError(400, "chunk data is not followed by CRLF") }
                    consumed += 2
                    s = .size
                case .trailers:
                    guard let line = takeLine() else {
                        if buffer.count - consumed > limits.maxLineBytes { throw HTTPParseError(431, "a trailer line is longer than \(limits.maxLineBytes) bytes") }
                        return false
                    }
                    if line.isEmpty { scanFrom = consumed; return true }
                    _ = try HTTPRequestParser.parseField(line) // trailers are checked, then dropped
                }
            }
        }
    }

    /// One CRLF-terminated line from the buffer, without the CRLF.
    private mutating func takeLine() -> ArraySlice<UInt8>? {
        var i = consumed
        while i + 1 < buffer.count {
            if buffer[i] == 13 && buffer[i + 1] == 10 {
                let line = buffer[consumed..<i]
                consumed = i + 2
                return line
            }
            i += 1
        }
        return nil
    }

    static func chunkSize(_ line: ArraySlice<UInt8>) throws(HTTPParseError) -> Int {
        // chunk-size [ chunk-ext ]: extensions are allowed and ignored.
        var digits = line
        if let semi = line.firstIndex(of: UInt8(ascii: ";")) { digits = line[line.startIndex..<semi] }
        while let l = digits.last, l == 32 || l == 9 { digits = digits.dropLast() }
        guard !digits.isEmpty else { throw HTTPParseError(400, "empty chunk size") }
        guard digits.count <= 8 else { throw HTTPParseError(400, "chunk size has more than 8 hex digits") }
        var n = 0
        for b in digits {
            let v: Int
            switch b {
            case 48...57: v = Int(b - 48)
            case 65...70: v = Int(b - 55)
            case 97...102: v = Int(b - 87)
            default: throw HTTPParseError(400, "chunk size is not hexadecimal")
            }
            n = n * 16 + v
        }
        return n
    }
}

extension String {
    func caseInsensitiveEquals(_ other: String) -> Bool {
        let a = utf8, b = other.utf8
        guard a.count == b.count else { return false }
        return zip(a, b).allSatisfy { x, y in x == y || (x | 0x20 == y | 0x20 && (x | 0x20) >= 97 && (x | 0x20) <= 122) }
    }
}

extension StringProtocol {
    func trimmingHTTPSpace() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}
