/// A sticky table's entries as a takeover carries them (docs/architecture.md §16.2).
extension StickyTable {
    /// Every entry alive at `now`: its key, member and seconds left (nil
    /// while flows of the key are live).
    public func handoverEntries(now: Double) -> [(key: Key, memberID: String, ttl: Double?)] {
        storage.withLock { s in
            s.entries.compactMap { key, e in
                if e.liveFlows > 0 { return (key, e.memberID, nil) }
                guard now < e.expiresAt else { return nil }
                return (key, e.memberID, e.expiresAt - now)
            }
        }
    }

    /// Restores an entry with no live flow, expiring `ttl` seconds after
    /// `now`; an entry the table already holds (this process picked for the
    /// key meanwhile) is kept, being the newer choice.
    public func restore(_ key: Key, memberID: String, ttl: Double, now: Double) {
        storage.withLock { s in
            guard s.entries[key] == nil, ttl > 0 else { return }
            var e = Entry(memberID: memberID, liveFlows: 0, expiresAt: now + ttl, seq: 0)
            s.touch(key, &e)
            s.entries[key] = e
            s.evictOverCapacity(now: now)
        }
    }
}
