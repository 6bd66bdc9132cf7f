import Foundation
import KubeAPI
@testable import OperatorEngine
import Testing

/// `PairPlanner` as a table: snapshots in, Kubernetes actions out.
@Suite("Reconciler planner", .serialized, .timeLimit(.minutes(5)))
struct ReconcilerPlannerTests {
    static let now = Date(timeIntervalSince1970: 1_700_000_000)

    /// A pair whose every object exists and matches, and whose status is what the planner wrote.
    struct Settled {
        var snapshot: PairSnapshot
        var certificates: PairCertificates
    }

    static func settled(ttspec: JSONObject = ["image": "tenops:latest"]) throws -> Settled {
        var object = sampleObject(ttspec: ttspec)
        object.metadata.generation = 1
        let certificates = try PairCertificates.create(for: PairNames(object))
        var snapshot = PairSnapshot(
            object: object, statefulSet: PairObjects.statefulSet(for: object), service: PairObjects.service(for: object),
            caSecret: try certificates.caSecret(owner: object), agentTLSSecret: try certificates.agentTLSSecret(owner: object), now: now)
        let first = PairPlanner.plan(snapshot)
        snapshot.object.status = try #require(first.status)
        return Settled(snapshot: snapshot, certificates: certificates)
    }

    static func names(_ plan: PairPlan) -> [String] { plan.actions.map { $0.description } }

