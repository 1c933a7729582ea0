import FlowgateCore

/// The heads an HTTP pool forwards: the request gets X-Forwarded-For
/// (client address appended to any list the client sent), X-Forwarded-Proto
/// and X-Forwarded-Port (replacing any the client sent, which it could forge);
/// a response may get Flowgate's persistence Set-Cookie. Every other line is
/// copied byte for byte.
enum HTTPHeadRewrite {
    static func request(_ head: HTTPHead, _ buffer: UnsafeRawBufferPointer, client: String, port: UInt16) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(head.length + 96)
        var forwardedFor: [UInt8] = []
        let bodyEnd = head.length - 2
        let firstField = head.fields.first?.name.lowerBound ?? bodyEnd
        out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[head.start..<firstField]))
        for (k, f) in head.fields.enumerated() {
            let lineEnd = k + 1 < head.fields.count ? head.fields[k + 1].name.lowerBound : bodyEnd
            let name = UnsafeRawBufferPointer(rebasing: buffer[f.name])
            if name.count == 15 && HTTPBytes.equalsLowercase(name, "x-forwarded-for") {
                if !forwardedFor.isEmpty { forwardedFor += Array(", ".utf8) }
                forwardedFor.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[f.value]))
                continue
            }
            if (name.count == 17 && HTTPBytes.equalsLowercase(name, "x-forwarded-proto"))
                || (name.count == 16 && HTTPBytes.equalsLowercase(name, "x-forwarded-port")) { continue }
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[f.name.lowerBound..<lineEnd]))
        }
        out += Array("X-Forwarded-For: ".utf8)
        if !forwardedFor.isEmpty { out += forwardedFor; out += Array(", ".utf8) }
        out += Array("\(client)\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Port: \(port)\r\n\r\n".utf8)
        return out
    }

    /// The response head, with `setCookie` (a full field value) added when given.
    static func response(_ head: HTTPHead, _ buffer: UnsafeRawBufferPointer, setCookie: String?) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(head.length + 96)
        out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[head.start..<(head.length - 2)]))
        if let setCookie { out += Array("Set-Cookie: \(setCookie)\r\n".utf8) }
        out += [13, 10]
        return out
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
