import CFlowgateSys

/// An owned recvmmsg/sendmmsg batch (CFlowgateSys's fg_mmsg_batch). The relay
/// owns its two batches through this and calls the C functions on `pointer`
/// on the hot path; tests use the methods, so that code outside this module
/// never imports the C target (whose _GNU_SOURCE socket headers clash with
/// Glibc's declarations in a Swift module that imports both).
final class DatagramBatch {
    let pointer: OpaquePointer

    init?(slots: Int, slotBytes: Int) {
        guard let p = fg_batch_create(UInt32(slots), slotBytes) else { return nil }
        pointer = p
    }

    deinit { fg_batch_destroy(pointer) }

    /// Copies `bytes` into slot `i` and sets its length.
    func set(_ i: Int, _ bytes: [UInt8]) {
        let p = fg_batch_buffer(pointer, UInt32(i))!
        for (j, b) in bytes.enumerated() { p[j] = b }
        fg_batch_set_length(pointer, UInt32(i), bytes.count)
    }

    func setDestination(_ i: Int, _ address: UDPAddress) {
        address.withSockaddr { fg_batch_set_addr(pointer, UInt32(i), $0, $1) }
        fg_batch_set_source(pointer, UInt32(i), nil)
    }

    /// Slots [first, first+count) on a connected socket: datagrams sent, or -1.
    func sendConnected(_ fd: Int32, first: Int, count: Int) -> Int {
        Int(fg_batch_send_connected(fd, pointer, UInt32(first), UInt32(count)))
    }

    /// Slots [first, first+count) to their own destinations: datagrams sent, or -1.
    func send(_ fd: Int32, first: Int, count: Int) -> Int {
        Int(fg_batch_send(fd, pointer, UInt32(first), UInt32(count)))
    }

    /// UDP_SEGMENT sends this batch made so far.
    var gsoSends: Int { Int(fg_batch_gso_sends(pointer)) }
    /// GSO for this batch (on unless switched off here or refused by the kernel).
    func setGSO(_ on: Bool) { fg_batch_set_gso(pointer, on ? 1 : 0) }
    /// False once the kernel refused UDP_SEGMENT.
    static var gsoAvailable: Bool { fg_gso_available() != 0 }
}
