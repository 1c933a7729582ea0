// The state file (docs/architecture.md §8): every update accepted through the control API,
// as JSON. It holds only the objects the APIs change (accelerators with
// their listeners, pools with their members, health monitors), never the
// daemon settings: workers, state_file, control (with its secrets) and
// tuning always come from the config file.

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

public enum StateFile {
    /// Bumped when the document's shape changes incompatibly.
    public static let formatVersion = 1

    /// What a state file holds on disk.
    struct Document: Codable {
        var format: Int
        var projectID: String
        var accelerators: [Accelerator]
        var pools: [Pool]
        var healthmonitors: [HealthMonitor]
        /// Set only by a cluster member (docs/cluster.md §4): the file then caches the
        /// last applied cluster snapshot, at this etcd revision. Absent in standalone files.
        var clusterRevision: Int64?
        enum CodingKeys: String, CodingKey {
            case format, projectID = "project_id", accelerators, pools, healthmonitors, clusterRevision = "cluster_revision"
        }
    }

    /// Why a state file could not be read: the field path and what was wrong.
    public struct DecodeError: Error, Sendable, Hashable, CustomStringConvertible {
        public var path: String
        public var message: String
        public var description: String { path.isEmpty ? "state file: \(message)" : "state file: \(path): \(message)" }
    }

    /// Pretty JSON with sorted keys, so a state file diffs well and the same
    /// state always produces the same bytes.
    public static func encode(_ c: FlowgateConfig, clusterRevision: Int64? = nil) -> Data {
        let doc = Document(format: formatVersion, projectID: c.projectID, accelerators: c.accelerators,
                           pools: c.pools, healthmonitors: c.healthmonitors, clusterRevision: clusterRevision)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        do {
            var data = try encoder.encode(doc)
            data.append(UInt8(ascii: "\n"))
            return data
        } catch {
            preconditionFailure("the model always encodes: \(error)")
        }
    }

    /// The objects of a state file, in a config whose daemon settings are the
    /// defaults (`overlay` replaces them with the config file's).
    public static func decode(_ bytes: Data) throws(DecodeError) -> FlowgateConfig {
        try decodeWithRevision(bytes).config
    }

    /// The objects and, in a cluster member's file, the etcd revision they were applied at.
    public static func decodeWithRevision(_ bytes: Data) throws(DecodeError) -> (config: FlowgateConfig, clusterRevision: Int64?) {
        let doc: Document
        do {
            doc = try JSONDecoder().decode(Document.self, from: bytes)
        } catch let error as DecodingError {
            throw describe(error)
        } catch {
            throw DecodeError(path: "", message: "\(error)")
        }
        guard doc.format == formatVersion else {
            throw DecodeError(path: "format", message: "\(doc.format) is not a known state file format (expected \(formatVersion))")
        }
        return (FlowgateConfig(projectID: doc.projectID, accelerators: doc.accelerators, pools: doc.pools,
                               healthmonitors: doc.healthmonitors), doc.clusterRevision)
    }

    public static func decode(_ bytes: [UInt8]) throws(DecodeError) -> FlowgateConfig { try decode(Data(bytes)) }

    /// The config file's objects with the state file's versions of the same
    /// objects (same ListenerArn, pool id or healthmonitor id) in their place.
    /// Objects only in the config are kept. Listeners and pools only in the
    /// state were removed from the config file since, so they are dropped:
    /// the APIs cannot create them, only change them. Health monitors only
    /// in the state were created through the ELB API (CreateHealthMonitor),
    /// so they are kept while a pool of the result still links to them.
    /// Daemon settings and project_id come from the config file.
    public static func overlay(config: FlowgateConfig, state: FlowgateConfig) -> FlowgateConfig {
        var out = config
        var listeners: [String: Listener] = [:]
        for l in state.allListeners where listeners[l.listenerArn] == nil { listeners[l.listenerArn] = l }
        for a in out.accelerators.indices {
            for i in out.accelerators[a].listeners.indices {
                if let s = listeners[out.accelerators[a].listeners[i].listenerArn] { out.accelerators[a].listeners[i] = s }
            }
        }
        var pools: [String: Pool] = [:]
        for p in state.pools where pools[p.id] == nil { pools[p.id] = p }
        for i in out.pools.indices {
            if let s = pools[out.pools[i].id] { out.pools[i] = s }
        }
        var monitors: [String: HealthMonitor] = [:]
        for h in state.healthmonitors where monitors[h.id] == nil { monitors[h.id] = h }
        for i in out.healthmonitors.indices {
            if let s = monitors[out.healthmonitors[i].id] { out.healthmonitors[i] = s }
        }
        let known = Set(out.healthmonitors.map(\.id))
        let linked = Set(out.pools.compactMap(\.healthmonitorID))
        out.healthmonitors += state.healthmonitors.filter { !known.contains($0.id) && linked.contains($0.id) }
        return out
    }

    /// `pools[0].members[1].weight: expected Int` from a DecodingError.
    static func describe(_ error: DecodingError) -> DecodeError {
        func path(_ keys: [any CodingKey]) -> String {
            var out = ""
            for k in keys {
                if let i = k.intValue { out += "[\(i)]" } else { out = FieldPath.field(out, k.stringValue) }
            }
            return out
        }
        switch error {
        case let .typeMismatch(type, ctx):
            return DecodeError(path: path(ctx.codingPath), message: "expected \(type)")
        case let .valueNotFound(type, ctx):
            return DecodeError(path: path(ctx.codingPath), message: "expected \(type), got null")
        case let .keyNotFound(key, ctx):
            return DecodeError(path: path(ctx.codingPath + [key]), message: "required key is missing")
        case let .dataCorrupted(ctx):
            let p = path(ctx.codingPath)
            return DecodeError(path: p, message: p.isEmpty ? "not valid JSON (\(ctx.debugDescription))" : ctx.debugDescription)
        @unknown default:
            return DecodeError(path: "", message: "\(error)")
        }
    }
}
