/// What one process hands the next at a takeover besides descriptors
/// (docs/architecture.md §16.2): the selection state that outlives a
/// snapshot, and the counters that name the process's place in a chain of
/// takeovers. Times are relative ("seconds ago", "seconds left"), because
/// each process's clock starts at its own origin (Support/TimeSource.swift).
public struct HandoverState: Sendable, Equatable {
    /// The applied snapshot's generation: the next process's first snapshot
    /// continues from it.
    public var snapshotGeneration: UInt64
    /// How many takeovers led to the sending process (0 for a plain start).
    public var takeoverGeneration: UInt64
    public var members: [Member]
    public var roundRobin: [RoundRobinScores]
    public var persistence: [PersistenceEntry]
    public var affinity: [AffinityEntry]

    public init(snapshotGeneration: UInt64, takeoverGeneration: UInt64, members: [Member] = [],
                roundRobin: [RoundRobinScores] = [], persistence: [PersistenceEntry] = [], affinity: [AffinityEntry] = []) {
        self.snapshotGeneration = snapshotGeneration; self.takeoverGeneration = takeoverGeneration
        self.members = members; self.roundRobin = roundRobin; self.persistence = persistence; self.affinity = affinity
    }

    /// A member's shared runtime: health mark, slow-start origin, active flows.
    public struct Member: Sendable, Equatable {
        public var poolID: String
        public var memberID: String
        public var up: Bool
        /// Seconds since its slow start began; nil when it never ramped.
        public var rampAge: Double?
        /// Flows the sending process had on it (least connections).
        public var activeFlows: Int
        public init(poolID: String, memberID: String, up: Bool, rampAge: Double?, activeFlows: Int) {
            self.poolID = poolID; self.memberID = memberID; self.up = up; self.rampAge = rampAge; self.activeFlows = activeFlows
        }
    }

    /// A ROUND_ROBIN pool's smooth-weighted scores, by member.
    public struct RoundRobinScores: Sendable, Equatable {
        public var poolID: String
        public var scores: [Score]
        public init(poolID: String, scores: [Score]) { self.poolID = poolID; self.scores = scores }
        public struct Score: Sendable, Equatable {
            public var memberID: String
            public var score: Int
            public init(memberID: String, score: Int) { self.memberID = memberID; self.score = score }
        }
    }

    /// A session-persistence entry (client IP → member) of a pool.
    public struct PersistenceEntry: Sendable, Equatable {
        public var poolID: String
        public var client: IPAddress
        public var memberID: String
        /// Seconds left; nil while the sender had live flows of the client.
        public var ttl: Double?
        public init(poolID: String, client: IPAddress, memberID: String, ttl: Double?) {
            self.poolID = poolID; self.client = client; self.memberID = memberID; self.ttl = ttl
        }
    }

    /// A ClientAffinity SOURCE_IP entry ((client IP, listener IP) → member) of a pool.
    public struct AffinityEntry: Sendable, Equatable {
        public var poolID: String
        public var key: AffinityKey
        public var memberID: String
        public var ttl: Double?
        public init(poolID: String, key: AffinityKey, memberID: String, ttl: Double?) {
            self.poolID = poolID; self.key = key; self.memberID = memberID; self.ttl = ttl
        }
    }
}
