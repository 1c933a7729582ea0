#if canImport(Glibc)
import Glibc
#endif
import CLibevent
import FlowgateCore

/// One member whose live TCP connections must end `timeout` seconds after a
/// commit took it out of service (ELB `connection_drain`).
public struct DrainOrder: Sendable, Hashable {
    public var poolID: String
    public var memberID: String
    public var timeout: Int
    public init(poolID: String, memberID: String, timeout: Int) { self.poolID = poolID; self.memberID = memberID; self.timeout = timeout }
}

/// Which members a commit drains (design §3: weight 0, admin down or removal
/// keep live TCP connections; `connection_drain` {enable, timeout} bounds
/// how long). Pure, so the rules are tested without sockets.
public enum ConnectionDrainPlanner {
    static func inService(_ m: Member) -> Bool { m.adminStateUp && m.weight > 0 }

    /// Members in service before and not after (removed, weight 0 or admin
    /// down), in pools whose drain is enabled: the new pool's setting, or
    /// the old one's when the pool itself was removed.
    public static func orders(previous: FlowgateConfig, next: FlowgateConfig) -> [DrainOrder] {
        var out: [DrainOrder] = []
        for old in previous.pools {
            let new = next.pool(id: old.id)
            let drain = (new ?? old).connectionDrain
            guard drain.enable else { continue }
            for m in old.members where inService(m) {
                if let now = new?.members.first(where: { $0.id == m.id }), inService(now) { continue }
                out.append(DrainOrder(poolID: old.id, memberID: m.id, timeout: drain.timeout))
            }
        }
        return out
    }

    /// At the deadline, is the member still out of service in `config`?
    /// (It may have been put back meanwhile: then its connections stay.)
    public static func stillDrained(_ order: DrainOrder, in config: FlowgateConfig?) -> Bool {
        guard let m = config?.pool(id: order.poolID)?.members.first(where: { $0.id == order.memberID }) else { return true }
        return !inService(m)
    }
}

/// A drain deadline pending on one worker's loop.
private final class DrainDeadline {
    unowned(unsafe) let worker: Worker
    let orders: [DrainOrder]
    init(worker: Worker, orders: [DrainOrder]) { self.worker = worker; self.orders = orders }
}

extension Worker {
    /// Worker thread: arm one timer per distinct timeout; when it fires,
    /// close this worker's TCP connections to members still drained.
    func scheduleDrain(_ orders: [DrainOrder]) {
        let byTimeout = Dictionary(grouping: orders, by: \.timeout)
        for (timeout, group) in byTimeout {
            let ctx = Unmanaged.passRetained(DrainDeadline(worker: self, orders: group)).toOpaque()
            let cb: event_callback_fn = { _, _, ctx in
                let d = Unmanaged<DrainDeadline>.fromOpaque(ctx!).takeRetainedValue()
                d.worker.drainDeadlineReached(d.orders)
            }
            var tv = timeval(tv_sec: timeout, tv_usec: 0)
            // event_base_once frees its event after the callback; a base freed
            // first (worker exit) leaks only the small DrainDeadline.
            _ = event_base_once(base, -1, Int16(EV_TIMEOUT), cb, ctx, &tv)
        }
    }

    private func drainDeadlineReached(_ orders: [DrainOrder]) {
        guard let tcp = service(.tcp) as? TCPService else { return }
        let config = snapshotIndex?.snapshot.config
        for order in orders where ConnectionDrainPlanner.stillDrained(order, in: config) {
            let closed = tcp.closeConnections(poolID: order.poolID, memberID: order.memberID, reason: "drain_timeout")
            metrics.drainClosed += closed
            if closed > 0 {
                Log.info("drain_closed", ["worker": index, "pool": order.poolID, "member": order.memberID,
                                          "connections": closed, "timeout_s": order.timeout])
            }
        }
    }
}

extension TCPService {
    /// Closes every connection (connecting or relaying) given `memberID` of
    /// `poolID`; returns how many.
    func closeConnections(poolID: String, memberID: String, reason: String) -> Int {
        var victims: [TCPConnection] = []
        var c = head
        while let conn = c {
            if conn.plan.pool.id == poolID, conn.target?.memberID == memberID { victims.append(conn) }
            c = conn.next
        }
        for v in victims { v.close(reason: reason) }
        return victims.count
    }
}
