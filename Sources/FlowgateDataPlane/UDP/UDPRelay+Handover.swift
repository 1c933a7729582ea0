// Live UDP sessions across a takeover (docs/architecture.md §16.3): the old
// process lends each session's connected upstream socket (with its flow key,
// member and idle time); the next one adopts them, so the member keeps
// seeing the same source port and the client keeps its member. Datagrams
// queued on a socket meanwhile travel with it.
import FlowgateCore
import FlowgateSystem
import Synchronization

/// One UDP session on its way to the next process.
public struct HandedSession: Sendable {
    public var id: Int
    public var key: ListeningSocketKey
    /// The client's address exactly as received (v4-mapped stays v6).
    public var client: IPAddress
    public var clientPort: UInt16
    /// The reply source on a wildcard bind (PKTINFO), nil otherwise.
    public var local: IPAddress?
    public var memberID: String
    public var memberAddress: IPAddress
    public var memberPort: UInt16
    public var idleLeft: Double
    public var upstream: Int32
    /// The position, among the port's handed listening sockets, of the one
    /// the session's datagrams arrive on: the next process adopts it on the
    /// worker holding that same socket, where the kernel keeps delivering
    /// the client's datagrams (SO_REUSEPORT hashes the flow to a socket).
    public var socketIndex = 0

    public var line: String {
        "u \(id) \(socketIndex) \(key.bind) \(key.port) \(client) \(clientPort) \(local.map { "\($0)" } ?? "-") \(memberID) \(memberAddress) \(memberPort) \(Int(idleLeft.rounded(.up)))"
    }

    public static func parse(_ line: Substring, upstream: Int32) -> HandedSession? {
        let f = line.split(separator: " ")
        guard f.count == 12, f[0] == "u", let id = Int(f[1]), let index = Int(f[2]), index >= 0,
              let bind = IPAddress(f[3]), let port = Int(f[4]),
              (1...65535).contains(port), let client = IPAddress(f[5]), let cport = UInt16(f[6]),
              let maddr = IPAddress(f[9]), let mport = UInt16(f[10]), let idle = Int(f[11]) else { return nil }
        let local: IPAddress? = f[7] == "-" ? nil : IPAddress(f[7])
        if f[7] != "-" && local == nil { return nil }
        return HandedSession(id: id, key: ListeningSocketKey(transport: .udp, bind: bind, port: port), client: client,
                             clientPort: cport, local: local, memberID: String(f[8]), memberAddress: maddr, memberPort: mport,
                             idleLeft: Double(idle), upstream: upstream, socketIndex: index)
    }
}

/// A worker's paused sessions: (listener ARN, session key, upstream fd).
final class PausedSessions: @unchecked Sendable {
    let list: [(arn: String, key: FlowKey, fd: Int32)]
    init(_ list: [(arn: String, key: FlowKey, fd: Int32)]) { self.list = list }
}

extension UDPRelay {
    /// Set in a process taking over until it adopted the sessions: its UDP
    /// listening sockets are attached but not read (the old process still
    /// reads them), so no datagram of a live session starts a second
    /// session with another source port toward the member.
    nonisolated(unsafe) static var holdingListeners = false

    /// Reads every attached listening socket (end of the hold).
    func releaseListeners() {
        for p in portsByKey.values { p.event?.add() }
    }

    /// Old side: pauses every session with a connected upstream socket (no
    /// more reads of it here; the client's datagrams still go out on it
    /// until commit) and describes it. Sessions hold nothing in Flowgate
    /// between loop turns, so every one is quiescent.
    func pauseSessionsForHandover() -> (handed: [HandedSession], paused: PausedSessions) {
        var handed: [HandedSession] = []
        var paused: [(arn: String, key: FlowKey, fd: Int32)] = []
        let now = time.now()
        for state in listeners.values {
            for slot in state.table.slotsByRecency {
                let s = state.table[slot]
                guard s.upstreamFD >= 0, let t = s.flow.target, s.generation == s.flow.generation else { continue }
                // A lookup listener's session names the port the client reached and the address its reply
                // socket is bound to (docs/architecture.md §20); the next process finds the group serving it.
                var portKey: ListeningSocketKey, local: IPAddress?
                if state.lookup {
                    guard let r = replies.address(of: s.listenerFD) else { continue }
                    portKey = ListeningSocketKey(transport: .udp, bind: state.plan.bindAddress, port: Int(r.port))
                    local = r.ip.unmapped
                } else {
                    guard let port = state.ports.first(where: { $0.fd == s.listenerFD }) else { continue }
                    portKey = port.key
                    local = s.local.length > 0 ? s.local.ip : nil
                }
                s.event?.remove()
                let key = state.table.key(at: slot)
                handed.append(HandedSession(id: 0, key: portKey, client: s.client.ip, clientPort: s.client.port,
                                            local: local, memberID: t.memberID,
                                            memberAddress: t.address, memberPort: t.port,
                                            idleLeft: max(1, state.table.idleTimeout - (now - state.table.lastSeen(at: slot))),
                                            upstream: s.upstreamFD))
                paused.append((state.arn, key, s.upstreamFD))
            }
        }
        return (handed, PausedSessions(paused))
    }

