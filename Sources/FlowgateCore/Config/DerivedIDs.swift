// Ids and ARNs for objects the config file leaves without one (docs/architecture.md §14):
// name-based UUIDs (RFC 4122 v5) from the parent's id and the object's name,
// or its address and port, so the same file always yields the same ids.
// A kind prefix ("pool/", "healthmonitor/", ...) keeps a pool and a monitor
// of the same name under the same project from sharing an id.

public enum DerivedIDs {
    /// The account in derived ARNs (AWS documentation's example account).
    public static let accountID = "123456789012"

    /// Used when the file has no `project_id`: 32 lowercase hex digits of v5(flowgate, "project").
    public static let defaultProjectID: String =
        NameUUID.hexString(NameUUID.v5Bytes(namespace: NameUUID.flowgateNamespace, name: "project"))

    /// The key naming a child among its siblings: its name, or `#index` when it has none.
    public static func key(name: String, index: Int) -> String { name.isEmpty ? "#\(index)" : name }

    public static func poolID(projectID: String, key: String) -> String {
        NameUUID.derive(parent: projectID, name: "pool/" + key)
    }

    public static func healthMonitorID(projectID: String, key: String) -> String {
        NameUUID.derive(parent: projectID, name: "healthmonitor/" + key)
    }

    /// From the pool id and `address:port` (the address in canonical form,
    /// `[v6]:port`, or the bare address when the member has no protocol_port).
    public static func memberID(poolID: String, address: String, protocolPort: Int?) -> String {
        let m = Member(id: "", address: address, protocolPort: protocolPort)
        return NameUUID.derive(parent: poolID, name: "member/" + ConfigValidator.endpointText(m))
    }

    /// `arn:aws:globalaccelerator::123456789012:accelerator/<v5(project_id, "accelerator/" + key)>`
    public static func acceleratorArn(projectID: String, key: String) -> String {
        "\(ArnFormat.prefix)\(accountID):accelerator/" + NameUUID.derive(parent: projectID, name: "accelerator/" + key)
    }

    /// `<AcceleratorArn>/listener/<first 8 hex of v5(AcceleratorArn, "listener/#index")>`
    public static func listenerArn(acceleratorArn: String, index: Int) -> String {
        let id = NameUUID.derive(parent: acceleratorArn, name: "listener/#\(index)")
        return acceleratorArn + "/listener/" + String(id.prefix(8))
    }
}
