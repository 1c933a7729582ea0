import FlowgateCore

/// The heads an HTTP pool forwards, written straight into the destination
/// queue (no intermediate array, no string): the request gets
/// X-Forwarded-For (client address appended to any list the client sent),
/// X-Forwarded-Proto and X-Forwarded-Port (replacing any the client sent,
/// which it could forge), unless the pool turned them off
/// (`x_forwarded_headers: false`); a response may get Flowgate's persistence
/// Set-Cookie line. Every other line is copied byte for byte.
enum HTTPHeadRewrite {
    /// What a connection adds to each request head: its client's address and
    /// the listener port, as text, made once per connection.
    struct Forwarded {
        let client: [UInt8]
        let port: [UInt8]
        init(client: String, port: UInt16) { self.client = Array(client.utf8); self.port = Array(String(port).utf8) }
    }

    ///
    /// `keepMemberConnection`: an HTTP/1.1 request's `Connection: close` is
    /// the client's wish for its own connection (Connection is hop-by-hop,
    /// RFC 9110 §7.6.1); it is dropped so the member connection stays open
    /// for the next client (HTTPUpstreamPool). Only a field whose whole value
    /// is `close` is dropped.
    static func request(_ head: HTTPHead, _ buffer: UnsafeRawBufferPointer, forwarded: Forwarded?,
                        keepMemberConnection: Bool = false, into out: inout ByteQueue) {
        let bodyEnd = head.length - 2
        let dropClose = keepMemberConnection && head.connectionClose && head.minorVersion == 1
        guard forwarded != nil || dropClose else {
            out.append(UnsafeRawBufferPointer(rebasing: buffer[head.start..<head.length]))
            return
        }
        // Runs of lines that pass unchanged are copied in one piece.
        var run = head.start
        var hasForwardedFor = false
        let fields = head.fields
        for k in fields.indices {
            let f = fields[k]
            var kind = forwarded == nil ? 0 : forwardedKind(f, buffer)
            if kind == 0 && dropClose && f.name.count == 10 && f.value.count == 5
                && HTTPBytes.equalsLowercase(UnsafeRawBufferPointer(rebasing: buffer[f.name]), "connection")
                && HTTPBytes.equalsLowercase(UnsafeRawBufferPointer(rebasing: buffer[f.value]), "close") {
                kind = 3
            }
            guard kind != 0 else { continue }
            if kind == 1 { hasForwardedFor = true }
            out.append(UnsafeRawBufferPointer(rebasing: buffer[run..<f.name.lowerBound]))
            run = k + 1 < fields.count ? fields[k + 1].name.lowerBound : bodyEnd
        }
        out.append(UnsafeRawBufferPointer(rebasing: buffer[run..<bodyEnd]))
        guard let forwarded else { out.append("\r\n"); return }
        out.append("X-Forwarded-For: ")
        if hasForwardedFor {
            for f in fields where forwardedKind(f, buffer) == 1 {
                out.append(UnsafeRawBufferPointer(rebasing: buffer[f.value]))
                out.append(", ")
            }
        }
        forwarded.client.withUnsafeBytes { out.append($0) }
        out.append("\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Port: ")
        forwarded.port.withUnsafeBytes { out.append($0) }
        out.append("\r\n\r\n")
    }

    /// 1: X-Forwarded-For, 2: X-Forwarded-Proto or -Port, 0: any other field.
    @inline(__always)
    private static func forwardedKind(_ f: HTTPFieldSpan, _ buffer: UnsafeRawBufferPointer) -> Int {
        let n = f.name.count
        guard n >= 15 && n <= 17 else { return 0 }
        let name = UnsafeRawBufferPointer(rebasing: buffer[f.name])
        switch n {
        case 15: return HTTPBytes.equalsLowercase(name, "x-forwarded-for") ? 1 : 0
        case 16: return HTTPBytes.equalsLowercase(name, "x-forwarded-port") ? 2 : 0
        default: return HTTPBytes.equalsLowercase(name, "x-forwarded-proto") ? 2 : 0
        }
    }

    /// The response head, with `setCookie` (a whole `Set-Cookie: ...\r\n` line) added when given.
    /// `close`: the client's connection closes after this response while the
    /// member's head does not say so: its `Connection` and `Keep-Alive`
    /// fields are replaced by `Connection: close` (RFC 9112 §9.6).
    static func response(_ head: HTTPHead, _ buffer: UnsafeRawBufferPointer, setCookie: UnsafeRawBufferPointer?,
                         close: Bool = false, into out: inout ByteQueue) {
        guard setCookie != nil || close else {
            out.append(UnsafeRawBufferPointer(rebasing: buffer[head.start..<head.length]))
            return
        }
        let bodyEnd = head.length - 2
        if close {
            var run = head.start
            let fields = head.fields
            for k in fields.indices {
                let f = fields[k]
                let name = UnsafeRawBufferPointer(rebasing: buffer[f.name])
                guard (f.name.count == 10 && HTTPBytes.equalsLowercase(name, "connection"))
                    || (f.name.count == 10 && HTTPBytes.equalsLowercase(name, "keep-alive")) else { continue }
                out.append(UnsafeRawBufferPointer(rebasing: buffer[run..<f.name.lowerBound]))
                run = k + 1 < fields.count ? fields[k + 1].name.lowerBound : bodyEnd
            }
            out.append(UnsafeRawBufferPointer(rebasing: buffer[run..<bodyEnd]))
            out.append("Connection: close\r\n")
        } else {
            out.append(UnsafeRawBufferPointer(rebasing: buffer[head.start..<bodyEnd]))
        }
        if let setCookie { out.append(setCookie) }
        out.append("\r\n")
    }

    /// The rewritten request head as bytes (tests).
    static func request(_ head: HTTPHead, _ buffer: UnsafeRawBufferPointer, client: String?, port: UInt16) -> [UInt8] {
        let pool = HTTPBufferPool()
        var q = ByteQueue(pool: pool)
        request(head, buffer, forwarded: client.map { Forwarded(client: $0, port: port) }, into: &q)
        defer { q.free() }
        return Array(q.bytes)
    }

    /// The rewritten response head as bytes (tests); `setCookie` is a field value.
    static func response(_ head: HTTPHead, _ buffer: UnsafeRawBufferPointer, setCookie: String?) -> [UInt8] {
        let pool = HTTPBufferPool()
        var q = ByteQueue(pool: pool)
        let line = setCookie.map { Array("Set-Cookie: \($0)\r\n".utf8) }
        if let line { line.withUnsafeBytes { response(head, buffer, setCookie: $0, into: &q) } } else {
            response(head, buffer, setCookie: nil, into: &q)
        }
        defer { q.free() }
        return Array(q.bytes)
    }

    /// A short answer Flowgate gives itself (errors); the connection closes after it.
    static func answer(_ status: Int, _ message: String) -> [UInt8] {
        let body = "\(status) \(reason(status)): \(message)\n"
        return Array(("HTTP/1.1 \(status) \(reason(status))\r\nContent-Type: text/plain\r\n"
            + "Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n" + body).utf8)
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 502: return "Bad Gateway"
        case 504: return "Gateway Timeout"
        default: return HTTPResponseText.reason(status)
        }
    }
}
