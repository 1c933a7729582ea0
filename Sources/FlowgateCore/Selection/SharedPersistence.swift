// Shared SOURCE_IP session persistence for a fleet (docs/cluster.md §7): a
// new persistence choice of a ROUND_ROBIN or LEAST_CONNECTIONS pool is queued
// here (memory only, behind the lock the sticky table already takes per new
// flow) and written to etcd later, in batches, by the cluster store; choices
// other instances made come back through `SelectionState.learnPersistence`.
// Standalone, `enabled` stays false and a pick costs one atomic load.
import Synchronization

/// One choice to share: the pool, the client, the member, and how long it is kept.
public struct SharedChoice: Sendable, Hashable {
    public var poolID: String
    public var client: IPAddress
    public var memberID: String
    /// The pool's persistence_timeout, seconds: the etcd lease's TTL.
    public var timeout: Int
    public init(poolID: String, client: IPAddress, memberID: String, timeout: Int) {
        self.poolID = poolID; self.client = client; self.memberID = memberID; self.timeout = timeout
    }
}

/// Bounded queue of choices not yet written; past `capacity` new ones are dropped and counted.
public final class SharedPersistenceOutbox: Sendable {
    public static let capacity = 65_536
    public let enabled = Atomic<Bool>(false)
    private let pending = Mutex<(items: [SharedChoice], dropped: Int)>(([], 0))

    public init() {}

    public func offer(_ choice: SharedChoice) {
        pending.withLock { p in
            if p.items.count < Self.capacity { p.items.append(choice) } else { p.dropped += 1 }
        }
    }

    /// Up to `max` queued choices, oldest first.
    public func drain(max: Int) -> [SharedChoice] {
        pending.withLock { p in
            let n = min(max, p.items.count)
            let out = Array(p.items[..<n])
            p.items.removeFirst(n)
            return out
        }
    }

    public var dropped: Int { pending.withLock { $0.dropped } }
    public var queued: Int { pending.withLock { $0.items.count } }

    /// Only these algorithms choose per client and so need sharing; SOURCE_IP
    /// (Maglev over the same members) agrees on every instance by itself.
    public static func shares(algorithm: String) -> Bool {
        algorithm == "ROUND_ROBIN" || algorithm == "LEAST_CONNECTIONS"
    }
}
