import Foundation
import KubeAPI
@testable import OperatorEngine
import Testing

/// Inputs for the engine's pure pieces: Pods, agent views and status entries of pair `ns/sample`.
/// Times are relative to `PairFixture.now`.
enum EngineLogicFixture {
    static let now = PairFixture.now
    static func ago(_ seconds: TimeInterval) -> Date { PairFixture.ago(seconds) }

    /// The tt container's `state`.
    enum TT: String, Sendable {
        case running, terminated, waiting

        var json: JSONObject {
            switch self {
            case .running: ["running": ["startedAt": "2023-11-14T22:00:00Z"]]
            case .terminated: ["terminated": ["exitCode": 137, "reason": "Error"]]
            case .waiting: ["waiting": ["reason": "CrashLoopBackOff"]]
            }
        }
    }

    static func pod(
        _ name: String = "sample-0", uid: String? = "uid-A", ip: String? = "10.1.0.1", phase: String = "Running", ready: Bool = false,
        tt: TT = .running, restarts: Int = 0, deleting: Bool = false, sidecarTerminated: Bool = false
    ) -> Pod {
        var pod = Pod(name: name, namespace: "ns")
        pod.metadata.uid = uid
        pod.metadata.creationTimestamp = ago(3600)
        if deleting { pod.metadata.deletionTimestamp = ago(1) }
        pod.spec.nodeName = "node-\(name.suffix(1))"
        pod.status.phase = phase
        pod.status.podIP = ip
        pod.status.conditions = [Condition(type: "Ready", status: ready ? "True" : "False")]
        var containers = [ContainerStatus(json: ["name": "tt", "restartCount": .int(Int64(restarts)), "state": .object(tt.json)])]
        if sidecarTerminated {
            containers.append(ContainerStatus(json: ["name": "daemonlog", "restartCount": 4, "state": .object(TT.terminated.json)]))
        }
        pod.status.containerStatuses = containers
        return pod
    }

    static func view(
        uid: String = "uid-A", settled: Bool = true, reachable: Bool = true, status: AgentStatus? = PairFixture.activeStatus,
        lastTimeReachable: Date? = now, watchingSince: Date = ago(300), restartCountAtStatus: Int? = nil, job: AgentJobStatus.State? = nil
    ) -> AgentView {
        var view = AgentView(podUID: uid, address: "10.1.0.1", watchingSince: watchingSince)
        view.settled = settled
        view.reachable = reachable
        view.status = status
        view.lastTimeReachable = lastTimeReachable
        view.restartCountAtStatus = restartCountAtStatus
        view.job = job.map { AgentJobStatus(id: "job-1", state: $0) }
        return view
    }

    static func entry(
        _ name: String, role: PodRole? = nil, uid: String? = nil, state: PodState? = nil, agent: String? = nil,
        lastTimeReachable: Date? = nil, repState: String? = nil, repSince: Date? = nil, peer: String? = nil, peerSince: Date? = nil
    ) -> PairPodStatus {
        var entry = PairPodStatus(name: name)
        entry.intendedState = role?.rawValue
        entry.highLevelState = state?.rawValue
        entry.podStatus.uid = uid
        entry.podStatus.agent = agent
        entry.podStatus.lastTimeReachable = lastTimeReachable
        entry.replicationStatus.repState = repState
        entry.replicationStatus.lastTimeRepStateChanged = repSince
        entry.replicationStatus.repPeerPState = peer
        entry.replicationStatus.lastTimeRepPeerPStateChanged = peerSince
        return entry
    }

    static func status(_ entries: [PairPodStatus], state: String? = nil) -> TimesTenClassicStatus {
        var status = TimesTenClassicStatus(json: [:])
        status.highLevelState = state
        status.podStatus = entries
        return status
    }

    static func snapshot(_ pods: [Pod]) -> PairSnapshot {
        PairSnapshot(object: sampleObject(), pods: Dictionary(uniqueKeysWithValues: pods.map { ($0.name, $0) }), now: now)
    }

    /// The observation of `sample-0` (the default intended active); `sample-1` does not exist.
    static func observe0(_ pod: Pod?, entry: PairPodStatus? = nil, view: AgentView? = nil) throws(PairObservationBuilder.Wait) -> PodObservation {
        let status = EngineLogicFixture.status(entry.map { [$0] } ?? [])
        let observation = try PairObservationBuilder.observe(
            snapshot(pod.map { [$0] } ?? []), status: status, views: view.map { ["sample-0": $0] } ?? [:], settings: PairSettings(), now: now)
        return observation.active
    }

    static func decision(
        _ state: PairState = .normal, previous: PairState? = nil, changed: Bool = false, active: String = "sample-0",
        activePods: [String] = ["sample-0"], podStates: [String: PodState] = ["sample-0": .healthy, "sample-1": .healthy]
    ) -> PairDecision {
        let standby = active == "sample-0" ? "sample-1" : "sample-0"
        return PairDecision(
            status: PairStatusUpdate(
                state: state, previousState: previous, stateChanged: changed, intendedActive: active, intendedStandby: standby,
                rolesSwapped: false, activePods: activePods, podStates: podStates),
            actions: [], events: [], note: "", recheckAt: nil)
    }
}

/// The engine's pure pieces as tables. The suites are nested so that `--filter EngineLogicTests` runs them all.
@Suite("Engine logic", .timeLimit(.minutes(5)))
struct EngineLogicTests {}

// MARK: - PairObservationBuilder

extension EngineLogicTests {
    @Suite("observation builder", .timeLimit(.minutes(5)))
    struct ObservationBuilder {
        struct SettingsCase: Sendable, CustomStringConvertible {
            var ttspec: JSONObject
            var hasEpilog: Bool
            var expected: PairSettings
            var description: String { "\(ttspec) epilog=\(hasEpilog)" }
        }

