import FlowgateSystem

/// Bytes received and not yet consumed (or queued and not yet sent), in one
/// malloc'd block: [start, end) is live. Freed explicitly by the owner.
struct ByteQueue {
    private(set) var base: UnsafeMutableRawPointer?
    private(set) var capacity = 0
    private(set) var start = 0
    private(set) var end = 0

    var count: Int { end - start }
    var isEmpty: Bool { end == start }
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base.map { $0 + start }, count: end - start) }

    /// Room for at least `n` more bytes at the end (compacts first, then grows).
    mutating func reserve(_ n: Int) {
        if capacity - end >= n { return }
        if start > 0, let b = base {
            if end > start { (b).copyMemory(from: b + start, byteCount: end - start) }
            end -= start; start = 0
            if capacity - end >= n { return }
        }
        let newCapacity = max(capacity * 2, end + n, 16 * 1024)
        let nb = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
        if let b = base { nb.copyMemory(from: b, byteCount: end); b.deallocate() }
        base = nb; capacity = newCapacity
    }

    mutating func append(_ p: UnsafeRawBufferPointer) {
        guard p.count > 0 else { return }
        reserve(p.count)
        (base! + end).copyMemory(from: p.baseAddress!, byteCount: p.count)
        end += p.count
    }

    mutating func append(_ a: [UInt8]) { a.withUnsafeBytes { append($0) } }

    mutating func consume(_ n: Int) {
        start += n
        if start == end { start = 0; end = 0 }
    }

    /// recv up to `max` bytes into the free space: > 0 read, 0 EOF, nil would block.
    mutating func receive(_ fd: Int32, max: Int) throws(SystemError) -> Int? {
        reserve(max)
        let n = try System.receive(fd, base! + end, max)
        if let n, n > 0 { end += n }
        return n
    }

    /// send what is queued: the bytes sent.
    mutating func send(_ fd: Int32) throws(SystemError) -> Int {
        guard count > 0, let b = base else { return 0 }
        let n = try System.send(fd, b + start, count)
        consume(n)
        return n
    }

    mutating func free() {
        base?.deallocate(); base = nil; capacity = 0; start = 0; end = 0
    }
}
