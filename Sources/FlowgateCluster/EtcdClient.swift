// The etcd v3 client (docs/cluster.md §2): JSON over etcd's gRPC gateway with
// libevent's HTTP client, on its own loop thread. Unary calls go over one
// keep-alive connection per member; a failed or silent member (dial_timeout
// without progress) sends the call to the next, until request_timeout.
// Watches get a connection of their own, since their response never ends.
#if canImport(Glibc)
import Glibc
#endif
import CLibevent
import FlowgateCore
import FlowgateSystem
import Synchronization

public struct EtcdError: Error, Sendable, CustomStringConvertible {
    public var message: String
    /// etcd answered (with an error status): another member would say the same.
    public var answered: Bool
    public init(_ message: String, answered: Bool = false) { self.message = message; self.answered = answered }
    public var description: String { message }
}

public final class EtcdClient: @unchecked Sendable {
    public struct Endpoint: Sendable { public var host: String; public var port: Int; public var url: String }

    /// Largest response body (a range of every persistence entry included) and stream line.
    public static let maxBody = 16 * 1024 * 1024

    public let endpoints: [Endpoint]
    let dialTimeout: Double
    let requestTimeout: Double
    let credentials: (user: String, password: String)?
    public let loop: LoopThread

    // Loop-thread state.
    private var connections: [OpaquePointer?]
    private var preferred = 0
    private var token: String?
    private var stopped = false
    /// Calls answered so far and those that failed over to another member (for status and tests).
    public let failovers = Atomic<Int>(0)

    public init(_ cluster: ClusterConfig) throws(SystemError) {
        EventThreads.enable()
        endpoints = cluster.endpoints.compactMap { url in
            ConfigValidator.parseEtcdEndpoint(url).map { Endpoint(host: $0.host, port: $0.port, url: url) }
        }
        dialTimeout = Double(cluster.dialTimeout)
        requestTimeout = Double(cluster.requestTimeout)
        if let u = cluster.username, let p = cluster.password { credentials = (u, p) } else { credentials = nil }
        connections = Array(repeating: nil, count: endpoints.count)
        loop = try LoopThread(name: "fg-etcd")
    }

    public func start() { loop.start() }

    /// Frees every connection (pending calls are dropped: their waiters time
    /// out) and joins the thread.
    public func stop() {
        loop.post { [self] in
            stopped = true
            for i in connections.indices { reset(i) }
        }
        loop.stopAndJoin()
    }

    private func hostHeader(_ e: Endpoint) -> String { e.host.contains(":") ? "[\(e.host)]:\(e.port)" : "\(e.host):\(e.port)" }

    private func connection(_ i: Int) -> OpaquePointer? {
        if let c = connections[i] { return c }
        let e = endpoints[i]
        guard let c = evhttp_connection_base_new(loop.eventBase.raw, nil, e.host, UInt16(e.port)) else { return nil }
        // Covers the connect and each wait for the member's bytes: a silent
        // member costs dial_timeout, then the call moves on.
        evhttp_connection_set_timeout(c, Int32(max(1, dialTimeout)))
        evhttp_connection_set_retries(c, 0)
        evhttp_connection_set_max_body_size(c, Self.maxBody)
        connections[i] = c
        return c
    }

    /// Drops a member's connection (a call cut at its deadline), so the next
    /// call dials afresh. Freed on the next loop turn, never inside one of
    /// libevent's callbacks for it. After a failure libevent resets the
    /// connection itself and redials on the next request: nothing to do then.
    private func reset(_ i: Int) {
        if let c = connections[i] { Self.freeLater(c, on: loop) }
        connections[i] = nil
    }

    static func freeLater(_ c: OpaquePointer, on loop: LoopThread) {
        let c = UnsafeSendable(c)
        loop.post { evhttp_connection_free(c.value) }
    }

    // MARK: unary calls

    /// `POST /v3/<path>` on the loop thread; `done` runs there exactly once.
    public func send(_ path: String, _ body: JSONValue, done: @escaping (Result<JSONValue, EtcdError>) -> Void) {
        let deadline = System.monotonicMicroseconds() + UInt64(requestTimeout * 1e6)
        let bytes = Array(body.serialized().utf8)
        attempt("/v3/" + path, bytes, index: preferred, left: endpoints.count, deadline: deadline, authRetried: false, done: done)
    }