        @Test("settings come from the spec, defaults where it is silent", arguments: [
            SettingsCase(ttspec: ["image": "x"], hasEpilog: false, expected: PairSettings(
                bothDownBehavior: .best, twoSafe: false, unreachableTimeout: 30, repStateTimeout: 30, deleteDbOnNotReadyNode: nil, hasEpilog: false)),
            SettingsCase(ttspec: ["image": "x"], hasEpilog: true, expected: PairSettings(hasEpilog: true)),
            SettingsCase(
                ttspec: ["image": "x", "bothDownBehavior": "Manual", "repReturnServiceAttribute": "RETURN TWOSAFE", "unreachableTimeout": 7,
                         "repStateTimeout": 11, "deleteDbOnNotReadyNode": 60],
                hasEpilog: false,
                expected: PairSettings(bothDownBehavior: .manual, twoSafe: true, unreachableTimeout: 7, repStateTimeout: 11, deleteDbOnNotReadyNode: 60)),
            SettingsCase(ttspec: ["image": "x", "repReturnServiceAttribute": "NO RETURN"], hasEpilog: false, expected: PairSettings(twoSafe: false)),
        ])
        func settings(_ test: SettingsCase) {
            #expect(PairObservationBuilder.settings(TTSpec(json: test.ttspec), hasEpilog: test.hasEpilog) == test.expected)
        }

        struct RoleCase: Sendable, CustomStringConvertible {
            var label: String
            var roles: [String: PodRole]
            var active: String
            var standby: String
            var description: String { label }
        }

        @Test("intended roles come from podStatus[].intendedState, NAME-0 active when none is recorded", arguments: [
            RoleCase(label: "nothing recorded", roles: [:], active: "sample-0", standby: "sample-1"),
            RoleCase(label: "sample-1 recorded active", roles: ["sample-1": .active], active: "sample-1", standby: "sample-0"),
            RoleCase(label: "sample-0 standby, sample-1 active", roles: ["sample-0": .standby, "sample-1": .active], active: "sample-1", standby: "sample-0"),
            RoleCase(label: "sample-0 active, sample-1 standby", roles: ["sample-0": .active, "sample-1": .standby], active: "sample-0", standby: "sample-1"),
            RoleCase(label: "both standby", roles: ["sample-0": .standby, "sample-1": .standby], active: "sample-0", standby: "sample-1"),
            RoleCase(label: "a name not of this pair recorded active", roles: ["other-1": .active], active: "sample-0", standby: "sample-1"),
        ])
        func intendedRoles(_ test: RoleCase) throws {
            let status = EngineLogicFixture.status(test.roles.sorted { $0.key < $1.key }.map { EngineLogicFixture.entry($0.key, role: $0.value) })
            let observation = try PairObservationBuilder.observe(
                EngineLogicFixture.snapshot([]), status: status, views: [:], settings: PairSettings(), now: EngineLogicFixture.now)
            #expect(observation.active.name == test.active)
            #expect(observation.standby.name == test.standby)
            #expect(!observation.active.exists && !observation.standby.exists)
        }

        @Test("the pod cache keeps all a pod's observation reads: the same observation from a cached pod as from the pod", arguments: [
            EngineLogicFixture.pod(ready: true),
            EngineLogicFixture.pod(tt: .waiting, restarts: 3),
            EngineLogicFixture.pod(deleting: true, sidecarTerminated: true),
            EngineLogicFixture.pod(ip: nil, phase: "Pending", tt: .terminated),
        ])
        func cachedPodObservesAlike(_ original: Pod) throws {
            var pod = original
            pod.spec[field: "containers"] = [["name": "tt", "image": "tenops", "env": [["name": "A", "value": "B"]]], ["name": "daemonlog"]]
            pod.spec[field: "volumes"] = [["name": "tt-persistent", "persistentVolumeClaim": ["claimName": "tt-persistent-sample-0"]]]
            let cached = PairObserver.cachedPod(pod)
            #expect(cached.spec.json == ["nodeName": .string(pod.spec.nodeName ?? "")])
            #expect(cached.metadata == pod.metadata && cached.status == pod.status)
            #expect(try EngineLogicFixture.observe0(cached) == EngineLogicFixture.observe0(pod))
        }

        @Test("a pod not yet scheduled is cached with an empty spec")
        func cachedUnscheduledPod() {
            var pod = EngineLogicFixture.pod(phase: "Pending")
            pod.spec.nodeName = nil
            pod.spec[field: "containers"] = [["name": "tt"]]
            #expect(PairObserver.cachedPod(pod).spec.json.isEmpty)
        }

        @Test("the pair's state, its previous state, the switch time, settings and now come through")
        func pairLevelFields() throws {
            var status = EngineLogicFixture.status([], state: "Normal")
            status.prevHighLevelState = "StandbyCatchup"
            status.lastHighLevelStateSwitch = EngineLogicFixture.ago(42)
            let settings = PairSettings(twoSafe: true, unreachableTimeout: 9)
            let observation = try PairObservationBuilder.observe(EngineLogicFixture.snapshot([]), status: status, views: [:], settings: settings, now: EngineLogicFixture.now)
            #expect(observation.state == .normal && observation.previousState == .standbyCatchup)
            #expect(observation.stateSince == EngineLogicFixture.ago(42) && observation.settings == settings && observation.now == EngineLogicFixture.now)
            #expect(observation.edges == EdgeTriggers(stopManagingChanged: false, reexamineChanged: false))

            let fresh = try PairObservationBuilder.observe(
                EngineLogicFixture.snapshot([]), status: EngineLogicFixture.status([]), views: [:], settings: settings, now: EngineLogicFixture.now)
            #expect(fresh.state == .initializing && fresh.previousState == nil && fresh.stateSince == nil)
            let unknown = try PairObservationBuilder.observe(
                EngineLogicFixture.snapshot([]), status: EngineLogicFixture.status([], state: "SomethingNew"), views: [:], settings: settings, now: EngineLogicFixture.now)
            #expect(unknown.state == .reexamine)
        }

        /// What the engine knows of `sample-0`, and whether it exists or the engine must wait.
        struct ExistenceCase: Sendable, CustomStringConvertible {
            enum Outcome: Sendable, Equatable { case exists(Bool), waits }
            struct ViewSpec: Sendable {
                var uid: String
                var settled = true
                var reachable = true
                var reached = true
            }

            var label: String
            var podPresent = true
            var podUID: String? = "uid-B"
            var podIP: String? = "10.1.0.1"
            var tt: EngineLogicFixture.TT = .running
            var deleting = false
            var recordedUID: String?
            var view: ViewSpec?
            var outcome: Outcome
            var description: String { label }
        }

