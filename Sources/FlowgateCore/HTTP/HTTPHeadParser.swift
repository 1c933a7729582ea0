// Incremental, strict parser for one HTTP/1.1 request or response head, for
// the data plane's HTTP pools. The caller keeps the bytes (its read buffer) and
// calls `parse` each time more arrive; bytes already scanned are not scanned
// again, and a bare LF, a bare CR or an over-long line is refused as soon as it
// arrives. Once the blank line is in, the head is parsed in place into
// `head` (offsets, no strings) and its body framing decided.
//
// Refusals: a request gets the status to answer (400, 414, 431, 501, 505); a
// response gets 502 (the client is told the backend failed). The rules close
// what request smuggling goes through (RFC 9112 §6.1, §6.3, §11.2): see
// HTTPHeadFields.swift for the framing fields.

public struct HTTPHeadParser: Sendable {
    public let kind: HTTPMessageKind
    public let limits: HTTPLimits
    /// For a response: the method of the request it answers (HEAD and CONNECT change its framing).
    public var respondingTo: HTTPMethod = .get
    /// The head parsed by the last `parse` that returned true.
    public private(set) var head: HTTPHead

    private var scanned = 0
    private var lineStart = 0
    private var startLine: Int?
    /// A byte other than CR has arrived on the line that will be the start line.
    private var startLineBegun = false
    /// Offsets of the CR ending each line of the head so far (the start line first).
    private var lineEnds: [Int] = []

    public init(kind: HTTPMessageKind, limits: HTTPLimits = HTTPLimits()) {
        self.kind = kind
        self.limits = limits
        head = HTTPHead(kind: kind)
        lineEnds.reserveCapacity(32)
    }

    /// Forget the scan state: the next `parse` starts a new message at the buffer's first byte.
    public mutating func reset() {
        scanned = 0; lineStart = 0; startLine = nil; startLineBegun = false
        lineEnds.removeAll(keepingCapacity: true)
    }

    /// True once a byte other than the empty lines before a start line has arrived.
    public var hasStarted: Bool { startLine != nil || startLineBegun }

    /// `buffer` holds the message from its first byte, and everything received
    /// since (it may extend past the head). Returns true when the head is
    /// complete (`head` then describes it; `head.length` bytes belong to it),
    /// false when more bytes are needed.
    public mutating func parse(_ buffer: UnsafeRawBufferPointer) throws(HTTPParseError) -> Bool {
        guard let end = try scan(buffer) else { return false }
        defer { reset() }
        head.reset()
        head.start = startLine ?? 0
        head.length = end
        try parseHead(buffer, start: head.start, end: end - 2)
        return true
    }

    func error(_ status: Int, _ message: String) -> HTTPParseError { kind.error(status, message) }

    /// The offset just past the blank line, or nil when it has not arrived.
    ///
    /// The outcome is the same however the bytes are split into reads: it is
    /// defined byte by byte (the byte at index `maxHeadBytes` makes the head too
    /// large; a byte other than LF more than `maxLineBytes` into a line makes the
    /// line too long; then bare LF and bare CR), and the fast path only skips
    /// bytes above 13, eight at a time, then checks which limit the skipped run
    /// crossed first.
    private mutating func scan(_ buffer: UnsafeRawBufferPointer) throws(HTTPParseError) -> Int? {
        var i = scanned
        let n = buffer.count
        let maxHead = limits.maxHeadBytes, maxLine = limits.maxLineBytes
        while true {
            let from = i
            while i + 8 <= n {
                let x = buffer.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                if (x &- 0x0E0E_0E0E_0E0E_0E0E) & ~x & 0x8080_8080_8080_8080 != 0 { break }
                i += 8
            }
            while i < n && buffer[i] > 13 { i += 1 }
            // Bytes from..<i are ordinary: did one of them cross a limit?
            let headAt = max(from, maxHead), lineAt = max(from, lineStart + maxLine + 1)
            if headAt < i || lineAt < i { throw headAt <= lineAt ? headTooLarge() : lineTooLong() }
            guard i < n else { break }
            let b = buffer[i]
            if i >= maxHead { throw headTooLarge() }
            if b == 10 { throw error(400, "bare LF in the \(kind.noun) head: lines end with CRLF") }
            if i - lineStart > maxLine { throw lineTooLong() }
            if b != 13 {
                i += 1 // another control byte: refused, with its field's name, once the head is complete
                continue
            }
            guard i + 1 < n else { break } // wait for the byte after CR
            if i + 1 >= maxHead { throw headTooLarge() }
            guard buffer[i + 1] == 10 else { throw error(400, "bare CR in the \(kind.noun) head") }
            if i == lineStart {
                if startLine == nil {
                    lineStart = i + 2 // an empty line before the start line
                    i += 2
                    continue
                }
                scanned = i + 2
                return i + 2
            }
            if startLine == nil { startLine = lineStart }
            lineEnds.append(i)
            lineStart = i + 2
            i += 2
        }
        if startLine == nil && lineStart < n && (buffer[lineStart] != 13 || n - lineStart > 1) { startLineBegun = true }
        scanned = i
        return nil
    }

