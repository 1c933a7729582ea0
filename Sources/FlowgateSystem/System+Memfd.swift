// The sealed memfd that carries the takeover state blob
// (docs/architecture.md §16.2; CFlowgateSys memfd.c).
#if canImport(Glibc)
import Glibc
#endif
import CFlowgateSys

extension System {
    /// A memfd with `bytes`, sealed against write, grow, shrink and further
    /// seals; the caller owns the descriptor.
    public static func sealedMemfd(name: String, _ bytes: [UInt8]) throws(SystemError) -> Int32 {
        try retrying("memfd_create") { bytes.withUnsafeBytes { fg_sealed_memfd(name, $0.baseAddress, UInt($0.count)) } }
    }

    /// The whole content of a received memfd, refused unless it carries all
    /// four seals (an unsealed one could change while it is read) and is at
    /// most `limit` bytes.
    public static func readSealedMemfd(_ fd: Int32, limit: Int) throws(SystemError) -> [UInt8] {
        let sealed = fg_is_fully_sealed(fd)
        if sealed < 0 { throw SystemError("fcntl(F_GET_SEALS)", errno) }
        if sealed == 0 { throw SystemError("fcntl(F_GET_SEALS): not sealed", EPERM) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw SystemError("fstat", errno) }
        let size = Int(st.st_size)
        guard size <= limit else { throw SystemError("memfd larger than \(limit) bytes", EFBIG) }
        var out = [UInt8](repeating: 0, count: size)
        var done = 0
        while done < size {
            let n = out.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, size - done, off_t(done)) }
            if n < 0 { if errno == EINTR { continue }; throw SystemError("pread", errno) }
            if n == 0 { throw SystemError("pread (short)", EIO) }
            done += n
        }
        return out
    }
}
