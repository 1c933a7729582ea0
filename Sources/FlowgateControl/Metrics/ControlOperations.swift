// The operation names the control plane answers: the `operation` label of
// flowgate_control_requests_total takes only these (anything else is counted
// as `unknown`, so a caller cannot add series with made-up X-Amz-Target
// values), and the router asks which of them change the configuration (those
// go through the replay cache, Auth/ReplayCache.swift).
// ControlOperationsTests checks every operation the APIs route is listed here.

public enum ControlOperations {
    /// `X-Amz-Target: GlobalAccelerator_V20180706.<name>` (AWS/GlobalAcceleratorAPI.swift).
    public static let awsReadOnly: Set<String> = ["DescribeListener", "ListListeners", "ListAccelerators", "DescribeAccelerator"]
    public static let awsMutating: Set<String> = ["UpdateListener"]
    /// ELB v3 routes (ELB/ELBAPI.swift).
    public static let elb: Set<String> = [
        "ListPools", "ShowPool", "UpdatePool", "ListMembers", "CreateMember", "ShowMember", "UpdateMember", "DeleteMember",
        "ListHealthMonitors", "CreateHealthMonitor", "ShowHealthMonitor", "UpdateHealthMonitor", "DeleteHealthMonitor",
    ]
    /// Flowgate's own (HTTP/ControlRouter.swift).
    public static let flowgate: Set<String> = ["StateReset"]

    public static let known: Set<String> = awsReadOnly.union(awsMutating).union(elb).union(flowgate)
    public static let unknown = "unknown"

    /// The label value for `name`: itself when known, else `unknown`.
    public static func label(_ name: String) -> String { known.contains(name) ? name : unknown }

    /// An AWS-shape request that may change the configuration: UpdateListener, and
    /// (fail safe) any target that is not a known read-only operation.
    public static func awsIsMutating(target: String?) -> Bool {
        guard let target, target.hasPrefix(GlobalAcceleratorAPI.targetPrefix) else { return true }
        return !awsReadOnly.contains(String(target.dropFirst(GlobalAcceleratorAPI.targetPrefix.count)))
    }

    /// An ELB-shape request that may change the configuration: anything but GET and HEAD.
    public static func elbIsMutating(method: String) -> Bool { method != "GET" && method != "HEAD" }
}
