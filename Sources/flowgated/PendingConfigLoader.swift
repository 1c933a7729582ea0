// TEMPORARY until branch core-config lands `ConfigLoader` in FlowgateCore:
// decodes a file that spells out every field (no defaults, no located
// errors). ConfigSource switches to ConfigLoader.load(path:) at that merge
// and this file goes away.
import Foundation
import Yams
import FlowgateCore

enum PendingConfigLoader {
    static func load(path: String) -> Result<FlowgateConfig, PendingConfigErrors> {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            return .failure(PendingConfigErrors(description: "\(path): cannot read the file"))
        }
        do { return .success(try YAMLDecoder().decode(FlowgateConfig.self, from: text)) }
        catch { return .failure(PendingConfigErrors(description: "\(path): \(error)")) }
    }
}

struct PendingConfigErrors: Error, CustomStringConvertible { var description: String }
