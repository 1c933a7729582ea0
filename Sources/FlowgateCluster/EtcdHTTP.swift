// One HTTP exchange with an etcd member over libevent's HTTP client
// (evhttp_connection / evhttp_request), on the cluster client's loop thread
// (docs/cluster.md §2). libevent calls C function pointers, so each request
// is found again by its number in `EtcdHTTP.table`; a request whose owner gave
// up (timeout, stop) is missing there and its late callbacks do nothing.
#if canImport(Glibc)
import Glibc
#endif
import CLibevent
import FlowgateSystem
import Synchronization

/// How one exchange ended.
enum HTTPOutcome {
    /// A response: its status and (for a non-streamed request) its body.
    case response(status: Int, body: [UInt8])
    /// No response: the connection failed, timed out or was cut.
    case failed(String)
}

/// An in-flight request: callbacks and the bounded body it collects.
final class HTTPExchange: @unchecked Sendable {
    let id: Int
    let maxBody: Int
    var body: [UInt8] = []
    /// Streamed responses (the watch) get every chunk here instead of `body`.
    var onChunk: (([UInt8]) -> Bool)?
    var onDone: ((HTTPOutcome) -> Void)?
    var lastError = "connection failed"
    init(id: Int, maxBody: Int) { self.id = id; self.maxBody = maxBody }
}

enum EtcdHTTP {
    /// Requests in flight, by number. Each client touches only its own from
    /// its loop thread; the mutex is for several clients in one process (tests).
    private static let table = Mutex<[Int: HTTPExchange]>([:])
    private static let counter = Atomic<Int>(0)

    static func nextID() -> Int { counter.add(1, ordering: .relaxed).newValue }
    static func register(_ ex: HTTPExchange) { table.withLock { $0[ex.id] = ex } }
    static func forget(_ id: Int) { table.withLock { _ = $0.removeValue(forKey: id) } }

    static func take(_ arg: UnsafeMutableRawPointer?) -> HTTPExchange? {
        table.withLock { $0.removeValue(forKey: Int(bitPattern: arg)) }
    }

    static func find(_ arg: UnsafeMutableRawPointer?) -> HTTPExchange? { table.withLock { $0[Int(bitPattern: arg)] } }

    static func drain(_ buf: OpaquePointer?) -> [UInt8] {
        guard let buf else { return [] }
        let n = evbuffer_get_length(buf)
        guard n > 0 else { return [] }
        var out = [UInt8](repeating: 0, count: n)
        let got = out.withUnsafeMutableBytes { evbuffer_remove(buf, $0.baseAddress, n) }
        if got < n { out.removeLast(n - max(0, Int(got))) }
        return out
    }

    static let completion: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?) -> Void = { req, arg in
        guard let ex = take(arg) else { return }
        guard let req else { ex.onDone?(.failed(ex.lastError)); return }
        let status = Int(evhttp_request_get_response_code(req))
        if status == 0 { ex.onDone?(.failed(ex.lastError)); return }
        let rest = drain(evhttp_request_get_input_buffer(req))
        if let chunk = ex.onChunk { _ = chunk(rest) } else { ex.body += rest }
        ex.onDone?(.response(status: status, body: ex.body))
    }

    static let chunk: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?) -> Void = { req, arg in
        guard let req, let ex = find(arg) else { return }
        let bytes = drain(evhttp_request_get_input_buffer(req))
        if let onChunk = ex.onChunk {
            if !onChunk(bytes) { ex.lastError = "stream message over the bound" }
        } else if ex.body.count + bytes.count <= ex.maxBody {
            ex.body += bytes
        } else {
            ex.lastError = "response over \(ex.maxBody) bytes"
        }
    }

    static let error: @convention(c) (evhttp_request_error, UnsafeMutableRawPointer?) -> Void = { err, arg in
        guard let ex = find(arg) else { return }
        switch err {
        case EVREQ_HTTP_TIMEOUT: ex.lastError = "timed out"
        case EVREQ_HTTP_EOF: ex.lastError = "connection closed"
        case EVREQ_HTTP_INVALID_HEADER: ex.lastError = "invalid response header"
        case EVREQ_HTTP_BUFFER_ERROR: ex.lastError = "connection failed (\(String(cString: strerror(errno))))"
        case EVREQ_HTTP_DATA_TOO_LONG: ex.lastError = "response body over the bound"
        case EVREQ_HTTP_REQUEST_CANCEL: ex.lastError = "canceled"
        default: ex.lastError = "HTTP error \(err.rawValue)"
        }
    }

    /// Sends `POST path` with a JSON body on `conn`. Returns false when
    /// libevent refused to queue it (then `onDone` is never called).
    static func post(_ conn: OpaquePointer, host: String, path: String, body: [UInt8], token: String?,
                     exchange ex: HTTPExchange) -> Bool {
        let arg = UnsafeMutableRawPointer(bitPattern: ex.id)
        guard let req = evhttp_request_new(completion, arg) else { return false }
        evhttp_request_set_chunked_cb(req, chunk)
        evhttp_request_set_error_cb(req, error)
        let headers = evhttp_request_get_output_headers(req)
        evhttp_add_header(headers, "Host", host)
        evhttp_add_header(headers, "Content-Type", "application/json")
        if let token { evhttp_add_header(headers, "Authorization", token) }
        _ = body.withUnsafeBytes { evbuffer_add(evhttp_request_get_output_buffer(req), $0.baseAddress, $0.count) }
        register(ex)
        if evhttp_make_request(conn, req, EVHTTP_REQ_POST, path) != 0 {
            forget(ex.id)  // libevent freed the request
            return false
        }
        return true
    }
}
