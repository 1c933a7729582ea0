// The `cluster:` section (docs/cluster.md §1) and the pure parts of the etcd
// client: gateway JSON shapes, watch-stream splitting, the state file's cache.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Testing
@testable import FlowgateCore

/// baseConfig with a cluster section appended (its first line is line 18).
private func withCluster(_ section: String) -> String { baseConfig + section }

private let goodCluster = """
cluster:
  name: edge
  instance: lb1
  etcd:
    endpoints: [http://127.0.0.1:2379, "http://[::1]:2379"]
    username: flowgate
    password: secret
    dial_timeout: 1
    request_timeout: 4

"""

@Test func aClusterSectionDecodes() throws {
    let c = try ConfigLoader.parse(yaml: withCluster(goodCluster), fileName: "flowgate.yaml").get()
    let cluster = try #require(c.cluster)
    #expect(cluster == ClusterConfig(name: "edge", instance: "lb1", endpoints: ["http://127.0.0.1:2379", "http://[::1]:2379"],
                                     username: "flowgate", password: "secret", dialTimeout: 1, requestTimeout: 4))
    #expect(cluster.prefix == "/flowgate/edge/")
}

@Test func withoutAClusterSectionNothingChanges() throws {
    let c = try ConfigLoader.parse(yaml: baseConfig, fileName: "flowgate.yaml").get()
    #expect(c.cluster == nil)
    // A standalone state file keeps its exact bytes: no cluster_revision key.
    #expect(!String(decoding: StateFile.encode(c), as: UTF8.self).contains("cluster_revision"))
}

@Test func clusterErrorsNameTheFieldAndTheAllowedValues() {
    let bad = """
    cluster:
      name: "a/b"
      instance: ""
      etcd:
        endpoints: [https://10.0.0.1:2379, http://etcd:2379, http://127.0.0.1:2379, http://127.0.0.1:2379]
        username: u
        dial_timeout: 0
        request_timeout: 301

    """
    #expect(errorLines(withCluster(bad)) == [
        "flowgate.yaml:19:9: cluster.name: \"a/b\" is not a name (letters, digits, '-', '_' and '.'; it becomes one segment of an etcd key)",
        "flowgate.yaml:20:13: cluster.instance: must not be empty",
        "flowgate.yaml:22:5: cluster.etcd.password: is required with username",
        "flowgate.yaml:22:16: cluster.etcd.endpoints[0]: \"https://10.0.0.1:2379\": https is not supported (the etcd client speaks plain HTTP); use http:// on a trusted network",
        "flowgate.yaml:22:16: cluster.etcd.endpoints[1]: \"http://etcd:2379\" is not http://host:port with an IP address and a port in 1..65535",
        "flowgate.yaml:22:16: cluster.etcd.endpoints[3]: duplicate endpoint (also cluster.etcd.endpoints[2])",
        "flowgate.yaml:24:19: cluster.etcd.dial_timeout: 0 is not in 1..60 seconds",
        "flowgate.yaml:25:22: cluster.etcd.request_timeout: 301 is not in 1..300 seconds",
    ])
}

@Test func missingClusterKeysAreReported() {
    // The range rule on the empty list is not repeated under the missing key.
    #expect(errorLines(withCluster("cluster:\n  name: edge\n  etcd: {}\n")) == [
        "flowgate.yaml:19:3: cluster.instance: required key is missing; expected a text value",
        "flowgate.yaml:20:9: cluster.etcd.endpoints: required key is missing; expected a list of http://host:port URLs",
    ])
    #expect(errorLines(withCluster("cluster:\n  name: edge\n  instance: a\n  etcd: {endpoints: [http://127.0.0.1:1]}\n  peers: 3\n")).count == 1)
}

@Test func gatewayShapes() throws {
    #expect(EtcdWire.prefixEnd("/flowgate/edge/") == Array("/flowgate/edge0".utf8))
    #expect(EtcdWire.prefixEnd("a\u{7f}") == [UInt8(ascii: "a"), 0x80])
    let txn = EtcdWire.txn([.modRevision("/k", 7)], puts: [("/k", Array("v".utf8), 0)], failureRange: "/k").serialized()
    #expect(txn == #"{"compare":[{"key":"L2s=","result":"EQUAL","target":"MOD","mod_revision":"7"}],"success":[{"request_put":{"key":"L2s=","value":"dg=="}}],"failure":[{"request_range":{"key":"L2s="}}]}"#)
    let create = EtcdWire.txn([.absent("/k")], puts: [], failureRange: nil).serialized()
    #expect(create.contains(#""target":"CREATE","create_revision":"0""#))

    // As etcd 3.4 answers (zero fields left out: no "succeeded" when false).
    let failed = try JSONValue.parse(#"{"header":{"revision":"9"},"responses":[{"response_range":{"header":{"revision":"9"},"kvs":[{"key":"L2s=","create_revision":"2","mod_revision":"8","version":"3","value":"dg=="}],"count":"1"}}]}"#)
    let t = EtcdWire.TxnResult(failed)
    #expect(!t.succeeded && t.revision == 9)
    #expect(t.failureRange?.kvs.first?.modRevision == 8 && t.failureRange?.kvs.first?.value == Array("v".utf8))
    #expect(EtcdWire.RangeResult(try JSONValue.parse(#"{"header":{"revision":"3"}}"#)).kvs.isEmpty)

    let events = try JSONValue.parse(#"{"result":{"header":{"revision":"5"},"events":[{"kv":{"key":"L2s=","mod_revision":"4","value":"dg=="}},{"type":"DELETE","kv":{"key":"L2s=","mod_revision":"5"}}]}}"#)
    guard case let .events(rev, list) = EtcdWire.watchMessage(events), list.count == 2,
          case let .put(kv) = list[0], case .delete = list[1] else { Issue.record("events"); return }
    #expect(rev == 5 && kv.modRevision == 4 && kv.key == "/k")
    let compacted = try JSONValue.parse(#"{"result":{"header":{},"canceled":true,"compact_revision":"4"}}"#)
    guard case .compacted(4) = EtcdWire.watchMessage(compacted) else { Issue.record("compacted"); return }
    guard case .created(3) = EtcdWire.watchMessage(try JSONValue.parse(#"{"result":{"header":{"revision":"3"},"created":true}}"#)) else {
        Issue.record("created"); return
    }
}

@Test func watchStreamLinesSurviveAnyChunking() {
    let stream = Array("{\"a\":1}\n{\"b\":2}\n\n{\"c\":3}\n".utf8)
    for cut in 1..<stream.count {
        var s = LineSplitter(maxLine: 64)
        let lines = (s.feed(Array(stream[..<cut])) ?? []) + (s.feed(Array(stream[cut...])) ?? [])
        #expect(lines.map { String(decoding: $0, as: UTF8.self) } == ["{\"a\":1}", "{\"b\":2}", "{\"c\":3}"])
    }
    var bounded = LineSplitter(maxLine: 4)
    #expect(bounded.feed(Array("12345".utf8)) == nil)
}

@Test func theStateFileCachesAClusterSnapshotWithItsRevision() throws {
    let c = try ConfigLoader.parse(yaml: baseConfig, fileName: "flowgate.yaml").get()
    let bytes = StateFile.encode(c, clusterRevision: 42)
    let (back, revision) = try StateFile.decodeWithRevision(bytes)
    #expect(revision == 42)
    #expect(back.pools == c.pools && back.accelerators == c.accelerators)
    #expect(try StateFile.decodeWithRevision(StateFile.encode(c)).clusterRevision == nil)
}
