// The control server on real sockets (a Unix socket in a temp directory and
// 127.0.0.1 port 0), with short limits so each rule shows in well under a
// second: pipelined answers in order, per-endpoint budgets, the total request
// deadline, and stop() joining the thread and removing the socket file.
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import FlowgateControl
import FlowgateCore
import FlowgateSystem

private final class RunningServer {
    let server: ControlServer
    let dir: String
    var socketPath: String { dir + "/control.sock" }

    init(limits: ControlLimits) throws {
        var template = Array("/tmp/fg-ctl-XXXXXX".utf8CString)
        dir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
        let control = ControlConfig(unixSocket: dir + "/control.sock", listen: "127.0.0.1:0", allowUnsigned: true)
        let (service, _) = Fixture.service()
        let router = ControlRouter(service: service, control: control, tcpIsLoopback: true)
        server = try ControlServer(router: router, limits: limits)
        server.start()
    }

    func tcp() throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(server.tcpPort!).bigEndian)
        addr.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        #expect(rc == 0)
        setTimeout(fd, seconds: 5)
        return fd
    }

    func unix() throws -> Int32 {
        let fd = try System.connectUnix(socketPath)
        setTimeout(fd, seconds: 5)
        return fd
    }

    func setTimeout(_ fd: Int32, seconds: Int) {
        var tv = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }
}

private func send(_ fd: Int32, _ text: String) {
    let bytes = Array(text.utf8)
    _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
}

/// Everything until EOF (or the receive timeout).
private func readAll(_ fd: Int32) -> String {
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = recv(fd, &buf, buf.count, 0)
        if n <= 0 { break }
        out += buf[0..<n]
    }
    return String(decoding: out, as: UTF8.self)
}

/// Statuses of the responses in `text`, framed by Content-Length (HEAD answers carry no body).
private func statuses(_ text: String, headAt: Int? = nil) -> [Int] {
    var out: [Int] = []
    var rest = Substring(text)
    while let end = rest.range(of: "\r\n\r\n") {
        let head = rest[..<end.lowerBound]
        let lines = head.components(separatedBy: "\r\n")
        guard let status = lines.first.flatMap({ Int($0.split(separator: " ")[1]) }) else { break }
        out.append(status)
        var length = lines.dropFirst().first { $0.lowercased().hasPrefix("content-length:") }
            .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
        if out.count - 1 == headAt { length = 0 }
        rest = rest[end.upperBound...].dropFirst(length)
    }
    return out
}

private func monotonic() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

@Suite(.serialized) struct ControlServerSocketTests {
    @Test func pipelinedRequestsAreAnsweredInOrderAlsoAfterAHalfClose() throws {
        let s = try RunningServer(limits: ControlLimits())
        defer { s.server.stop() }
        for useUnix in [false, true] {
            let fd = useUnix ? try s.unix() : try s.tcp()
            send(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\nHEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            shutdown(fd, Int32(SHUT_WR))
            let text = readAll(fd)
            close(fd)
            // The 404's body has no CRLF-started status line; HEAD's answer has no body.
            #expect(statuses(text, headAt: 2) == [200, 404, 200], "\(text)")
            #expect(text.hasSuffix("Content-Length: 3\r\nConnection: keep-alive\r\n\r\n"))
        }
    }

    @Test func eachEndpointHasItsOwnBudget() throws {
        var limits = ControlLimits()
        limits.maxConnections = 2
        let s = try RunningServer(limits: limits)
        defer { s.server.stop() }
        let held = [try s.tcp(), try s.tcp()]
        usleep(100_000)
        let third = try s.tcp()
        let refused = readAll(third)
        close(third)
        #expect(refused.hasPrefix("HTTP/1.1 503 "), "\(refused)")
        #expect(refused.contains("\"__type\":\"ThrottlingException\""))
        // TCP clients at their budget do not starve the Unix socket.
        let u = try s.unix()
        send(u, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(statuses(readAll(u)) == [200])
        close(u)
        for fd in held { close(fd) }
    }

    @Test func bytesThatKeepDribblingDoNotExtendTheRequestDeadline() throws {
        var limits = ControlLimits()
        limits.timeoutSeconds = 0.6
        let s = try RunningServer(limits: limits)
        defer { s.server.stop() }
        let fd = try s.tcp()
        let start = monotonic()
        send(fd, "POST / HTTP/1.1\r\nHost: x\r\n")
        var answer = ""
        // One byte every 100 ms: each arrives well within the limit, the request never completes.
        for _ in 0..<30 {
            send(fd, "X")
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&pfd, 1, 100) > 0 { answer = readAll(fd); break }
        }
        let elapsed = monotonic() - start
        close(fd)
        #expect(answer.hasPrefix("HTTP/1.1 408 "), "\(answer)")
        #expect(elapsed >= 0.55 && elapsed < 1.5, "cut after \(elapsed) s")
    }

    @Test func stopJoinsTheLoopAndRemovesTheSocketFile() throws {
        let s = try RunningServer(limits: ControlLimits())
        let idle = try s.unix()
        var st = stat()
        #expect(lstat(s.socketPath, &st) == 0)
        s.server.stop()
        #expect(lstat(s.socketPath, &st) != 0)
        // The idle keep-alive connection was closed by the stop.
        #expect(readAll(idle) == "")
        close(idle)
        s.server.stop() // idempotent
    }
}
