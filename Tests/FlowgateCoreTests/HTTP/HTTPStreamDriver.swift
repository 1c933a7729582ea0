@testable import FlowgateCore

/// Drives HTTPHeadParser and HTTPBodyFramer over a byte stream the way a
/// relay does: bytes arrive in reads of `chunk` bytes, the head is parsed from
/// an accumulating buffer, the body is only counted (and its payload collected
/// here for the assertions).
/// Parses `bytes` as one head with `parser`: true when complete, nil on a refusal.
func parseHead(_ parser: inout HTTPHeadParser, _ bytes: [UInt8]) -> Bool? {
    bytes.withUnsafeBytes { b in try? parser.parse(b) }
}

/// Runs `body` over `bytes` as a raw buffer, passing its typed error on.
func withBytes<T>(_ bytes: [UInt8], _ body: (UnsafeRawBufferPointer) throws(HTTPParseError) -> T) throws(HTTPParseError) -> T {
    let r: Result<T, HTTPParseError> = bytes.withUnsafeBytes { b in
        do throws(HTTPParseError) { return .success(try body(b)) } catch { return .failure(error) }
    }
    return try r.get()
}

struct HTTPStreamDriver {
    struct Message: Equatable {
        var startLine: String
        var fields: [String]
        var framing: HTTPBodyFraming
        var payloadBytes: [UInt8] = []
        /// Bytes of the body as relayed (chunk framing and trailers included).
        var bodyBytes = 0
        var trailerBytes: [UInt8] = []
        var payload: String { String(decoding: payloadBytes, as: UTF8.self) }
        var trailers: String { String(decoding: trailerBytes, as: UTF8.self) }
    }

    var messages: [Message] = []
    var error: HTTPParseError?
    /// True when the stream ended inside a message (head or body).
    var midMessage = false
    /// A 101 switched protocols: what followed was not parsed.
    var switched = false

    init(_ text: String, kind: HTTPMessageKind, respondingTo: HTTPMethod = .get, chunk: Int = Int.max,
         limits: HTTPLimits = HTTPLimits(), closeAtEnd: Bool = false) {
        self.init(Array(text.utf8), kind: kind, respondingTo: respondingTo, reads: [chunk], limits: limits, closeAtEnd: closeAtEnd)
    }

    /// `reads`: the sizes of successive reads, repeated.
    init(_ bytes: [UInt8], kind: HTTPMessageKind, respondingTo: HTTPMethod = .get, reads: [Int] = [Int.max],
         limits: HTTPLimits = HTTPLimits(), closeAtEnd: Bool = false) {
        var readIndex = 0
        var parser = HTTPHeadParser(kind: kind, limits: limits)
        parser.respondingTo = respondingTo
        var pending: [UInt8] = [] // head bytes not yet consumed
        var framer: HTTPBodyFramer?
        var current: Message?
        var i = 0
        do {
            while i < bytes.count {
                let size = max(1, reads[readIndex % reads.count])
                readIndex += 1
                let end = min(bytes.count, i + min(size, bytes.count - i))
                pending += bytes[i..<end]
                i = end
                while !pending.isEmpty {
                    if var f = framer, var m = current {
                        var used = 0
                        while used < pending.count && !f.isDone {
                            let rest = pending[used...]
                            let (segment, n) = try rest.withUnsafeBytes { p in try f.next(p) }
                            if segment == .data { m.payloadBytes += pending[used..<(used + n)] }
                            if segment == .trailer { m.trailerBytes += pending[used..<(used + n)] }
                            m.bodyBytes += n
                            used += n
                        }
                        pending.removeFirst(used)
                        framer = f; current = m
                        guard f.isDone else { break }
                        messages.append(m); framer = nil; current = nil
                        continue
                    }
                    let done = try pending.withUnsafeBytes { p in try parser.parse(p) }
                    guard done else { break }
                    let head = parser.head
                    var lineEnd = head.start
                    while pending[lineEnd] != 13 { lineEnd += 1 }
                    let m = pending.withUnsafeBytes { p in
                        Message(startLine: String(decoding: pending[head.start..<lineEnd], as: UTF8.self),
                                fields: head.fields.map { "\(head.string($0.name, in: p))=\(head.string($0.value, in: p))" },
                                framing: head.framing)
                    }
                    pending.removeFirst(head.length)
                    if head.framing == .switchingProtocols {
                        messages.append(m)
                        switched = true
                        return
                    }
                    let f = HTTPBodyFramer(head.framing, kind: kind, limits: limits)
                    if f.isDone { messages.append(m); continue }
                    framer = f; current = m
                }
            }
            if closeAtEnd, var f = framer, let m = current {
                try f.finish()
                messages.append(m); framer = nil; current = nil
            }
        } catch {
            self.error = error as? HTTPParseError
            return
        }
        midMessage = framer != nil || parser.hasStarted
    }
}
