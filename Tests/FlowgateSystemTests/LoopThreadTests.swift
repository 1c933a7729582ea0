#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import Testing
import FlowgateSystem

/// The one loop-thread machine every thread of the daemon runs on: posts,
/// timers and descriptor watches on a real pthread and libevent base.
@Suite(.serialized) struct LoopThreadTests {
    @Test func postsRunOnTheLoopThreadInOrder() throws {
        let loop = try LoopThread(name: "test-posts")
        #expect(!loop.isOnLoopThread)
        loop.start()
        let seen = Mutex<[Int]>([])
        let onLoop = Mutex(true)
        let done = Latch(1)
        for i in 0..<100 {
            loop.post {
                if !loop.isOnLoopThread { onLoop.withLock { $0 = false } }
                seen.withLock { $0.append(i) }
                if i == 99 { done.countDown() }
            }
        }
        #expect(done.wait(timeout: 5))
        #expect(seen.withLock { $0 } == Array(0..<100))
        #expect(onLoop.withLock { $0 })
        loop.stopAndJoin()
    }

    @Test func everyRepeatsUntilCancelledAndAfterFiresOnce() throws {
        let loop = try LoopThread(name: "test-timers")
        loop.start()
        let ticks = Atomic(0), onceFired = Atomic(0)
        let threeTicks = Latch(3)
        let box = Mutex<LoopTimer?>(nil)
        loop.post {
            box.withLock { $0 = loop.every(0.01) { ticks.add(1, ordering: .relaxed); threeTicks.countDown() } }
            loop.after(0.01) { onceFired.add(1, ordering: .relaxed) }   // result discarded: still fires
        }
        #expect(threeTicks.wait(timeout: 5))
        let cancelled = Latch(1)
        loop.post { box.withLock { $0?.cancel(); $0 = nil }; cancelled.countDown() }
        #expect(cancelled.wait(timeout: 5))
        let atCancel = ticks.load(ordering: .relaxed)
        usleep(100_000)
        #expect(ticks.load(ordering: .relaxed) == atCancel)
        #expect(onceFired.load(ordering: .relaxed) == 1)
        loop.stopAndJoin()
    }

    @Test func watchReportsReadinessAndDisableStopsIt() throws {
        var fds: [Int32] = [-1, -1]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        let loop = try LoopThread(name: "test-watch")
        loop.start()
        let reads = Atomic(0)
        let readable = Latch(1)
        let box = Mutex<IOWatch?>(nil)
        let reader = fds[0]
        loop.post {
            box.withLock {
                $0 = loop.watch(fd: reader, events: .read) { r in
                    if r.contains(.read) {
                        var b: UInt8 = 0
                        _ = recv(reader, &b, 1, 0)
                        if reads.add(1, ordering: .relaxed).newValue == 1 { readable.countDown() }
                    }
                }
            }
        }
        var byte: UInt8 = 1
        _ = send(fds[1], &byte, 1, 0)
        #expect(readable.wait(timeout: 5))
        let disabled = Latch(1)
        loop.post { box.withLock { $0?.disable() }; disabled.countDown() }
        #expect(disabled.wait(timeout: 5))
        _ = send(fds[1], &byte, 1, 0)
        usleep(100_000)
        #expect(reads.load(ordering: .relaxed) == 1)
        let enabled = Latch(1)
        loop.post { box.withLock { $0?.enable(.read) }; enabled.countDown() }
        #expect(enabled.wait(timeout: 5))
        for _ in 0..<500 where reads.load(ordering: .relaxed) < 2 { usleep(1_000) }
        #expect(reads.load(ordering: .relaxed) == 2)
        // A different interest replaces the watched events: a socket with
        // room in its send buffer reports writable.
        let writable = Latch(1)
        let writes = Atomic(0)
        loop.post {
            box.withLock { $0?.cancel(); $0 = nil }
            box.withLock {
                $0 = loop.watch(fd: reader, events: .read) { r in
                    if r.contains(.write), writes.add(1, ordering: .relaxed).newValue == 1 { writable.countDown() }
                }
                $0?.enable(.write)
            }
        }
        #expect(writable.wait(timeout: 5))
        loop.post { box.withLock { $0?.cancel(); $0 = nil } }
        loop.stopAndJoin()
    }

    /// The daemon's drain timer cancels itself and drops the last reference
    /// to its handle from inside its own callback: the handle lives to the
    /// end of the call and never fires again.
    @Test func aTimerCancellingAndDroppingItselfInItsCallbackIsSafe() throws {
        let loop = try LoopThread(name: "test-selfcancel")
        loop.start()
        final class Holder: @unchecked Sendable { var timer: LoopTimer? }
        let holder = Holder()
        let fired = Atomic(0)
        let stopped = Latch(1)
        loop.post {
            holder.timer = loop.every(0.005) {
                if fired.add(1, ordering: .relaxed).newValue == 2 {
                    holder.timer?.cancel()
                    holder.timer = nil
                    stopped.countDown()
                }
            }
        }
        #expect(stopped.wait(timeout: 5))
        usleep(50_000)
        #expect(fired.load(ordering: .relaxed) == 2)
        loop.stopAndJoin()
    }

    /// A timer still armed when the loop goes is freed with its base, before
    /// it: the handle's later release touches nothing freed.
    @Test func aTimerOutlivingItsLoopIsFreedWithTheBase() throws {
        var timer: LoopTimer?
        do {
            let loop = try LoopThread(name: "test-outlive")
            loop.start()
            timer = loop.every(10) {}
            loop.stopAndJoin()
        }
        timer?.cancel()
        timer = nil
    }
}

struct SystemErrorTests {
    @Test func aSecondBindOnOnePortIsAddressInUse() throws {
        let a = try System.streamSocket(family: AF_INET)
        defer { System.close(a) }
        try System.bind(a, SocketAddress(ipv4: 0x7f00_0001, port: 0))
        try System.listen(a, backlog: 1)
        let port = try System.localAddress(a).port
        let b = try System.streamSocket(family: AF_INET)
        defer { System.close(b) }
        do {
            try System.bind(b, SocketAddress(ipv4: 0x7f00_0001, port: UInt16(port)))
            Issue.record("second bind succeeded")
        } catch {
            #expect(error.isAddressInUse)
            #expect(!error.isPermissionDenied && !error.isDescriptorLimit)
        }
    }

    @Test func addressesPrintAsTheKernelHasThem() {
        #expect(SocketAddress(ipv4: 0x7f00_0001, port: 80).description == "127.0.0.1:80")
        #expect(SocketAddress(ipv6: 0, 1, port: 443).description == "[::1]:443")
        #expect(SocketAddress(ipv6: 0, 0xffff_0a00_0001, port: 53).description == "10.0.0.1:53")
    }
}

struct PrometheusWriterTests {
    @Test func labelValuesAreEscaped() {
        var w = PrometheusWriter()
        w.family("x_total", .counter, "Help.", [([("op", "a\"b\\c\nd")], 2)])
        #expect(w.text == "# HELP x_total Help.\n# TYPE x_total counter\nx_total{op=\"a\\\"b\\\\c\\nd\"} 2\n")
    }
}