    private func attempt(_ path: String, _ body: [UInt8], index: Int, left: Int, deadline: UInt64, authRetried: Bool,
                         lastError: String = "no endpoint", done: @escaping (Result<JSONValue, EtcdError>) -> Void) {
        if stopped { done(.failure(EtcdError("client stopped"))); return }
        let now = System.monotonicMicroseconds()
        if left <= 0 || now >= deadline {
            done(.failure(EtcdError("no etcd member answered (\(lastError))")))
            return
        }
        if credentials != nil && token == nil && !path.hasSuffix("/auth/authenticate") {
            authenticate(index: index, deadline: deadline) { [self] err in
                if let err, err.answered { done(.failure(err)); return }
                attempt(path, body, index: index, left: left, deadline: deadline, authRetried: true, lastError: err?.message ?? lastError, done: done)
            }
            return
        }
        let i = index % endpoints.count
        guard let conn = connection(i) else {
            attempt(path, body, index: i + 1, left: left - 1, deadline: deadline, authRetried: authRetried, lastError: "cannot create a connection", done: done)
            return
        }
        let ex = HTTPExchange(id: EtcdHTTP.nextID(), maxBody: Self.maxBody)
        var finished = false
        // The whole call's bound: a member that keeps the call past the
        // deadline is cut (its connection freed) and the call fails.
        let timer = loop.after(Double(deadline - now) / 1e6) { [self] in
            guard !finished else { return }
            finished = true
            EtcdHTTP.forget(ex.id)
            reset(i)
            done(.failure(EtcdError("etcd request timed out after \(Int(requestTimeout)) s (\(endpoints[i].url))")))
        }
        ex.onDone = { [self] outcome in
            guard !finished else { return }
            finished = true
            timer.cancel()
            switch outcome {
            case let .failed(why):
                failovers.add(1, ordering: .relaxed)
                preferred = i + 1
                attempt(path, body, index: i + 1, left: left - 1, deadline: deadline, authRetried: authRetried,
                        lastError: "\(endpoints[i].url): \(why)", done: done)
            case let .response(status, bytes):
                if (200..<300).contains(status) {
                    preferred = i
                    do throws(JSONValue.ParseError) { done(.success(try JSONValue.parse(bytes))) } catch {
                        done(.failure(EtcdError("etcd answered malformed JSON: \(error)", answered: true)))
                    }
                } else if status == 401 && credentials != nil && !authRetried {
                    token = nil
                    attempt(path, body, index: i, left: left, deadline: deadline, authRetried: true, done: done)
                } else if status >= 500 {
                    // No leader, request timed out inside etcd, ...: another member may do better.
                    preferred = i + 1
                    attempt(path, body, index: i + 1, left: left - 1, deadline: deadline, authRetried: authRetried,
                            lastError: "\(endpoints[i].url): HTTP \(status) \(EtcdWire.errorMessage(bytes))", done: done)
                } else {
                    done(.failure(EtcdError("etcd: HTTP \(status) \(EtcdWire.errorMessage(bytes))", answered: true)))
                }
            }
        }
        if !EtcdHTTP.post(conn, host: hostHeader(endpoints[i]), path: path, body: body, token: token, exchange: ex) {
            finished = true
            timer.cancel()
            attempt(path, body, index: i + 1, left: left - 1, deadline: deadline, authRetried: authRetried,
                    lastError: "\(endpoints[i].url): request not queued", done: done)
        }
    }

    /// etcd auth: a token from /v3/auth/authenticate, sent as Authorization.
    private func authenticate(index: Int, deadline: UInt64, done: @escaping (EtcdError?) -> Void) {
        guard let (user, password) = credentials else { done(nil); return }
        let body = Array(EtcdWire.authenticate(name: user, password: password).serialized().utf8)
        attempt("/v3/auth/authenticate", body, index: index, left: endpoints.count, deadline: deadline, authRetried: true) { [self] r in
            switch r {
            case let .success(v):
                token = v["token"]?.stringValue
                done(token == nil ? EtcdError("etcd authentication returned no token", answered: true) : nil)
            case let .failure(e): done(e)
            }
        }
    }

