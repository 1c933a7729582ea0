import Synchronization

/// A member as selection needs it: parsed address and current weights.
public struct MemberPlan: Sendable, Hashable {
    public var member: Member
    public var address: IPAddress
    public init(member: Member, address: IPAddress) { self.member = member; self.address = address }
    public var id: String { member.id }
}

/// A pool inside a snapshot. Built off the hot path (its algorithm is made,
/// and any lookup table built, here); `pick` is what workers call once per new
/// flow, through `ListenerPlan.pick`.
public final class PoolPlan: Sendable {
    public let pool: Pool
    public let members: [MemberPlan]
    /// The state shared with every other snapshot of this daemon.
    public let state: SelectionState
    public let view: PoolMembers
    public let balancer: any LoadBalancer
    /// The pool's SOURCE_IP session-persistence table, when it has one.
    public let persistence: StickyTable<IPAddress>?
    /// Seconds a persistence entry outlives its client's last flow.
    public let persistenceTimeout: Double
    /// New persistence choices go to the fleet (docs/cluster.md §7).
    let sharesPersistence: Bool
    /// Bound of each sticky table (`Tuning.maxStickyEntries`).
    public let stickyCapacity: Int
    /// HTTP_COOKIE: the values of the cookie Flowgate inserts, per member.
    public let cookieCodec: HTTPCookieCodec?
    /// APP_COOKIE: the application cookie's name and its learnt values → member.
    public let appCookieName: String?
    public let appCookies: StickyTable<String>?
    let time: any TimeSource

    public init(pool: Pool, members: [MemberPlan], state: SelectionState = SelectionState(),
                time: any TimeSource = SystemTime(), options: LoadBalancerOptions = LoadBalancerOptions(),
                stickyCapacity: Int = Tuning().maxStickyEntries, cookieName: String = HTTPCookieCodec.defaultCookieName) {
        guard let factory = LoadBalancerRegistry.factory(named: pool.lbAlgorithm) else {
            preconditionFailure("unvalidated lb_algorithm \(pool.lbAlgorithm)")
        }
        self.pool = pool; self.members = members; self.state = state; self.time = time
        self.stickyCapacity = stickyCapacity
        let runtimes = members.map { state.member(poolID: pool.id, memberID: $0.id) }
        let slowStart = pool.slowStart.enable ? Double(pool.slowStart.duration) : nil
        view = PoolMembers(plans: members, runtimes: runtimes, slowStart: slowStart, builtAt: time.now())
        balancer = factory.make(view, options)
        let sp = pool.sessionPersistence
        persistence = sp?.type == .sourceIP ? state.persistenceTable(poolID: pool.id, capacity: stickyCapacity) : nil
        persistenceTimeout = sp.map { Double($0.persistenceTimeout) * 60 } ?? 0
        sharesPersistence = persistence != nil && SharedPersistenceOutbox.shares(algorithm: pool.lbAlgorithm)
        cookieCodec = sp?.type == .httpCookie
            ? HTTPCookieCodec(poolID: pool.id, memberIDs: members.map(\.id), name: cookieName, maxAge: sp!.persistenceTimeout * 60)
            : nil
        if let sp, sp.type == .appCookie, let name = sp.cookieName {
            appCookieName = name
            appCookies = state.appCookieTable(poolID: pool.id, capacity: stickyCapacity)
        } else {
            appCookieName = nil; appCookies = nil
        }
    }

    public var id: String { pool.id }

    /// Design §3 steps 2-5 for a new flow: the pool's persistence entry, then
    /// the listener's affinity entry, each only while its member is usable,
    /// else the algorithm; the choice is then remembered in both tables and
    /// counted active on the member until `release`.
    func pick(_ flow: FlowContext, affinity: StickyTable<AffinityKey>?, excluding: [String],
              preferred: String? = nil) -> BackendTarget? {
        let now = time.now()
        var chosen: Int?
        // An HTTP request's persistence cookie names its member (HTTP_COOKIE, APP_COOKIE).
        if let preferred, let i = view.index(of: preferred), view.usable(i, excluding: excluding) {
            chosen = i
        }
        var remembered = false
        if chosen == nil, let persistence, let id = persistence.lookup(flow.client, now: now),
           let i = view.index(of: id), view.usable(i, excluding: excluding) {
            chosen = i
            remembered = true
        }
        let affinityKey = AffinityKey(client: flow.client, listenerAddress: flow.local)
        if chosen == nil, let affinity, let id = affinity.lookup(affinityKey, now: now),
           let i = view.index(of: id), view.usable(i, excluding: excluding) {
            chosen = i
        }
        if chosen == nil {
            chosen = balancer.choose(view, PickInput(flow: flow, now: now, excluding: excluding))
        }
        guard let i = chosen else { return nil }
        let m = members[i]
        persistence?.acquire(flow.client, memberID: m.id, now: now)
        if !remembered && sharesPersistence && state.sharedPersistence.enabled.load(ordering: .relaxed) {
            state.sharedPersistence.offer(SharedChoice(poolID: pool.id, client: flow.client, memberID: m.id,
                                                       timeout: Int(persistenceTimeout)))
        }
        affinity?.acquire(affinityKey, memberID: m.id, now: now)
        view.runtimes[i].active.add(1, ordering: .relaxed)
        view.runtimes[i].picks.add(1, ordering: .relaxed)
        return BackendTarget(memberID: m.id, address: m.address, port: UInt16(m.member.protocolPort ?? Int(flow.localPort)))
    }

    func release(_ flow: FlowContext, target: BackendTarget, affinity: StickyTable<AffinityKey>?,
                 affinityTimeout: Double, connected: Bool) {
        let now = time.now()
        let runtime = view.index(of: target.memberID).map { view.runtimes[$0] }
            ?? state.member(poolID: pool.id, memberID: target.memberID)
        runtime.active.subtract(1, ordering: .relaxed)
        if !connected { runtime.connectFailed() }
        persistence?.release(flow.client, now: now, timeout: persistenceTimeout)
        affinity?.release(AffinityKey(client: flow.client, listenerAddress: flow.local), now: now, timeout: affinityTimeout)
    }

    /// The connect to `target` succeeded: ends the member's passive failure
    /// streak (health checks, docs/architecture.md §10).
    func connected(_ target: BackendTarget) {
        guard let i = view.index(of: target.memberID) else { return }
        view.runtimes[i].resetFailureStreak()
    }

    /// Whether member `memberID` may take a new request now (cookie persistence).
    public func isUsable(_ memberID: String) -> Bool {
        guard let i = view.index(of: memberID) else { return false }
        return view.usable(i, excluding: [])
    }

    /// APP_COOKIE: the member that set application cookie value `value`, while the entry lives.
    public func appCookieMember(_ value: String) -> String? {
        appCookies?.lookup(value, now: time.now())
    }

    /// APP_COOKIE: member `memberID` set the application cookie to `value`;
    /// remembered for the pool's persistence timeout from now.
    public func learnAppCookie(_ value: String, memberID: String) {
        guard let appCookies else { return }
        let now = time.now()
        appCookies.acquire(value, memberID: memberID, now: now)
        appCookies.release(value, now: now, timeout: persistenceTimeout)
    }

    /// Live counters of member `memberID` (metrics, tests).
    public func runtime(of memberID: String) -> MemberRuntime? { view.index(of: memberID).map { view.runtimes[$0] } }

    /// The member's slow-start multiplier now (metrics: slow-start fraction).
    public func rampFraction(of memberID: String) -> Double? {
        view.index(of: memberID).map { view.rampFraction($0, now: time.now()) }
    }
}
