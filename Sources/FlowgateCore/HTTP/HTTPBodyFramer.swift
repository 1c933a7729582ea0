// Streaming body framing for a relay: given the bytes after a head, says how
// many belong to the message and where it ends, without copying them, so the
// body can pass through the zero-copy path unchanged (chunk headers included).
// Chunked bodies are validated byte by byte as they pass (RFC 9112 §7.1):
// hex chunk sizes of at most 15 digits (no overflow), chunk extensions as
// tokens or quoted strings with no whitespace, CRLF after every chunk, and
// trailer fields under the same rules and limits as header fields.
// Refusals carry 400 for requests and 502 for responses.

public struct HTTPBodyFramer: Sendable {
    /// What a run of bytes reported by `next` is.
    public enum Segment: Sendable, Equatable {
        /// Body payload (for chunked: chunk data).
        case data
        /// Chunk-size lines and the CRLF after chunk data.
        case chunkFraming
        /// The trailer section, including the blank line that ends the message.
        case trailer
    }

    private enum State: UInt8 {
        case sizeStart, size, extStart, extName, extValueStart, extToken, extQuoted, extEscape, extQuoteEnd, sizeLF
        case data, dataCR, dataLF
        case trailerLineStart, trailerName, trailerValue, trailerLF, trailerEndLF
        case length, untilClose, done
    }

    public let kind: HTTPMessageKind
    public let limits: HTTPLimits
    private var state: State
    /// Bytes left in the current chunk, or of a Content-Length body.
    private var remaining = 0
    private var digits = 0
    private var lineBytes = 0
    private var trailerBytes = 0
    private var trailerFields = 0
    /// The trailer name so far still spells a prefix of Content-Length / Transfer-Encoding.
    private var nameMayBeCL = false
    private var nameMayBeTE = false
    private static let contentLength = Array("content-length".utf8)
    private static let transferEncoding = Array("transfer-encoding".utf8)

    public init(_ framing: HTTPBodyFraming, kind: HTTPMessageKind, limits: HTTPLimits = HTTPLimits()) {
        self.kind = kind
        self.limits = limits
        switch framing {
        case .none, .switchingProtocols, .length(0): state = .done
        case let .length(n): state = .length; remaining = n
        case .chunked: state = .sizeStart
        case .untilClose: state = .untilClose
        }
    }

    /// The message has ended; bytes after it belong to the next message.
    public var isDone: Bool { state == .done }

    /// How many bytes at the start of `buffer` belong to this message's body, and
    /// whether the message ends there. A body read until close never ends here: call `finish`.
    public mutating func consume(_ buffer: UnsafeRawBufferPointer) throws(HTTPParseError) -> (bodyBytes: Int, done: Bool) {
        var used = 0
        while used < buffer.count && state != .done {
            used += try next(UnsafeRawBufferPointer(rebasing: buffer[used...])).count
        }
        return (used, state == .done)
    }

    /// The connection closed: fine after a complete message or for a body read until close.
    public mutating func finish() throws(HTTPParseError) {
        switch state {
        case .done: return
        case .untilClose: state = .done
        default: throw error(400, "connection closed inside the \(kind.noun) body")
        }
    }

    /// The next run of bytes of one kind at the start of `buffer` (count 0 when
    /// `buffer` is empty or the message is done).
    public mutating func next(_ buffer: UnsafeRawBufferPointer) throws(HTTPParseError) -> (segment: Segment, count: Int) {
        let n = buffer.count
        switch state {
        case .done: return (.data, 0)
        case .untilClose: return (.data, n)
        case .length:
            let take = min(remaining, n)
            remaining -= take
            if remaining == 0 { state = .done }
            return (.data, take)
        case .data:
            let take = min(remaining, n)
            remaining -= take
            if remaining == 0 { state = .dataCR }
            return (.data, take)
        default:
            break
        }
        let segment: Segment = state.rawValue >= State.trailerLineStart.rawValue ? .trailer : .chunkFraming
        var i = 0
        while i < n {
            try step(buffer[i])
            i += 1
            if state == .data || state == .done || (segment == .chunkFraming && state == .trailerLineStart) { break }
        }
        return (segment, i)
    }

    private func error(_ status: Int, _ message: String) -> HTTPParseError { kind.error(status, message) }