    /// Old side: the paused sessions either end here (committed: the next
    /// process holds their sockets) or read again (rolled back). Returns how
    /// many were found still live.
    func finishPausedSessions(_ paused: PausedSessions, commit: Bool, declined: Set<Int32>) -> Int {
        var n = 0
        for p in paused.list {
            guard let state = listeners[p.arn], let slot = state.table.slot(of: p.key),
                  state.table[slot].upstreamFD == p.fd else { continue }
            n += 1
            if commit && !declined.contains(p.fd) {
                let (_, s) = state.table.remove(slot)
                closeSession(state, s, reason: "handed_over")
            } else {
                state.table[slot].event?.add()
            }
        }
        publish()
        return n
    }

    /// New side: a session handed over; false (socket closed) when this
    /// configuration cannot take it.
    func adoptSession(_ h: HandedSession) -> Bool {
        // With port_ranges lookup the key names the port the client reached; the listener's group serves it.
        let found = portsByKey[h.key] ?? portsByKey.values.first { p in
            p.key.isLookup && p.key.bind == h.key.bind && LookupSockets.serves(p.state.plan, port: h.key.port)
        }
        guard let port = found, port.state.plan.pool.view.index(of: h.memberID) != nil else {
            System.close(h.upstream); return false
        }
        let state = port.state
        var replyFD = port.fd
        if state.lookup {
            let local = UDPAddress(h.local ?? state.plan.bindAddress, port: UInt16(truncatingIfNeeded: h.key.port), family: state.lookupFamily)
            do throws(SystemError) { replyFD = try replies.acquire(local) } catch { System.close(h.upstream); return false }
        }
        let localIP = h.local ?? state.plan.bindAddress
        let ctx = FlowContext(transport: .udp, client: h.client, clientPort: h.clientPort, local: localIP,
                              localPort: UInt16(truncatingIfNeeded: h.key.port))
        let sessionKey = FlowKey(ctx, affinity: .none)
        // A reply socket taken above is given back on every refusal below.
        let refuse = { [self] () -> Bool in
            if state.lookup { replies.release(replyFD) }
            System.close(h.upstream)
            return false
        }
        guard state.table.slot(of: sessionKey) == nil else { return refuse() }
        let affinity = state.plan.listener.clientAffinity
        let flowKey = FlowKey(ctx, affinity: affinity)
        let flow: UDPFlow
        if affinity == .sourceIP, let existing = state.flows[flowKey], existing.target?.memberID == h.memberID {
            flow = existing
        } else {
            guard var t = state.plan.adopt(ctx, memberID: h.memberID, port: h.memberPort) else { return refuse() }
            t.address = h.memberAddress
            flow = UDPFlow(key: flowKey, context: ctx, planGeneration: state.planGeneration)
            flow.target = t
            flow.plan = state.plan
            flow.generation = 1
            if affinity == .sourceIP { state.flows[flowKey] = flow }
        }
        flow.sessions += 1
        var value = UDPSession(flow: flow, client: UDPAddress(h.client, port: h.clientPort),
                               local: state.lookup ? UDPAddress() : h.local.map { UDPAddress($0, port: UInt16(truncatingIfNeeded: h.key.port)) } ?? UDPAddress(),
                               listenerFD: replyFD)
        value.generation = flow.generation
        let now = time.now()
        let (slot, evicted) = state.table.insert(sessionKey, value, now: now - max(0, state.table.idleTimeout - h.idleLeft))
        if let ev = evicted { closeSession(state, ev.value, reason: "evicted") }
        guard let event = LoopEvent(base, fd: h.upstream, interest: .read, persist: true, handler: state) else {
            let (_, s) = state.table.remove(slot)
            System.close(h.upstream)
            closeSession(state, s, reason: "upstream_failed")
            return false
        }
        event.add()
        if Int(h.upstream) >= slotByFD.count {
            slotByFD.append(contentsOf: repeatElement(-1, count: Int(h.upstream) + 1024 - slotByFD.count))
        }
        slotByFD[Int(h.upstream)] = slot
        state.table[slot].upstreamFD = h.upstream
        state.table[slot].event = event
        return true
    }
}
