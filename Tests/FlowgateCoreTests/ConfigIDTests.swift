import Testing
@testable import FlowgateCore

private func hex(_ bytes: [UInt8]) -> String { NameUUID.hexString(bytes) }

// RFC 3174 §7.3 test vectors (TEST1..TEST4), plus the empty message.
@Test func sha1MatchesRFC3174Vectors() {
    #expect(hex(SHA1.hash(Array("abc".utf8))) == "a9993e364706816aba3e25717850c26c9cd0d89d")
    #expect(hex(SHA1.hash(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)))
        == "84983e441c3bd26ebaae4aa1f95129e5e54670f1")
    #expect(hex(SHA1.hash([UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)))
        == "34aa973cd4c4daa4f61eeb2bdbad27316534016f")
    let test4 = Array(String(repeating: "0123456701234567012345670123456701234567012345670123456701234567", count: 10).utf8)
    #expect(hex(SHA1.hash(test4)) == "dea356a2cddd90c7a7ecedc5ebb563934f460452")
    #expect(hex(SHA1.hash([UInt8]())) == "da39a3ee5e6b4b0d3255bfef95601890afd80709")
}

@Test func sha1IncrementalEqualsOneShot() {
    // Feeding 1..63-byte pieces crosses every block boundary position.
    let message = Array((0..<1000).map { UInt8(truncatingIfNeeded: $0 * 7) })
    var s = SHA1()
    var i = 0, step = 1
    while i < message.count {
        let end = min(message.count, i + step)
        s.update(message[i..<end]); i = end; step = step % 63 + 1
    }
    #expect(s.finalize() == SHA1.hash(message))
}

// Python: uuid.uuid5(uuid.NAMESPACE_DNS, "www.example.com")
@Test func uuidV5MatchesPythonUUID5() {
    #expect(NameUUID.v5(namespace: NameUUID.dnsNamespace, name: "www.example.com") == "2ed6657d-e927-568b-95e1-2665a8aea6a2")
    #expect(NameUUID.format(NameUUID.flowgateNamespace) == "0e5296d3-0a7c-5907-84a3-dc3dba72bc57")
}

@Test func uuidParsing() {
    #expect(NameUUID.parse("161835ef-0207-4300-ab5a-cf9c48f9f5ad") == NameUUID.parse("161835EF02074300AB5ACF9C48F9F5AD"))
    #expect(NameUUID.parse("161835ef-0207-4300-ab5a-cf9c48f9f5a") == nil)
    #expect(NameUUID.parse("161835ef-0207-4300-ab5a_cf9c48f9f5ad") == nil)
    #expect(NameUUID.isCanonical("161835ef-0207-4300-ab5a-cf9c48f9f5ad"))
    #expect(!NameUUID.isCanonical("161835ef02074300ab5acf9c48f9f5ad"))
}

// Golden values, computed independently with Python's uuid.uuid5.
@Test func derivedIDsAreGolden() {
    let project = "ac80359381a34f04b39a333b0ea5117a"
    #expect(DerivedIDs.defaultProjectID == "11c4b0a56dc75cea91cc33b1b18f493e")
    #expect(DerivedIDs.poolID(projectID: project, key: "web") == "c896bfc4-da09-55f1-a9dd-0015e14a4c77")
    #expect(DerivedIDs.poolID(projectID: project, key: "#1") == "ee6c9332-7a27-504d-b505-50f4f34a9897")
    #expect(DerivedIDs.healthMonitorID(projectID: project, key: "tcp-check") == "f0099c37-d1fe-53d8-b0d6-551a33a70244")
    let pool = "161835ef-0207-4300-ab5a-cf9c48f9f5ad"
    #expect(DerivedIDs.memberID(poolID: pool, address: "127.0.0.1", protocolPort: 9001) == "806c0edb-0786-5069-84af-f3c394b37003")
    // The address is canonicalised: 0::1 and ::1 are the same member.
    #expect(DerivedIDs.memberID(poolID: pool, address: "0::1", protocolPort: 9001) == "a3547add-fe47-5dd6-bae2-4b3ebbcbf39e")
    #expect(DerivedIDs.memberID(poolID: pool, address: "10.0.0.7", protocolPort: nil) == "ac7c9cfc-2cc0-5617-9584-3f0bb50ca0e8")
    #expect(DerivedIDs.acceleratorArn(projectID: project, key: "edge")
        == "arn:aws:globalaccelerator::123456789012:accelerator/c5c8393d-1ec4-5ebb-a998-534cf02a3c87")
    let acc0 = "arn:aws:globalaccelerator::123456789012:accelerator/fc4c4681-4a5e-5242-838c-984657c246e8"
    #expect(DerivedIDs.acceleratorArn(projectID: project, key: "#0") == acc0)
    #expect(DerivedIDs.listenerArn(acceleratorArn: acc0, index: 0) == acc0 + "/listener/b7ee5566")
    #expect(DerivedIDs.listenerArn(acceleratorArn: acc0, index: 1) == acc0 + "/listener/49b20484")
}