        @Test("whether a pod exists, or the engine must wait for its agent", arguments: [
            ExistenceCase(label: "pod missing from the snapshot", podPresent: false, recordedUID: "uid-B", outcome: .exists(false)),
            ExistenceCase(
                label: "pod missing, a view of it remains", podPresent: false, recordedUID: "uid-B", view: .init(uid: "uid-B"), outcome: .exists(false)),
            ExistenceCase(label: "pod without a uid", podUID: nil, recordedUID: "uid-B", outcome: .exists(false)),
            ExistenceCase(
                label: "new incarnation, the view and the status are of the old one", recordedUID: "uid-A", view: .init(uid: "uid-A"),
                outcome: .exists(false)),
            ExistenceCase(label: "new incarnation, no view, the status names the old one", recordedUID: "uid-A", outcome: .exists(false)),
            ExistenceCase(label: "new incarnation, nothing recorded, no view", outcome: .exists(false)),
            ExistenceCase(
                label: "new incarnation, its view settled but never reached", recordedUID: "uid-A",
                view: .init(uid: "uid-B", reachable: false, reached: false), outcome: .exists(false)),
            ExistenceCase(label: "reached before, no view yet, has an IP", recordedUID: "uid-B", outcome: .waits),
            ExistenceCase(label: "reached before, no view yet, no IP", podIP: nil, recordedUID: "uid-B", outcome: .exists(true)),
            ExistenceCase(
                label: "reached before, no view yet, container terminated", tt: .terminated, recordedUID: "uid-B", outcome: .exists(false)),
            ExistenceCase(label: "view not settled", recordedUID: "uid-B", view: .init(uid: "uid-B", settled: false), outcome: .waits),
            ExistenceCase(
                label: "view not settled, never reached before", view: .init(uid: "uid-B", settled: false, reachable: false, reached: false),
                outcome: .waits),
            ExistenceCase(
                label: "view not settled, pod deleting", deleting: true, view: .init(uid: "uid-B", settled: false, reachable: false, reached: false),
                outcome: .exists(false)),
            ExistenceCase(
                label: "view not settled, container terminated", tt: .terminated, recordedUID: "uid-B",
                view: .init(uid: "uid-B", settled: false, reachable: false), outcome: .exists(true)),
            ExistenceCase(label: "view settled and reached", view: .init(uid: "uid-B"), outcome: .exists(true)),
            ExistenceCase(
                label: "view settled, unreachable, never reached in this run, reached before", recordedUID: "uid-B",
                view: .init(uid: "uid-B", reachable: false, reached: false), outcome: .exists(true)),
        ])
        func existence(_ test: ExistenceCase) {
            let pod = test.podPresent ? EngineLogicFixture.pod(uid: test.podUID, ip: test.podIP, tt: test.tt, deleting: test.deleting) : nil
            let entry = EngineLogicFixture.entry("sample-0", uid: test.recordedUID)
            let view = test.view.map {
                EngineLogicFixture.view(uid: $0.uid, settled: $0.settled, reachable: $0.reachable, lastTimeReachable: $0.reached ? EngineLogicFixture.ago(1) : nil)
            }
            let outcome: ExistenceCase.Outcome
            do throws(PairObservationBuilder.Wait) {
                outcome = .exists(try EngineLogicFixture.observe0(pod, entry: entry, view: view).exists)
            } catch {
                #expect(error == .agentNotSettled(pod: "sample-0"))
                outcome = .waits
            }
            #expect(outcome == test.outcome)
        }

        struct TerminationCase: Sendable, CustomStringConvertible {
            var label: String
            var phase = "Running"
            var tt: EngineLogicFixture.TT = .running
            var restarts = 0
            var reachable = true
            var restartCountAtStatus: Int?
            var sidecarTerminated = false
            var terminated: Bool
            var description: String { label }
        }

        @Test("containerTerminated from the tt container's state, its restarts, and the pod's phase", arguments: [
            TerminationCase(label: "running", terminated: false),
            TerminationCase(label: "running, only the sidecar terminated", sidecarTerminated: true, terminated: false),
            TerminationCase(label: "terminated", tt: .terminated, terminated: true),
            TerminationCase(label: "waiting on first start", tt: .waiting, terminated: false),
            TerminationCase(label: "waiting after a restart", tt: .waiting, restarts: 1, terminated: true),
            TerminationCase(
                label: "restarted since the last status, agent unreachable", restarts: 3, reachable: false, restartCountAtStatus: 2, terminated: true),
            TerminationCase(label: "restarted since the last status, agent reachable", restarts: 3, restartCountAtStatus: 2, terminated: false),
            TerminationCase(label: "same restarts, agent unreachable", restarts: 3, reachable: false, restartCountAtStatus: 3, terminated: false),
            TerminationCase(label: "no count at status, agent unreachable", restarts: 3, reachable: false, terminated: false),
            TerminationCase(label: "phase Failed", phase: "Failed", terminated: true),
            TerminationCase(label: "phase Succeeded", phase: "Succeeded", terminated: true),
        ])
        func containerTerminated(_ test: TerminationCase) throws {
            let pod = EngineLogicFixture.pod(phase: test.phase, tt: test.tt, restarts: test.restarts, sidecarTerminated: test.sidecarTerminated)
            let view = EngineLogicFixture.view(reachable: test.reachable, restartCountAtStatus: test.restartCountAtStatus)
            let observation = try EngineLogicFixture.observe0(pod, view: view)
            #expect(observation.containerTerminated == test.terminated)
            #expect(observation.confirmedGone == test.terminated)
        }

        @Test("a restart count above the view's matters only for the view of this incarnation")
        func restartCountOfAnotherIncarnation() throws {
            // The view of the old incarnation says 2 restarts; the new pod (another uid) has 3 and runs.
            let pod = EngineLogicFixture.pod(uid: "uid-B", restarts: 3)
            let view = EngineLogicFixture.view(uid: "uid-A", reachable: false, restartCountAtStatus: 2)
            let observation = try EngineLogicFixture.observe0(pod, view: view)
            #expect(!observation.containerTerminated && !observation.exists)
        }

