/// The selection state of a snapshot out to a takeover blob and back in
/// (docs/architecture.md §16.2). Flows are not carried in the counts: a
/// connection handed over is counted again by `ListenerPlan.adopt` in the
/// next process, and one that stays behind is the old process's to release.
extension RuntimeSnapshot {
    public func handoverState(takeoverGeneration: UInt64) -> HandoverState {
        let now = selection.time.now()
        var s = HandoverState(snapshotGeneration: generation, takeoverGeneration: takeoverGeneration)
        let runtimes = selection.members.withLock { Array($0.values) }
        for r in runtimes.sorted(by: { ($0.poolID, $0.memberID) < ($1.poolID, $1.memberID) }) {
            let start = Double(bitPattern: r.rampStartBits.load(ordering: .acquiring))
            s.members.append(.init(poolID: r.poolID, memberID: r.memberID, up: r.isUp,
                                   rampAge: start.isNaN ? nil : max(0, now - start), activeFlows: r.activeFlows))
        }
        for (id, plan) in pools.sorted(by: { $0.key < $1.key }) {
            guard let rr = plan.balancer as? RoundRobin else { continue }
            let scores = rr.current.withLock { $0 }
            guard scores.count == plan.members.count else { continue }
            s.roundRobin.append(.init(poolID: id, scores: zip(plan.members, scores).map { .init(memberID: $0.id, score: $1) }))
        }
        let persistence = selection.persistence.withLock { $0 }
        for (pool, table) in persistence.sorted(by: { $0.key < $1.key }) {
            for e in table.handoverEntries(now: now) {
                s.persistence.append(.init(poolID: pool, client: e.key, memberID: e.memberID, ttl: e.ttl))
            }
        }
        let affinity = selection.affinity.withLock { $0 }
        for (pool, table) in affinity.sorted(by: { $0.key < $1.key }) {
            for e in table.handoverEntries(now: now) {
                s.affinity.append(.init(poolID: pool, key: e.key, memberID: e.memberID, ttl: e.ttl))
            }
        }
        return s
    }

    /// Applies a received state to this (first) snapshot's selection: only
    /// what this configuration still has (pools, members, tables) is taken.
    /// An entry whose flows were live in the sender lives for the table's
    /// timeout from now (the flows handed over make it live again when they
    /// are adopted). Returns how many entries and members were restored.
    @discardableResult
    public func restore(_ s: HandoverState) -> (members: Int, entries: Int) {
        let now = selection.time.now()
        var members = 0, entries = 0
        for m in s.members {
            guard let plan = pools[m.poolID], let i = plan.view.index(of: m.memberID) else { continue }
            let r = plan.view.runtimes[i]
            r.up.store(m.up, ordering: .releasing)
            if let age = m.rampAge { r.startRamp(at: now - age) }
            members += 1
        }
        for rr in s.roundRobin {
            guard let plan = pools[rr.poolID], let balancer = plan.balancer as? RoundRobin else { continue }
            let byID = Dictionary(rr.scores.map { ($0.memberID, $0.score) }, uniquingKeysWith: { a, _ in a })
            balancer.current.withLock { cur in
                for (i, m) in plan.members.enumerated() where i < cur.count { if let v = byID[m.id] { cur[i] = v } }
            }
        }
        for e in s.persistence {
            guard let plan = pools[e.poolID], let table = plan.persistence else { continue }
            table.restore(e.client, memberID: e.memberID, ttl: e.ttl ?? plan.persistenceTimeout, now: now)
            entries += 1
        }
        // The affinity timeout is the listener's idle timeout; the longest
        // one in front of the pool stands in for a live entry.
        var affinityTimeout: [String: Double] = [:]
        for l in listeners where l.affinityTable != nil {
            affinityTimeout[l.pool.id] = max(affinityTimeout[l.pool.id] ?? 0, Double(l.listener.idleTimeout))
        }
        let tables = selection.affinity.withLock { $0 }
        for e in s.affinity {
            guard let table = tables[e.poolID], let timeout = affinityTimeout[e.poolID] else { continue }
            table.restore(e.key, memberID: e.memberID, ttl: e.ttl ?? timeout, now: now)
            entries += 1
        }
        return (members, entries)
    }
}

extension ListenerPlan {
    /// A flow handed over by the previous process, already connected to
    /// `memberID`: counted as if this plan had picked it (active flows,
    /// persistence and affinity made live), so its `release` balances.
    /// Nil when this configuration no longer has that member in the pool.
    public func adopt(_ flow: FlowContext, memberID: String, port: UInt16) -> BackendTarget? {
        guard let i = pool.view.index(of: memberID) else { return nil }
        let now = pool.time.now()
        let m = pool.members[i]
        pool.persistence?.acquire(flow.client, memberID: m.id, now: now)
        affinityTable?.acquire(AffinityKey(client: flow.client, listenerAddress: flow.local), memberID: m.id, now: now)
        pool.view.runtimes[i].active.add(1, ordering: .relaxed)
        return BackendTarget(memberID: m.id, address: m.address, port: port)
    }
}