    private func headTooLarge() -> HTTPParseError {
        error(431, "\(kind.noun) head is larger than \(limits.maxHeadBytes) bytes")
    }

    private func lineTooLong() -> HTTPParseError {
        startLine == nil
            ? error(kind == .request ? 414 : 431, "\(kind == .request ? "request" : "status") line is longer than \(limits.maxLineBytes) bytes")
            : error(431, "a header line is longer than \(limits.maxLineBytes) bytes")
    }

    /// `start..<end`: the start line and field lines, CRLF-separated, without the final CRLF CRLF.
    private mutating func parseHead(_ buffer: UnsafeRawBufferPointer, start: Int, end: Int) throws(HTTPParseError) {
        let firstEnd = lineEnds[0]
        if kind == .request {
            try parseRequestLine(buffer, start..<firstEnd)
        } else {
            try parseStatusLine(buffer, start..<firstEnd)
        }
        if lineEnds.count - 1 > limits.maxHeaders {
            throw error(431, "more than \(limits.maxHeaders) header fields")
        }
        var fields = HTTPFieldState()
        var lineStart = firstEnd + 2
        for k in 1..<lineEnds.count {
            let e = lineEnds[k]
            let span = try parseField(buffer, lineStart..<e, trailer: false)
            head.fields.append(span)
            try fields.note(span, in: buffer, head: &head)
            lineStart = e + 2
        }
        try fields.decideFraming(&head, respondingTo: respondingTo)
    }

    private mutating func parseRequestLine(_ buffer: UnsafeRawBufferPointer, _ line: Range<Int>) throws(HTTPParseError) {
        var sp1 = line.lowerBound
        while sp1 < line.upperBound && buffer[sp1] != 32 { sp1 += 1 }
        var sp2 = sp1 + 1
        while sp2 < line.upperBound && buffer[sp2] != 32 { sp2 += 1 }
        if sp1 > line.lowerBound && sp2 >= line.upperBound && sp1 + 1 < line.upperBound {
            throw error(400, "request line has no HTTP version (HTTP/0.9 is not supported)")
        }
        var sp3 = sp2 + 1
        while sp3 < line.upperBound && buffer[sp3] != 32 { sp3 += 1 }
        // A space at the very end is a malformed version; one inside splits the line a fourth way.
        guard sp1 > line.lowerBound, sp2 < line.upperBound, sp2 > sp1 + 1, sp3 >= line.upperBound - 1 else {
            throw error(400, "request line is not `METHOD target HTTP/1.x` with single spaces")
        }
        let methodBytes = UnsafeRawBufferPointer(rebasing: buffer[line.lowerBound..<sp1])
        guard methodBytes.allSatisfy(HTTPBytes.isToken) else { throw error(400, "method is not a token") }
        guard let method = HTTPMethod.lookup(methodBytes) else {
            throw error(501, "method \(String(decoding: methodBytes, as: UTF8.self)) is not implemented")
        }
        if method == .connect { throw error(501, "CONNECT is not supported: an HTTP pool does not open tunnels") }
        let target = (sp1 + 1)..<sp2
        for i in target where !HTTPBytes.isTarget(buffer[i]) {
            throw error(400, "request target has a control, space or non-ASCII byte")
        }
        try checkTargetForm(buffer, target, method: method)
        head.method = method
        head.target = target
        head.minorVersion = try version(buffer, (sp2 + 1)..<line.upperBound)
    }

    /// Origin form (`/path?query`), absolute form (`http://host/path`, RFC 9112 §3.2.2:
    /// a server must accept it), or `*` for OPTIONS.
    private func checkTargetForm(_ buffer: UnsafeRawBufferPointer, _ target: Range<Int>, method: HTTPMethod) throws(HTTPParseError) {
        let first = buffer[target.lowerBound]
        if first == UInt8(ascii: "/") { return }
        if target.count == 1 && first == UInt8(ascii: "*") {
            guard method == .options else { throw error(400, "request target * is only for OPTIONS") }
            return
        }
        var colon = target.lowerBound
        while colon < target.upperBound && buffer[colon] != UInt8(ascii: ":") { colon += 1 }
        let scheme = UnsafeRawBufferPointer(rebasing: buffer[target.lowerBound..<colon])
        let isHTTP = HTTPBytes.equalsLowercase(scheme, "http") || HTTPBytes.equalsLowercase(scheme, "https")
        guard isHTTP, colon + 3 < target.upperBound, buffer[colon + 1] == 0x2F, buffer[colon + 2] == 0x2F,
              HTTPBytes.isAuthority(buffer[colon + 3]) else {
            throw error(400, "request target is neither origin form (/path) nor absolute form (http://host/path)")
        }
        // RFC 3986 §3.2: the authority ends at the first /, ? or #.
        var i = colon + 3
        while i < target.upperBound {
            let b = buffer[i]
            if b == 0x2F || b == 0x3F || b == 0x23 { break }
            guard HTTPBytes.isAuthority(b) else { throw error(400, "request target's authority has a character RFC 3986 does not allow there") }
            i += 1
        }
    }