let configWithoutIDs = """
project_id: ac80359381a34f04b39a333b0ea5117a
accelerators:
  - listeners:
      - PortRanges: [{FromPort: 8000, ToPort: 8000}]
        Protocol: TCP
        pool_id: c896bfc4-da09-55f1-a9dd-0015e14a4c77
      - PortRanges: [{FromPort: 8000, ToPort: 8000}]
        Protocol: UDP
        pool_id: ee6c9332-7a27-504d-b505-50f4f34a9897
  - Name: edge
pools:
  - name: web
    protocol: TCP
    members:
      - {address: 127.0.0.1, protocol_port: 9001}
  - name: web
    protocol: UDP
    members:
      - {address: "0::1", protocol_port: 9001}
      - {address: 10.0.0.7}
healthmonitors:
  - {name: tcp-check, type: TCP}

"""

@Test func loaderDerivesMissingIDsDeterministically() throws {
    let c = try #require(loaded(configWithoutIDs))
    let acc0 = "arn:aws:globalaccelerator::123456789012:accelerator/fc4c4681-4a5e-5242-838c-984657c246e8"
    #expect(c.accelerators.map(\.acceleratorArn) == [acc0,
        "arn:aws:globalaccelerator::123456789012:accelerator/c5c8393d-1ec4-5ebb-a998-534cf02a3c87"])
    #expect(c.accelerators[0].listeners.map(\.listenerArn) == [acc0 + "/listener/b7ee5566", acc0 + "/listener/49b20484"])
    // Two pools named "web": the second falls back to its index.
    #expect(c.pools.map(\.id) == ["c896bfc4-da09-55f1-a9dd-0015e14a4c77", "ee6c9332-7a27-504d-b505-50f4f34a9897"])
    #expect(c.pools[1].members.map(\.id) == [
        DerivedIDs.memberID(poolID: "ee6c9332-7a27-504d-b505-50f4f34a9897", address: "::1", protocolPort: 9001),
        DerivedIDs.memberID(poolID: "ee6c9332-7a27-504d-b505-50f4f34a9897", address: "10.0.0.7", protocolPort: nil),
    ])
    #expect(c.healthmonitors.map(\.id) == ["f0099c37-d1fe-53d8-b0d6-551a33a70244"])
    // Same input, same ids.
    #expect(loaded(configWithoutIDs) == c)
}

@Test func missingProjectIDGetsTheDefault() throws {
    let c = try #require(loaded("pools: []\naccelerators: []\n"))
    #expect(c.projectID == "11c4b0a56dc75cea91cc33b1b18f493e")
}

@Test func poolIDMayNameAUniquelyNamedPool() throws {
    let c = try #require(loaded(edited("pool_id: \(poolID0)", "pool_id: web")))
    #expect(c.accelerators[0].listeners[0].poolID == poolID0)
}

@Test func ambiguousPoolNameIsNotResolved() {
    let yaml = edited("pool_id: \(poolID0)", "pool_id: web") + "  - {name: web, protocol: TCP}\n"
    #expect(errorLines(yaml) == ["flowgate.yaml:8:18: \(L0).pool_id: no pool with id \"web\""])
}

extension String {
    func replacingFirst(_ old: String, with new: String) -> String {
        guard let r = firstRange(of: old) else { return self }
        return replacingCharacters(in: r, with: new)
    }
}
