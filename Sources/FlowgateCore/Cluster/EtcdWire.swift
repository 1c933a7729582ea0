// The JSON shapes of etcd 3.4's v3 gRPC gateway (docs/cluster.md §2): request
// bodies built and responses read with the in-tree JSONValue. The gateway
// spells keys and values in base64 and 64-bit integers as decimal strings,
// and leaves out every field at its zero value ("kvs" with no keys,
// "succeeded" when false, "type" for PUT), so every reader here has a default.

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

public enum EtcdWire {
    public static func base64(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }
    public static func base64(_ text: String) -> String { base64(Array(text.utf8)) }
    public static func unbase64(_ text: String) -> [UInt8]? { Data(base64Encoded: text).map { Array($0) } }

    /// The range_end selecting every key that starts with `prefix` (etcd's
    /// clientv3.GetPrefixRangeEnd: the prefix with its last byte below 0xff incremented).
    public static func prefixEnd(_ prefix: String) -> [UInt8] {
        var raw = Array(prefix.utf8)
        while let last = raw.last {
            if last < 0xFF { raw[raw.count - 1] = last + 1; return raw }
            raw.removeLast()
        }
        return [0]
    }

    /// A gateway int64: a decimal string, or a number from other encoders.
    public static func int64(_ v: JSONValue?) -> Int64 {
        switch v {
        case let .string(s)?: return Int64(s) ?? 0
        case let .int(i)?: return Int64(i)
        default: return 0
        }
    }

    // MARK: requests

    public static func range(key: String, prefix: Bool = false, revision: Int64 = 0) -> JSONValue {
        var m: [(String, JSONValue)] = [("key", .string(base64(key)))]
        if prefix { m.append(("range_end", .string(base64(prefixEnd(key))))) }
        if revision > 0 { m.append(("revision", .string(String(revision)))) }
        return .object(m)
    }

    public static func put(key: String, value: [UInt8], lease: Int64 = 0) -> JSONValue {
        var m: [(String, JSONValue)] = [("key", .string(base64(key))), ("value", .string(base64(value)))]
        if lease != 0 { m.append(("lease", .string(String(lease)))) }
        return .object(m)
    }

    public enum Compare {
        /// The key's last modification is at this revision (0: the key does not exist).
        case modRevision(String, Int64)
        /// The key does not exist (create revision 0).
        case absent(String)
    }

    /// One transaction: if every compare holds, the puts; otherwise a read of `failureRange`.
    public static func txn(_ compares: [Compare], puts: [(key: String, value: [UInt8], lease: Int64)], failureRange: String?) -> JSONValue {
        let cmp: [JSONValue] = compares.map { c in
            switch c {
            case let .modRevision(key, rev):
                return .object([("key", .string(base64(key))), ("result", "EQUAL"), ("target", "MOD"),
                                ("mod_revision", .string(String(rev)))])
            case let .absent(key):
                return .object([("key", .string(base64(key))), ("result", "EQUAL"), ("target", "CREATE"),
                                ("create_revision", "0")])
            }
        }
        let success: [JSONValue] = puts.map { .object([("request_put", put(key: $0.key, value: $0.value, lease: $0.lease))]) }
        var m: [(String, JSONValue)] = [("compare", .array(cmp)), ("success", .array(success))]
        if let key = failureRange { m.append(("failure", .array([.object([("request_range", range(key: key))])]))) }
        return .object(m)
    }

    public static func watchCreate(prefix: String, startRevision: Int64) -> JSONValue {
        var m: [(String, JSONValue)] = [("key", .string(base64(prefix))), ("range_end", .string(base64(prefixEnd(prefix))))]
        if startRevision > 0 { m.append(("start_revision", .string(String(startRevision)))) }
        return .object([("create_request", .object(m))])
    }

    public static func leaseGrant(ttl: Int) -> JSONValue { .object([("TTL", .string(String(ttl)))]) }
    public static func lease(id: Int64) -> JSONValue { .object([("ID", .string(String(id)))]) }
    public static func authenticate(name: String, password: String) -> JSONValue {
        .object([("name", .string(name)), ("password", .string(password))])
    }

    // MARK: responses

