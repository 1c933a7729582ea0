// Blocking loopback sockets for the tests (127.0.0.1 only, port 0).
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import FlowgateCore
@testable import FlowgateDataPlane
import FlowgateSystem

enum TestSocket {
    static func loopback(_ port: Int) -> sockaddr_in {
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = UInt16(port).bigEndian
        a.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        return a
    }

    /// A listening socket on 127.0.0.1:0 and its port.
    static func listen() -> (fd: Int32, port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var a = loopback(0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, 4)
        _ = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        precondition(Glibc.listen(fd, 128) == 0)
        return (fd, port(of: fd))
    }

    static func port(of fd: Int32) -> Int {
        var a = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: a.sin_port))
    }

    /// A port that was free a moment ago (listener ranges cannot say 0).
    static func freePort() -> Int {
        let (fd, port) = listen()
        close(fd)
        return port
    }

    static func connect(_ port: Int) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var a = loopback(port)
        let r = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        if r != 0 { let e = errno; close(fd); errno = e; return nil }
        setTimeout(fd, seconds: 5)
        return fd
    }

    static func setTimeout(_ fd: Int32, seconds: Int) {
        var tv = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    static func accept(_ fd: Int32) -> Int32 {
        let c = Glibc.accept(fd, nil, nil)
        if c >= 0 { setTimeout(c, seconds: 5) }
        return c
    }

    static func sendAll(_ fd: Int32, _ data: [UInt8]) -> Bool {
        var off = 0
        while off < data.count {
            let n = data.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + off, data.count - off, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return false }
            off += n
        }
        return true
    }

    /// Reads until EOF (or error/timeout); returns what arrived.
    static func readAll(_ fd: Int32) -> [UInt8] {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, 65536, 0) }
            if n <= 0 { break }
            out.append(contentsOf: buf[0..<n])
        }
        return out
    }

    /// Echo server thread: per connection, echo until EOF, then shutdown(SHUT_WR).
    static func startEcho(_ listenFD: Int32, connections: Int) -> Thread {
        let t = Thread {
            for _ in 0..<connections {
                let c = accept(listenFD)
                if c < 0 { return }
                Thread.detachNewThread {
                    var buf = [UInt8](repeating: 0, count: 65536)
                    while true {
                        let n = buf.withUnsafeMutableBytes { recv(c, $0.baseAddress, 65536, 0) }
                        if n <= 0 { break }
                        if !sendAll(c, Array(buf[0..<n])) { break }
                    }
                    shutdown(c, Int32(SHUT_WR))
                    _ = readAll(c)
                    close(c)
                }
            }
        }
        t.start()
        return t
    }

    static func pattern(_ count: Int, seed: UInt64 = 0x9e37_79b9_7f4a_7c15) -> [UInt8] {
        var x = seed
        return (0..<count).map { _ in
            x ^= x << 13; x ^= x >> 7; x ^= x << 17
            return UInt8(truncatingIfNeeded: x)
        }
    }
}

/// A one-listener, one-pool config on 127.0.0.1.
func makeConfig(port: Int, members: [(port: Int, weight: Int)], idleTimeout: Int = 340) -> FlowgateConfig {
    let arn = "arn:aws:globalaccelerator::123456789012:accelerator/00000000-0000-4000-8000-000000000001"
    let listener = Listener(listenerArn: arn + "/listener/0000abcd", portRanges: [PortRange(fromPort: port, toPort: port)],
                            protocol: .tcp, poolID: "pool-1", bind: "127.0.0.1", idleTimeout: idleTimeout)
    let pool = Pool(id: "pool-1", protocol: .tcp,
                    members: members.enumerated().map { Member(id: "member-\($0.offset)", address: "127.0.0.1", protocolPort: $0.element.port, weight: $0.element.weight) })
    return FlowgateConfig(workers: 2, projectID: "ac80359381a34f04b39a333b0ea5117a",
                          accelerators: [Accelerator(acceleratorArn: arn, listeners: [listener])], pools: [pool])
}

func waitUntil(seconds: Double = 5, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(10_000)
    }
    return condition()
}
