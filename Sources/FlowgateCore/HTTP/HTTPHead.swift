// What the data plane's HTTP parser extracts from one request or response head
// (RFC 9112): offsets into the caller's buffer rather than strings, so a head
// that is only inspected and forwarded costs no allocation beyond the reused
// field array. Strings are made on demand by the accessors.

public enum HTTPMessageKind: Sendable, Equatable {
    case request, response

    var noun: String { self == .request ? "request" : "response" }

    /// A refusal: requests answer `status`; for a response the client gets 502 (the backend failed).
    func error(_ status: Int, _ message: String) -> HTTPParseError {
        HTTPParseError(self == .request ? status : 502, message)
    }
}

/// Byte ranges of one field line, relative to the start of the parsed buffer.
/// The value excludes the surrounding whitespace.
public struct HTTPFieldSpan: Sendable, Equatable {
    public var name: Range<Int>
    public var value: Range<Int>
}

/// How the body after a head is delimited (RFC 9112 §6.3).
public enum HTTPBodyFraming: Sendable, Equatable {
    /// No body: requests without Content-Length or Transfer-Encoding, responses
    /// to HEAD, 1xx (other than 101), 204 and 304.
    case none
    case length(Int)
    case chunked
    /// A response without Content-Length or Transfer-Encoding: the body ends when
    /// the server closes the connection.
    case untilClose
    /// 101 Switching Protocols: the connection carries another protocol from the
    /// next byte on, relayed as plain bytes.
    case switchingProtocols
}

public struct HTTPHead: Sendable {
    public var kind: HTTPMessageKind
    /// Offset of the start line (empty lines before it are skipped, RFC 9112 §2.2).
    public var start = 0
    /// Bytes from the buffer's start through the blank line that ends the head.
    public var length = 0
    public var method: HTTPMethod?
    public var target: Range<Int> = 0..<0
    public var status = 0
    public var reason: Range<Int> = 0..<0
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    public var minorVersion = 1
    public var fields: [HTTPFieldSpan] = []
    public var contentLength: Int?
    public var chunked = false
    public var connectionClose = false
    public var connectionKeepAlive = false
    public var connectionUpgrade = false
    public var hasUpgradeField = false
    public var expectsContinue = false
    public var framing: HTTPBodyFraming = .none

    public init(kind: HTTPMessageKind) {
        self.kind = kind
        fields.reserveCapacity(32)
    }

    mutating func reset() {
        start = 0; length = 0; method = nil; target = 0..<0; status = 0; reason = 0..<0; minorVersion = 1
        fields.removeAll(keepingCapacity: true)
        contentLength = nil; chunked = false; connectionClose = false; connectionKeepAlive = false
        connectionUpgrade = false; hasUpgradeField = false; expectsContinue = false; framing = .none
    }

    /// Persistent connection per RFC 9112 §9.3; a body read until close ends it.
    public var keepAlive: Bool {
        if connectionClose || framing == .untilClose { return false }
        return minorVersion >= 1 || connectionKeepAlive
    }

    /// A request asking to switch protocols (`Connection: upgrade` and `Upgrade`).
    public var requestsUpgrade: Bool { connectionUpgrade && hasUpgradeField }

    /// A 1xx other than 101: the final response to the same request follows.
    public var isInterim: Bool { kind == .response && status >= 100 && status < 200 && status != 101 }

    public func string(_ range: Range<Int>, in buffer: UnsafeRawBufferPointer) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: buffer[range]), as: UTF8.self)
    }

    /// The value of the last field named `name` (ASCII case-insensitive).
    public func value(_ name: String, in buffer: UnsafeRawBufferPointer) -> String? {
        let lower = Array(name.lowercased().utf8)
        for f in fields.reversed() where f.name.count == lower.count {
            var same = true
            for (i, b) in zip(f.name, lower) where (buffer[i] >= 0x41 && buffer[i] <= 0x5A ? buffer[i] | 0x20 : buffer[i]) != b {
                same = false; break
            }
            if same { return string(f.value, in: buffer) }
        }
        return nil
    }
}
