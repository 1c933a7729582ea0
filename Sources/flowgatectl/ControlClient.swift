// A tiny HTTP/1.1 client for the control API over the Unix socket (default)
// or TCP (`--endpoint`). One request per connection (`Connection: close`),
// which is all a command line needs.
#if canImport(Glibc)
import Glibc
#endif
import FlowgateCore

struct ClientError: Error, CustomStringConvertible {
    var description: String
}

struct HTTPReply {
    var status: Int
    var headers: [(String, String)]
    var body: [UInt8]
    func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
}

enum Target {
    case unix(String)
    case tcp(host: String, port: Int)

    var hostHeader: String {
        switch self {
        case .unix: return "localhost"
        case let .tcp(host, port): return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        }
    }

    /// `http://host:port` (path ignored).
    static func parse(endpoint: String) throws -> Target {
        var rest = Substring(endpoint)
        guard rest.hasPrefix("http://") else { throw ClientError(description: "--endpoint \(endpoint): only http://host:port is supported") }
        rest = rest.dropFirst(7)
        if let slash = rest.firstIndex(of: "/") { rest = rest[..<slash] }
        if rest.hasPrefix("["), let close = rest.firstIndex(of: "]") {
            let host = String(rest[rest.index(after: rest.startIndex)..<close])
            let portText = rest[rest.index(after: close)...].dropFirst()
            return .tcp(host: host, port: Int(portText) ?? 80)
        }
        if let colon = rest.lastIndex(of: ":") {
            guard let port = Int(rest[rest.index(after: colon)...]) else { throw ClientError(description: "--endpoint \(endpoint): bad port") }
            return .tcp(host: String(rest[..<colon]), port: port)
        }
        return .tcp(host: String(rest), port: 80)
    }
}

enum ControlClient {
    static func exchange(_ target: Target, method: String, path: String, headers: [(String, String)], body: [UInt8]) throws -> HTTPReply {
        let fd = try connect(target)
        defer { close(fd) }
        var head = "\(method) \(path) HTTP/1.1\r\nHost: \(target.hostHeader)\r\nConnection: close\r\nContent-Length: \(body.count)\r\n"
        for (k, v) in headers { head += "\(k): \(v)\r\n" }
        head += "\r\n"
        try writeAll(fd, Array(head.utf8) + body)
        var response: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { Glibc.recv(fd, $0.baseAddress, 65536, 0) }
            if n < 0 { if errno == EINTR { continue }; throw ClientError(description: "reading the reply: \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            response += buf[0..<n]
        }
        return try parse(response)
    }

    static func connect(_ target: Target) throws -> Int32 {
        switch target {
        case let .unix(path):
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw ClientError(description: "socket: \(String(cString: strerror(errno)))") }
            var addr = sockaddr_un()
            addr.sun_family = sa_family_t(AF_UNIX)
            guard path.utf8.count < MemoryLayout.size(ofValue: addr.sun_path) else { close(fd); throw ClientError(description: "--socket \(path) is too long") }
            withUnsafeMutableBytes(of: &addr.sun_path) { raw in raw.copyBytes(from: path.utf8); raw[path.utf8.count] = 0 }
            let rc = withUnsafePointer(to: &addr) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard rc == 0 else {
                let e = String(cString: strerror(errno)); close(fd)
                throw ClientError(description: "cannot connect to \(path): \(e) (is flowgated running? --socket sets the path)")
            }
            return fd
        case let .tcp(host, port):
            var hints = addrinfo()
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            var res: UnsafeMutablePointer<addrinfo>?
            let gai = getaddrinfo(host, String(port), &hints, &res)
            guard gai == 0, let first = res else { throw ClientError(description: "cannot resolve \(host): \(String(cString: gai_strerror(gai)))") }
            defer { freeaddrinfo(res) }
            var ai: UnsafeMutablePointer<addrinfo>? = first
            var lastError = "no address"
            while let a = ai {
                let fd = socket(a.pointee.ai_family, a.pointee.ai_socktype, a.pointee.ai_protocol)
                if fd >= 0 {
                    if Glibc.connect(fd, a.pointee.ai_addr, a.pointee.ai_addrlen) == 0 { return fd }
                    lastError = String(cString: strerror(errno))
                    close(fd)
                }
                ai = a.pointee.ai_next
            }
            throw ClientError(description: "cannot connect to \(host):\(port): \(lastError)")
        }
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + off, bytes.count - off, Int32(MSG_NOSIGNAL)) }
            if n < 0 { if errno == EINTR { continue }; throw ClientError(description: "sending the request: \(String(cString: strerror(errno)))") }
            off += n
        }
    }

    static func parse(_ raw: [UInt8]) throws -> HTTPReply {
        let sep: [UInt8] = [13, 10, 13, 10]
        var end = -1
        if raw.count >= 4 { for i in 0...(raw.count - 4) where Array(raw[i..<(i + 4)]) == sep { end = i; break } }
        guard end >= 0 else { throw ClientError(description: "the server closed the connection without a complete reply") }
        let head = String(decoding: raw[0..<end], as: UTF8.self).components(separatedBy: "\r\n")
        let statusParts = head[0].split(separator: " ", maxSplits: 2)
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else { throw ClientError(description: "bad status line: \(head[0])") }
        var headers: [(String, String)] = []
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers.append((String(line[..<colon]), String(line[line.index(after: colon)...]).trimmingCharacters(in: " ")))
        }
        var body = Array(raw[(end + 4)...])
        if let cl = headers.first(where: { $0.0.lowercased() == "content-length" }).flatMap({ Int($0.1) }), cl < body.count { body = Array(body[0..<cl]) }
        return HTTPReply(status: status, headers: headers, body: body)
    }
}

extension String {
    func components(separatedBy sep: String) -> [String] {
        var out: [String] = []
        var rest = Substring(self)
        while let r = rest.firstRange(of: sep) { out.append(String(rest[..<r.lowerBound])); rest = rest[r.upperBound...] }
        out.append(String(rest))
        return out
    }
    func trimmingCharacters(in chars: String) -> String {
        var s = Substring(self)
        while let f = s.first, chars.contains(f) { s = s.dropFirst() }
        while let l = s.last, chars.contains(l) { s = s.dropLast() }
        return String(s)
    }
}