        @Test("a reachable pod's facts: readiness, node, agent status, previous state, terminal reason")
        func reachablePodFields() throws {
            var entry = EngineLogicFixture.entry("sample-0", uid: "uid-A", state: .healthy)
            entry.node.notReadySince = EngineLogicFixture.ago(20)
            var view = EngineLogicFixture.view(lastTimeReachable: EngineLogicFixture.ago(2))
            view.terminalReason = "createDb refused schema.sql"
            let observation = try EngineLogicFixture.observe0(EngineLogicFixture.pod(ready: true, deleting: true), entry: entry, view: view)
            #expect(observation.name == "sample-0" && observation.exists && !observation.containerTerminated)
            #expect(observation.ready && observation.deleting)
            #expect(observation.createdAt == EngineLogicFixture.ago(3600) && observation.nodeName == "node-0" && observation.nodeNotReadySince == EngineLogicFixture.ago(20))
            #expect(observation.agentReachable && observation.status == PairFixture.activeStatus)
            #expect(observation.lastTimeReachable == EngineLogicFixture.ago(2))
            #expect(observation.previousState == .healthy)
            #expect(observation.terminalReason == "createDb refused schema.sql")
            #expect(!observation.duplicating)
        }

        @Test("a missing pod keeps its previous state from the status")
        func missingPodPreviousState() throws {
            let observation = try EngineLogicFixture.observe0(nil, entry: EngineLogicFixture.entry("sample-0", uid: "uid-A", state: .down))
            #expect(!observation.exists && observation.previousState == .down)
        }

        @Test("lastTimeReachable is the view's, or when watching began if the agent never answered", arguments: [
            (Optional(EngineLogicFixture.ago(7)), EngineLogicFixture.ago(7)),
            (nil, EngineLogicFixture.ago(300)),
        ] as [(Date?, Date)])
        func lastTimeReachable(reached: Date?, expected: Date) throws {
            let view = EngineLogicFixture.view(reachable: reached != nil, lastTimeReachable: reached, watchingSince: EngineLogicFixture.ago(300))
            let observation = try EngineLogicFixture.observe0(EngineLogicFixture.pod(), entry: EngineLogicFixture.entry("sample-0", uid: "uid-A"), view: view)
            #expect(observation.lastTimeReachable == expected)
            #expect(observation.exists)
        }

        struct SinceCase: Sendable, CustomStringConvertible {
            var label: String
            var recordedRepState: String?
            var recordedPeer: String?
            var repState: AgentStatus.RepState
            var peer: String
            var repSince: Date?
            var peerSince: Date?
            var description: String { label }
        }

        @Test("repStateSince and peerStateSince: the recorded time while unchanged, now when changed", arguments: [
            SinceCase(label: "both unchanged", recordedRepState: "STANDBY", recordedPeer: "streaming", repState: .standby, peer: "streaming",
                      repSince: EngineLogicFixture.ago(500), peerSince: EngineLogicFixture.ago(400)),
            SinceCase(label: "repState changed", recordedRepState: "STANDBY", recordedPeer: "streaming", repState: .recovering, peer: "streaming",
                      repSince: EngineLogicFixture.now, peerSince: EngineLogicFixture.ago(400)),
            SinceCase(label: "peer state changed", recordedRepState: "STANDBY", recordedPeer: "streaming", repState: .standby, peer: "waiting",
                      repSince: EngineLogicFixture.ago(500), peerSince: EngineLogicFixture.now),
            SinceCase(label: "both changed", recordedRepState: "ACTIVE", recordedPeer: "none", repState: .standby, peer: "streaming",
                      repSince: EngineLogicFixture.now, peerSince: EngineLogicFixture.now),
            SinceCase(label: "nothing recorded", recordedRepState: nil, recordedPeer: nil, repState: .standby, peer: "streaming",
                      repSince: EngineLogicFixture.now, peerSince: EngineLogicFixture.now),
        ])
        func stateSince(_ test: SinceCase) throws {
            let entry = EngineLogicFixture.entry(
                "sample-0", uid: "uid-A", repState: test.recordedRepState, repSince: test.recordedRepState.map { _ in EngineLogicFixture.ago(500) },
                peer: test.recordedPeer, peerSince: test.recordedPeer.map { _ in EngineLogicFixture.ago(400) })
            var status = PairFixture.standbyStatus
            status.repState = test.repState
            status.repPeerPState = test.peer
            let observation = try EngineLogicFixture.observe0(EngineLogicFixture.pod(), entry: entry, view: EngineLogicFixture.view(status: status))
            #expect(observation.repStateSince == test.repSince)
            #expect(observation.peerStateSince == test.peerSince)
        }

        @Test("no agent status: no repStateSince, no peerStateSince")
        func stateSinceWithoutStatus() throws {
            let entry = EngineLogicFixture.entry("sample-0", uid: "uid-A", repState: "STANDBY", repSince: EngineLogicFixture.ago(500), peer: "streaming", peerSince: EngineLogicFixture.ago(400))
            let observation = try EngineLogicFixture.observe0(EngineLogicFixture.pod(), entry: entry, view: EngineLogicFixture.view(status: nil))
            #expect(observation.repStateSince == nil && observation.peerStateSince == nil && observation.status == nil)
        }

        @Test("duplicating comes from the view's job", arguments: [
            (nil, false), (.running, true), (.succeeded, false), (.failed, false),
        ] as [(AgentJobStatus.State?, Bool)])
        func duplicating(job: AgentJobStatus.State?, expected: Bool) throws {
            let observation = try EngineLogicFixture.observe0(EngineLogicFixture.pod(), view: EngineLogicFixture.view(job: job))
            #expect(observation.duplicating == expected)
        }
    }
}

// MARK: - PairStatusRecorder

extension EngineLogicTests {
    @Suite("status recorder", .timeLimit(.minutes(5)))
    struct StatusRecorder {
        /// Both pods up and reached: sample-0 the Ready active, sample-1 a streaming standby.
        static func pods() -> [Pod] {
            [EngineLogicFixture.pod("sample-0", uid: "uid-0", ready: true), EngineLogicFixture.pod("sample-1", uid: "uid-1", ip: "10.1.0.2", restarts: 2)]
        }

