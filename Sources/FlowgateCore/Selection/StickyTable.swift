import Synchronization

/// A bounded table of remembered choices (docs/architecture.md §3.3): key → member,
/// kept while the key has live flows and for `timeout` seconds after its last
/// flow ends. Past `capacity` the entry touched longest ago is evicted (and
/// counted). One mutex per table: it is taken per new or ended flow, never
/// per packet.
///
/// An entry evicted while its flows live is simply forgotten: their releases
/// find nothing (or a newer entry for the key, which then expires up to one
/// flow early), which is the price of a hard bound.
public final class StickyTable<Key: Hashable & Sendable>: Sendable {
    struct Entry {
        var memberID: String
        var liveFlows: Int
        /// +infinity while flows are live; the entry is gone at exactly this time.
        var expiresAt: Double
        /// Last touch; matches one record in `order`.
        var seq: UInt64
    }

    struct Storage {
        var entries: [Key: Entry] = [:]
        /// (key, seq) in touch order; records whose seq no longer matches the
        /// entry are stale and skipped (lazy deletion keeps touches O(1)).
        var order: [(key: Key, seq: UInt64)] = []
        var head = 0
        var nextSeq: UInt64 = 0
        var capacity: Int
        var evictions = 0

        mutating func touch(_ key: Key, _ entry: inout Entry) {
            nextSeq &+= 1
            entry.seq = nextSeq
            order.append((key, nextSeq))
        }

        /// Removes stale records at the front, and expired entries there.
        mutating func trimFront(now: Double, budget: Int) {
            var left = budget
            while head < order.count && left > 0 {
                let r = order[head]
                guard let e = entries[r.key], e.seq == r.seq else { head += 1; continue }
                if now >= e.expiresAt { entries[r.key] = nil; head += 1; left -= 1; continue }
                break
            }
            compact()
        }

        mutating func evictOverCapacity(now: Double) {
            while entries.count > capacity && head < order.count {
                let r = order[head]
                head += 1
                guard let e = entries[r.key], e.seq == r.seq else { continue }
                entries[r.key] = nil
                if now < e.expiresAt { evictions += 1 }
            }
            compact()
        }

        mutating func compact() {
            let live = order.count - head
            if head > 1024 && head * 2 > order.count {
                order.removeFirst(head); head = 0
            } else if live > 2 * entries.count + 1024 {
                let kept = order[head...].filter { entries[$0.key]?.seq == $0.seq }
                order = Array(kept); head = 0
            }
        }
    }

    let storage: Mutex<Storage>

    public init(capacity: Int) {
        precondition(capacity > 0, "sticky table capacity must be positive")
        storage = Mutex(Storage(capacity: capacity))
    }

    /// The member remembered for `key`, if the entry is still alive at `now`.
    public func lookup(_ key: Key, now: Double) -> String? {
        storage.withLock { s in
            guard let e = s.entries[key] else { return nil }
            if now >= e.expiresAt { s.entries[key] = nil; return nil }
            return e.memberID
        }
    }

    /// A new flow of `key` went to `memberID`: remember it (overwriting any
    /// older choice) and count the flow as live.
    public func acquire(_ key: Key, memberID: String, now: Double) {
        storage.withLock { s in
            var e: Entry
            if let old = s.entries[key], now < old.expiresAt {
                e = old
                e.memberID = memberID
                e.liveFlows += 1
            } else {
                e = Entry(memberID: memberID, liveFlows: 1, expiresAt: .infinity, seq: 0)
            }
            e.expiresAt = .infinity
            s.touch(key, &e)
            s.entries[key] = e
            s.trimFront(now: now, budget: 2)
            s.evictOverCapacity(now: now)
        }
    }

    /// A flow of `key` ended: when it was the last, the entry lives `timeout`
    /// more seconds from `now`.
    public func release(_ key: Key, now: Double, timeout: Double) {
        storage.withLock { s in
            guard var e = s.entries[key] else { return }
            e.liveFlows = max(0, e.liveFlows - 1)
            if e.liveFlows == 0 {
                e.expiresAt = now + timeout
                s.touch(key, &e)
            }
            s.entries[key] = e
        }
    }

    /// Another instance's choice for `key` (docs/cluster.md §7): the entry
    /// names `memberID` from now on (live flows stay where they are and keep
    /// it alive); a new entry without flows lives `timeout` seconds.
    public func learn(_ key: Key, memberID: String, now: Double, timeout: Double) {
        storage.withLock { s in
            var e: Entry
            if let old = s.entries[key], now < old.expiresAt {
                e = old
                e.memberID = memberID
                if e.liveFlows == 0 { e.expiresAt = max(e.expiresAt, now + timeout) }
            } else {
                e = Entry(memberID: memberID, liveFlows: 0, expiresAt: now + timeout, seq: 0)
            }
            s.touch(key, &e)
            s.entries[key] = e
            s.trimFront(now: now, budget: 2)
            s.evictOverCapacity(now: now)
        }
    }

    /// Changes the bound; a smaller one evicts at the next acquire.
    public func setCapacity(_ capacity: Int) {
        precondition(capacity > 0, "sticky table capacity must be positive")
        storage.withLock { $0.capacity = capacity }
    }

    /// Entries held, including expired ones not yet purged.
    public var count: Int { storage.withLock { $0.entries.count } }
    /// Live entries evicted because the table was full.
    public var evictions: Int { storage.withLock { $0.evictions } }
}