    /// The same call from any thread but the loop's: blocks until answered or request_timeout.
    public func call(_ path: String, _ body: JSONValue) -> Result<JSONValue, EtcdError> {
        precondition(!loop.isOnLoopThread, "EtcdClient.call would block its own loop")
        let latch = Latch(1)
        let box = Mutex<Result<JSONValue, EtcdError>?>(nil)
        let body = UnsafeSendable(body)
        loop.post { [self] in
            send(path, body.value) { r in
                let r = UnsafeSendable(r)
                box.withLock { $0 = r.value }
                latch.countDown()
            }
        }
        if !latch.wait(timeout: requestTimeout + 1) { return .failure(EtcdError("etcd request timed out")) }
        return box.withLock { $0 } ?? .failure(EtcdError("etcd request lost"))
    }

    // MARK: watch

    /// A running watch; `cancel` on the loop thread ends it without calling `onEnd`.
    public final class Watch {
        fileprivate var connection: OpaquePointer?
        fileprivate var exchangeID = 0
        fileprivate var ended = false
        fileprivate let loop: LoopThread
        fileprivate init(loop: LoopThread) { self.loop = loop }
        /// May be called from inside the watch's own callbacks: the
        /// connection is freed on the next loop turn.
        public func cancel() {
            guard !ended else { return }
            ended = true
            EtcdHTTP.forget(exchangeID)
            if let c = connection { EtcdClient.freeLater(c, on: loop) }
            connection = nil
        }
    }

    /// Watches every key under `prefix` from `startRevision` on the preferred
    /// member (loop thread only). `onMessage` gets each message; `onEnd`
    /// once, when the stream ends for any reason but `cancel`.
    public func watch(prefix: String, startRevision: Int64, onMessage: @escaping (EtcdWire.WatchMessage) -> Void,
                      onEnd: @escaping (String) -> Void) -> Watch {
        let w = Watch(loop: loop)
        let i = preferred % endpoints.count
        let e = endpoints[i]
        guard let conn = evhttp_connection_base_new(loop.eventBase.raw, nil, e.host, UInt16(e.port)) else {
            w.ended = true
            loop.after(0) { onEnd("cannot create a connection to \(e.url)") }
            return w
        }
        // The stream may be silent for hours: no read timeout (a dead member
        // resets the connection; a silent one is caught by the lease keepalive).
        evhttp_connection_set_timeout(conn, 365 * 24 * 3600)
        evhttp_connection_set_retries(conn, 0)
        w.connection = conn
        let ex = HTTPExchange(id: EtcdHTTP.nextID(), maxBody: Self.maxBody)
        w.exchangeID = ex.id
        var lines = LineSplitter(maxLine: Self.maxBody)
        ex.onChunk = { bytes in
            guard !w.ended else { return true }
            guard let complete = lines.feed(bytes) else { return false }
            for line in complete {
                guard !w.ended else { break }
                do throws(JSONValue.ParseError) { onMessage(EtcdWire.watchMessage(try JSONValue.parse(line))) } catch {
                    onMessage(.error("malformed watch message: \(error)"))
                }
            }
            return true
        }
        ex.onDone = { [self] outcome in
            guard !w.ended else { return }
            w.ended = true
            Self.freeLater(conn, on: loop)
            w.connection = nil
            switch outcome {
            case let .failed(why):
                preferred = i + 1
                onEnd("\(e.url): \(why)")
            case let .response(status, _):
                onEnd("\(e.url): watch stream ended (HTTP \(status))")
            }
        }
        let body = Array(EtcdWire.watchCreate(prefix: prefix, startRevision: startRevision).serialized().utf8)
        if !EtcdHTTP.post(conn, host: hostHeader(e), path: "/v3/watch", body: body, token: token, exchange: ex) {
            w.ended = true
            Self.freeLater(conn, on: loop)
            w.connection = nil
            preferred = i + 1
            loop.after(0) { onEnd("\(e.url): watch request not queued") }
        }
        return w
    }
}
