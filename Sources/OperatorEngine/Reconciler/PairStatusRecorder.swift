import Foundation
import KubeAPI

/// Writes a decision and what the agents report into `.status`. Pure.
///
/// Only facts that matter change the status, so a pair at rest causes no writes: the time an
/// agent was last reached is recorded when its reachability changes, not with every heartbeat.
public enum PairStatusRecorder {
    public static func apply(
        _ decision: PairDecision, to status: TimesTenClassicStatus, snapshot: PairSnapshot, views: [String: AgentView], now: Date
    ) -> TimesTenClassicStatus {
        var status = status
        let update = decision.status
        if update.stateChanged {
            status.switchState(to: update.state.rawValue, at: now)
            status.prevHighLevelState = update.previousState?.rawValue ?? status.prevHighLevelState
        }
        status.activePods = update.activePods.isEmpty ? nil : update.activePods.joined(separator: ",")
        for name in snapshot.names.pods {
            var entry = status[pod: name] ?? PairPodStatus(name: name)
            let role: PodRole = name == update.intendedActive ? .active : .standby
            entry.intendedState = role.rawValue
            entry.highLevelState = update.podStates[name]?.rawValue
            let pod = snapshot.pods[name]
            entry.ready = pod?.isReady ?? false
            let view = views[name].flatMap { view in pod?.uid == view.podUID ? view : nil }
            record(view, pod: pod, into: &entry, now: now)
            entry.active = update.activePods.contains(name)
            status[pod: name] = entry
        }
        return status
    }

    /// The agent's part of one pod's entry.
    static func record(_ view: AgentView?, pod: Pod?, into entry: inout PairPodStatus, now: Date) {
        var podBlock = entry.podStatus
        let restarts = pod?.status.containerStatuses.first { $0.name == "tt" }?.restartCount
        if podBlock.restarts != restarts { podBlock.restarts = restarts }
        let agent: String
        if let view, view.reachable {
            agent = "Up"
            podBlock.uid = view.podUID
        } else {
            agent = view?.settled == true ? "Down" : "Unknown"
        }
        if podBlock.agent != agent {
            podBlock.agent = agent
            podBlock.lastTimeReachable = view?.lastTimeReachable ?? podBlock.lastTimeReachable
        }
        entry.podStatus = podBlock

        var database = entry.dbStatus
        var replication = entry.replicationStatus
        if let view, view.reachable, let status = view.status {
            database.db = !status.instanceExists ? "None" : status.dbLoaded ? "Loaded" : status.daemonUp ? "Starting" : "Created"
            database.dbUpdatable = status.updatable
            replication.repAgent = view.duplicating ? "Duplicating" : status.daemonUp ? "Running" : "Not Running"
            if replication.repState != status.repState.rawValue {
                replication.repState = status.repState.rawValue
                replication.lastTimeRepStateChanged = now
            }
            if replication.repPeerPState != status.repPeerPState {
                replication.repPeerPState = status.repPeerPState
                replication.lastTimeRepPeerPStateChanged = now
            }
            replication.lagBytes = status.bytesBehind.map { Int($0) }
        } else if view?.settled == true || pod == nil {
            database.db = nil
            database.dbUpdatable = nil
            replication.repAgent = nil
            replication.lagBytes = nil
        }
        entry.dbStatus = database
        entry.replicationStatus = replication
    }
}
