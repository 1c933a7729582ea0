/// How a TCP connection moves bytes (`FLOWGATE_TCP_RELAY`).
///
/// - `adaptive` (default): every direction starts with `recv`/`send` through
///   the worker's scratch buffer (1 syscall each way per message) and
///   switches to splice(2) through a pooled 1 MiB pipe once one read
///   returns at least `bulkRead` bytes; it goes back to copying after
///   `smallSplicesBeforeCopy` drained splices in a row under `smallSplice`
///   bytes (4 KiB, 8 in a row: with 16 KiB and 4, one iperf3 stream fell
///   back to copy between bursts and lost ~7% against always-splice).
///   Small request/response traffic pays for splice's pipe hop in the kernel
///   without any copy saved; bulk streams win with it (issue 7: "only use
///   them for bulk flows"; HAProxy likewise only splices when at least
///   MIN_SPLICE_FORWARD bytes are to be forwarded; measured per metric in
///   the commits introducing this).
/// - `copy`: always recv/send.
/// - `splice`: always splice (the previous default).
enum TCPRelayMode: Equatable {
    case adaptive, copy, splice

    static let bulkRead = 64 * 1024
    static let smallSplice = 4 * 1024
    static let smallSplicesBeforeCopy: UInt8 = 8

    init(environment value: String?) {
        switch value {
        case "copy": self = .copy
        case "splice": self = .splice
        default: self = .adaptive
        }
    }
}