    public struct KeyValue: Sendable, Hashable {
        public var key: String
        public var value: [UInt8]
        public var createRevision: Int64
        public var modRevision: Int64
        public var lease: Int64

        public init(key: String, value: [UInt8], modRevision: Int64) {
            self.key = key; self.value = value; createRevision = modRevision; self.modRevision = modRevision; lease = 0
        }

        init(_ v: JSONValue) {
            key = v["key"]?.stringValue.flatMap(unbase64).map { String(decoding: $0, as: UTF8.self) } ?? ""
            value = v["value"]?.stringValue.flatMap(unbase64) ?? []
            createRevision = int64(v["create_revision"]); modRevision = int64(v["mod_revision"]); lease = int64(v["lease"])
        }
    }

    /// A range (or a transaction's failure read): the store's revision and the keys found.
    public struct RangeResult: Sendable {
        public var revision: Int64
        public var kvs: [KeyValue]
        public init(_ v: JSONValue) {
            revision = int64(v["header"]?["revision"])
            kvs = (v["kvs"]?.arrayValue ?? []).map(KeyValue.init)
        }
    }

    public struct TxnResult: Sendable {
        public var succeeded: Bool
        public var revision: Int64
        /// The failure branch's read, when it had one.
        public var failureRange: RangeResult?
        public init(_ v: JSONValue) {
            succeeded = v["succeeded"]?.boolValue ?? false
            revision = int64(v["header"]?["revision"])
            failureRange = v["responses"]?.arrayValue?.first?["response_range"].map(RangeResult.init)
        }
    }

    public enum WatchEvent: Sendable {
        case put(KeyValue)
        case delete(KeyValue)
    }

    /// One message of the watch stream (`{"result": {...}}` per line).
    public enum WatchMessage: Sendable {
        case created(revision: Int64)
        case events(revision: Int64, [WatchEvent])
        /// The start revision was compacted away: read everything again.
        case compacted(compactRevision: Int64)
        case canceled(reason: String)
        /// `{"error": ...}` from the gateway.
        case error(String)
    }

    public static func watchMessage(_ v: JSONValue) -> WatchMessage {
        if let e = v["error"] { return .error(e["message"]?.stringValue ?? e.serialized()) }
        let r = v["result"] ?? v
        let rev = int64(r["header"]?["revision"])
        let compact = int64(r["compact_revision"])
        if compact > 0 { return .compacted(compactRevision: compact) }
        if r["canceled"]?.boolValue == true { return .canceled(reason: r["cancel_reason"]?.stringValue ?? "canceled") }
        if r["created"]?.boolValue == true { return .created(revision: rev) }
        let events: [WatchEvent] = (r["events"]?.arrayValue ?? []).map { e in
            let kv = KeyValue(e["kv"] ?? .null)
            return e["type"]?.stringValue == "DELETE" ? .delete(kv) : .put(kv)
        }
        return .events(revision: rev, events)
    }

    /// The gateway's error body (`{"error": "...", "message": "...", "code": N}`), for messages.
    public static func errorMessage(_ body: [UInt8]) -> String {
        if let v = try? JSONValue.parse(body), let m = v["message"]?.stringValue ?? v["error"]?.stringValue { return m }
        return String(decoding: body.prefix(200), as: UTF8.self)
    }
}

/// Splits the watch stream into its JSON messages: the gateway writes one
/// object per line, but HTTP chunks need not end at a line. Bounded: a line
/// longer than `maxLine` bytes is an error (the caller restarts the watch).
public struct LineSplitter: Sendable {
    public let maxLine: Int
    private var pending: [UInt8] = []
    public init(maxLine: Int) { self.maxLine = maxLine }

    public var pendingBytes: Int { pending.count }

    /// The complete lines in `bytes` (after what was pending), or nil when a line outgrew the bound.
    public mutating func feed(_ bytes: [UInt8]) -> [[UInt8]]? {
        var lines: [[UInt8]] = []
        var start = 0
        for i in bytes.indices where bytes[i] == UInt8(ascii: "\n") {
            pending += bytes[start..<i]
            if !pending.isEmpty { lines.append(pending) }
            pending.removeAll(keepingCapacity: true)
            start = i + 1
        }
        pending += bytes[start...]
        if pending.count > maxLine { return nil }
        return lines
    }
}
