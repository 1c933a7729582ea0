// The kernel side of `tuning.port_ranges: lookup` (docs/architecture.md §20):
// a socket map holding the first socket of each listener's SO_REUSEPORT
// group, an LPM-trie port map (FlowgateCore/Steering/PortLookupKey.swift),
// and the sk_lookup program (FlowgateCore/Steering/PortLookupProgram.swift)
// attached with a BPF link to this process's network namespace. The link
// lives as long as its descriptor: when the process exits, the kernel
// detaches the program and the ports stop being steered.
#if canImport(Glibc)
import Glibc
#endif
import FlowgateCore
import FlowgateSystem
import Synchronization

final class PortLookupSteering: @unchecked Sendable {
    /// Listener socket groups at most (one slot each).
    static let socketSlots = 4096
    /// Port-map entries at most: 10 ranges of at most 30 prefixes each, twice
    /// for `::`, is 600 per listener.
    static let portEntries = 65536

    let portMap: Int32
    let socketMap: Int32
    let program: Int32
    private struct State {
        var link: Int32
        var entries: [PortLookupKey: UInt32] = [:]
        var freeSlots: [UInt32]
    }
    private let state: Mutex<State>

    private init(portMap: Int32, socketMap: Int32, program: Int32, link: Int32) {
        self.portMap = portMap; self.socketMap = socketMap; self.program = program
        state = Mutex(State(link: link, freeSlots: (0..<UInt32(PortLookupSteering.socketSlots)).reversed()))
    }

    /// Creates the maps, loads the program and attaches it to this
    /// process's network namespace; the error says which step failed (an
    /// old kernel, or no CAP_BPF / CAP_NET_ADMIN).
    static func open() throws(SteeringError) -> PortLookupSteering {
        var opened: [Int32] = []
        func fail(_ step: String, _ e: CustomStringConvertible) -> SteeringError {
            for fd in opened { System.close(fd) }
            return SteeringError(step: step, reason: e.description)
        }
        let portMap: Int32, socketMap: Int32, program: Int32, link: Int32
        do throws(SystemError) {
            portMap = try System.bpfMapCreate(type: BPFConstant.mapTypeLPMTrie, keySize: PortLookupKey.byteCount, valueSize: 4,
                                              maxEntries: portEntries, flags: BPFConstant.noPrealloc, name: "fg_ports")
        } catch { throw fail("create the port map", error) }
        opened.append(portMap)
        do throws(SystemError) {
            socketMap = try System.bpfMapCreate(type: BPFConstant.mapTypeSockmap, keySize: 4, valueSize: 4,
                                                maxEntries: socketSlots, name: "fg_sockets")
        } catch { throw fail("create the socket map", error) }
        opened.append(socketMap)
        do throws(BPFLoadError) {
            program = try System.bpfProgramLoad(type: BPFConstant.progTypeSkLookup, expectedAttach: BPFConstant.attachSkLookup,
                                                instructions: PortLookupProgram.bytes(portMap: portMap, socketMap: socketMap),
                                                name: "fg_sk_lookup")
        } catch { throw fail("load the sk_lookup program", error) }
        opened.append(program)
        let netns: Int32
        do throws(SystemError) { netns = try System.openReadOnly("/proc/self/ns/net") } catch { throw fail("open /proc/self/ns/net", error) }
        defer { System.close(netns) }
        do throws(SystemError) {
            link = try System.bpfLinkCreate(program: program, target: netns, attachType: BPFConstant.attachSkLookup)
        } catch { throw fail("attach the program to the network namespace", error) }
        return PortLookupSteering(portMap: portMap, socketMap: socketMap, program: program, link: link)
    }

    static func slotKey(_ slot: UInt32) -> [UInt8] { withUnsafeBytes(of: slot.littleEndian) { Array($0) } }

    func allocateSlot() -> UInt32? { state.withLock { $0.freeSlots.popLast() } }

    /// Puts a group's socket in `slot`; the socket map takes its own
    /// reference, dropped when the slot is cleared or the socket closes.
    func setSocket(_ slot: UInt32, fd: Int32) throws(SystemError) {
        try System.bpfMapUpdate(socketMap, key: PortLookupSteering.slotKey(slot), value: PortLookupSteering.slotKey(UInt32(bitPattern: fd)))
    }

    /// Empties `slot` and returns it to the free list.
    func releaseSlot(_ slot: UInt32) {
        try? System.bpfMapDelete(socketMap, key: PortLookupSteering.slotKey(slot))
        state.withLock { $0.freeSlots.append(slot) }
    }

    /// Number of entries `desired` needs, checked against the map's size before anything changes.
    static func fits(_ desired: [PortLookupKey: UInt32]) -> Bool { desired.count <= portEntries }

    /// Makes the port map hold exactly `desired`: writes first, then
    /// deletes (PortLookupTable.diff). Returns the first failure; the map
    /// then holds what was applied so far, and the next apply starts from it.
    @discardableResult
    func apply(_ desired: [PortLookupKey: UInt32]) -> SystemError? {
        state.withLock { s in
            let (writes, deletes) = PortLookupTable.diff(current: s.entries, desired: desired)
            for w in writes {
                do throws(SystemError) {
                    try System.bpfMapUpdate(portMap, key: w.key.bytes, value: PortLookupSteering.slotKey(w.slot))
                } catch { return error }
                s.entries[w.key] = w.slot
            }
            for k in deletes {
                do throws(SystemError) { try System.bpfMapDelete(portMap, key: k.bytes) } catch { return error }
                s.entries[k] = nil
            }
            return nil
        }
    }

    func duplicateLink() -> Int32? {
        state.withLock { s in s.link >= 0 ? (try? System.duplicate(s.link)) : nil }
    }

    var entryCount: Int { state.withLock { $0.entries.count } }

    /// Detaches the program (takeover `go`: the next process's program steers from now on).
    func detach() {
        state.withLock { s in
            if s.link >= 0 { System.close(s.link); s.link = -1 }
        }
    }

    func close() {
        detach()
        System.close(program); System.close(socketMap); System.close(portMap)
    }
}

/// Why the sk_lookup steering could not be set up.
struct SteeringError: Error, CustomStringConvertible {
    var step: String
    var reason: String
    var description: String { "cannot \(step): \(reason)" }
}
