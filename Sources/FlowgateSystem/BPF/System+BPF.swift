// Typed calls over the bpf() system call (Sources/CFlowgateSys/bpf.c): only
// what the sk_lookup port steering needs (docs/architecture.md §20).
#if canImport(Glibc)
import Glibc
#endif
import CFlowgateSys

/// Kernel numbers from include/uapi/linux/bpf.h (stable ABI).
public enum BPFConstant {
    public static let mapTypeLPMTrie: UInt32 = 11
    public static let mapTypeSockmap: UInt32 = 15
    public static let progTypeSkLookup: UInt32 = 30
    public static let attachSkLookup: UInt32 = 36
    /// BPF_F_NO_PREALLOC: required by LPM tries.
    public static let noPrealloc: UInt32 = 1
    /// BPF_ANY / BPF_NOEXIST for map updates.
    public static let updateAny: UInt64 = 0
}

extension System {
    /// BPF_MAP_CREATE; returns the map's descriptor (close-on-exec).
    public static func bpfMapCreate(type: UInt32, keySize: Int, valueSize: Int, maxEntries: Int, flags: UInt32 = 0,
                                    name: String) throws(SystemError) -> Int32 {
        try retrying("bpf(BPF_MAP_CREATE)") {
            fg_bpf_map_create(type, UInt32(keySize), UInt32(valueSize), UInt32(maxEntries), flags, name)
        }
    }

    /// BPF_MAP_UPDATE_ELEM; a socket map's value is the socket's descriptor.
    public static func bpfMapUpdate(_ map: Int32, key: [UInt8], value: [UInt8], flags: UInt64 = BPFConstant.updateAny) throws(SystemError) {
        while true {
            let r = key.withUnsafeBytes { k in value.withUnsafeBytes { v in fg_bpf_map_update(map, k.baseAddress, v.baseAddress, flags) } }
            if r >= 0 { return }
            if errno == EINTR { continue }
            throw SystemError.last("bpf(BPF_MAP_UPDATE_ELEM)")
        }
    }

    /// BPF_MAP_DELETE_ELEM; ENOENT (already gone) is not an error.
    public static func bpfMapDelete(_ map: Int32, key: [UInt8]) throws(SystemError) {
        while true {
            let r = key.withUnsafeBytes { k in fg_bpf_map_delete(map, k.baseAddress) }
            if r >= 0 { return }
            let e = errno
            if e == EINTR { continue }
            if e == ENOENT { return }
            throw SystemError("bpf(BPF_MAP_DELETE_ELEM)", e)
        }
    }

    /// BPF_MAP_LOOKUP_ELEM into `valueSize` bytes; nil when the key is absent.
    public static func bpfMapLookup(_ map: Int32, key: [UInt8], valueSize: Int) throws(SystemError) -> [UInt8]? {
        var value = [UInt8](repeating: 0, count: valueSize)
        while true {
            let r = key.withUnsafeBytes { k in value.withUnsafeMutableBytes { v in fg_bpf_map_lookup(map, k.baseAddress, v.baseAddress) } }
            if r >= 0 { return value }
            let e = errno
            if e == EINTR { continue }
            if e == ENOENT { return nil }
            throw SystemError("bpf(BPF_MAP_LOOKUP_ELEM)", e)
        }
    }

    /// BPF_PROG_LOAD of hand-encoded instructions (8 bytes each). On a
    /// refusal the error carries the verifier's log, which says why.
    public static func bpfProgramLoad(type: UInt32, expectedAttach: UInt32, instructions: [UInt8], license: String = "GPL",
                                      name: String) throws(BPFLoadError) -> Int32 {
        var log = [CChar](repeating: 0, count: 64 * 1024)
        let count = UInt32(instructions.count / 8)
        while true {
            let fd = instructions.withUnsafeBytes { insns in
                log.withUnsafeMutableBufferPointer { l in
                    fg_bpf_prog_load(type, insns.baseAddress, count, license, expectedAttach, l.baseAddress, UInt32(l.count), name)
                }
            }
            if fd >= 0 { return fd }
            let e = errno
            if e == EINTR { continue }
            let text = log.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            throw BPFLoadError(error: SystemError("bpf(BPF_PROG_LOAD)", e), verifierLog: text)
        }
    }

    /// BPF_LINK_CREATE: attaches a program to `target` (for sk_lookup, a
    /// network namespace's descriptor). The program stays attached while
    /// the link's descriptor is open.
    public static func bpfLinkCreate(program: Int32, target: Int32, attachType: UInt32) throws(SystemError) -> Int32 {
        try retrying("bpf(BPF_LINK_CREATE)") { fg_bpf_link_create(program, target, attachType) }
    }

    /// open(path, O_RDONLY | O_CLOEXEC), e.g. /proc/self/ns/net.
    public static func openReadOnly(_ path: String) throws(SystemError) -> Int32 {
        try retrying("open(\(path))") { open(path, O_RDONLY | O_CLOEXEC) }
    }

    /// IP_RECVORIGDSTADDR (and IPV6_RECVORIGDSTADDR on AF_INET6): each
    /// datagram carries the address and port it was sent to; a socket that
    /// sk_lookup steers many ports to learns the port each client reached.
    public static func enableOriginalDestination(_ fd: Int32, family: Int32) throws(SystemError) {
        _ = try retrying("setsockopt(ORIGDSTADDR)") { fg_enable_origdstaddr(fd, family) }
    }
}

/// A program the kernel refused, with the verifier's explanation.
public struct BPFLoadError: Error, Sendable, CustomStringConvertible {
    public var error: SystemError
    public var verifierLog: String
    public var description: String {
        let tail = verifierLog.split(separator: "\n").suffix(3).joined(separator: " | ")
        return tail.isEmpty ? error.description : "\(error.description): \(tail)"
    }
}
