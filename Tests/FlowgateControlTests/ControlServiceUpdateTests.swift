// ControlService.update runs the change with the gate held and returns the
// change's own typed error as `.refused` (no sentinel), the shared update
// path's as `.failed`; reset reads the base config under the gate.
import Testing
@testable import FlowgateControl
import FlowgateCore

private struct Gone: Error, Equatable { var id: String }

@Suite struct ControlServiceUpdateTests {
    @Test func theChangeItsOwnErrorIsRefusedAndNothingCommits() {
        let (service, applier) = Fixture.service()
        #expect(throws: ChangeFailure<Gone>.self) {
            try service.update { (config: inout FlowgateConfig) throws(Gone) -> Int in
                config.pools.removeAll()
                throw Gone(id: "p")
            }
        }
        do throws(ChangeFailure<Gone>) {
            _ = try service.update { (_: inout FlowgateConfig) throws(Gone) -> Int in throw Gone(id: "q") }
        } catch {
            guard case let .refused(e) = error else { Issue.record("expected .refused, got \(error)"); return }
            #expect(e == Gone(id: "q"))
        }
        #expect(applier.commits.isEmpty)
    }

    @Test func aBrokenRuleFailsWithTheValidatorsIssues() {
        let (service, applier) = Fixture.service()
        do throws(ChangeFailure<Gone>) {
            _ = try service.update { (config: inout FlowgateConfig) throws(Gone) in config.pools[0].members[0].weight = 101 }
            Issue.record("a weight of 101 was accepted")
        } catch {
            guard case let .failed(.invalid(issues)) = error else { Issue.record("expected .failed(.invalid), got \(error)"); return }
            #expect(issues.first?.rule == .outOfRange(101, 0...100, unit: nil))
        }
        #expect(applier.commits.isEmpty)
    }

    @Test func theChangeReturnsWhatItChangedWithTheCommittedConfig() throws {
        let (service, applier) = Fixture.service()
        let (config, name) = try service.update { (config: inout FlowgateConfig) throws(Gone) -> String in
            config.pools[0].name = "renamed"
            return config.pools[0].name
        }
        #expect(name == "renamed" && config.pools[0].name == "renamed")
        #expect(applier.commits == [config])
    }

    @Test func resetWithoutABaseConfigIsRefused() {
        let config = Fixture.config()
        let service = ControlService(applier: AnyApplier(RecordingApplier(config)), store: nil)
        #expect(throws: UpdateFailure.self) { try service.reset() }
        #expect(service.baseConfig == nil)
        _ = try? service.reload(fileConfig: config)
        #expect(service.baseConfig == config)
    }
}
