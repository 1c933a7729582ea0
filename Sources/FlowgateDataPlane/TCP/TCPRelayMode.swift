/// How a TCP connection moves bytes (`FLOWGATE_TCP_RELAY`).
///
/// - `adaptive` (default): every direction starts with `recv`/`send` through
///   the worker's scratch buffer (1 syscall each way per message) and
///   switches to splice(2) through a pooled 1 MiB pipe once one read
///   returns at least `bulkRead` bytes; it goes back to copying after
///   `smallSplicesBeforeCopy` splices in a row under `smallSplice` bytes.
///   Small request/response traffic pays for splice's pipe hop in the kernel
///   without any copy saved; bulk streams win with it (issue 7: "only use
///   them for bulk flows"; HAProxy likewise splices only past a size,
///   src/raw_sock.c, and measured per metric in the commit introducing this).
/// - `copy`: always recv/send.
/// - `splice`: always splice (the previous default).
enum TCPRelayMode: Equatable {
    case adaptive, copy, splice

    static let bulkRead = 64 * 1024
    static let smallSplice = 16 * 1024
    static let smallSplicesBeforeCopy: UInt8 = 4

    init(environment value: String?) {
        switch value {
        case "copy": self = .copy
        case "splice": self = .splice
        default: self = .adaptive
        }
    }
}
