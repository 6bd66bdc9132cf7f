import Foundation
@testable import OperatorEngine

/// Observations for the state machine's tests. All times are relative to `PairFixture.now`.
enum PairFixture {
    static let now = Date(timeIntervalSince1970: 1_700_000_000)
    static let activeName = "sample-0"
    static let standbyName = "sample-1"

    /// Facts about one pod, named by what they amount to (whatever the pod's intended role).
    enum Kind: String, CaseIterable, CustomStringConvertible {
        /// A writable active with a connected standby.
        case activeHealthy
        /// A writable active whose standby has been disconnected for a long time.
        case activePeerFailed
        /// A streaming standby that was Healthy before.
        case standbyHealthy
        /// Freshly duplicated, not streaming yet, for 5 s.
        case standbyCatchingUp
        /// A standby that was Healthy and lost its upstream for a long time.
        case standbyDisconnected
        /// The agent answers; the server crashed (FAILED).
        case crashed
        /// The tt container has terminated (a stale active status is still on record).
        case gone
        /// The Pod object is gone.
        case podDeleted
        /// The agent has not answered for 5 s (a stale active status is on record).
        case unreachableRecent
        /// The agent has not answered for 100 s.
        case unreachableLong
        /// The operator cannot repair it.
        case terminal
        /// The agent answers; there is no database yet.
        case fresh
        /// A database that exists with neither role, its server stopped.
        case idleDatabase
        /// A fenced former active, server up, read-only.
        case fencedActive
        /// A former active fenced and shut down cleanly (a switchover's fence).
        case stoppedFencedActive
        /// A repDuplicate runs on it.
        case duplicating

        var description: String { rawValue }
    }

    static let activeStatus = AgentStatus(
        daemonUp: true, instanceExists: true, dbLoaded: true, updatable: true, repState: .active, repPeerPState: "streaming",
        bytesBehind: 0, appliedFiles: ["db.ini", "adminUser", "schema.sql", "epilog.sql"], pid: 100, repScheme: true)
    static let standbyStatus = AgentStatus(
        daemonUp: true, instanceExists: true, dbLoaded: true, updatable: false, repState: .standby, repPeerPState: "streaming",
        bytesBehind: 0, appliedFiles: ["db.ini", "adminUser", "schema.sql", "epilog.sql"], pid: 200, repScheme: true)

    static func ago(_ seconds: TimeInterval) -> Date { now.addingTimeInterval(-seconds) }

    static func pod(_ name: String, _ kind: Kind) -> PodObservation {
        var pod = PodObservation(
            name: name, createdAt: ago(3600), nodeName: "node-\(name.suffix(1))", agentReachable: true, lastTimeReachable: now,
            repStateSince: ago(1000), peerStateSince: ago(1000), previousState: .healthy)
        switch kind {
        case .activeHealthy:
            pod.status = activeStatus
            pod.ready = true
        case .activePeerFailed:
            pod.status = activeStatus
            pod.status?.repPeerPState = "none"
        case .standbyHealthy:
            pod.status = standbyStatus
        case .standbyCatchingUp:
            pod.status = standbyStatus
            pod.status?.repState = .recovering
            pod.status?.repPeerPState = "waiting"
            pod.repStateSince = ago(5)
            pod.previousState = .down
        case .standbyDisconnected:
            pod.status = standbyStatus
            pod.status?.repState = .recovering
            pod.status?.repPeerPState = "waiting"
        case .crashed:
            pod.status = AgentStatus(instanceExists: true, repState: .failed, appliedFiles: ["db.ini"], lastError: "the server exited with signal 9", repScheme: true)
            pod.previousState = .down
        case .gone:
            pod.status = activeStatus
            pod.containerTerminated = true
            pod.agentReachable = false
            pod.lastTimeReachable = ago(1)
        case .podDeleted:
            pod.exists = false
            pod.agentReachable = false
            pod.lastTimeReachable = ago(1)
        case .unreachableRecent:
            pod.status = activeStatus
            pod.agentReachable = false
            pod.lastTimeReachable = ago(5)
        case .unreachableLong:
            pod.status = activeStatus
            pod.agentReachable = false
            pod.lastTimeReachable = ago(100)
        case .terminal:
            pod.status = AgentStatus()
            pod.terminalReason = "createDb refused schema.sql"
        case .fresh:
            pod.status = AgentStatus()
            pod.previousState = nil
        case .idleDatabase:
            pod.status = AgentStatus(instanceExists: true, repState: .idle, repScheme: true)
        case .fencedActive:
            pod.status = activeStatus
            pod.status?.updatable = false
            pod.status?.repState = .idle
            pod.status?.fenced = true
        case .stoppedFencedActive:
            pod.status = activeStatus
            pod.status?.updatable = false
            pod.status?.daemonUp = false
            pod.status?.repState = .idle
            pod.status?.fenced = true
        case .duplicating:
            pod.status = AgentStatus(instanceExists: true, repState: .recovering)
            pod.duplicating = true
        }
        return pod
    }

    static func observation(
        _ state: PairState, _ active: Kind, _ standby: Kind, previous: PairState? = nil, settings: PairSettings = PairSettings(),
        stateSince: Date? = nil, stopManaging: Bool = false, reexamine: Bool = false
    ) -> PairObservation {
        PairObservation(
            state: state, previousState: previous, stateSince: stateSince ?? ago(10), active: pod(activeName, active),
            standby: pod(standbyName, standby), settings: settings, now: now,
            edges: EdgeTriggers(stopManagingChanged: stopManaging, reexamineChanged: reexamine))
    }
}
