import FlowgateSystem

/// Bytes received and not yet consumed (or queued and not yet sent), in one
/// malloc'd block: [start, end) is live. Blocks of the standard size come
/// from and go back to the worker's `HTTPBufferPool`, so a keep-alive
/// request costs no malloc while an idle connection still holds no buffer.
/// Freed explicitly by the owner.
struct ByteQueue {
    private(set) var base: UnsafeMutableRawPointer?
    private(set) var capacity = 0
    private(set) var start = 0
    private(set) var end = 0
    /// The worker's block pool (owned by its TCPService, which outlives every connection).
    unowned(unsafe) let pool: HTTPBufferPool

    init(pool: HTTPBufferPool) { self.pool = pool }

    var count: Int { end - start }
    var isEmpty: Bool { end == start }
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base.map { $0 + start }, count: end - start) }

    /// Room for at least `n` more bytes at the end (compacts first, then grows).
    mutating func reserve(_ n: Int) {
        if capacity - end >= n { return }
        if base == nil && n <= HTTPBufferPool.blockSize {
            base = pool.take(); capacity = HTTPBufferPool.blockSize
            return
        }
        if start > 0, let b = base {
            if end > start { (b).copyMemory(from: b + start, byteCount: end - start) }
            end -= start; start = 0
            if capacity - end >= n { return }
        }
        let newCapacity = max(capacity * 2, end + n, HTTPBufferPool.blockSize)
        let nb = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
        if let b = base { nb.copyMemory(from: b, byteCount: end); release(b) }
        base = nb; capacity = newCapacity
    }

    mutating func append(_ p: UnsafeRawBufferPointer) {
        guard p.count > 0 else { return }
        reserve(p.count)
        (base! + end).copyMemory(from: p.baseAddress!, byteCount: p.count)
        end += p.count
    }

    mutating func append(_ a: [UInt8]) { a.withUnsafeBytes { append($0) } }

    mutating func append(_ s: StaticString) {
        s.withUTF8Buffer { append(UnsafeRawBufferPointer($0)) }
    }

    /// Appends `n` in decimal.
    mutating func appendDecimal(_ n: Int) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)   // 24 bytes: Int.max has 19 digits, plus the sign
        withUnsafeMutableBytes(of: &digits) { d in
            var v = n.magnitude, i = d.count
            repeat { i -= 1; d[i] = UInt8(truncatingIfNeeded: 0x30 + v % 10); v /= 10 } while v > 0
            if n < 0 { i -= 1; d[i] = 0x2D }
            append(UnsafeRawBufferPointer(rebasing: d[i...]))
        }
    }

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
        if let b = base { release(b) }
        base = nil; capacity = 0; start = 0; end = 0
    }

    private func release(_ b: UnsafeMutableRawPointer) {
        if capacity == HTTPBufferPool.blockSize { pool.give(b) } else { b.deallocate() }
    }
}

/// A worker's free list of HTTP buffer blocks (one per TCPService, touched
/// only on its thread). Bounded, so a burst leaves at most `maxFree` blocks
/// (4 MiB) cached per worker.
final class HTTPBufferPool {
    /// One read (HTTPConnection.readSize) or one head of the largest size plus what Flowgate adds.
    static let blockSize = 64 * 1024 + 4096
    static let maxFree = 64
    private var free: [UnsafeMutableRawPointer] = []

    init() { free.reserveCapacity(HTTPBufferPool.maxFree) }

    deinit { for b in free { b.deallocate() } }

    func take() -> UnsafeMutableRawPointer {
        free.popLast() ?? UnsafeMutableRawPointer.allocate(byteCount: HTTPBufferPool.blockSize, alignment: 16)
    }

    func give(_ b: UnsafeMutableRawPointer) {
        if free.count < HTTPBufferPool.maxFree { free.append(b) } else { b.deallocate() }
    }

    /// Blocks cached now (tests).
    var cached: Int { free.count }
}
