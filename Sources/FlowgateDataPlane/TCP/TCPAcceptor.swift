#if canImport(Glibc)
import Glibc
#endif
import FlowgateCore
import FlowgateSystem

/// One listening TCP socket owned by one worker. Each wakeup drains the
/// accept queue up to a bound (nginx's multi_accept, bounded so one busy port
/// cannot starve the loop's other sockets).
final class TCPAcceptor: EventHandler {
    static let acceptsPerWakeup = 64

    let key: ListeningSocketKey
    let fd: Int32
    var plan: ListenerPlan { didSet { http = plan.pool.pool.protocol == .http; single = TCPAcceptor.singlePort(plan); applyOptions() } }
    /// A lookup listener of exactly one port needs no getsockname per accept.
    private var single: Int?
    static func singlePort(_ plan: ListenerPlan) -> Int? { plan.ports.count == 1 ? plan.ports[0] : nil }
    /// The pool speaks HTTP: accepted clients get an HTTPConnection. Decided
    /// when a snapshot's plan arrives, so the plain TCP path pays one
    /// predictable branch per accept and nothing per byte.
    private var http: Bool
    unowned(unsafe) let service: TCPService
    private var event: LoopEvent?
    /// When bound to a wildcard, each connection's local address is read
    /// with getsockname (it matters for SOURCE_IP affinity's 2-tuple).
    let wildcard: Bool

    init(socket: ListeningSocket, plan: ListenerPlan, service: TCPService) {
        key = socket.key; fd = socket.fd; self.plan = plan; self.service = service
        http = plan.pool.pool.protocol == .http
        single = TCPAcceptor.singlePort(plan)
        wildcard = socket.key.bind.isUnspecified
        super.init()
        event = LoopEvent(service.worker.eventBase, fd: fd, interest: .read, persist: true, handler: self)
        applyOptions()
    }

    /// TCP_DEFER_ACCEPT and TCP_FASTOPEN as the listener asks, set on this
    /// worker's socket when the acceptor starts and whenever an update
    /// changes them (0 switches one off again). A socket this process bound
    /// has both off, so a listener without them costs no call per port.
    private var applied = (deferAccept: 0, fastOpen: 0)

    private func applyOptions() {
        let deferAccept = plan.listener.tcpDeferAccept ?? 0, fastOpen = plan.listener.tcpFastOpen ?? 0
        if deferAccept != applied.deferAccept {
            set(TCPListenerOptions.deferAccept, Int32(deferAccept), "tcp_defer_accept")
            applied.deferAccept = deferAccept
        }
        if fastOpen != applied.fastOpen {
            set(TCPListenerOptions.fastOpen, Int32(fastOpen), "tcp_fastopen")
            applied.fastOpen = fastOpen
            if fastOpen > 0 { TCPListenerOptions.warnIfFastOpenServerIsOff() }
        }
    }

    private func set(_ option: Int32, _ value: Int32, _ field: String) {
        do { try System.setOption(fd, Int32(IPPROTO_TCP), option, value) } catch {
            Log.warn("listener_option_failed", ["listener": plan.listener.listenerArn, "port": key.port,
                                                "option": field, "value": value, "error": error])
        }
    }

    override func handleEvent(fd: Int32, readiness: IOReadiness) { acceptReady() }

    func enable() { event?.add() }
    func disable() { event?.remove() }

    /// Closing a listening socket resets every connection still in its
    /// accept queue; those clients already completed the handshake, so they
    /// are taken in first (bounded) and served like the rest.
    func close() {
        if let e = event { e.free(); event = nil }
        acceptReady(limit: 1024)
        System.close(fd)
    }

    /// After a takeover: the next process holds the same socket and serves
    /// its queue, so this one only lets go of its descriptor.
    func release() {
        if let e = event { e.free(); event = nil }
        System.close(fd)
    }

    private func acceptReady(limit: Int = TCPAcceptor.acceptsPerWakeup) {
        for _ in 0..<limit {
            let accepted: (fd: Int32, peer: SocketAddress)?
            do {
                accepted = try System.accept(fd)
            } catch {
                if error.isDescriptorLimit { service.pauseAccepting(error); return }
                // ECONNABORTED and friends concern one client only.
                Log.debug("accept_failed", ["port": key.port, "error": error])
                continue
            }
            guard let (client, peer) = accepted else { return }
            var local = key.bind
            var localPort = key.port
            if key.isLookup, single != nil, !wildcard {
                localPort = single!   // one port: nothing to ask the kernel
            } else if key.isLookup {
                // A lookup socket serves a whole range: the port the client
                // reached is the accepted socket's own (docs/architecture.md §20).
                guard let a = try? System.localAddress(client), LookupSockets.serves(plan, port: a.port) else {
                    System.setAbortiveClose(client); System.close(client); continue
                }
                local = a.ip; localPort = a.port
            } else if wildcard, let a = try? System.localAddress(client) { local = a.ip }
            let flow = FlowContext(transport: .tcp, client: peer.ip, clientPort: UInt16(truncatingIfNeeded: peer.port),
                                   local: local, localPort: UInt16(truncatingIfNeeded: localPort))
            if http { service.openHTTP(client: client, flow: flow, plan: plan, key: key) } else { service.open(client: client, flow: flow, plan: plan) }
        }
    }
}
