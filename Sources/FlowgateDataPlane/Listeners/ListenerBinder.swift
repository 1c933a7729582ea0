import FlowgateCore
import FlowgateSystem

/// Opens every listening socket an update adds, all or nothing: on the first
/// failure it closes what it opened and reports the listener and port.
struct ListenerBinder {
    let drivers: [TransportProtocol: TransportDriver]
    let workers: Int

    struct Opened {
        /// Per worker, the sockets it will own.
        var byWorker: [[ListeningSocket]]
        var socketsPerPort: Int
        var count: Int { byWorker.reduce(0) { $0 + $1.count } }
        func closeAll() { for list in byWorker { for s in list { System.close(s.fd) } } }
        /// Sockets handed over by the previous process, in order per key:
        /// the j-th socket of a key goes to worker j mod workers.
        mutating func add(_ handed: [(index: Int, socket: ListeningSocket)], workers: Int) {
            for h in handed { byWorker[h.index % workers].append(h.socket) }
        }
    }

    /// `added` lists the new keys in a stable order (listener by listener,
    /// ascending ports) with the listener that asked for each.
    /// Sockets per port for `added`, or the budget error naming the listeners.
    func socketsPerPort(_ added: [(key: ListeningSocketKey, plan: ListenerPlan)], budget: DescriptorBudget) throws(ApplyError) -> Int {
        guard let k = budget.socketsPerPort(ports: added.count, workers: workers) else {
            let arns = Set(added.map(\.plan.listener.listenerArn)).sorted().joined(separator: ",")
            throw ApplyError(.descriptorBudget,
                "listeners \(arns): \(added.count) new ports need at least \(added.count) descriptors but only \(budget.available) of the open-files limit \(budget.limit) are free (\(budget.openNow) open, \(budget.reserve) kept for connections); raise LimitNOFILE or narrow the port ranges")
        }
        return k
    }

    func bind(_ added: [(key: ListeningSocketKey, plan: ListenerPlan)], socketsPerPort k: Int) throws(ApplyError) -> Opened {
        var opened = Opened(byWorker: Array(repeating: [], count: workers), socketsPerPort: k)
        for (i, entry) in added.enumerated() {
            guard let driver = drivers[entry.key.transport] else { continue }
            let address = SocketAddress(entry.key.bind, port: entry.key.port)
            for j in 0..<k {
                do {
                    let fd = try driver.openListeningSocket(address, reusePort: k > 1)
                    let w = DescriptorBudget.owner(portIndex: i, socket: j, socketsPerPort: k, workers: workers)
                    opened.byWorker[w].append(ListeningSocket(key: entry.key, fd: fd))
                } catch {
                    opened.closeAll()
                    throw ListenerBinder.applyError(error, listener: entry.plan.listener, address: address)
                }
            }
        }
        return opened
    }

    static func applyError(_ e: SystemError, listener: Listener, address: SocketAddress) -> ApplyError {
        let kind: ApplyError.Kind
        if e.isAddressInUse { kind = .addressInUse }
        else if e.isPermissionDenied { kind = .permissionDenied }
        else if e.isDescriptorLimit { kind = .descriptorBudget }
        else { kind = .other }
        return ApplyError(kind, "listener \(listener.listenerArn) port \(address.port): cannot bind \(listener.protocol.rawValue) \(address): \(e.reason)")
    }
}
