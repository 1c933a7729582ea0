// Refuses a mutating signed request whose exact signature was already
// accepted (and kept: the router forgets a change that was not applied,
// HTTP/ControlRouter+Auth.swift `settle`). A signature covers the method, path, query, signed headers, body
// hash and a timestamp that the verifiers accept for 15 minutes either way
// (SigV4Verifier.maxSkewSeconds), so without this a captured update could be
// sent again, unchanged, for that long. AWS itself accepts such replays; this
// endpoint reconfigures a load balancer, so it does not (docs/control.md).
//
// Bounded: at most `capacity` signatures are remembered, each until its
// signing time plus the skew window (after that the verifier refuses it as
// expired anyway). When the cache is full of unexpired entries a new mutating
// request is refused (`.full`, answered as throttling) rather than forgetting an
// entry, which would reopen the replay window for it. Only requests whose
// signature verified are recorded, so only a key holder can fill it.
import Synchronization
import FlowgateCore

/// What a verifier proved: the scheme, the MAC itself and when it was signed.
public struct VerifiedSignature: Sendable, Equatable {
    public var scheme: SignatureScheme
    public var mac: [UInt8]
    public var signedAt: Int64
    public init(scheme: SignatureScheme, mac: [UInt8], signedAt: Int64) { self.scheme = scheme; self.mac = mac; self.signedAt = signedAt }
}

public final class ReplayCache: Sendable {
    /// 65,536 entries of 32 + 8 bytes plus the table's overhead: a few MiB at most.
    /// At the gate's pace (each change fsyncs the state file, ~5 ms) 15 minutes hold
    /// at most ~180,000 changes; 65,536 is 73 changes/s sustained for 15 minutes.
    public static let defaultCapacity = 65_536

    public enum Verdict: Sendable, Equatable {
        case fresh
        /// Accepted before; the time it was first accepted.
        case replayed(firstSeen: Int64)
        /// `capacity` unexpired signatures are remembered; refuse rather than forget one.
        case full
    }

    /// The MAC's 32 bytes as a fixed-size key (no heap allocation per entry).
    struct Key: Hashable { var a: UInt64, b: UInt64, c: UInt64, d: UInt64 }
    struct Entry { var expires: Int64; var firstSeen: Int64 }

    public let capacity: Int
    public let window: Int64
    private let entries = Mutex<[Key: Entry]>([:])

    public init(capacity: Int = ReplayCache.defaultCapacity, window: Int64 = SigV4Verifier.maxSkewSeconds) {
        precondition(capacity > 0)
        self.capacity = capacity; self.window = window
    }

    public var count: Int { entries.withLock { $0.count } }

    /// Records `signature` if it is new. `now` is the caller's clock (injected in tests).
    public func admit(_ signature: VerifiedSignature, now: Int64) -> Verdict {
        let key = Self.key(signature)
        return entries.withLock { table -> Verdict in
            if let seen = table[key], seen.expires >= now { return .replayed(firstSeen: seen.firstSeen) }
            if table.count >= capacity {
                // Only when full: an O(n) sweep at most once per `capacity` inserts in steady use.
                table = table.filter { $0.value.expires >= now }
                if table.count >= capacity { return .full }
            }
            table[key] = Entry(expires: signature.signedAt + window, firstSeen: now)
            return .fresh
        }
    }

    /// Both schemes MAC with HMAC-SHA256: 32 bytes, which the verifiers produce themselves.
    /// Forgets `signature` (a change that was refused: nothing to protect).
    public func forget(_ signature: VerifiedSignature) {
        let key = Self.key(signature)
        _ = entries.withLock { $0.removeValue(forKey: key) }
    }

    static func key(_ s: VerifiedSignature) -> Key {
        precondition(s.mac.count == 32, "an HMAC-SHA256 is 32 bytes")
        func word(_ i: Int) -> UInt64 { (0..<8).reduce(0) { $0 << 8 | UInt64(s.mac[i * 8 + $1]) } }
        return Key(a: word(0), b: word(1), c: word(2), d: word(3))
    }
}