    private mutating func parseStatusLine(_ buffer: UnsafeRawBufferPointer, _ line: Range<Int>) throws(HTTPParseError) {
        let l = line.lowerBound
        guard line.count >= 12, buffer[l + 8] == 32 else {
            throw error(502, "status line is not `HTTP/1.x NNN reason`")
        }
        head.minorVersion = try version(buffer, l..<(l + 8))
        var status = 0
        for i in (l + 9)..<(l + 12) {
            let d = buffer[i]
            guard d >= 0x30 && d <= 0x39 else { throw error(502, "status code is not three digits") }
            status = status * 10 + Int(d - 0x30)
        }
        guard status >= 100 && status <= 599 else { throw error(502, "status code \(status) is outside 100...599") }
        head.status = status
        if line.count > 12 {
            guard buffer[l + 12] == 32 else { throw error(502, "status code is not three digits") }
            for i in (l + 13)..<line.upperBound where !HTTPBytes.isFieldValue(buffer[i]) {
                throw error(502, "reason phrase has a control character")
            }
            head.reason = (l + 13)..<line.upperBound
        } else {
            head.reason = line.upperBound..<line.upperBound
        }
    }

    private func version(_ buffer: UnsafeRawBufferPointer, _ r: Range<Int>) throws(HTTPParseError) -> Int {
        let v = UnsafeRawBufferPointer(rebasing: buffer[r])
        if v.count == 8 {
            // "HTTP/1.0" and "HTTP/1.1" as one little-endian word each.
            let word = v.loadUnaligned(as: UInt64.self)
            if word == 0x302E_312F_5054_5448 { return 0 }
            if word == 0x312E_312F_5054_5448 { return 1 }
        }
        let isDigit = { (b: UInt8) in b >= 0x30 && b <= 0x39 }
        if v.count == 8, v.prefix(5).elementsEqual("HTTP/".utf8), isDigit(v[5]), v[6] == 0x2E, isDigit(v[7]) {
            throw error(505, "HTTP version \(String(decoding: v.suffix(3), as: UTF8.self)) is not supported: only 1.0 and 1.1")
        }
        throw error(400, "\(kind == .request ? "request line does not end" : "status line does not start") with HTTP/1.0 or HTTP/1.1")
    }

    /// One field line `name: value` (RFC 9112 §5). Also used for trailer lines.
    func parseField(_ buffer: UnsafeRawBufferPointer, _ line: Range<Int>, trailer: Bool) throws(HTTPParseError) -> HTTPFieldSpan {
        let what = trailer ? "trailer" : "header"
        guard !line.isEmpty else { throw error(400, "empty \(what) line") }
        let first = buffer[line.lowerBound]
        if first == 32 || first == 9 { throw error(400, "obsolete line folding (a \(what) line starting with whitespace)") }
        var colon = line.lowerBound
        while colon < line.upperBound && buffer[colon] != 0x3A {
            let b = buffer[colon]
            if !HTTPBytes.isToken(b) {
                if b == 32 || b == 9 {
                    var j = colon
                    while j < line.upperBound && (buffer[j] == 32 || buffer[j] == 9) { j += 1 }
                    if j < line.upperBound && buffer[j] == 0x3A { throw error(400, "whitespace between a \(what) name and ':'") }
                }
                throw error(400, "\(what) name has a character that is not a token character")
            }
            colon += 1
        }
        guard colon < line.upperBound else { throw error(400, "\(what) line without ':'") }
        guard colon > line.lowerBound else { throw error(400, "\(what) line with an empty name") }
        var vs = colon + 1, ve = line.upperBound
        while vs < ve && (buffer[vs] == 32 || buffer[vs] == 9) { vs += 1 }
        while ve > vs && (buffer[ve - 1] == 32 || buffer[ve - 1] == 9) { ve -= 1 }
        if !HTTPBytes.allFieldValue(UnsafeRawBufferPointer(rebasing: buffer[vs..<ve])) {
            throw error(400, "\(what) \(String(decoding: UnsafeRawBufferPointer(rebasing: buffer[line.lowerBound..<colon]), as: UTF8.self)) has a control character in its value")
        }
        return HTTPFieldSpan(name: line.lowerBound..<colon, value: vs..<ve)
    }
}