        static func views(at time: Date = EngineLogicFixture.now) -> [String: AgentView] {
            ["sample-0": EngineLogicFixture.view(uid: "uid-0", status: PairFixture.activeStatus, lastTimeReachable: time),
             "sample-1": EngineLogicFixture.view(uid: "uid-1", status: PairFixture.standbyStatus, lastTimeReachable: time)]
        }

        struct StateCase: Sendable, CustomStringConvertible {
            var label: String
            var before: String?
            var beforePrevious: String?
            var state: PairState
            var previous: PairState?
            var changed: Bool
            var after: String?
            var afterPrevious: String?
            var switched: Bool
            var description: String { label }
        }

        @Test("a decision's state change sets highLevelState, prevHighLevelState and lastHighLevelStateSwitch", arguments: [
            StateCase(label: "Catchup to Normal", before: "StandbyCatchup", beforePrevious: "StandbyStarting", state: .normal, previous: .standbyCatchup,
                      changed: true, after: "Normal", afterPrevious: "StandbyCatchup", switched: true),
            StateCase(label: "first state, no previous", before: nil, beforePrevious: nil, state: .initializing, previous: nil,
                      changed: true, after: "Initializing", afterPrevious: nil, switched: true),
            StateCase(label: "changed, previous left to switchState", before: "Normal", beforePrevious: "StandbyCatchup", state: .activeDown,
                      previous: nil, changed: true, after: "ActiveDown", afterPrevious: "Normal", switched: true),
            StateCase(label: "no change", before: "Normal", beforePrevious: "StandbyCatchup", state: .normal, previous: .standbyCatchup,
                      changed: false, after: "Normal", afterPrevious: "StandbyCatchup", switched: false),
        ])
        func stateChange(_ test: StateCase) {
            var status = EngineLogicFixture.status([], state: test.before)
            status.prevHighLevelState = test.beforePrevious
            status.lastHighLevelStateSwitch = EngineLogicFixture.ago(100)
            let result = PairStatusRecorder.apply(
                EngineLogicFixture.decision(test.state, previous: test.previous, changed: test.changed), to: status, snapshot: EngineLogicFixture.snapshot(Self.pods()),
                views: Self.views(), now: EngineLogicFixture.now)
            #expect(result.highLevelState == test.after)
            #expect(result.prevHighLevelState == test.afterPrevious)
            #expect(result.lastHighLevelStateSwitch == (test.switched ? EngineLogicFixture.now : EngineLogicFixture.ago(100)))
        }

        @Test("activePods and each pod's active flag", arguments: [
            ([], nil), (["sample-0"], "sample-0"), (["sample-1"], "sample-1"), (["sample-0", "sample-1"], "sample-0,sample-1"),
        ] as [([String], String?)])
        func activePods(_ active: [String], expected: String?) {
            let result = PairStatusRecorder.apply(
                EngineLogicFixture.decision(activePods: active), to: EngineLogicFixture.status([]), snapshot: EngineLogicFixture.snapshot(Self.pods()), views: Self.views(), now: EngineLogicFixture.now)
            #expect(result.activePods == expected)
            #expect(expected != nil || result.json["activePods"] == nil)
            #expect(result[pod: "sample-0"]?.active == active.contains("sample-0"))
            #expect(result[pod: "sample-1"]?.active == active.contains("sample-1"))
        }

        @Test("per pod: intendedState, highLevelState, ready", arguments: ["sample-0", "sample-1"])
        func perPod(intendedActive: String) throws {
            let result = PairStatusRecorder.apply(
                EngineLogicFixture.decision(active: intendedActive, podStates: ["sample-0": .down]), to: EngineLogicFixture.status([]),
                snapshot: EngineLogicFixture.snapshot([EngineLogicFixture.pod("sample-0", uid: "uid-0", ready: true)]), views: Self.views(), now: EngineLogicFixture.now)
            #expect(result.podStatus.map(\.name) == ["sample-0", "sample-1"])
            let zero = try #require(result[pod: "sample-0"])
            let one = try #require(result[pod: "sample-1"])
            #expect(zero.intendedState == (intendedActive == "sample-0" ? "Active" : "Standby"))
            #expect(one.intendedState == (intendedActive == "sample-1" ? "Active" : "Standby"))
            #expect(zero.highLevelState == "Down" && one.highLevelState == nil)
            #expect(zero.ready == true && one.ready == false)
        }

        @Test("an existing entry's highLevelState is replaced, and removed when the decision has none")
        func highLevelStateReplaced() {
            let before = EngineLogicFixture.status([EngineLogicFixture.entry("sample-0", state: .unknown), EngineLogicFixture.entry("sample-1", state: .healthy)])
            let result = PairStatusRecorder.apply(
                EngineLogicFixture.decision(podStates: ["sample-0": .healthy]), to: before, snapshot: EngineLogicFixture.snapshot(Self.pods()), views: Self.views(),
                now: EngineLogicFixture.now)
            #expect(result[pod: "sample-0"]?.highLevelState == "Healthy")
            #expect(result[pod: "sample-1"]?.highLevelState == nil)
        }

        enum ViewKind: String, Sendable {
            case unwatched, unsettled, reachable, down, otherIncarnation
        }

        struct AgentCase: Sendable, CustomStringConvertible {
            var label: String
            var priorAgent: String?
            var priorReached: Date?
            var view: ViewKind
            var agent: String
            var reached: Date?
            var uid: String?
            var description: String { label }
        }

