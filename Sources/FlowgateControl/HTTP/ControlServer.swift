// The control HTTP/1.1 server of design §7 on libevent's evhttp: its own
// pthread and event_base, so the data plane never waits on it; a Unix socket
// (mode 0600) and an optional TCP address. Every request is answered on this
// one thread, which is what serialises updates (design §5).
#if canImport(Glibc)
import Glibc
#endif
import CLibevent
import FlowgateCore
import FlowgateSystem

public struct ControlServerError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

public struct ControlLimits: Sendable {
    /// Request bodies above this are refused by evhttp with 413 (design §7: 1 MiB).
    public var maxBodyBytes = 1 << 20
    public var maxHeaderBytes = 64 << 10
    /// Seconds a connection may take to send a request, or stay idle between requests.
    public var timeoutSeconds: Int32 = 10
    /// Control connections served at once; more get 503 and are closed.
    public var maxConnections = 64
    public init() {}
}

public final class ControlServer: @unchecked Sendable {
    let router: ControlRouter
    let limits: ControlLimits
    let base: OpaquePointer
    private var https: [OpaquePointer] = []
    private var endpoints: [Endpoint] = []
    private var thread: pthread_t?
    private var open = Set<UInt>()
    /// The bound TCP port (useful with port 0 in tests).
    public private(set) var tcpPort: Int?
    public let unixSocketPath: String?

    final class Endpoint {
        unowned let server: ControlServer
        let overTCP: Bool
        init(server: ControlServer, overTCP: Bool) { self.server = server; self.overTCP = overTCP }
    }

    /// Binds everything before returning, so a bad address fails the start.
    public init(router: ControlRouter, limits: ControlLimits = ControlLimits()) throws(ControlServerError) {
        self.router = router
        self.limits = limits
        EventThreads.enable()
        guard let b = event_base_new() else { throw ControlServerError("event_base_new failed") }
        base = b
        let control = router.control
        unixSocketPath = control.unixSocket
        if let path = control.unixSocket {
            try bindUnix(path)
        }
        if let listen = control.listen {
            try bindTCP(listen)
        }
        guard !https.isEmpty else { throw ControlServerError("control: neither unix_socket nor listen is set") }
    }

    private func newHTTP(overTCP: Bool) -> OpaquePointer {
        let http = evhttp_new(base)!
        evhttp_set_max_body_size(http, Int(limits.maxBodyBytes))
        evhttp_set_max_headers_size(http, Int(limits.maxHeaderBytes))
        evhttp_set_timeout(http, limits.timeoutSeconds)
        evhttp_set_allowed_methods(http, UInt16(EVHTTP_REQ_GET.rawValue | EVHTTP_REQ_POST.rawValue | EVHTTP_REQ_PUT.rawValue | EVHTTP_REQ_DELETE.rawValue))
        let endpoint = Endpoint(server: self, overTCP: overTCP)
        endpoints.append(endpoint)
        evhttp_set_gencb(http, { req, ctx in
            guard let req, let ctx else { return }
            let endpoint = Unmanaged<Endpoint>.fromOpaque(ctx).takeUnretainedValue()
            endpoint.server.serve(req, overTCP: endpoint.overTCP)
        }, Unmanaged.passUnretained(endpoint).toOpaque())
        https.append(http)
        return http
    }

