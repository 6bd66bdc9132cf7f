import Foundation

/// When a standby's status stream may rest (``PairAgents/rest(_:vouchedBy:)``).
///
/// A pair at rest needs one stream, not two: an active that streams to its standby reports it
/// (`repPeerPState` "streaming", and the standby's replay lag as `bytesBehind`), and anything
/// that stops the standby stops that report. A standby that crashes, is fenced or promoted, or
/// loses its connection drops the active's sender; then the active no longer vouches and the
/// standby's stream wakes. What the active cannot see (the standby's container restarting, its
/// pod changing) comes through the informers, and any reconcile that does not find the pair at
/// rest wakes the stream too.
public enum StandbyRest {
    /// The sender state of an active whose standby replays what it sends.
    static let streaming = "streaming"

    /// True when an active's `status` vouches for its standby: it is the writable active and its
    /// standby streams from it.
    public static func vouches(_ status: AgentStatus?) -> Bool {
        guard let status else { return false }
        return status.repState == .active && status.daemonUp && status.updatable && status.repPeerPState == streaming
    }

    /// What the verdict rests on, from one reconcile.
    public struct Inputs: Sendable {
        /// The state observed, and the state decided.
        public var observed: PairState
        public var decided: PairState
        /// The decision's agent actions: any at all means the pair is not at rest.
        public var decisionActions: [PairAction]
        /// A manual action is requested or running.
        public var manualAction: Bool
        public var active: AgentView?
        public var standby: AgentView?
        /// The standby pod's tt container restart count now.
        public var standbyRestarts: Int?

        public init(
            observed: PairState, decided: PairState, decisionActions: [PairAction], manualAction: Bool, active: AgentView?,
            standby: AgentView?, standbyRestarts: Int?
        ) {
            self.observed = observed
            self.decided = decided
            self.decisionActions = decisionActions
            self.manualAction = manualAction
            self.active = active
            self.standby = standby
            self.standbyRestarts = standbyRestarts
        }
    }

    /// True when the standby's stream may rest on the active's.
    public static func mayRest(_ inputs: Inputs) -> Bool {
        guard inputs.observed == .normal, inputs.decided == .normal, inputs.decisionActions.isEmpty, !inputs.manualAction,
              let active = inputs.active, active.reachable, active.settled, vouches(active.status),
              let standby = inputs.standby, standby.reachable, standby.settled, !standby.duplicating,
              let status = standby.status, status.repState == .standby, status.daemonUp, status.repPeerPState == streaming,
              standby.restartCountAtStatus == inputs.standbyRestarts
        else { return false }
        return true
    }
}