        @Test("agent Up, Down or Unknown; lastTimeReachable written only when that changes", arguments: [
            AgentCase(label: "first reached", priorAgent: nil, priorReached: nil, view: .reachable, agent: "Up", reached: EngineLogicFixture.now, uid: "uid-0"),
            AgentCase(label: "still up: the heartbeat is not recorded", priorAgent: "Up", priorReached: EngineLogicFixture.ago(60), view: .reachable,
                      agent: "Up", reached: EngineLogicFixture.ago(60), uid: "uid-0"),
            AgentCase(label: "up to down: the last time it answered", priorAgent: "Up", priorReached: EngineLogicFixture.ago(60), view: .down,
                      agent: "Down", reached: EngineLogicFixture.ago(2), uid: "uid-0"),
            AgentCase(label: "still down", priorAgent: "Down", priorReached: EngineLogicFixture.ago(2), view: .down, agent: "Down", reached: EngineLogicFixture.ago(2),
                      uid: "uid-0"),
            AgentCase(label: "down to up", priorAgent: "Down", priorReached: EngineLogicFixture.ago(2), view: .reachable, agent: "Up", reached: EngineLogicFixture.now,
                      uid: "uid-0"),
            AgentCase(label: "not watched: unknown, the time kept", priorAgent: "Up", priorReached: EngineLogicFixture.ago(60), view: .unwatched,
                      agent: "Unknown", reached: EngineLogicFixture.ago(60), uid: "uid-0"),
            AgentCase(label: "not settled: unknown", priorAgent: "Up", priorReached: EngineLogicFixture.ago(60), view: .unsettled, agent: "Unknown",
                      reached: EngineLogicFixture.ago(60), uid: "uid-0"),
            AgentCase(label: "a view of another incarnation is ignored", priorAgent: nil, priorReached: nil, view: .otherIncarnation,
                      agent: "Unknown", reached: nil, uid: nil),
        ])
        func agent(_ test: AgentCase) throws {
            var prior = EngineLogicFixture.entry("sample-0", agent: test.priorAgent, lastTimeReachable: test.priorReached)
            if test.priorAgent != nil { prior.podStatus.uid = "uid-0" }
            let view: AgentView? = switch test.view {
            case .unwatched: nil
            case .unsettled: EngineLogicFixture.view(uid: "uid-0", settled: false, reachable: false, status: nil, lastTimeReachable: nil)
            case .reachable: EngineLogicFixture.view(uid: "uid-0", lastTimeReachable: EngineLogicFixture.now)
            case .down: EngineLogicFixture.view(uid: "uid-0", reachable: false, lastTimeReachable: EngineLogicFixture.ago(2))
            case .otherIncarnation: EngineLogicFixture.view(uid: "uid-old", lastTimeReachable: EngineLogicFixture.now)
            }
            let result = PairStatusRecorder.apply(
                EngineLogicFixture.decision(), to: EngineLogicFixture.status([prior]), snapshot: EngineLogicFixture.snapshot([EngineLogicFixture.pod("sample-0", uid: "uid-0", restarts: 1)]),
                views: view.map { ["sample-0": $0] } ?? [:], now: EngineLogicFixture.now)
            let block = try #require(result[pod: "sample-0"]).podStatus
            #expect(block.agent == test.agent)
            #expect(block.lastTimeReachable == test.reached)
            #expect(block.uid == test.uid)
            #expect(block.restarts == 1)
        }

        @Test("the same input twice yields the same status, and a pair at rest writes nothing as time passes")
        func atRest() {
            let snapshot = EngineLogicFixture.snapshot(Self.pods())
            let start = EngineLogicFixture.status([], state: "StandbyCatchup")
            let first = PairStatusRecorder.apply(
                EngineLogicFixture.decision(.normal, previous: .standbyCatchup, changed: true), to: start, snapshot: snapshot, views: Self.views(), now: EngineLogicFixture.now)
            let again = PairStatusRecorder.apply(
                EngineLogicFixture.decision(.normal, previous: .standbyCatchup, changed: true), to: first, snapshot: snapshot, views: Self.views(), now: EngineLogicFixture.now)
            #expect(again == first)
            // Ten heartbeats later: the agents answered again, nothing else moved.
            let later = EngineLogicFixture.now.addingTimeInterval(50)
            let rest = PairStatusRecorder.apply(EngineLogicFixture.decision(), to: first, snapshot: snapshot, views: Self.views(at: later), now: later)
            #expect(rest == first)
            #expect(first.highLevelState == "Normal" && first[pod: "sample-0"]?.podStatus.agent == "Up")
        }

        struct DatabaseCase: Sendable, CustomStringConvertible {
            var label: String
            var status: AgentStatus
            var duplicating = false
            var db: String
            var repAgent: String
            var description: String { label }
        }

        @Test("dbStatus and replicationStatus from the agent's status", arguments: [
            DatabaseCase(label: "no instance", status: AgentStatus(), db: "None", repAgent: "Not Running"),
            DatabaseCase(label: "loaded active", status: PairFixture.activeStatus, db: "Loaded", repAgent: "Running"),
            DatabaseCase(label: "starting", status: AgentStatus(daemonUp: true, instanceExists: true, repState: .recovering), db: "Starting",
                         repAgent: "Running"),
            DatabaseCase(label: "created, server down", status: AgentStatus(instanceExists: true, repState: .idle), db: "Created", repAgent: "Not Running"),
            DatabaseCase(label: "duplicating", status: AgentStatus(daemonUp: true, instanceExists: true, repState: .recovering), duplicating: true,
                         db: "Starting", repAgent: "Duplicating"),
            DatabaseCase(label: "lagging standby", status: AgentStatus(
                daemonUp: true, instanceExists: true, dbLoaded: true, repState: .standby, repPeerPState: "catchup", bytesBehind: 1234),
                         db: "Loaded", repAgent: "Running"),
        ])
        func database(_ test: DatabaseCase) throws {
            let view = EngineLogicFixture.view(uid: "uid-0", status: test.status, job: test.duplicating ? .running : nil)
            let result = PairStatusRecorder.apply(
                EngineLogicFixture.decision(), to: EngineLogicFixture.status([]), snapshot: EngineLogicFixture.snapshot([EngineLogicFixture.pod("sample-0", uid: "uid-0")]),
                views: ["sample-0": view], now: EngineLogicFixture.now)
            let entry = try #require(result[pod: "sample-0"])
            #expect(entry.dbStatus.db == test.db)
            #expect(entry.dbStatus.dbUpdatable == test.status.updatable)
            #expect(entry.replicationStatus.repAgent == test.repAgent)
            #expect(entry.replicationStatus.repState == test.status.repState.rawValue)
            #expect(entry.replicationStatus.repPeerPState == test.status.repPeerPState)
            #expect(entry.replicationStatus.lagBytes == test.status.bytesBehind.map { Int($0) })
        }

