// ControlService in a cluster (docs/cluster.md §3, §4) with a scripted
// committer instead of etcd: a conflict is retried once on the state etcd
// returned, a second one answers the conflict error, etcd unreachable changes
// nothing, snapshots from the watch apply all or nothing and in order.
import Synchronization
import Testing
@testable import FlowgateControl
import FlowgateCore

private struct Gone: Error {}

/// Answers each commit with the next scripted result, recording what it was asked.
private final class ScriptedCommitter: ClusterCommitting, @unchecked Sendable {
    let script: Mutex<[ClusterCommitResult]>
    let asked = Mutex<[(objects: FlowgateConfig, expected: Int64)]>([])
    init(_ script: [ClusterCommitResult]) { self.script = Mutex(script) }
    func commit(_ objects: FlowgateConfig, expected revision: Int64) -> ClusterCommitResult {
        asked.withLock { $0.append((objects, revision)) }
        return script.withLock { $0.isEmpty ? .unavailable("script ended") : $0.removeFirst() }
    }
}

private func clusterService(_ script: [ClusterCommitResult]) -> (ControlService, RecordingApplier, ScriptedCommitter) {
    let (service, applier) = Fixture.service()
    let committer = ScriptedCommitter(script)
    service.cluster = committer
    #expect(service.applyCluster(ClusterSnapshot(config: Fixture.config(), revision: 5)) == .skipped)
    return (service, applier, committer)
}

private func setWeight(_ service: ControlService, _ weight: Int) throws(ChangeFailure<Gone>) {
    try service.update { (config: inout FlowgateConfig) throws(Gone) in config.pools[0].members[0].weight = weight }
}

@Suite struct ControlServiceClusterTests {
    @Test func aCommittedWriteIsBasedOnTheRevisionInForceAndApplied() throws {
        let (service, applier, committer) = clusterService([.committed(revision: 6)])
        try setWeight(service, 7)
        #expect(committer.asked.withLock { $0.map(\.expected) } == [5])
        #expect(applier.current.pools[0].members[0].weight == 7)
        #expect(service.clusterRevisions == (applied: 6, latest: 6))
    }

    @Test func aConflictIsRetriedOnceOnTheNewerStateEtcdReturned() throws {
        var theirs = Fixture.config()
        theirs.pools[0].name = "renamed elsewhere"
        let (service, applier, committer) = clusterService([.conflict(latest: ClusterSnapshot(config: theirs, revision: 9)),
                                                           .committed(revision: 10)])
        try setWeight(service, 7)
        let asked = committer.asked.withLock { $0 }
        #expect(asked.map(\.expected) == [5, 9])
        // The retry ran the change again on their state: both changes hold.
        #expect(asked[1].objects.pools[0].name == "renamed elsewhere" && asked[1].objects.pools[0].members[0].weight == 7)
        #expect(applier.current.pools[0].name == "renamed elsewhere" && applier.current.pools[0].members[0].weight == 7)
        #expect(applier.aborts == 1)
    }

    @Test func aSecondConflictAnswersTheConflictError() {
        let newer = { (rev: Int64) in ClusterCommitResult.conflict(latest: ClusterSnapshot(config: Fixture.config(), revision: rev)) }
        let (service, applier, _) = clusterService([newer(8), newer(9)])
        do throws(ChangeFailure<Gone>) { try setWeight(service, 7); Issue.record("accepted") } catch {
            guard case let .failed(.invalid(issues)) = error else { Issue.record("got \(error)"); return }
            #expect(issues.first?.kind == .conflict)
        }
        #expect(applier.current.pools[0].members[0].weight == 3)
    }

    @Test func etcdUnreachableChangesNothing() {
        let (service, applier, _) = clusterService([.unavailable("no etcd member answered")])
        do throws(ChangeFailure<Gone>) { try setWeight(service, 7); Issue.record("accepted") } catch {
            guard case let .failed(.persist(e)) = error else { Issue.record("got \(error)"); return }
            #expect(e.description.contains("no etcd member answered"))
        }
        #expect(applier.current.pools[0].members[0].weight == 3 && applier.aborts == 1)
        #expect(service.clusterRevisions.applied == 5)
    }

    @Test func snapshotsApplyAllOrNothingAndInOrder() {
        let (service, applier, _) = clusterService([])
        var next = Fixture.config()
        next.pools[0].members[0].weight = 9
        #expect(service.applyCluster(ClusterSnapshot(config: next, revision: 7)) == .applied)
        #expect(service.applyCluster(ClusterSnapshot(config: Fixture.config(), revision: 6)) == .skipped)  // older
        var broken = next
        broken.pools[0].members[0].weight = 101
        guard case .failed = service.applyCluster(ClusterSnapshot(config: broken, revision: 8)) else { Issue.record("applied"); return }
        applier.failNextPrepare(ApplyError(.addressInUse, "port 8000 in use"))
        var moved = next
        moved.pools[0].name = "x"
        #expect(service.applyCluster(ClusterSnapshot(config: moved, revision: 9)) == .failed("revision 9: port 8000 in use"))
        #expect(applier.current.pools[0].members[0].weight == 9 && applier.current.pools[0].name == "web")
        // The next write is based on the newest snapshot seen, not only the one in force.
        #expect(service.clusterRevisions == (applied: 7, latest: 9))
    }

    @Test func stateResetIsRefusedOnAClusterMember() {
        let (service, _, _) = clusterService([])
        #expect(throws: UpdateFailure.self) { _ = try service.reset() }
    }
}
