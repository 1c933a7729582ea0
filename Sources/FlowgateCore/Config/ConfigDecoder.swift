// YAML nodes → FlowgateConfig: types, unknown keys, defaults (docs/api.md,
// docs/architecture.md §2 and §14) and deterministic ids for objects left without one.
// Rules between values (ranges, references) are ConfigValidator's job.

import Yams

struct ConfigDecoder {
    let reader: YAMLReader

    func decode(_ root: Node?) -> FlowgateConfig {
        let defaults = FlowgateConfig(projectID: DerivedIDs.defaultProjectID)
        guard let root else { return defaults }
        guard let top = reader.mapping(root, path: "", allowed: ConfigSchema.top) else { return defaults }
        var c = defaults
        c.workers = workers(top)
        c.stateFile = top.string("state_file", default: defaults.stateFile)
        if let control = top.mapping("control", allowed: ConfigSchema.control) { c.control = self.control(control) }
        if let tuning = top.mapping("tuning", allowed: ConfigSchema.tuning) { c.tuning = self.tuning(tuning) }
        c.projectID = top.string("project_id", default: defaults.projectID)
        if let cluster = top.mapping("cluster", allowed: ConfigSchema.cluster) { c.cluster = self.cluster(cluster) }
        c.httpCookieName = top.optionalString("http_cookie_name")
        // Objects whose type/protocol could not be read hold a placeholder;
        // rules that compare them across references would only add noise.
        var uncertainMonitors = Set<String>(), uncertainPools = Set<String>()
        c.healthmonitors = uniqueKeys(top.list("healthmonitors"), schema: ConfigSchema.healthMonitor).map { item in
            let h = healthMonitor(item.map, key: item.key, projectID: c.projectID)
            if reader.hasFailed(item.map.fieldPath("type")) { uncertainMonitors.insert(h.id) }
            return h
        }
        c.pools = uniqueKeys(top.list("pools"), schema: ConfigSchema.pool).map { item in
            let p = pool(item.map, key: item.key, projectID: c.projectID)
            if reader.hasFailed(item.map.fieldPath("protocol")) { uncertainPools.insert(p.id) }
            if let hm = p.healthmonitorID, uncertainMonitors.contains(hm) { reader.suppress(item.map.fieldPath("healthmonitor_id")) }
            return p
        }
        c.accelerators = uniqueKeys(top.list("accelerators"), schema: ConfigSchema.accelerator, nameKey: "Name").map { item in
            accelerator(item.map, key: item.key, projectID: c.projectID, pools: c.pools, uncertainPools: uncertainPools)
        }
        return c
    }

    /// Reads each item as a mapping and pairs it with the key its derived id
    /// uses: its name, or `#index` when unnamed or when an earlier sibling
    /// has the same name (so two same-named objects do not share an id).
    private func uniqueKeys(_ items: [(node: Node, path: String)], schema: [String], nameKey: String = "name")
        -> [(map: MapReader, key: String)] {
        var used = Set<String>()
        var out: [(MapReader, String)] = []
        for (i, item) in items.enumerated() {
            guard let map = reader.mapping(item.node, path: item.path, allowed: schema) else { continue }
            let name = map.values[nameKey].flatMap(YAMLReader.string) ?? ""
            let key = name.isEmpty || used.contains(name) ? DerivedIDs.key(name: "", index: i) : name
            used.insert(name)
            out.append((map, key))
        }
        return out
    }

    private func workers(_ top: MapReader) -> Int? {
        guard let n = top.node("workers") else { return nil }
        if let v = YAMLReader.int(n) { return v }
        if case let .scalar(s) = n, s.style == .plain, s.string == "auto" { return nil }
        reader.fail(.invalidArgument, "workers", "expected an integer or auto, got \(YAMLReader.describe(n))", at: n.mark)
        return nil
    }

    private func control(_ m: MapReader) -> ControlConfig {
        var c = ControlConfig()
        if m.values["unix_socket"] != nil { c.unixSocket = m.optionalString("unix_socket") }
        c.listen = m.optionalString("listen")
        c.region = m.string("region", default: c.region)
        c.allowUnsigned = m.bool("allow_unsigned", default: c.allowUnsigned)
        if let creds = m.mapping("credentials", allowed: ConfigSchema.credentials) {
            c.awsCredentials = creds.list("aws").compactMap { item in
                guard let k = reader.mapping(item.node, path: item.path, allowed: ConfigSchema.awsCredential),
                      let id = k.requiredString("access_key_id"), let secret = k.requiredString("secret_access_key") else { return nil }
                return AWSCredential(accessKeyID: id, secretAccessKey: secret)
            }
            c.huaweiCredentials = creds.list("huawei").compactMap { item in
                guard let k = reader.mapping(item.node, path: item.path, allowed: ConfigSchema.huaweiCredential),
                      let ak = k.requiredString("ak"), let sk = k.requiredString("sk") else { return nil }
                return HuaweiCredential(ak: ak, sk: sk)
            }
        }
        return c
    }

