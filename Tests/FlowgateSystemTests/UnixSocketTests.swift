#if canImport(Glibc)
import Glibc
#endif
import Testing
import FlowgateSystem

/// The control socket's listener: created 0600, a stale socket file from a
/// previous run replaced, any other file left alone.
struct UnixSocketTests {
    private func tempDir() -> String {
        var template = Array("/tmp/flowgate-unix-XXXXXX".utf8CString)
        let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        return String(cString: p!)
    }

    @Test func listenUnixIsOwnerOnlyAndReplacesAStaleSocket() throws {
        let dir = tempDir()
        let path = dir + "/sub/control.sock"
        let first = try System.listenUnix(path)
        System.close(first)   // the file stays: a stale socket
        let fd = try System.listenUnix(path)
        defer { System.close(fd); unlink(path); rmdir(dir + "/sub"); rmdir(dir) }
        var st = stat()
        #expect(lstat(path, &st) == 0)
        #expect(st.st_mode & 0o777 == 0o600)
        let client = try System.connectUnix(path)
        System.close(client)
    }

    @Test func aRegularFileAtThePathIsNotRemoved() throws {
        let dir = tempDir()
        let path = dir + "/control.sock"
        let f = try System.createFile(path)
        System.close(f)
        defer { unlink(path); rmdir(dir) }
        #expect(throws: SystemError.self) { _ = try System.listenUnix(path) }
        var st = stat()
        #expect(lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG)
    }
}
