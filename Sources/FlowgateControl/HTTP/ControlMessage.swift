// Transport-independent request and response values: the evhttp server turns
// each request into a `ControlRequest`, the router answers a `ControlResponse`.
// Unit tests drive the router with these directly, without sockets.

import FlowgateCore

public struct ControlRequest: Sendable {
    public var method: String
    /// Path as sent, still percent-encoded, without the query.
    public var rawPath: String
    /// Query string as sent (after '?'), percent-encoded; "" when absent.
    public var rawQuery: String
    /// Header names as sent; lookups are case-insensitive.
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    /// The request arrived over TCP (signatures apply) rather than the Unix socket.
    public var overTCP: Bool

    public init(method: String, path: String, headers: [(String, String)] = [], body: [UInt8] = [], overTCP: Bool = false) {
        self.method = method
        if let q = path.firstIndex(of: "?") {
            rawPath = String(path[..<q]); rawQuery = String(path[path.index(after: q)...])
        } else {
            rawPath = path; rawQuery = ""
        }
        self.headers = headers.map { (name: $0.0, value: $0.1) }
        self.body = body
        self.overTCP = overTCP
    }

    public func header(_ name: String) -> String? {
        let lower = name.lowercased()
        return headers.first { $0.name.lowercased() == lower }?.value
    }

    /// Decoded query pairs in order; repeated keys stay repeated (ELB filters).
    public var queryItems: [(String, String)] {
        guard !rawQuery.isEmpty else { return [] }
        return rawQuery.split(separator: "&", omittingEmptySubsequences: true).map { part in
            if let eq = part.firstIndex(of: "=") {
                return (URLCoding.decode(String(part[..<eq]), plusIsSpace: true), URLCoding.decode(String(part[part.index(after: eq)...]), plusIsSpace: true))
            }
            return (URLCoding.decode(String(part), plusIsSpace: true), "")
        }
    }

    /// Path segments, percent-decoded.
    public var pathSegments: [String] {
        rawPath.split(separator: "/", omittingEmptySubsequences: true).map { URLCoding.decode(String($0), plusIsSpace: false) }
    }
}

public struct ControlResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    public init(status: Int, headers: [(String, String)] = [], body: [UInt8] = []) {
        self.status = status; self.headers = headers.map { (name: $0.0, value: $0.1) }; self.body = body
    }
    public init(status: Int, headers: [(String, String)] = [], json: JSONValue) {
        self.init(status: status, headers: headers, body: Array(json.serialized().utf8))
    }
    public func header(_ name: String) -> String? {
        let lower = name.lowercased()
        return headers.first { $0.name.lowercased() == lower }?.value
    }
    public var bodyText: String { String(decoding: body, as: UTF8.self) }
}

