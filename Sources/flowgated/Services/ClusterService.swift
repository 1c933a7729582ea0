// The cluster store as a service of the daemon's group (docs/cluster.md §6):
// started after the control service (which put the cached or file objects in
// force) and before the control server (so the first API write already goes
// through etcd); stopped after the control server, before the data plane.
// etcd being down at start is not a failure: the daemon serves what it has
// and the store catches up when etcd answers.
import FlowgateCore
import FlowgateSystem
import FlowgateControl
import FlowgateCluster
import FlowgateDataPlane

final class ClusterService: Service {
    let name = "cluster"
    let store: ClusterStore
    let control: ControlService

    init(_ store: ClusterStore, control: ControlService) { self.store = store; self.control = control }

    /// The store for `control` (nil when the file has no `cluster` section),
    /// installed as its commit path so every API write goes through etcd.
    static func make(_ cluster: ClusterConfig?, control: ControlService, plane: DataPlane) throws(SystemError) -> ClusterStore? {
        guard let cluster else { return nil }
        let store = try ClusterStore(cluster, localObjects: { [control] in control.config }, apply: { [control] snapshot in
            control.applyCluster(snapshot)
        }, appliedRevision: { [control] in
            control.clusterRevisions.applied
        }, selection: { [plane] in plane.snapshot?.selection })
        control.cluster = store
        control.clusterStatus = { [store] in store.statusReport() }
        control.metrics.register("cluster") { [store] in store.renderMetrics() }
        return store
    }

    func start() throws(ServiceError) {
        let c = store.config
        store.servingFileObjects.store(!control.servesClusterObjects, ordering: .relaxed)
        if store.start() {
            Log.info("cluster_joined", ["cluster": c.name, "instance": c.instance, "endpoints": c.endpoints.joined(separator: ","),
                                        "revision": store.status.withLock { $0.latestRevision }])
        } else {
            Log.warn("cluster_offline", ["cluster": c.name, "instance": c.instance,
                                         "error": store.status.withLock { $0.lastError },
                                         "action": "serving the cached snapshot (or the config file); catching up when etcd answers"])
        }
    }

    func stop() {
        store.stop()
        Log.info("cluster_left", ["cluster": store.config.name, "instance": store.config.instance])
    }
}
