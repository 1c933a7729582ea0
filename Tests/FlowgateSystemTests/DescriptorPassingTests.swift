#if canImport(Glibc)
import Glibc
#endif
import Testing
import FlowgateSystem

/// SCM_RIGHTS over the takeover's SOCK_SEQPACKET socket: each message keeps
/// its own descriptors, a received descriptor is the same open socket, and a
/// socket file is removed only by the process that bound it.
struct DescriptorPassingTests {
    private func tempDir() -> String {
        var template = Array("/tmp/flowgate-fdpass-XXXXXX".utf8CString)
        let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        return String(cString: p!)
    }

    @Test func descriptorsTravelWithTheirMessage() throws {
        let dir = tempDir()
        let path = dir + "/t.sock"
        let listener = try System.listenUnixSeqpacket(path)
        defer { System.close(listener); System.removeSocketFile(path); rmdir(dir) }
        let client = try System.connectUnixSeqpacket(path)
        defer { System.close(client) }
        var server: Int32? = nil
        for _ in 0..<100 where server == nil { server = try System.acceptUnix(listener); if server == nil { usleep(1000) } }
        let conn = try #require(server)
        defer { System.close(conn) }

        // Two pipes sent in two messages, then a message without descriptors.
        var a: [Int32] = [0, 0], b: [Int32] = [0, 0]
        #expect(pipe(&a) == 0 && pipe(&b) == 0)
        try System.sendMessage(conn, Array("first".utf8), descriptors: [a[1]])
        try System.sendMessage(conn, Array("second".utf8), descriptors: [b[1], b[1]])
        try System.sendMessage(conn, Array("end".utf8))
        System.close(a[1]); System.close(b[1])

        let m1 = try #require(try System.receiveMessage(client))
        #expect(String(decoding: m1.bytes, as: UTF8.self) == "first" && m1.descriptors.count == 1)
        let m2 = try #require(try System.receiveMessage(client))
        #expect(String(decoding: m2.bytes, as: UTF8.self) == "second" && m2.descriptors.count == 2)
        let m3 = try #require(try System.receiveMessage(client))
        #expect(String(decoding: m3.bytes, as: UTF8.self) == "end" && m3.descriptors.isEmpty)

        // The received descriptor writes into the pipe the sender created.
        #expect(write(m1.descriptors[0], "x", 1) == 1)
        var byte: UInt8 = 0
        #expect(read(a[0], &byte, 1) == 1 && byte == UInt8(ascii: "x"))
        for d in m1.descriptors + m2.descriptors { System.close(d) }
        System.close(a[0]); System.close(b[0])

        // The peer closing is EOF, not an error.
        System.close(conn)
        server = nil
        #expect(try System.receiveMessage(client) == nil)
    }

    @Test func aSuccessorsSocketFileIsLeftInPlace() throws {
        let dir = tempDir()
        let path = dir + "/t.sock"
        let first = try System.listenUnixSeqpacket(path)
        let mine = System.fileIdentity(path)
        // A successor replaces the file with its own socket.
        let second = try System.listenUnixSeqpacket(path)
        defer { System.close(second); System.removeSocketFile(path); rmdir(dir) }
        System.close(first)
        System.removeSocketFile(path, ifStill: mine)
        #expect(System.fileIdentity(path) != nil)
        let c = try System.connectUnixSeqpacket(path)
        System.close(c)
    }
}
