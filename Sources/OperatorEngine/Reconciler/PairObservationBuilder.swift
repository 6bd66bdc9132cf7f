import Foundation
import KubeAPI

/// Turns what the informers and the agents' streams hold into the `PairObservation` the state
/// machine decides on. Pure: the snapshot, the status to build on, the agents' views and the
/// time come in; nothing is read or written.
public enum PairObservationBuilder {
    /// Why no decision can be made yet.
    public enum Wait: Error, Sendable, Equatable, CustomStringConvertible {
        /// The engine has not yet tried to reach this pod's agent (it just started, or the pod
        /// is new): judging it now would take the engine's ignorance for the agent's silence.
        case agentNotSettled(pod: String)

        public var description: String {
            switch self {
            case .agentNotSettled(let pod): "waiting for the first answer (or refusal) of \(pod)'s agent"
            }
        }
    }

    /// How long a readiness the engine set stands in for the Pod's Ready condition (the probe
    /// runs every second).
    public static let readinessGrace: TimeInterval = 3

    /// The settings decisions depend on, from the spec. `hasEpilog`: the metadata holds an
    /// epilog.sql (known only while Initializing; false otherwise).
    public static func settings(_ spec: TTSpec, hasEpilog: Bool) -> PairSettings {
        PairSettings(
            bothDownBehavior: spec.bothDownBehavior, twoSafe: spec.repReturnServiceAttribute == .returnTwosafe,
            unreachableTimeout: TimeInterval(spec.unreachableTimeout), repStateTimeout: TimeInterval(spec.repStateTimeout),
            deleteDbOnNotReadyNode: spec.deleteDbOnNotReadyNode.map(TimeInterval.init), hasEpilog: hasEpilog)
    }

    /// The observation; the intended roles come from `status` (`NAME-0` active when none is recorded).
    public static func observe(
        _ snapshot: PairSnapshot, status: TimesTenClassicStatus, views: [String: AgentView], settings: PairSettings, now: Date
    ) throws(Wait) -> PairObservation {
        let names = snapshot.names
        let recordedActive = status.podStatus.first { $0.intendedState == PodRole.active.rawValue }?.name
        let activeName = recordedActive.flatMap { names.pods.contains($0) ? $0 : nil } ?? names.pod(0)
        let standbyName = names.pods.first { $0 != activeName } ?? names.pod(1)
        let active = try pod(activeName, snapshot: snapshot, entry: status[pod: activeName], view: views[activeName], now: now)
        let standby = try pod(standbyName, snapshot: snapshot, entry: status[pod: standbyName], view: views[standbyName], now: now)
        return PairObservation(
            state: PairState(statusValue: status.highLevelState),
            previousState: status.prevHighLevelState.map { PairState(statusValue: $0) },
            stateSince: status.lastHighLevelStateSwitch, active: active, standby: standby, settings: settings, now: now,
            edges: EdgeTriggers(stopManagingChanged: false, reexamineChanged: false))
    }

    /// One pod's facts. A pod whose agent the engine has never reached in this incarnation, and
    /// whose incarnation the status does not record as reached before, counts as gone: its
    /// database is not running, whatever is on its volume.
    static func pod(_ name: String, snapshot: PairSnapshot, entry: PairPodStatus?, view: AgentView?, now: Date) throws(Wait) -> PodObservation {
        var observation = PodObservation(name: name, exists: false)
        observation.previousState = entry?.highLevelState.flatMap(PodState.init(rawValue:))
        guard let pod = snapshot.pods[name], let uid = pod.uid else { return observation }
        let tt = pod.status.containerStatuses.first { $0.name == "tt" }
        observation.deleting = pod.metadata.deletionTimestamp != nil
        observation.ready = pod.isReady
        observation.createdAt = pod.metadata.creationTimestamp
        observation.nodeName = pod.spec.nodeName
        observation.nodeNotReadySince = entry?.node.notReadySince
        let phase = pod.status.phase
        let currentView = view?.podUID == uid ? view : nil
        observation.containerTerminated = phase == "Failed" || phase == "Succeeded" || tt.map { status in
            status.state["terminated"] != nil || (status.state["waiting"] != nil && status.restartCount > 0)
                || (currentView.map { !$0.reachable && ($0.restartCountAtStatus.map { status.restartCount > $0 } ?? false) } ?? false)
        } ?? false

        let reachedBefore = entry?.podStatus.uid == uid
        guard let view = currentView else {
            // Not watched yet: the pod has no IP, or the engine has not got to it.
            observation.exists = reachedBefore && !observation.containerTerminated
            if observation.exists, pod.status.podIP != nil { throw .agentNotSettled(pod: name) }
            return observation
        }
        guard view.settled || observation.containerTerminated || observation.deleting else { throw .agentNotSettled(pod: name) }
        observation.exists = view.lastTimeReachable != nil || reachedBefore
        observation.agentReachable = view.reachable
        observation.status = view.status
        observation.lastTimeReachable = view.lastTimeReachable ?? view.watchingSince
        observation.duplicating = view.duplicating
        if let set = view.readinessSet, let at = view.readinessSetAt, now.timeIntervalSince(at) < readinessGrace {
            observation.ready = set
        }
        observation.terminalReason = view.terminalReason
        if let status = view.status {
            let replication = entry?.replicationStatus
            observation.repStateSince = replication?.repState == status.repState.rawValue ? replication?.lastTimeRepStateChanged : now
            observation.peerStateSince = replication?.repPeerPState == status.repPeerPState ? replication?.lastTimeRepPeerPStateChanged : now
        }
        return observation
    }
}