        @Test("an agent that is down clears dbStatus; one not yet settled leaves it; a missing pod clears it", arguments: [
            (ViewKind.down, true, true), (.unsettled, true, false), (.unwatched, true, false), (.unwatched, false, true),
        ] as [(ViewKind, Bool, Bool)])
        func databaseWhenUnreachable(view kind: ViewKind, podPresent: Bool, cleared: Bool) throws {
            var prior = EngineLogicFixture.entry("sample-0", uid: "uid-0", agent: "Up", lastTimeReachable: EngineLogicFixture.ago(60), repState: "ACTIVE", repSince: EngineLogicFixture.ago(600))
            prior.dbStatus.db = "Loaded"
            prior.dbStatus.dbUpdatable = true
            prior.replicationStatus.repAgent = "Running"
            prior.replicationStatus.lagBytes = 0
            let view: AgentView? = switch kind {
            case .down: EngineLogicFixture.view(uid: "uid-0", reachable: false, lastTimeReachable: EngineLogicFixture.ago(2))
            case .unsettled: EngineLogicFixture.view(uid: "uid-0", settled: false, reachable: false, status: nil, lastTimeReachable: nil)
            default: nil
            }
            let result = PairStatusRecorder.apply(
                EngineLogicFixture.decision(), to: EngineLogicFixture.status([prior]), snapshot: EngineLogicFixture.snapshot(podPresent ? [EngineLogicFixture.pod("sample-0", uid: "uid-0")] : []),
                views: view.map { ["sample-0": $0] } ?? [:], now: EngineLogicFixture.now)
            let entry = try #require(result[pod: "sample-0"])
            #expect(entry.dbStatus.db == (cleared ? nil : "Loaded"))
            #expect(entry.dbStatus.dbUpdatable == (cleared ? nil : true))
            #expect(entry.replicationStatus.repAgent == (cleared ? nil : "Running"))
            #expect(entry.replicationStatus.lagBytes == (cleared ? nil : 0))
            // The last known replication state and its time stay either way.
            #expect(entry.replicationStatus.repState == "ACTIVE" && entry.replicationStatus.lastTimeRepStateChanged == EngineLogicFixture.ago(600))
        }

        @Test("lastTimeRepStateChanged and lastTimeRepPeerPStateChanged move only when their state does", arguments: [
            (AgentStatus.RepState.standby, "streaming", EngineLogicFixture.ago(500), EngineLogicFixture.ago(400)),
            (.recovering, "streaming", EngineLogicFixture.now, EngineLogicFixture.ago(400)),
            (.standby, "waiting", EngineLogicFixture.ago(500), EngineLogicFixture.now),
            (.recovering, "waiting", EngineLogicFixture.now, EngineLogicFixture.now),
        ] as [(AgentStatus.RepState, String, Date, Date)])
        func repStateTimes(repState: AgentStatus.RepState, peer: String, repSince: Date, peerSince: Date) throws {
            let prior = EngineLogicFixture.entry(
                "sample-1", uid: "uid-1", agent: "Up", lastTimeReachable: EngineLogicFixture.ago(900), repState: "STANDBY", repSince: EngineLogicFixture.ago(500),
                peer: "streaming", peerSince: EngineLogicFixture.ago(400))
            var status = PairFixture.standbyStatus
            status.repState = repState
            status.repPeerPState = peer
            let result = PairStatusRecorder.apply(
                EngineLogicFixture.decision(), to: EngineLogicFixture.status([prior]), snapshot: EngineLogicFixture.snapshot(Self.pods()),
                views: ["sample-1": EngineLogicFixture.view(uid: "uid-1", status: status)], now: EngineLogicFixture.now)
            let replication = try #require(result[pod: "sample-1"]).replicationStatus
            #expect(replication.repState == repState.rawValue && replication.repPeerPState == peer)
            #expect(replication.lastTimeRepStateChanged == repSince)
            #expect(replication.lastTimeRepPeerPStateChanged == peerSince)
        }

        @Test("what the recorder writes, the observation builder reads back: unchanged states keep their times")
        func roundTrip() throws {
            let snapshot = EngineLogicFixture.snapshot(Self.pods())
            let written = PairStatusRecorder.apply(EngineLogicFixture.decision(), to: EngineLogicFixture.status([]), snapshot: snapshot, views: Self.views(), now: EngineLogicFixture.ago(30))
            let observation = try PairObservationBuilder.observe(snapshot, status: written, views: Self.views(), settings: PairSettings(), now: EngineLogicFixture.now)
            #expect(observation.active.name == "sample-0" && observation.standby.name == "sample-1")
            #expect(observation.active.exists && observation.standby.exists)
            #expect(observation.standby.repStateSince == EngineLogicFixture.ago(30) && observation.standby.peerStateSince == EngineLogicFixture.ago(30))
            #expect(observation.active.previousState == .healthy)
        }
    }

}

// MARK: - PairMetadata, PairSample, WrittenStatuses

extension EngineLogicTests {
    @Suite("metadata, sample, written statuses", .timeLimit(.minutes(5)))
    struct MetadataSampleWritten {
        static let problem = "dbSecret sample-db does not exist in namespace ns: the database cannot be created until it does"

        @Test("record sets MetadataAvailable; the same result twice is no change; turning bad returns the problem")
        func metadataRecord() throws {
            var status = TimesTenClassicStatus(json: [:])
            let good = PairMetadata(problem: nil, hasEpilog: false)
            let bad = PairMetadata(problem: Self.problem, hasEpilog: false)

            let steps: [(PairMetadata, Date, changed: Bool, message: String?, status: String, since: Date)] = [
                (good, EngineLogicFixture.ago(50), true, nil, "True", EngineLogicFixture.ago(50)),
                (good, EngineLogicFixture.ago(40), false, nil, "True", EngineLogicFixture.ago(50)),
                (bad, EngineLogicFixture.ago(30), true, Self.problem, "False", EngineLogicFixture.ago(30)),
                (bad, EngineLogicFixture.ago(20), false, nil, "False", EngineLogicFixture.ago(30)),
                (PairMetadata(problem: "dbConfigMap x does not exist", hasEpilog: true), EngineLogicFixture.ago(15), true, "dbConfigMap x does not exist", "False",
                 EngineLogicFixture.ago(30)),
                (good, EngineLogicFixture.ago(10), true, nil, "True", EngineLogicFixture.ago(10)),
                (PairMetadata(problem: nil, hasEpilog: true), EngineLogicFixture.ago(5), false, nil, "True", EngineLogicFixture.ago(10)),
            ]
            for (index, step) in steps.enumerated() {
                let before = status
                let (changed, message) = PairMetadata.record(step.0, in: &status, now: step.1)
                #expect(changed == step.changed, "step \(index)")
                #expect(message == step.message, "step \(index)")
                #expect(changed || status == before, "step \(index): no change must leave the status as it was")
                let condition = try #require(status.conditions[type: PairMetadata.condition])
                #expect(status.conditions.count == 1)
                #expect(condition.type == "MetadataAvailable")
                #expect(condition.status == step.status, "step \(index)")
                #expect(condition.reason == (step.status == "True" ? "Present" : "Missing"), "step \(index)")
                #expect(condition.message == (step.0.problem ?? "Every dbConfigMap and dbSecret is present"), "step \(index)")
                #expect(condition.lastTransitionTime == step.since, "step \(index)")
            }
        }