    private mutating func step(_ b: UInt8) throws(HTTPParseError) {
        if b == 10 && state != .sizeLF && state != .dataLF && state != .trailerLF && state != .trailerEndLF {
            throw error(400, "bare LF in a chunked body: lines end with CRLF")
        }
        switch state {
        case .sizeStart, .size:
            if let v = hexValue(b) {
                if digits == 15 { throw error(400, "chunk size has more than 15 hex digits") }
                digits += 1
                remaining = remaining << 4 | v
                state = .size
                try countLine()
                return
            }
            guard state == .size else { throw error(400, "chunk size is not hexadecimal") }
            try sizeLineByte(b)
        case .extStart:
            guard HTTPBytes.isToken(b) else { throw error(400, "chunk extension name is not a token") }
            state = .extName
            try countLine()
        case .extName:
            if b == 0x3D { state = .extValueStart; try countLine(); return }
            if HTTPBytes.isToken(b) { try countLine(); return }
            try sizeLineByte(b)
        case .extValueStart:
            if b == 0x22 { state = .extQuoted } else if HTTPBytes.isToken(b) { state = .extToken } else {
                throw error(400, "chunk extension value is not a token or a quoted string")
            }
            try countLine()
        case .extToken:
            if HTTPBytes.isToken(b) { try countLine(); return }
            try sizeLineByte(b)
        case .extQuoted:
            if b == 0x22 { state = .extQuoteEnd } else if b == 0x5C { state = .extEscape } else if !HTTPBytes.isFieldValue(b) {
                throw error(400, "chunk extension quoted string has a control character")
            }
            try countLine()
        case .extEscape:
            guard HTTPBytes.isFieldValue(b) else { throw error(400, "chunk extension quoted string has a control character") }
            state = .extQuoted
            try countLine()
        case .extQuoteEnd:
            try sizeLineByte(b)
        case .sizeLF:
            guard b == 10 else { throw error(400, "bare CR in a chunk-size line") }
            lineBytes = 0; digits = 0
            state = remaining == 0 ? .trailerLineStart : .data
        case .dataCR:
            guard b == 13 else { throw error(400, "chunk data is not followed by CRLF") }
            state = .dataLF
        case .dataLF:
            guard b == 10 else { throw error(400, "chunk data is not followed by CRLF") }
            state = .sizeStart
        case .trailerLineStart:
            try countTrailer()
            if b == 13 { state = .trailerEndLF; return }
            if b == 32 || b == 9 { throw error(400, "obsolete line folding (a trailer line starting with whitespace)") }
            if b == 0x3A { throw error(400, "trailer line with an empty name") }
            if trailerFields == limits.maxHeaders { throw error(431, "more than \(limits.maxHeaders) trailer fields") }
            trailerFields += 1
            lineBytes = 0
            nameMayBeCL = true; nameMayBeTE = true
            state = .trailerName
            try trailerNameByte(b)
        case .trailerName:
            try countTrailer()
            if b == 0x3A {
                // RFC 9110 §6.5.1: framing fields cannot be trailers; a parser that merges
                // trailers into the head (llhttp checks Content-Length there) would reframe.
                if (nameMayBeCL && lineBytes == Self.contentLength.count) || (nameMayBeTE && lineBytes == Self.transferEncoding.count) {
                    throw error(400, "Content-Length or Transfer-Encoding in the trailer section")
                }
                try countLine()
                state = .trailerValue
                return
            }
            try trailerNameByte(b)
        case .trailerValue:
            try countTrailer()
            if b == 13 { state = .trailerLF; return }
            try countLine()
            guard HTTPBytes.isFieldValue(b) else { throw error(400, "a trailer has a control character in its value") }
        case .trailerLF:
            try countTrailer()
            guard b == 10 else { throw error(400, "bare CR in the trailer section") }
            lineBytes = 0
            state = .trailerLineStart
        case .trailerEndLF:
            guard b == 10 else { throw error(400, "bare CR in the trailer section") }
            state = .done
        case .data, .length, .untilClose, .done:
            break
        }
    }

    private mutating func trailerNameByte(_ b: UInt8) throws(HTTPParseError) {
        if b == 32 || b == 9 { throw error(400, "whitespace between a trailer name and ':'") }
        guard HTTPBytes.isToken(b) else { throw error(400, "trailer name has a character that is not a token character") }
        let lower = b >= 0x41 && b <= 0x5A ? b | 0x20 : b
        nameMayBeCL = nameMayBeCL && lineBytes < Self.contentLength.count && Self.contentLength[lineBytes] == lower
        nameMayBeTE = nameMayBeTE && lineBytes < Self.transferEncoding.count && Self.transferEncoding[lineBytes] == lower
        try countLine()
    }

    /// A byte after the size digits or an extension: `;` starts another extension, CR ends the line.
    private mutating func sizeLineByte(_ b: UInt8) throws(HTTPParseError) {
        switch b {
        case 0x3B: state = .extStart; try countLine()
        case 13: state = .sizeLF
        case 32, 9: throw error(400, state == .size ? "whitespace in a chunk-size line" : "whitespace in a chunk extension")
        default: throw error(400, state == .size ? "chunk-size line has an invalid character" : "chunk extension has an invalid character")
        }
    }

    private mutating func countLine() throws(HTTPParseError) {
        lineBytes += 1
        if lineBytes > limits.maxLineBytes {
            throw error(state.rawValue >= State.trailerLineStart.rawValue ? 431 : 400,
                        state.rawValue >= State.trailerLineStart.rawValue
                            ? "a trailer line is longer than \(limits.maxLineBytes) bytes"
                            : "a chunk-size line is longer than \(limits.maxLineBytes) bytes")
        }
    }

    private mutating func countTrailer() throws(HTTPParseError) {
        trailerBytes += 1
        if trailerBytes > limits.maxHeadBytes {
            throw error(431, "trailer section is larger than \(limits.maxHeadBytes) bytes")
        }
    }

    private func hexValue(_ b: UInt8) -> Int? {
        switch b {
        case 0x30...0x39: return Int(b - 0x30)
        case 0x41...0x46: return Int(b - 0x37)
        case 0x61...0x66: return Int(b - 0x57)
        default: return nil
        }
    }
}
