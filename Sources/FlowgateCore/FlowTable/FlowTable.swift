/// A bounded table of live UDP flows with least-recently-used eviction and
/// idle expiry (docs/architecture.md §6).
///
/// Layout: entries live in parallel arrays ("slots") threaded by an intrusive
/// doubly linked list in recency order (head = most recently used, tail =
/// least), the way the Linux conntrack and nginx's `ngx_queue_t` keep LRU
/// order without a node allocation per touch. A dictionary maps the key to
/// its slot. So:
/// - `touch` (every datagram) moves a slot to the head: O(1), no allocation;
/// - `insert` (once per new flow) takes a free slot, or the tail when the
///   table is full (counted in `evictions`): O(1) amortised; the slot arrays
///   only grow until `capacity`, then slots are recycled through a free list;
/// - expiry pops from the tail while the tail has been idle for at least
///   `idleTimeout`: every entry behind it is older, so one sweep costs
///   O(expired + 1).
///
/// One table uses one idle timeout, so the relay keeps one table per
/// listener per worker (listeners have their own `idle_timeout`).
///
/// Not thread-safe: each worker owns its tables (docs/architecture.md §4: no lock per packet).
public struct FlowTable<Key: Hashable, Value> {
    public typealias Slot = Int32
    /// No slot (list end, free-list end).
    public static var none: Slot { -1 }

    public let capacity: Int
    /// May change when the listener's idle_timeout is updated; applies to every entry.
    public var idleTimeout: Double

    private var index: [Key: Slot] = [:]
    private var keys: [Key?] = []
    private var values: [Value?] = []
    private var lastSeen: [Double] = []
    private var prev: [Slot] = []
    private var next: [Slot] = []
    private var head: Slot = -1
    private var tail: Slot = -1
    private var freeHead: Slot = -1

    public private(set) var count = 0
    /// Entries dropped because the table was full (least recently used first).
    public private(set) var evictions: UInt64 = 0
    /// Entries removed by `popExpired`.
    public private(set) var expirations: UInt64 = 0

    /// `capacity` ≥ 1 entries; an entry idle for `idleTimeout` seconds or
    /// more is expired.
    public init(capacity: Int, idleTimeout: Double) {
        precondition(capacity >= 1 && capacity < Int(Int32.max), "flow table capacity \(capacity) out of range")
        precondition(idleTimeout > 0, "idle timeout must be positive")
        self.capacity = capacity
        self.idleTimeout = idleTimeout
    }

    public var isEmpty: Bool { count == 0 }
    public var isFull: Bool { count >= capacity }

    /// The slot of `key`, or nil. Does not change recency.
    public func slot(of key: Key) -> Slot? { index[key] }

    /// The key stored in a live slot.
    public func key(at slot: Slot) -> Key {
        guard let k = keys[Int(slot)] else { preconditionFailure("flow table slot \(slot) is free") }
        return k
    }

    /// The value of a live slot, readable and writable in place.
    public subscript(slot: Slot) -> Value {
        get {
            guard let v = values[Int(slot)] else { preconditionFailure("flow table slot \(slot) is free") }
            return v
        }
        _modify {
            precondition(values[Int(slot)] != nil, "flow table slot \(slot) is free")
            yield &values[Int(slot)]!
        }
    }

    /// Seconds-clock time the slot was last touched or inserted.
    public func lastSeen(at slot: Slot) -> Double { lastSeen[Int(slot)] }

    /// Marks the slot as used at `now`: it becomes the most recently used.
    public mutating func touch(_ slot: Slot, now: Double) {
        lastSeen[Int(slot)] = now
        guard head != slot else { return }
        unlink(slot)
        pushHead(slot)
    }

    /// What `insert` displaced to make room, if the table was full.
    public struct Evicted {
        public var key: Key
        public var value: Value
    }

    /// Inserts a new entry (the key must not be present) as the most recently
    /// used. When the table is full, the least recently used entry is removed
    /// first and returned, so the caller can release what it held.
    public mutating func insert(_ key: Key, _ value: Value, now: Double) -> (slot: Slot, evicted: Evicted?) {
        precondition(index[key] == nil, "flow table insert of a present key")
        var evicted: Evicted?
        if count >= capacity {
            let victim = tail
            let (k, v) = remove(victim)
            evictions += 1
            evicted = Evicted(key: k, value: v)
        }
        let slot: Slot
        if freeHead != -1 {
            slot = freeHead
            freeHead = next[Int(slot)]
            keys[Int(slot)] = key
            values[Int(slot)] = value
            lastSeen[Int(slot)] = now
        } else {
            slot = Slot(keys.count)
            keys.append(key); values.append(value); lastSeen.append(now)
            prev.append(-1); next.append(-1)
        }
        index[key] = slot
        pushHead(slot)
        count += 1
        return (slot, evicted)
    }

    /// Removes a live slot and returns what it held.
    @discardableResult
    public mutating func remove(_ slot: Slot) -> (Key, Value) {
        guard let k = keys[Int(slot)], let v = values[Int(slot)] else { preconditionFailure("flow table remove of free slot \(slot)") }
        unlink(slot)
        index[k] = nil
        keys[Int(slot)] = nil
        values[Int(slot)] = nil
        next[Int(slot)] = freeHead
        prev[Int(slot)] = -1
        freeHead = slot
        count -= 1
        return (k, v)
    }

    /// The least recently used live slot.
    public var oldest: Slot? { tail == -1 ? nil : tail }
    /// The most recently used live slot.
    public var newest: Slot? { head == -1 ? nil : head }

    /// True when `slot` has been idle for `idleTimeout` seconds or more at `now`.
    public func isExpired(_ slot: Slot, now: Double) -> Bool { now - lastSeen[Int(slot)] >= idleTimeout }

    /// Removes and returns the least recently used entry if it is expired at
    /// `now`; call until nil to sweep.
    public mutating func popExpired(now: Double) -> (key: Key, value: Value)? {
        guard tail != -1, isExpired(tail, now: now) else { return nil }
        let (k, v) = remove(tail)
        expirations += 1
        return (k, v)
    }

    /// Live slots from most to least recently used (tests, shutdown).
    public var slotsByRecency: [Slot] {
        var out: [Slot] = []
        out.reserveCapacity(count)
        var s = head
        while s != -1 { out.append(s); s = next[Int(s)] }
        return out
    }

    /// Keys from most to least recently used.
    public var keysByRecency: [Key] { slotsByRecency.map { key(at: $0) } }

    private mutating func unlink(_ slot: Slot) {
        let p = prev[Int(slot)], n = next[Int(slot)]
        if p != -1 { next[Int(p)] = n } else { head = n }
        if n != -1 { prev[Int(n)] = p } else { tail = p }
        prev[Int(slot)] = -1; next[Int(slot)] = -1
    }

    private mutating func pushHead(_ slot: Slot) {
        prev[Int(slot)] = -1
        next[Int(slot)] = head
        if head != -1 { prev[Int(head)] = slot } else { tail = slot }
        head = slot
    }
}
