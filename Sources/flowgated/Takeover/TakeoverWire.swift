// The takeover handshake's messages (docs/architecture.md §16): text, one
// per SOCK_SEQPACKET message, so each message carries exactly the
// descriptors sent with it.
//
//   new → old   hello 2 pid=<pid>
//   old → new   listener <TCP|UDP> <bind> <port> <listener ARN>   + its sockets (SCM_RIGHTS), one per port
//                                            (port 0: the listener's lookup group, docs/architecture.md §20)
//   old → new   state <bytes>               + one sealed memfd holding the state blob (HandoverCodec)
//   old → new   end <ports>                 (or: refused <reason>, then close)
//   new → old   go <workers>                (after the new process forwards; sockets past
//                                            one per worker of the new process close)
//   old → new   conns <n>\n<line>…          + 2n descriptors (client, member) per connection,
//                                            at most 126 connections a message (SCM_MAX_FD 253)
//   old → new   sessions <n>\n<line>…       + n descriptors (each UDP session's upstream socket), at most 252 a message
//   old → new   handed <n> sessions <s> kept <k> udp <u>
//                                           (n connections and s sessions sent; k TCP, u UDP stay to drain)
//   new → old   commit <ids|-> <ids|->      (checked and adopting; the connection and session ids it
//                                            declined resume in the old one)
//   old → new   done                        (the old one let go, stopped accepting, released the lock)
import FlowgateCore
import FlowgateSystem
import FlowgateDataPlane

enum TakeoverWire {
    static let version = 2
    /// Connections per `conns` message: two descriptors each.
    static let connectionsPerMessage = System.maxDescriptorsPerMessage / 2

    /// The handshake socket, beside the control socket, so the same
    /// `control.unix_socket` that names the running daemon finds it.
    static func socketPath(controlSocket: String) -> String { controlSocket + ".takeover" }

    static func hello() -> String { "hello \(version) pid=\(System.processID())" }

    /// The version a hello asks for, nil when it is not a hello.
    static func helloVersion(_ line: String) -> Int? {
        let f = line.split(separator: " ")
        guard f.count >= 2, f[0] == "hello" else { return nil }
        return Int(f[1])
    }

    static func go(workers: Int) -> String { "go \(workers)" }

    /// The new process's worker count from a go message, nil when it is not one.
    static func goWorkers(_ line: String) -> Int? {
        let f = line.split(separator: " ")
        guard f.count == 2, f[0] == "go", let n = Int(f[1]), n >= 1 else { return nil }
        return n
    }

    static func listenerLine(_ l: HandedListener) -> String {
        "listener \(l.key.transport.rawValue) \(l.key.bind) \(l.key.port) \(l.listenerArn)"
    }

    /// A `listener` message and the descriptors that came with it.
    static func parseListener(_ line: String, fds: [Int32]) -> HandedListener? {
        let f = line.split(separator: " ", maxSplits: 4, omittingEmptySubsequences: false)
        guard f.count >= 4, f[0] == "listener", let transport = TransportProtocol(rawValue: String(f[1])),
              let bind = IPAddress(f[2]), let port = Int(f[3]), (0...65535).contains(port), !fds.isEmpty else { return nil }
        let arn = f.count > 4 ? String(f[4]) : ""
        // Port 0: a listener's lookup group (`port_ranges: lookup`, docs/architecture.md §20),
        // whose key is its listener.
        if port == 0 {
            guard !arn.isEmpty else { return nil }
            return HandedListener(key: ListeningSocketKey(transport: transport, bind: bind, port: 0, lookupListener: arn),
                                  listenerArn: arn, fds: fds)
        }
        return HandedListener(key: ListeningSocketKey(transport: transport, bind: bind, port: port), listenerArn: arn, fds: fds)
    }

    /// `handed <n> sessions <s> kept <k> udp <u>`, nil when it is not one.
    static func parseHanded(_ line: String) -> (handed: Int, sessions: Int, kept: Int, udp: Int)? {
        let f = line.split(separator: " ")
        guard f.count == 8, f[0] == "handed", f[2] == "sessions", f[4] == "kept", f[6] == "udp",
              let n = Int(f[1]), let s = Int(f[3]), let k = Int(f[5]), let u = Int(f[7]) else { return nil }
        return (n, s, k, u)
    }

    static func commit(connections: [Int], sessions: [Int]) -> String {
        func ids(_ l: [Int]) -> String { l.isEmpty ? "-" : l.map(String.init).joined(separator: ",") }
        return "commit \(ids(connections)) \(ids(sessions))"
    }

    /// `commit <ids|-> <ids|->`: the declined connection and session ids,
    /// nil when it is not one.
    static func parseCommit(_ line: String) -> (connections: Set<Int>, sessions: Set<Int>)? {
        let f = line.split(separator: " ")
        guard f.count == 3, f[0] == "commit" else { return nil }
        func ids(_ field: Substring) -> Set<Int>? {
            if field == "-" { return [] }
            var out = Set<Int>()
            for p in field.split(separator: ",") { guard let i = Int(p) else { return nil }; out.insert(i) }
            return out
        }
        guard let c = ids(f[1]), let u = ids(f[2]) else { return nil }
        return (c, u)
    }

    static func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }
}

/// Why a takeover did not happen; the message names the step.
struct TakeoverFailure: Error, CustomStringConvertible {
    var message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}