    /// `cluster:` (docs/cluster.md). Missing keys are reported here; values are
    /// ConfigValidator.validateCluster's job.
    private func cluster(_ m: MapReader) -> ClusterConfig {
        var c = ClusterConfig(name: m.requiredString("name") ?? "", instance: m.requiredString("instance") ?? "", endpoints: [])
        guard let etcd = m.mapping("etcd", allowed: ConfigSchema.clusterEtcd) else {
            if !m.has("etcd") { m.missing("etcd", expected: "a mapping with endpoints") }
            return c
        }
        if !etcd.has("endpoints") { etcd.missing("endpoints", expected: "a list of http://host:port URLs") }
        c.endpoints = etcd.list("endpoints").compactMap { item in
            if let s = YAMLReader.string(item.node), case .scalar = item.node { return s }
            reader.fail(.invalidArgument, item.path, "expected a text value, got \(YAMLReader.describe(item.node))", at: item.node.mark)
            return nil
        }
        c.username = etcd.optionalString("username")
        c.password = etcd.optionalString("password")
        c.dialTimeout = etcd.int("dial_timeout", default: c.dialTimeout)
        c.requestTimeout = etcd.int("request_timeout", default: c.requestTimeout)
        return c
    }

    private func tuning(_ m: MapReader) -> Tuning {
        var t = Tuning()
        t.drainTimeout = m.int("drain_timeout", default: t.drainTimeout)
        t.maxUDPFlows = m.int("max_udp_flows", default: t.maxUDPFlows)
        t.maxStickyEntries = m.int("max_sticky_entries", default: t.maxStickyEntries)
        t.udpSocketBuffer = m.int("udp_socket_buffer", default: t.udpSocketBuffer)
        t.tcpScratchBuffer = m.int("tcp_scratch_buffer", default: t.tcpScratchBuffer)
        t.tcpMaxPending = m.int("tcp_max_pending", default: t.tcpMaxPending)
        t.connectTimeout = m.int("connect_timeout", default: t.connectTimeout)
        t.portRanges = m.enumValue("port_ranges", PortRangeMode.self, default: t.portRanges) ?? t.portRanges
        return t
    }

    private func accelerator(_ m: MapReader, key: String, projectID: String, pools: [Pool], uncertainPools: Set<String>) -> Accelerator {
        let arn = m.optionalString("AcceleratorArn") ?? DerivedIDs.acceleratorArn(projectID: projectID, key: key)
        let name = m.string("Name", default: "")
        let listeners = m.list("listeners").enumerated().compactMap { i, item -> Listener? in
            guard let lm = reader.mapping(item.node, path: item.path, allowed: ConfigSchema.listener) else { return nil }
            let l = listener(lm, acceleratorArn: arn, index: i, pools: pools)
            if uncertainPools.contains(l.poolID) || reader.hasFailed(lm.fieldPath("Protocol")) {
                reader.suppress(lm.fieldPath("pool_id"))
            }
            return l
        }
        return Accelerator(acceleratorArn: arn, name: name, listeners: listeners)
    }

    private func listener(_ m: MapReader, acceleratorArn: String, index: Int, pools: [Pool]) -> Listener {
        let arn = m.optionalString("ListenerArn") ?? DerivedIDs.listenerArn(acceleratorArn: acceleratorArn, index: index)
        var ranges: [PortRange] = []
        if m.has("PortRanges") {
            ranges = m.list("PortRanges").compactMap { item in
                guard let r = reader.mapping(item.node, path: item.path, allowed: ConfigSchema.portRange) else { return nil }
                let from = r.requiredInt("FromPort", kind: .invalidPortRange)
                let to = r.requiredInt("ToPort", kind: .invalidPortRange)
                guard let from, let to else { return nil }
                return PortRange(fromPort: from, toPort: to)
            }
        } else {
            m.missing("PortRanges", expected: "a list of {FromPort, ToPort}", kind: .invalidPortRange)
        }
        let proto = m.enumValue("Protocol", TransportProtocol.self, default: nil) ?? .tcp
        let affinity = m.enumValue("ClientAffinity", ClientAffinity.self, default: ClientAffinity.none) ?? .none
        var poolID = m.requiredString("pool_id") ?? ""
        // Config-file convenience: pool_id may name a pool by its `name`
        // when no pool has that id and exactly one pool has that name.
        if !pools.contains(where: { $0.id == poolID }) {
            let named = pools.filter { !$0.name.isEmpty && $0.name == poolID }
            if named.count == 1 { poolID = named[0].id }
        }
        return Listener(listenerArn: arn, portRanges: ranges, protocol: proto, clientAffinity: affinity, poolID: poolID,
                        bind: m.string("bind", default: "0.0.0.0"), idleTimeout: m.optionalInt("idle_timeout"),
                        connectionLog: m.bool("connection_log", default: false),
                        tcpDeferAccept: m.optionalInt("tcp_defer_accept"), tcpFastOpen: m.optionalInt("tcp_fastopen"))
    }

