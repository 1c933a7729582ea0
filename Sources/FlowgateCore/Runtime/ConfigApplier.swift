/// How a validated configuration change goes live (docs/architecture.md §7): the control
/// server and SIGHUP both drive it the same way, in this order:
///
///   1. `prepare(new)`: build the new snapshot, open and bind every newly added
///      port on every worker. Throws (nothing changed) on EADDRINUSE, EACCES or
///      a descriptor budget that does not fit.
///   2. the caller persists `new` to the state file; on failure it calls `abort`.
///   3. `commit(prepared)`: post the snapshot to every worker, return only when
///      every worker has swapped it in, then close sockets of removed ports.
///
/// Only one change is in flight at a time (the caller serialises).
public protocol ConfigApplier: AnyObject, Sendable {
    associatedtype Prepared
    /// The configuration currently live.
    var current: FlowgateConfig { get }
    func prepare(_ new: FlowgateConfig) throws(ApplyError) -> Prepared
    func commit(_ prepared: Prepared)
    func abort(_ prepared: Prepared)
}

/// Why a change could not be applied; the message names the listener and port.
public struct ApplyError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable { case addressInUse, permissionDenied, descriptorBudget, other }
    public var kind: Kind
    public var message: String
    public init(_ kind: Kind, _ message: String) { self.kind = kind; self.message = message }
    public var description: String { message }
}
