import Testing
@testable import FlowgateCore

/// A small valid config; each fixture edits one spot and expects exact lines.
/// Line numbers of the base text are noted on the right for the expectations.
let baseConfig = """
project_id: ac80359381a34f04b39a333b0ea5117a
accelerators:
  - AcceleratorArn: arn:aws:globalaccelerator::123456789012:accelerator/75702d00-f682-4895-b84d-eb47d3db0c81
    listeners:
      - ListenerArn: arn:aws:globalaccelerator::123456789012:accelerator/75702d00-f682-4895-b84d-eb47d3db0c81/listener/0a1b2c3d
        PortRanges: [{FromPort: 8000, ToPort: 8009}]
        Protocol: TCP
        pool_id: 161835ef-0207-4300-ab5a-cf9c48f9f5ad
        bind: 127.0.0.1
pools:
  - id: 161835ef-0207-4300-ab5a-cf9c48f9f5ad
    name: web
    protocol: TCP
    lb_algorithm: ROUND_ROBIN
    members:
      - {address: 127.0.0.1, protocol_port: 9001, weight: 3}
      - {address: 127.0.0.1, protocol_port: 9002, weight: 1}

"""
// Lines: 1 project_id, 3 AcceleratorArn, 5 ListenerArn, 6 PortRanges, 7 Protocol,
// 8 pool_id, 9 bind, 10 pools, 11 id, 12 name, 13 protocol, 14 lb_algorithm,
// 15 members, 16 member 0, 17 member 1.

let accArn = "arn:aws:globalaccelerator::123456789012:accelerator/75702d00-f682-4895-b84d-eb47d3db0c81"
let listenerArn0 = accArn + "/listener/0a1b2c3d"
let poolID0 = "161835ef-0207-4300-ab5a-cf9c48f9f5ad"
let L0 = "accelerators[0].listeners[0]"

/// `baseConfig` with `old` replaced by `new` (which must occur exactly once).
func edited(_ old: String, _ new: String, in text: String = baseConfig) -> String {
    let parts = text.components(separatedBy: old)
    precondition(parts.count == 2, "fixture edit target \(old) must occur exactly once")
    return parts.joined(separator: new)
}

/// Rendered error lines, or [] when the text loads.
func errorLines(_ yaml: String) -> [String] {
    switch ConfigLoader.parse(yaml: yaml, fileName: "flowgate.yaml") {
    case .success: return []
    case let .failure(e): return e.issues.map(\.description)
    }
}

func kinds(_ yaml: String) -> [ValidationIssue.Kind] {
    switch ConfigLoader.parse(yaml: yaml, fileName: "flowgate.yaml") {
    case .success: return []
    case let .failure(e): return e.issues.map(\.issue.kind)
    }
}

func loaded(_ yaml: String) -> FlowgateConfig? {
    try? ConfigLoader.parse(yaml: yaml, fileName: "flowgate.yaml").get()
}

extension String {
    fileprivate func components(separatedBy sep: String) -> [String] {
        var parts: [String] = []
        var rest = self[...]
        while let r = rest.firstRange(of: sep) {
            parts.append(String(rest[..<r.lowerBound])); rest = rest[r.upperBound...]
        }
        parts.append(String(rest))
        return parts
    }
}