    private func pool(_ m: MapReader, key: String, projectID: String) -> Pool {
        let id = m.optionalString("id") ?? DerivedIDs.poolID(projectID: projectID, key: key)
        let proto = m.enumValue("protocol", PoolProtocol.self, default: nil) ?? .tcp
        var p = Pool(id: id, name: m.string("name", default: ""), description: m.string("description", default: ""),
                     protocol: proto, lbAlgorithm: m.string("lb_algorithm", default: "ROUND_ROBIN"))
        if let sp = m.mapping("session_persistence", allowed: ConfigSchema.sessionPersistence),
           let type = sp.enumValue("type", PersistenceType.self, default: nil) {
            p.sessionPersistence = SessionPersistence(
                type: type, cookieName: sp.optionalString("cookie_name"),
                persistenceTimeout: sp.int("persistence_timeout", default: ConfigValidator.defaultPersistenceTimeout(for: proto)))
        }
        if let s = m.mapping("slow_start", allowed: ConfigSchema.slowStart) {
            p.slowStart = SlowStart(enable: s.bool("enable", default: false), duration: s.int("duration", default: SlowStart().duration))
        }
        if let d = m.mapping("connection_drain", allowed: ConfigSchema.connectionDrain) {
            p.connectionDrain = ConnectionDrain(enable: d.bool("enable", default: false),
                                                timeout: d.int("timeout", default: ConnectionDrain().timeout))
        }
        p.adminStateUp = m.bool("admin_state_up", default: true)
        p.healthmonitorID = m.optionalString("healthmonitor_id")
        if m.has("x_forwarded_headers") { p.xForwardedHeaders = m.bool("x_forwarded_headers", default: true) }
        var usedEndpoints = Set<String>()
        p.members = m.list("members").enumerated().compactMap { i, item in
            guard let mm = reader.mapping(item.node, path: item.path, allowed: ConfigSchema.member) else { return nil }
            return member(mm, poolID: id, index: i, usedEndpoints: &usedEndpoints)
        }
        return p
    }

    private func member(_ m: MapReader, poolID: String, index: Int, usedEndpoints: inout Set<String>) -> Member {
        let address = m.requiredString("address") ?? ""
        let port = m.optionalInt("protocol_port")
        var id = m.optionalString("id")
        if id == nil {
            // A duplicate address+port is reported as a conflict; give the
            // second one an index-based id so it is not also a duplicate id.
            let endpoint = ConfigValidator.endpointText(Member(id: "", address: address, protocolPort: port))
            id = usedEndpoints.contains(endpoint)
                ? NameUUID.derive(parent: poolID, name: "member/#\(index)")
                : DerivedIDs.memberID(poolID: poolID, address: address, protocolPort: port)
            usedEndpoints.insert(endpoint)
        }
        return Member(id: id ?? "", name: m.string("name", default: ""), address: address, protocolPort: port,
                      weight: m.int("weight", default: 1), adminStateUp: m.bool("admin_state_up", default: true))
    }

    private func healthMonitor(_ m: MapReader, key: String, projectID: String) -> HealthMonitor {
        let id = m.optionalString("id") ?? DerivedIDs.healthMonitorID(projectID: projectID, key: key)
        let d = HealthMonitor(id: id, type: .tcp)
        let type = m.enumValue("type", HealthMonitor.Kind.self, default: nil) ?? .tcp
        return HealthMonitor(id: id, name: m.string("name", default: ""), type: type,
                             delay: m.int("delay", default: d.delay), timeout: m.int("timeout", default: d.timeout),
                             maxRetries: m.int("max_retries", default: d.maxRetries),
                             maxRetriesDown: m.int("max_retries_down", default: d.maxRetriesDown),
                             monitorPort: m.optionalInt("monitor_port"), urlPath: m.string("url_path", default: d.urlPath),
                             expectedCodes: m.string("expected_codes", default: d.expectedCodes),
                             adminStateUp: m.bool("admin_state_up", default: true))
    }
}
