import FlowgateSystem

/// Which end of a proxied connection a descriptor belongs to.
/// Which end of a proxied connection a failed call concerned (the worker's
/// splice pipe counts as its own).
enum TCPSide: String {
    case client, backend, pipe
}

/// What one step of a channel ended with; the connection acts on it (events,
/// counters, closing), so a channel never reaches back into its connection.
enum TCPChannelStep {
    /// The source is drained (or the destination took everything pending).
    case idle
    /// The source still has bytes: the read stopped after its fair share of
    /// rounds. The socket's edge-triggered watch will not fire again for
    /// them, so the connection schedules another read itself.
    case more
    /// The destination is full: `held` bytes wait in the channel, whose
    /// source must not be read until they are out.
    case blocked(held: Int)
    /// The source sent EOF (nothing of it is pending).
    case ended
    /// A call failed on `side`'s descriptor.
    case failed(SystemError, TCPSide)
}

/// One direction of a proxied connection, as HAProxy keeps one channel per
/// direction: bytes read from `source` and written to `destination`, and
/// what the destination has not taken yet (a buffer of exactly the unsent
/// remainder, or the splice pipe holding it). The sockets' events belong to
/// the connection (one edge-triggered watch per socket serves both channels).
///
/// Two ways to move bytes, chosen per channel (`TCPRelayMode`): copy
/// (`recv` into the worker's scratch buffer, `send` at once) and splice
/// (socket → pooled pipe → socket). Only when the destination is full does a
/// channel keep bytes (at most `readSize`, since no read is larger); its
/// source is then not read until they are out, so backpressure reaches the
/// sender through TCP's own window. docs/benchmark.md has the measurements
/// behind both modes.
struct TCPChannel {
    var source: Int32
    var destination: Int32
    let sourceSide: TCPSide
    let destinationSide: TCPSide
    /// Copy mode's unsent remainder: bytes [start, end) of `pending`.
    private(set) var pending: UnsafeMutableRawPointer?
    private(set) var start = 0
    private(set) var end = 0
    /// Splice mode's pipe while it holds `inPipe` unsent bytes.
    private(set) var pipe: (read: Int32, write: Int32)?
    private(set) var inPipe = 0
    /// The source sent EOF.
    var ended = false
    /// A wakeup reported the source's FIN (EPOLLRDHUP), possibly while the
    /// channel was blocked and did not read: kept, because the edge that
    /// announced it does not come again (TCPChannel.relay's short read).
    var sourceClosed = false
    /// Bytes the destination accepted so far.
    private(set) var bytes = 0
    /// Adaptive mode: this channel proved bulk and splices.
    private(set) var bulk = false
    /// Consecutive small splices while bulk (hysteresis back to copy).
    private var smallSplices: UInt8 = 0

    init(from source: Int32, _ sourceSide: TCPSide, to destination: Int32, _ destinationSide: TCPSide) {
        self.source = source; self.sourceSide = sourceSide
        self.destination = destination; self.destinationSide = destinationSide
    }

    /// Bytes read from the source and not yet accepted by the destination.
    var pendingCount: Int { end - start + inPipe }

    // MARK: relay

    /// `relay` unless the channel holds bytes its destination has not taken
    /// (flush reads again once they are out) or its source ended; nil then.
    /// `peerClosed`: this wakeup reported the source's FIN. One access to
    /// the channel for the check and the relay (each access of a class's
    /// stored struct is an exclusivity check).
    mutating func relayIfReadable(_ service: TCPService, peerClosed: Bool, moved: inout Int) -> TCPChannelStep? {
        if peerClosed { sourceClosed = true }
        guard !ended, pendingCount == 0 else { return nil }
        return relay(service, moved: &moved)
    }

    /// `flush` when something is pending; nil otherwise.
    mutating func flushIfPending(_ service: TCPService, moved: inout Int, released: inout Int) -> TCPChannelStep? {
        guard pendingCount > 0 else { return nil }
        return flush(service, moved: &moved, released: &released)
    }

    /// The source is readable: move what it has to the destination, at most
    /// four full reads (then yield so other connections on the loop get
    /// their turn). `moved` grows by the bytes the destination accepted.
    /// `sourceClosed` says whether a wakeup has reported the source's FIN.
    mutating func relay(_ service: TCPService, moved: inout Int) -> TCPChannelStep {
        switch service.relayMode {
        case .splice: return spliceRelay(service, moved: &moved)
        case .adaptive: if bulk { return spliceRelay(service, moved: &moved) }
        case .copy: break
        }
        let scratch = service.worker.scratch
        let cap = service.readSize
        let adaptive = service.relayMode == .adaptive
        var rounds = 0
        while true {
            let n: Int?
            do { n = try System.receive(source, scratch, cap) } catch { return .failed(error, sourceSide) }
            guard let n else { return .idle }
            if n == 0 { return .ended }
            let sent: Int
            do { sent = try System.send(destination, scratch, n) } catch { return .failed(error, destinationSide) }
            if sent > 0 { bytes += sent; moved += sent }
            // A read this large says bulk: this channel splices from now on.
            if adaptive && n >= TCPRelayMode.bulkRead { bulk = true }
            if sent < n {
                let count = n - sent
                let buffer = UnsafeMutableRawPointer.allocate(byteCount: count, alignment: 16)
                buffer.copyMemory(from: scratch + sent, byteCount: count)
                pending = buffer; start = 0; end = count
                return .blocked(held: count)
            }
            rounds += 1
            // A short read means the socket is drained. If the FIN had
            // arrived before this wakeup (or an earlier one), every byte
            // before it was queued and is now read: what is left is the EOF, so the recv that
            // would only return 0 is skipped (one call per direction that
            // ends together with its last data, e.g. a response with
            // Connection: close). A reset is not mistaken for a FIN: it
            // raises EPOLLERR, which libevent reports as read|write without
            // EV_CLOSED, so the next recv still returns the error and the
            // reset is passed on. The one short read that is not a drain
            // stops at a TCP urgent mark; the relay never carried urgent
            // data (the byte stays out of band), so nothing new is lost.
            if n < cap && sourceClosed { return .ended }
            if n < cap { return .idle }
            if rounds == 4 { return .more }
            if bulk { return spliceRelay(service, moved: &moved) }
        }
    }

