// Reading this process's descriptor table from /proc (proc(5)), for the
// port-conflict check of `port_ranges: lookup`
// (Sources/FlowgateDataPlane/Listeners/PortConflicts.swift).
#if canImport(Glibc)
import Glibc
#endif

extension System {
    /// The descriptor numbers open now.
    public static func openDescriptors() -> [Int32] {
        guard let dir = opendir("/proc/self/fd") else { return [] }
        defer { closedir(dir) }
        var out: [Int32] = []
        while let e = readdir(dir) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if let n = Int32(name) { out.append(n) }
        }
        return out
    }

    /// readlink(2), nil on failure.
    public static func readLink(_ path: String) -> String? {
        var buf = [CChar](repeating: 0, count: 256)
        let n = buf.withUnsafeMutableBufferPointer { readlink(path, $0.baseAddress!, 255) }
        guard n > 0 else { return nil }
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
