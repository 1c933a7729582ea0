// A tiny HTTP/1.1 client for the control API over the Unix socket (default)
// or TCP (`--endpoint`). One request per connection (`Connection: close`),
// which is all a command line needs.
import FlowgateCore
import FlowgateSystem

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
        defer { System.close(fd) }
        var head = "\(method) \(path) HTTP/1.1\r\nHost: \(target.hostHeader)\r\nConnection: close\r\nContent-Length: \(body.count)\r\n"
        for (k, v) in headers { head += "\(k): \(v)\r\n" }
        head += "\r\n"
        do throws(SystemError) { try System.sendAll(fd, Array(head.utf8) + body) } catch {
            throw ClientError(description: "sending the request: \(error.reason)")
        }
        let response: [UInt8]
        do throws(SystemError) { response = try System.receiveToEnd(fd) } catch {
            throw ClientError(description: "reading the reply: \(error.reason)")
        }
        return try parse(response)
    }

    static func connect(_ target: Target) throws -> Int32 {
        switch target {
        case let .unix(path):
            do throws(SystemError) { return try System.connectUnix(path) } catch {
                if error.isNameTooLong { throw ClientError(description: "--socket \(path) is too long") }
                throw ClientError(description: "cannot connect to \(path): \(error.reason) (is flowgated running? --socket sets the path)")
            }
        case let .tcp(host, port):
            let addresses: [SocketAddress]
            do throws(ResolveError) { addresses = try System.resolve(host, port: port) } catch {
                throw ClientError(description: error.description)
            }
            var lastError = "no address"
            for a in addresses {
                do throws(SystemError) { return try System.connectBlocking(a) } catch { lastError = error.reason }
            }
            throw ClientError(description: "cannot connect to \(host):\(port): \(lastError)")
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