    /// socket → pipe → socket without copying through user space. The pipe
    /// comes from the worker's pool and goes back as soon as it is empty, so
    /// like the scratch buffer it is shared by every connection that is not
    /// blocked; only a channel whose destination is full keeps one (HAProxy
    /// pools its pipes the same way, src/pipe.c).
    private mutating func spliceRelay(_ service: TCPService, moved: inout Int) -> TCPChannelStep {
        let p: (read: Int32, write: Int32)
        do { p = try service.takePipe() } catch { return .failed(error, .pipe) }
        let cap = service.readSize
        let adaptive = service.relayMode == .adaptive
        var rounds = 0, total = 0
        // Read until EAGAIN: unlike recv, a short splice does not mean the
        // socket is drained (one non-blocking tcp_splice_read stops when the
        // pipe runs out of slots), and the edge-triggered watch announces
        // only new data. One splice more per wakeup, on bulk transfers only.
        while true {
            let n: Int?
            do { n = try System.splice(from: source, to: p.write, cap) } catch {
                service.returnPipe(p, empty: true)
                return .failed(error, sourceSide)
            }
            guard let n else {
                service.returnPipe(p, empty: true)
                if adaptive && rounds > 0 { noteSplice(small: total < TCPRelayMode.smallSplice) }
                return .idle
            }
            if n == 0 { service.returnPipe(p, empty: true); return .ended }
            let out: Int
            do { out = try System.splice(from: p.read, to: destination, n) ?? 0 } catch {
                service.returnPipe(p, empty: false)
                return .failed(error, destinationSide)
            }
            if out > 0 { bytes += out; moved += out }
            if out < n {
                pipe = p; inPipe = n - out
                return .blocked(held: n - out)
            }
            rounds += 1; total += n
            if rounds == 4 {
                service.returnPipe(p, empty: true)
                if adaptive { noteSplice(small: false) }
                return .more
            }
        }
    }

    /// Once per splice callback: under `smallSplice` bytes in all
    /// `smallSplicesBeforeCopy` times in a row means small again (e.g. a bulk
    /// download followed by keep-alive requests): back to recv/send.
    private mutating func noteSplice(small: Bool) {
        if !small { smallSplices = 0; return }
        smallSplices &+= 1
        if smallSplices >= TCPRelayMode.smallSplicesBeforeCopy { bulk = false; smallSplices = 0 }
    }

    // MARK: flush

    /// The destination is writable again: send what is pending. `.idle` once
    /// all of it is out (the buffer freed, the pipe back in the pool);
    /// `.blocked` while some remains. `released` grows by the bytes that
    /// left the pending store (for the worker's pending gauge).
    mutating func flush(_ service: TCPService, moved: inout Int, released: inout Int) -> TCPChannelStep {
        if let p = pipe {
            guard inPipe > 0 else { return .idle }
            let out: Int
            do { out = try System.splice(from: p.read, to: destination, inPipe) ?? 0 } catch { return .failed(error, destinationSide) }
            if out > 0 { bytes += out; moved += out; released += out; inPipe -= out }
            if inPipe > 0 { return .blocked(held: inPipe) }
            pipe = nil
            service.returnPipe(p, empty: true)
            return .idle
        }
        guard let buffer = pending, end > start else { return .idle }
        let sent: Int
        do { sent = try System.send(destination, buffer + start, end - start) } catch { return .failed(error, destinationSide) }
        if sent > 0 { bytes += sent; moved += sent; released += sent; start += sent }
        if start < end { return .blocked(held: end - start) }
        buffer.deallocate()
        pending = nil; start = 0; end = 0
        return .idle
    }

    // MARK: end

    /// Frees the channel's buffer and pipe (the connection frees the events
    /// and closes the sockets); returns the bytes that were still pending.
    mutating func release() -> Int {
        let held = pendingCount
        pending?.deallocate(); pending = nil; start = 0; end = 0
        if let p = pipe { System.close(p.read); System.close(p.write) }
        pipe = nil; inPipe = 0
        return held
    }
}
