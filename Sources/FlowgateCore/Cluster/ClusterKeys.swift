// Where a cluster keeps what in etcd (docs/cluster.md §1). Everything lives
// under `/flowgate/<name>/`; the shared objects are one key so that a change
// is one compare-and-put and every instance applies whole snapshots.

public struct ClusterKeys: Sendable, Hashable {
    public let prefix: String
    public init(cluster name: String) { prefix = "/flowgate/\(name)/" }

    /// The shared objects (listeners, pools, members, health monitors) in the
    /// state file's JSON format; its mod_revision is the snapshot's revision.
    public var config: String { prefix + "config" }
    /// Leased, one per live instance: applied revision, health, what it could not apply.
    public var instances: String { prefix + "instances/" }
    public func instance(_ name: String) -> String { instances + name }
    /// Leased SOURCE_IP persistence entries: `persist/<pool id>/<client ip>` → member id.
    public var persistence: String { prefix + "persist/" }
    public func persistence(pool: String, client: String) -> String { persistence + pool + "/" + client }
}

/// The shared objects at one etcd revision (the config key's mod_revision).
/// `config` carries only objects; daemon settings always come from the file.
public struct ClusterSnapshot: Sendable, Hashable {
    public var config: FlowgateConfig
    public var revision: Int64
    public init(config: FlowgateConfig, revision: Int64) { self.config = config; self.revision = revision }
}

/// What a compare-and-put of a new snapshot came to.
public enum ClusterCommitResult: Sendable {
    /// etcd committed it at this revision.
    case committed(revision: Int64)
    /// Someone else changed the objects since `expected`: here is what etcd holds now.
    case conflict(latest: ClusterSnapshot?)
    /// No etcd member answered (or quorum is lost): nothing was written.
    case unavailable(String)
}

/// The write side of a cluster store, as the control service sees it.
public protocol ClusterCommitting: AnyObject, Sendable {
    /// Blocks until etcd answered or the request timeout passed.
    func commit(_ objects: FlowgateConfig, expected revision: Int64) -> ClusterCommitResult
}

/// What applying one snapshot from etcd came to on this instance.
public enum ClusterApplyOutcome: Sendable, Equatable {
    case applied
    /// Already in force (this instance's own write, or an older revision).
    case skipped
    /// Not applicable here (a rule, a port in use): the previous snapshot stays in force.
    case failed(String)
}
