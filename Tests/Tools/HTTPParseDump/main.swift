// Flowgate's side of the differential test against llhttp
// (Tests/IntegrationTests/test_http_parser_differential.py): reads records
// from stdin, each `Q <length>\n` (a request stream) or `R <length> <METHOD>\n`
// (a response stream answering METHOD) followed by that many bytes, parses
// each stream with HTTPHeadParser and HTTPBodyFramer as the data plane will,
// and prints one JSON line per record:
//   {"msgs": [complete messages], "tail": "ok|error|upgrade|closed|open-head|open-body",
//    "open": the message in progress (upgrade, open-body), "err": "status: message"}
// "closed": bytes follow a message after which the connection closes.
// A message: method/target or status/reason, minor version, fields, body
// (chunk data for chunked), trailers. Bytes appear as JSON \u00XX (Latin-1).
#if canImport(Glibc)
import Glibc
#endif
import FlowgateCore

func readAll() -> [UInt8] {
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = read(0, &chunk, chunk.count)
        if n <= 0 { break }
        out += chunk[0..<n]
    }
    return out
}

func json(_ bytes: UnsafeRawBufferPointer, into out: inout [UInt8]) {
    let hex = Array("0123456789abcdef".utf8)
    out.append(0x22)
    for b in bytes {
        if b >= 0x20 && b < 0x7F && b != 0x22 && b != 0x5C { out.append(b); continue }
        out += Array("\\u00".utf8)
        out.append(hex[Int(b >> 4)]); out.append(hex[Int(b & 15)])
    }
    out.append(0x22)
}

func json(_ s: String, into out: inout [UInt8]) {
    var s = s
    s.withUTF8 { json(UnsafeRawBufferPointer($0), into: &out) }
}

func emit(_ head: HTTPHead, body: [UInt8], trailers: [UInt8], in buf: UnsafeRawBufferPointer, into out: inout [UInt8]) {
    func slice(_ r: Range<Int>) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: buf[r]) }
    out += Array("{\"m\":".utf8); json(head.method?.rawValue ?? "", into: &out)
    out += Array(",\"t\":".utf8); json(slice(head.target), into: &out)
    out += Array(",\"s\":\(head.status),\"r\":".utf8); json(slice(head.reason), into: &out)
    out += Array(",\"v\":\(head.minorVersion),\"h\":[".utf8)
    for (i, f) in head.fields.enumerated() {
        if i > 0 { out.append(0x2C) }
        out.append(0x5B); json(slice(f.name), into: &out); out.append(0x2C); json(slice(f.value), into: &out); out.append(0x5D)
    }
    out += Array("],\"b\":".utf8); body.withUnsafeBytes { json($0, into: &out) }
    out += Array(",\"tr\":".utf8); trailers.withUnsafeBytes { json($0, into: &out) }
    out.append(0x7D)
}

/// One stream: messages until the bytes end, an error, or a protocol switch.
func run(_ kind: HTTPMessageKind, _ method: HTTPMethod, _ buf: UnsafeRawBufferPointer, into out: inout [UInt8]) {
    var parser = HTTPHeadParser(kind: kind)
    parser.respondingTo = method
    var offset = 0
    var tail = "ok", err = ""
    var open: [UInt8] = []
    out += Array("{\"msgs\":[".utf8)
    var first = true
    stream: while offset < buf.count {
        let rest = UnsafeRawBufferPointer(rebasing: buf[offset...])
        let complete: Bool
        do throws(HTTPParseError) { complete = try parser.parse(rest) } catch { tail = "error"; err = error.description; break }
        if !complete { tail = parser.hasStarted ? "open-head" : "ok"; break }
        let head = parser.head
        if head.framing == .switchingProtocols || (kind == .request && head.requestsUpgrade) {
            tail = "upgrade"
            emit(head, body: [], trailers: [], in: rest, into: &open)
            break
        }
        var framer = HTTPBodyFramer(head.framing, kind: kind)
        var pos = head.length
        var body: [UInt8] = [], trailers: [UInt8] = []
        while !framer.isDone && pos < rest.count {
            do throws(HTTPParseError) {
                let (segment, n) = try framer.next(UnsafeRawBufferPointer(rebasing: rest[pos...]))
                if segment == .data { body += rest[pos..<(pos + n)] }
                if segment == .trailer { trailers += rest[pos..<(pos + n)] }
                pos += n
            } catch { tail = "error"; err = error.description; break stream }
        }
        if !framer.isDone {
            tail = "open-body"
            emit(head, body: body, trailers: trailers, in: rest, into: &open)
            break
        }
        if !first { out.append(0x2C) }
        first = false
        emit(head, body: body, trailers: trailers, in: rest, into: &out)
        offset += pos
        if !head.keepAlive {
            // The relay closes after this message; what follows is never parsed
            // (empty lines aside, as llhttp allows).
            if buf[offset...].contains(where: { $0 != 13 && $0 != 10 }) { tail = "closed" }
            break
        }
    }
    out += Array("],\"tail\":\"\(tail)\",\"err\":".utf8); json(err, into: &out)
    if !open.isEmpty { out += Array(",\"open\":".utf8); out += open }
    out += Array("}\n".utf8)
}

let input = readAll()
var out: [UInt8] = []
input.withUnsafeBytes { all in
    var i = 0
    while i < all.count {
        var e = i
        while e < all.count && all[e] != 10 { e += 1 }
        let header = String(decoding: UnsafeRawBufferPointer(rebasing: all[i..<e]), as: UTF8.self).split(separator: " ")
        guard header.count >= 2, let n = Int(header[1]), e + 1 + n <= all.count else {
            print("flowgate-httpparse: bad record header at byte \(i)"); exit(2)
        }
        let kind: HTTPMessageKind = header[0] == "Q" ? .request : .response
        let method = header.count > 2 ? HTTPMethod(rawValue: String(header[2])) ?? .get : .get
        run(kind, method, UnsafeRawBufferPointer(rebasing: all[(e + 1)..<(e + 1 + n)]), into: &out)
        if out.count > 1 << 20 { _ = out.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }; out.removeAll(keepingCapacity: true) }
        i = e + 1 + n
    }
}
_ = out.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
