#if canImport(Glibc)
import Glibc
#endif
import CFlowgateSys

/// An owned recvmmsg/sendmmsg batch (CFlowgateSys's fg_mmsg_batch): per
/// slot a payload buffer, a peer address and a control buffer, allocated
/// once. The UDP relay's hot path calls these (inlinable, so no call more
/// than the C function itself); failures come back as `SystemError`, so no
/// caller reads errno after a batch call.
public final class DatagramBatch {
    @usableFromInline let pointer: OpaquePointer

    public init?(slots: Int, slotBytes: Int) {
        guard let p = fg_batch_create(UInt32(slots), slotBytes) else { return nil }
        pointer = p
    }

    deinit { fg_batch_destroy(pointer) }

    // MARK: receiving

    /// recvmmsg into up to `max` slots, with peer addresses and PKTINFO:
    /// datagrams received, 0 when none is queued.
    @inlinable @inline(__always)
    public func receive(_ fd: Int32, max: UInt32) throws(SystemError) -> Int {
        let n = fg_batch_recv(fd, pointer, max)
        if n >= 0 { return Int(n) }
        let e = SystemError.last("recvmmsg")
        if e.isWouldBlock { return 0 }
        throw e
    }

    /// recvmmsg on a connected socket (no addresses): datagrams received, 0
    /// when none is queued. A refused earlier send surfaces here as
    /// `isConnectionRefused`.
    @inlinable @inline(__always)
    public func receiveConnected(_ fd: Int32, max: UInt32) throws(SystemError) -> Int {
        let n = fg_batch_recv_connected(fd, pointer, max)
        if n >= 0 { return Int(n) }
        let e = SystemError.last("recvmmsg")
        if e.isWouldBlock { return 0 }
        throw e
    }

    /// Bytes received into (or to send from) slot `i`.
    @inlinable @inline(__always)
    public func length(_ i: UInt32) -> Int { fg_batch_length(pointer, i) }

    /// Slot `i`'s peer address as received.
    @inlinable @inline(__always)
    public func address(_ i: UInt32) -> (UnsafePointer<sockaddr>, socklen_t) {
        (UnsafePointer(fg_batch_addr(pointer, i)!), fg_batch_addr_len(pointer, i))
    }

    /// The local address a datagram was sent to (IP_PKTINFO/IPV6_PKTINFO);
    /// false when the socket does not report it.
    @inlinable @inline(__always)
    public func localAddress(_ i: UInt32, into out: inout sockaddr_storage) -> Bool {
        fg_batch_local_addr(pointer, i, &out) == 1
    }

    /// The address and port a datagram was sent to (IP_ORIGDSTADDR /
    /// IPV6_ORIGDSTADDR, BPF/System+BPF.swift); false when not reported.
    @inlinable @inline(__always)
    public func originalDestination(_ i: UInt32, into out: inout sockaddr_storage) -> Bool {
        fg_batch_orig_dst(pointer, i, &out) == 1
    }

    // MARK: sending

    @inlinable @inline(__always)
    public func setAddress(_ i: UInt32, _ sa: UnsafePointer<sockaddr>, _ length: socklen_t) {
        fg_batch_set_addr(pointer, i, sa, length)
    }

    /// Slot `i`'s source address (PKTINFO), or none.
    @inlinable @inline(__always)
    public func setSource(_ i: UInt32, _ sa: UnsafePointer<sockaddr>?) {
        fg_batch_set_source(pointer, i, sa)
    }

    /// Copies `bytes` into slot `i` and sets its length.
    public func set(_ i: Int, _ bytes: [UInt8]) {
        let p = fg_batch_buffer(pointer, UInt32(i))!
        for (j, b) in bytes.enumerated() { p[j] = b }
        fg_batch_set_length(pointer, UInt32(i), bytes.count)
    }

    /// Slots [first, first+count) on a connected socket, runs of equal sizes
    /// as UDP_SEGMENT sends: datagrams sent (maybe fewer: call again).
    @inlinable @inline(__always)
    public func sendConnected(_ fd: Int32, first: UInt32, count: UInt32) throws(SystemError) -> Int {
        let r = fg_batch_send_connected(fd, pointer, first, count)
        if r >= 0 { return Int(r) }
        throw SystemError.last("sendmmsg")
    }

    /// Slots [first, first+count) to their own addresses: datagrams sent.
    @inlinable @inline(__always)
    public func send(_ fd: Int32, first: UInt32, count: UInt32) throws(SystemError) -> Int {
        let r = fg_batch_send(fd, pointer, first, count)
        if r >= 0 { return Int(r) }
        throw SystemError.last("sendmmsg")
    }

    // MARK: UDP_SEGMENT

    /// UDP_SEGMENT sends this batch made so far.
    public var gsoSends: Int { Int(fg_batch_gso_sends(pointer)) }
    /// GSO for this batch (on unless switched off here or refused by the kernel).
    public func setGSO(_ on: Bool) { fg_batch_set_gso(pointer, on ? 1 : 0) }
    /// False once the kernel refused UDP_SEGMENT (then off for the process).
    public static var gsoAvailable: Bool { fg_gso_available() != 0 }
}
