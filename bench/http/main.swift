// HTTP parser micro-benchmark (issue 13): heads parsed per second, single
// thread, for the data plane's HTTPHeadParser (request and response heads,
// with framing decided) and, for comparison, the control server's
// HTTPRequestParser (which builds strings). Also the chunked body framer's
// throughput. Plain ContinuousClock timing, best of 3; build with
// `swift build -c release --product flowgate-httpbench`, run with an optional
// iteration count (default 1,000,000).
#if canImport(Glibc)
import Glibc
#endif
import FlowgateCore

let curl = Array("GET /api/v1/items?id=42 HTTP/1.1\r\nHost: backend.example.com\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n".utf8)
let browser = Array(("GET /static/js/app.3f9c2b.js?v=20261202 HTTP/1.1\r\nHost: www.example.com\r\nConnection: keep-alive\r\n"
    + "sec-ch-ua: \"Chromium\";v=\"131\", \"Not_A Brand\";v=\"24\"\r\nsec-ch-ua-mobile: ?0\r\nsec-ch-ua-platform: \"Linux\"\r\n"
    + "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\r\n"
    + "Accept: */*\r\nSec-Fetch-Site: same-origin\r\nSec-Fetch-Mode: no-cors\r\nSec-Fetch-Dest: script\r\n"
    + "Referer: https://www.example.com/dashboard\r\nAccept-Encoding: gzip, deflate, br, zstd\r\nAccept-Language: en-US,en;q=0.9\r\n"
    + "Cookie: FLOWGATE=3f9c2b7a1d; session=abcdef0123456789abcdef0123456789; _ga=GA1.2.1234567890.1733097600\r\n\r\n").utf8)
let response = Array(("HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Wed, 02 Dec 2026 12:00:00 GMT\r\nContent-Type: application/json\r\n"
    + "Content-Length: 1234\r\nConnection: keep-alive\r\nCache-Control: no-cache\r\nSet-Cookie: JSESSIONID=0123456789ABCDEF; Path=/; HttpOnly\r\n\r\n").utf8)

func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18 }

/// Heads per second with HTTPHeadParser (one parser reused, as a connection would).
func dataPlane(_ head: [UInt8], kind: HTTPMessageKind, iterations: Int) -> Double {
    var best = 0.0
    var parser = HTTPHeadParser(kind: kind)
    var sink = 0
    head.withUnsafeBytes { b in
        for _ in 0..<3 {
            let clock = ContinuousClock()
            let start = clock.now
            for _ in 0..<iterations {
                if (try? parser.parse(b)) == true { sink &+= parser.head.length &+ parser.head.fields.count }
            }
            best = max(best, Double(iterations) / seconds(start.duration(to: clock.now)))
        }
    }
    precondition(sink != 0)
    return best
}

/// Heads per second with the control server's HTTPRequestParser (strings, copied body).
func control(_ head: [UInt8], iterations: Int) -> Double {
    var best = 0.0
    var sink = 0
    var parser = HTTPRequestParser()
    for _ in 0..<3 {
        let clock = ContinuousClock()
        let start = clock.now
        for _ in 0..<iterations {
            parser.append(head)
            if case let .success(r)? = parser.next() { sink &+= r.head.headers.count }
        }
        best = max(best, Double(iterations) / seconds(start.duration(to: clock.now)))
    }
    precondition(sink != 0)
    return best
}

/// Chunked body bytes per second through HTTPBodyFramer.consume (16 KiB chunks, 1 MiB per message).
func framer(iterations: Int) -> Double {
    var body: [UInt8] = []
    for _ in 0..<64 { body += Array("4000\r\n".utf8) + [UInt8](repeating: 0x61, count: 0x4000) + Array("\r\n".utf8) }
    body += Array("0\r\n\r\n".utf8)
    var best = 0.0
    body.withUnsafeBytes { b in
        for _ in 0..<3 {
            let clock = ContinuousClock()
            let start = clock.now
            for _ in 0..<iterations {
                var f = HTTPBodyFramer(.chunked, kind: .request)
                var at = 0
                // 64 KiB reads, as a relay's buffer would deliver them.
                while !f.isDone, let r = try? f.consume(UnsafeRawBufferPointer(rebasing: b[at..<min(b.count, at + 65_536)])) {
                    at += r.bodyBytes
                }
                precondition(at == b.count)
            }
            best = max(best, Double(iterations * b.count) / seconds(start.duration(to: clock.now)))
        }
    }
    return best
}

let iterations = Int(CommandLine.arguments.dropFirst().first ?? "") ?? 1_000_000
// `flowgate-httpbench N curl|browser|response`: only that head through HTTPHeadParser (3 x N parses), for
// callgrind: the difference in instructions between two N, over 3 x the difference, is instructions per head.
if CommandLine.arguments.count > 2 {
    let cases = ["curl": (curl, HTTPMessageKind.request), "browser": (browser, .request), "response": (response, .response)]
    guard let (head, kind) = cases[CommandLine.arguments[2]] else { fatalError("case: curl, browser or response") }
    print(dataPlane(head, kind: kind, iterations: iterations))
    exit(0)
}
func fmt(_ v: Double) -> String { String(Int(v.rounded())).reversed().enumerated().map { $0.offset > 0 && $0.offset % 3 == 0 ? "\($0.element)," : "\($0.element)" }.reversed().joined() }

print("| head | bytes | fields | HTTPHeadParser heads/s | HTTPRequestParser (control) heads/s |")
print("|---|---:|---:|---:|---:|")
print("| curl request | \(curl.count) | 3 | \(fmt(dataPlane(curl, kind: .request, iterations: iterations))) | \(fmt(control(curl, iterations: iterations))) |")
print("| browser request | \(browser.count) | 15 | \(fmt(dataPlane(browser, kind: .request, iterations: iterations))) | \(fmt(control(browser, iterations: iterations))) |")
print("| nginx response | \(response.count) | 7 | \(fmt(dataPlane(response, kind: .response, iterations: iterations))) | - |")
print("")
print("chunked body through HTTPBodyFramer.consume (16 KiB chunks, 64 KiB reads; payload counted, never read): \(fmt(framer(iterations: max(1, iterations / 2000)) / 1e6)) MB/s")