    private func bindUnix(_ path: String) throws(ControlServerError) {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: addr.sun_path)
        guard path.utf8.count < capacity else { throw ControlServerError("control.unix_socket \(path) is longer than \(capacity - 1) bytes") }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: path.utf8); raw[path.utf8.count] = 0
        }
        // A stale socket file from a previous run would make bind fail with EADDRINUSE.
        var st = stat()
        if lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFSOCK { unlink(path) }
        if let slash = path.lastIndex(of: "/"), slash != path.startIndex { _ = mkdir(String(path[..<slash]), 0o755) }
        // Created 0600 from the start: no window where another user could connect.
        let oldMask = umask(0o177)
        let listener = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                evconnlistener_new_bind(base, nil, nil, UInt32(LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC), 64, sa, Int32(MemoryLayout<sockaddr_un>.size))
            }
        }
        umask(oldMask)
        guard let listener else { throw ControlServerError("control.unix_socket \(path): bind failed: \(String(cString: strerror(errno)))") }
        chmod(path, 0o600)
        let http = newHTTP(overTCP: false)
        guard evhttp_bind_listener(http, listener) != nil else { throw ControlServerError("control.unix_socket \(path): evhttp_bind_listener failed") }
    }

    private func bindTCP(_ listen: String) throws(ControlServerError) {
        guard let (host, port) = ControlServer.splitHostPort(listen) else {
            throw ControlServerError("control.listen \"\(listen)\" is not host:port (use [::1]:9900 for IPv6)")
        }
        let http = newHTTP(overTCP: true)
        guard let handle = evhttp_bind_socket_with_handle(http, host, UInt16(port)) else {
            throw ControlServerError("control.listen \(listen): bind failed: \(String(cString: strerror(errno)))")
        }
        let fd = evconnlistener_get_fd(evhttp_bound_socket_get_listener(handle))
        tcpPort = (try? System.localAddress(fd))?.port ?? 0
    }

    /// `host:port` or `[v6]:port`.
    public static func splitHostPort(_ s: String) -> (String, Int)? {
        if s.hasPrefix("["), let close = s.firstIndex(of: "]") {
            let host = String(s[s.index(after: s.startIndex)..<close])
            let rest = s[s.index(after: close)...]
            guard rest.hasPrefix(":"), let p = Int(rest.dropFirst()), (0...65535).contains(p) else { return nil }
            return (host, p)
        }
        guard let colon = s.lastIndex(of: ":"), let p = Int(s[s.index(after: colon)...]), (0...65535).contains(p) else { return nil }
        let host = String(s[..<colon])
        return host.isEmpty || host.contains(":") ? nil : (host, p)
    }

    /// Runs the loop on its own thread.
    public func start() {
        var tid = pthread_t()
        let ctx = Unmanaged.passRetained(self).toOpaque()
        let rc = pthread_create(&tid, nil, { arg in
            let server = Unmanaged<ControlServer>.fromOpaque(arg!).takeRetainedValue()
            event_base_dispatch(server.base)
            return nil
        }, ctx)
        precondition(rc == 0, "pthread_create for the control server failed: \(rc)")
        thread = tid
    }

    /// Stops the loop and waits for the thread; removes the socket file.
    public func stop() {
        event_base_loopbreak(base)
        if let t = thread { pthread_join(t, nil); thread = nil }
        for h in https { evhttp_free(h) }
        https.removeAll()
        if let p = unixSocketPath { unlink(p) }
    }

    // MARK: per request (control thread)

    private func serve(_ req: OpaquePointer, overTCP: Bool) {
        if let conn = evhttp_request_get_connection(req) {
            let key = UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(conn)))
            if !open.contains(key) {
                if open.count >= limits.maxConnections {
                    let body = JSONValue.object([
                        ("__type", "ThrottlingException"), ("error_code", "ELB.8906"),
                        ("message", .string("too many control connections: at most \(limits.maxConnections) are served at once")),
                        ("error_msg", .string("too many control connections: at most \(limits.maxConnections) are served at once")),
                    ])
                    reply(req, ControlResponse(status: 503, headers: [("Connection", "close"), ("Content-Type", "application/json")], json: body))
                    return
                }
                open.insert(key)
                evhttp_connection_set_closecb(conn, { conn, ctx in
                    guard let conn, let ctx else { return }
                    let server = Unmanaged<ControlServer>.fromOpaque(ctx).takeUnretainedValue()
                    server.open.remove(UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(conn))))
                }, Unmanaged.passUnretained(self).toOpaque())
            }
        }
        let request = ControlServer.decode(req, overTCP: overTCP)
        reply(req, router.route(request))
    }

    static func decode(_ req: OpaquePointer, overTCP: Bool) -> ControlRequest {
        let method: String
        switch evhttp_request_get_command(req) {
        case EVHTTP_REQ_GET: method = "GET"
        case EVHTTP_REQ_POST: method = "POST"
        case EVHTTP_REQ_PUT: method = "PUT"
        case EVHTTP_REQ_DELETE: method = "DELETE"
        case EVHTTP_REQ_HEAD: method = "HEAD"
        default: method = "OTHER"
        }
        let uri = evhttp_request_get_uri(req).map { String(cString: $0) } ?? "/"
        var headers: [(String, String)] = []
        if let input = evhttp_request_get_input_headers(req) {
            var kv = input.pointee.tqh_first
            while let h = kv {
                headers.append((String(cString: h.pointee.key), String(cString: h.pointee.value)))
                kv = h.pointee.next.tqe_next
            }
        }
        var body: [UInt8] = []
        if let buf = evhttp_request_get_input_buffer(req) {
            let n = evbuffer_get_length(buf)
            if n > 0 {
                body = [UInt8](repeating: 0, count: n)
                _ = body.withUnsafeMutableBytes { evbuffer_copyout(buf, $0.baseAddress, n) }
            }
        }
        return ControlRequest(method: method, path: uri, headers: headers, body: body, overTCP: overTCP)
    }

    private func reply(_ req: OpaquePointer, _ response: ControlResponse) {
        let out = evhttp_request_get_output_headers(req)
        for (name, value) in response.headers { evhttp_add_header(out, name, value) }
        let reason = ControlServer.reason(response.status)
        if response.body.isEmpty {
            evhttp_send_reply(req, Int32(response.status), reason, nil)
            return
        }
        let buf = evbuffer_new()
        _ = response.body.withUnsafeBytes { evbuffer_add(buf, $0.baseAddress, $0.count) }
        evhttp_send_reply(req, Int32(response.status), reason, buf)
        evbuffer_free(buf)
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 201: return "Created"
        case 204: return "No Content"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 409: return "Conflict"
        case 413: return "Payload Too Large"
        case 500: return "Internal Server Error"
        case 503: return "Service Unavailable"
        default: return "Status"
        }
    }
}