    @Test("missing everything: CA Secret, agent Secret, Service, StatefulSet in that order, each with a Create event, then Initializing")
    func missingEverything() throws {
        var object = sampleObject()
        object.metadata.generation = 3
        let plan = PairPlanner.plan(PairSnapshot(object: object, now: Self.now))
        #expect(Self.names(plan) == [
            "createCASecret", "event(Normal Create: Created Secret sample-ca)",
            "createAgentTLSSecret", "event(Normal Create: Created Secret sample-agent-tls)",
            "create(Service)", "event(Normal Create: Created Service sample)",
            "create(StatefulSet)", "event(Normal Create: Created StatefulSet sample)",
            "updateStatus(Initializing)", "event(Normal StateChange: Initializing)",
        ])
        #expect(plan.actions.contains(.create(.statefulSet, PairObjects.statefulSet(for: object).json)))
        #expect(plan.actions.contains(.create(.service, PairObjects.service(for: object).json)))
        let status = try #require(plan.status)
        #expect(status.highLevelState == "Initializing" && status.prevHighLevelState == nil)
        #expect(status.lastHighLevelStateSwitch == Self.now && status.lastReconcile == Self.now)
        #expect(status.observedGeneration == 3)
        #expect(status.conditions[type: "Valid"]?.status == "True")
        #expect(status.podStatus.map(\.name) == ["sample-0", "sample-1"])
        #expect(status.podStatus.allSatisfy { $0.podStatus.podPhase == "Missing" && $0.podStatus.podIP == nil })
    }

    @Test("present and matching: nothing at all, not even a status write")
    func presentAndMatching() throws {
        let settled = try Self.settled()
        #expect(settled.snapshot.object.status.highLevelState == "Initializing")
        var later = settled.snapshot
        later.now = Self.now.addingTimeInterval(60)
        #expect(PairPlanner.plan(later).actions.isEmpty, "\(Self.names(PairPlanner.plan(later)))")
    }

    @Test("a drifted StatefulSet gets Drift's merge patch, and nothing else")
    func driftedStatefulSet() throws {
        var snapshot = try Self.settled().snapshot
        var other = snapshot.object
        other.ttspec.image = "other:1"
        let set = PairObjects.statefulSet(for: other)
        snapshot.statefulSet = set
        let wanted = PairObjects.statefulSet(for: snapshot.object)
        let patch = try #require(Drift.statefulSet(set, wanted: wanted, owner: snapshot.object).patch)
        #expect(PairPlanner.plan(snapshot).actions == [.patch(.statefulSet, name: "sample", patch: patch)])
    }

    @Test("a StatefulSet controlled by something else: an Error event, and it is left alone")
    func foreignController() throws {
        var snapshot = try Self.settled().snapshot
        var other = snapshot.object
        other.ttspec.image = "other:1"
        var set = PairObjects.statefulSet(for: other)
        var reference = PairNames.ownerReference(snapshot.object)
        reference.uid = "someone-else"
        set.metadata.ownerReferences = [reference]
        snapshot.statefulSet = set
        let plan = PairPlanner.plan(snapshot)
        #expect(plan.actions.count == 1)
        let event = try #require(plan.events.first)
        #expect(event.type == .warning && event.reason == "Error" && event.message.contains("StatefulSet sample is controlled by"))
    }

    @Test("an invalid spec: a Warning event naming every problem and Valid=False; nothing else, even with objects present or missing")
    func invalidSpec() throws {
        for objectsPresent in [true, false] {
            var snapshot = try Self.settled().snapshot
            var status = snapshot.object.status
            status.switchState(to: "Normal", at: Self.now)
            snapshot.object.status = status
            snapshot.object.ttspec.repPort = PairNames.agentPort
            snapshot.object.ttspec.storageSize = "0Gi"
            snapshot.object.json.setValue(.int(-1), at: ["spec", "ttspec", "agentGetTimeout"])
            if !objectsPresent {
                snapshot.statefulSet = nil
                snapshot.service = nil
                snapshot.caSecret = nil
            }
            let problems = SpecValidation.problems(in: snapshot.object)
            #expect(problems.count >= 2, "\(problems)")
            let plan = PairPlanner.plan(snapshot)
            #expect(Self.names(plan).count == 2, "\(Self.names(plan))")
            let event = try #require(plan.events.first)
            #expect(event.type == .warning && event.reason == "Error")
            for problem in problems { #expect(event.message.contains(problem.description)) }
            let written = try #require(plan.status)
            let valid = try #require(written.conditions[type: "Valid"])
            #expect(valid.status == "False" && valid.message == event.message)
            #expect(written.highLevelState == "Normal")
            // Once said, not said again.
            snapshot.object.status = written
            #expect(PairPlanner.plan(snapshot).actions.isEmpty)
        }
    }

    @Test("stopManaging changed: ManualInterventionRequired, prevStopManaging recorded, nothing else touched until reexamine changes")
    func edgeTriggers() throws {
        var snapshot = try Self.settled().snapshot
        #expect(snapshot.object.status.prevStopManaging == nil)
        snapshot.object.ttspec.stopManaging = "1"
        snapshot.statefulSet = nil  // even a missing StatefulSet is left missing
        let stop = PairPlanner.plan(snapshot)
        #expect(Self.names(stop) == ["updateStatus(ManualInterventionRequired)",
                                     "event(Normal StateChange: TimesTenClassic was Initializing, now ManualInterventionRequired)"])
        snapshot.object.status = try #require(stop.status)
        #expect(snapshot.object.status.prevStopManaging == "1")
        #expect(PairPlanner.plan(snapshot).actions.isEmpty)

        snapshot.object.ttspec.reexamine = "2024-01-01"
        let resume = PairPlanner.plan(snapshot)
        #expect(Self.names(resume) == ["create(StatefulSet)", "event(Normal Create: Created StatefulSet sample)",
                                       "updateStatus(Reexamine)",
                                       "event(Normal StateChange: TimesTenClassic was ManualInterventionRequired, now Reexamine)"])
        let status = try #require(resume.status)
        #expect(status.prevReexamine == "2024-01-01" && status.prevHighLevelState == "ManualInterventionRequired")
    }

    @Test("a CA Secret that holds garbage: an Error event, and nothing is built")
    func garbageCA() throws {
        var snapshot = try Self.settled().snapshot
        var ca = try #require(snapshot.caSecret)
        ca.data = ["ca.crt": Data("junk".utf8), "ca.key": Data("junk".utf8)]
        snapshot.caSecret = ca
        snapshot.statefulSet = nil
        let plan = PairPlanner.plan(snapshot)
        #expect(plan.actions.count == 1)
        #expect(plan.events.first.map { $0.reason == "Error" && $0.message.contains("sample-ca") } == true, "\(Self.names(plan))")
    }

    @Test("an agent Secret from another CA is reissued; a new CA always reissues an existing agent Secret")
    func agentSecretReissue() throws {
        var snapshot = try Self.settled().snapshot
        let other = try PairCertificates.create(for: snapshot.names)
        snapshot.agentTLSSecret = try other.agentTLSSecret(owner: snapshot.object)
        let plan = PairPlanner.plan(snapshot)
        guard case .reissueAgentTLSSecret(let reasons) = plan.actions.first else {
            Issue.record("\(Self.names(plan))")
            return
        }
        #expect(reasons.contains { $0.contains("ca.crt") })
        #expect(plan.actions.count == 2 && plan.events.first?.reason == "Info")

        snapshot.caSecret = nil
        #expect(Self.names(PairPlanner.plan(snapshot)).prefix(3) == [
            "createCASecret", "event(Normal Create: Created Secret sample-ca)", "reissueAgentTLSSecret(the pair CA is new)",
        ])
    }

    @Test("podStatus: phase, IP, node and its readiness, with notReadySince kept while the node stays NotReady")
    func podStatus() throws {
        var snapshot = try Self.settled().snapshot
        let since = Self.now.addingTimeInterval(-30)
        snapshot.pods["sample-0"] = Pod(json: [
            "metadata": ["name": "sample-0", "namespace": "ns"],
            "spec": ["nodeName": "node-a"],
            "status": ["phase": "Running", "podIP": "127.0.1.1"],
        ])
        snapshot.nodes["node-a"] = Node(json: [
            "metadata": ["name": "node-a"],
            "status": ["conditions": [["type": "Ready", "status": "False", "lastTransitionTime": .string(KubeTime.format(since))]]],
        ])
        let plan = PairPlanner.plan(snapshot)
        #expect(Self.names(plan) == ["updateStatus(Initializing)"])
        let status = try #require(plan.status)
        let entry = try #require(status[pod: "sample-0"])
        #expect(entry.podStatus.podPhase == "Running" && entry.podStatus.podIP == "127.0.1.1")
        #expect(entry.node.name == "node-a" && entry.node.ready == "False" && entry.node.notReadySince == since)
        #expect(status[pod: "sample-1"]?.podStatus.podPhase == "Missing")

        snapshot.object.status = status
        snapshot.now = Self.now.addingTimeInterval(10)
        #expect(PairPlanner.plan(snapshot).actions.isEmpty)

        snapshot.nodes["node-a"] = Node(json: ["metadata": ["name": "node-a"], "status": ["conditions": [["type": "Ready", "status": "True"]]]])
        let recovered = try #require(PairPlanner.plan(snapshot).status)
        #expect(recovered[pod: "sample-0"]?.node.ready == "True" && recovered[pod: "sample-0"]?.node.notReadySince == nil)
    }
}