        @Test("record leaves other conditions alone")
        func metadataKeepsOtherConditions() {
            var status = TimesTenClassicStatus(json: [:])
            status.setCondition(Condition(type: "Valid", status: "True", reason: "Valid", lastTransitionTime: EngineLogicFixture.ago(100)))
            _ = PairMetadata.record(PairMetadata(problem: Self.problem, hasEpilog: false), in: &status, now: EngineLogicFixture.now)
            #expect(status.conditions.map(\.type).sorted() == ["MetadataAvailable", "Valid"])
            #expect(status.conditions[type: "Valid"]?.lastTransitionTime == EngineLogicFixture.ago(100))
        }

        @Test("the embedded sample is deploy/sample.yaml byte for byte")
        func embeddedSample() throws {
            let file = try Data(contentsOf: URL(fileURLWithPath: "\(packageRoot)/deploy/sample.yaml"))
            #expect(Data(PairSample.yaml.utf8) == file)
        }

        @Test("the sample's objects: a Secret, then a TimesTenClassic that names it and passes SpecValidation")
        func sampleObjects() throws {
            let objects = try PairSample.objects()
            #expect(objects.map { $0["kind"]?.stringValue } == ["Secret", "TimesTenClassic"])
            try #require(objects.count == 2)
            let secret = Secret(json: objects[0])
            #expect(secret.apiVersion == "v1")
            #expect(secret.name == "sample-db" && secret.namespace == PairSample.namespace)
            #expect(secret.json.value(at: ["data", "adminUser"]).stringValue.flatMap { Data(base64Encoded: $0) }
                .map { String(decoding: $0, as: UTF8.self) } == "admin/CHANGE-ME")
            let pair = TimesTenClassic(json: objects[1])
            #expect(pair.apiVersion == "tenops.io/v1")
            #expect(pair.name == PairSample.name && pair.namespace == PairSample.namespace)
            #expect(SpecValidation.problems(in: pair) == [])
            #expect(pair.ttspec.dbSecret == [secret.name])
            #expect(pair.ttspec.repReturnServiceAttribute == .returnTwosafe && pair.ttspec.deleteDbOnNotReadyNode == 60)
        }

        static func written(_ version: String, state: String, name: String = "sample") -> TimesTenClassic {
            var object = sampleObject(name: name)
            object.metadata.resourceVersion = version
            object.status.highLevelState = state
            return object
        }

        static func cached(_ version: String, name: String = "sample") -> TimesTenClassic { written(version, state: "Cached", name: name) }

        @Test("fresher: nothing written, the cache's object")
        func fresherNothingWritten() {
            let statuses = WrittenStatuses()
            #expect(statuses.fresher(Self.cached("1")) == Self.cached("1"))
            statuses.remember(Self.written("2", state: "Normal"), replacing: nil)
            #expect(statuses.fresher(Self.cached("1")) == Self.cached("1"), "a write without the version it replaced is not remembered")
        }

        @Test("fresher: the written object while the cache holds the version it replaced")
        func fresherReplacedVersion() {
            let statuses = WrittenStatuses()
            let write = Self.written("2", state: "Normal")
            statuses.remember(write, replacing: "1")
            #expect(statuses.fresher(Self.cached("1")) == write)
            #expect(statuses.fresher(Self.cached("1")) == write, "asked again, still the write")
            #expect(statuses.fresher(Self.cached("1", name: "other")) == Self.cached("1", name: "other"), "another pair is not affected")
        }

        @Test("fresher: a chain of our own writes supersedes every version in it")
        func fresherChain() {
            let statuses = WrittenStatuses()
            statuses.remember(Self.written("2", state: "StandbyCatchup"), replacing: "1")
            statuses.remember(Self.written("3", state: "Normal"), replacing: "2")
            let last = Self.written("4", state: "ActiveDown")
            statuses.remember(last, replacing: "3")
            for version in ["1", "2", "3"] {
                #expect(statuses.fresher(Self.cached(version)) == last, "cache at \(version)")
            }
        }

        @Test("fresher: a write on top of a version that is not our last one starts a new chain")
        func fresherBrokenChain() {
            let statuses = WrittenStatuses()
            statuses.remember(Self.written("2", state: "StandbyCatchup"), replacing: "1")
            let write = Self.written("6", state: "Normal")
            statuses.remember(write, replacing: "5")  // someone else wrote 3..5
            #expect(statuses.fresher(Self.cached("5")) == write)
            #expect(statuses.fresher(Self.cached("1")) == Self.cached("1"))
        }

        @Test("fresher: the cache's object once it moved to another version, and the write is forgotten", arguments: ["2", "7"])
        func fresherMovedOn(version: String) {
            let statuses = WrittenStatuses()
            statuses.remember(Self.written("2", state: "Normal"), replacing: "1")
            #expect(statuses.fresher(Self.cached(version)) == Self.cached(version))
            #expect(statuses.fresher(Self.cached("1")) == Self.cached("1"), "the entry is gone once the cache moved on")
        }

        @Test("forget drops the pair's write")
        func forget() {
            let statuses = WrittenStatuses()
            statuses.remember(Self.written("2", state: "Normal"), replacing: "1")
            statuses.forget(Self.cached("1").key)
            #expect(statuses.fresher(Self.cached("1")) == Self.cached("1"))
        }
    }
}
