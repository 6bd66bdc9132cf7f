import Foundation

/// The states of a pair (`status.highLevelState`), with Oracle's names.
public enum PairState: String, Sendable, CaseIterable {
    case initializing = "Initializing"
    case normal = "Normal"
    case activeDown = "ActiveDown"
    case activeTakeover = "ActiveTakeover"
    case standbyDown = "StandbyDown"
    case standbyStarting = "StandbyStarting"
    case standbyCatchup = "StandbyCatchup"
    case bothDown = "BothDown"
    case waitingForActive = "WaitingForActive"
    case configuringActive = "ConfiguringActive"
    case reexamine = "Reexamine"
    case manualInterventionRequired = "ManualInterventionRequired"
    case failed = "Failed"

    /// The state `status.highLevelState` records: none yet is Initializing, and a value this
    /// version does not know is Reexamine (look at the pods again rather than guess).
    public init(statusValue: String?) {
        guard let statusValue else {
            self = .initializing
            return
        }
        self = PairState(rawValue: statusValue) ?? .reexamine
    }
}

/// The states of one pod (`status.podStatus[].highLevelState`), with Oracle's names.
public enum PodState: String, Sendable, CaseIterable {
    /// Pod and database are fine for the pod's role.
    case healthy = "Healthy"
    /// The pod or its database is not working.
    case down = "Down"
    /// A healthy active whose replication to its peer has stopped or failed: the peer must be
    /// re-duplicated.
    case otherDown = "OtherDown"
    /// Cannot tell yet: the agent is unreachable, or the replication state is off, for less
    /// than its timeout.
    case unknown = "Unknown"
    /// A standby that has finished duplicating and is applying the backlog.
    case catchingUp = "CatchingUp"
    /// The operator cannot repair this pod.
    case terminal = "Terminal"
    /// Reexamine only: a healthy active, a healthy standby, a database with neither role.
    case healthyActive = "HealthyActive"
    case healthyStandby = "HealthyStandby"
    case healthyIdle = "HealthyIdle"

    /// A writable active, whether or not its peer is fine.
    public var isActiveUp: Bool { self == .healthy || self == .otherDown }
}

/// The role the operator intends for a pod (`podStatus[].intendedState`).
public enum PodRole: String, Sendable, CaseIterable {
    case active = "Active"
    case standby = "Standby"
}

/// The spec's settings that decisions depend on. Times are in seconds.
public struct PairSettings: Sendable, Equatable {
    public var bothDownBehavior: BothDownBehavior
    /// repReturnServiceAttribute is RETURN TWOSAFE.
    public var twoSafe: Bool
    /// How long an unreachable agent leaves its pod Unknown before it counts as Down.
    public var unreachableTimeout: TimeInterval
    /// How long a bad replication state may last before the pod counts as Down.
    public var repStateTimeout: TimeInterval
    /// Once a pod's node has been NotReady this long, its pod and PVCs are deleted. nil: never.
    public var deleteDbOnNotReadyNode: TimeInterval?
    /// The metadata holds an epilog.sql, which the first active must apply.
    public var hasEpilog: Bool

    public init(
        bothDownBehavior: BothDownBehavior = .best, twoSafe: Bool = false, unreachableTimeout: TimeInterval = 30,
        repStateTimeout: TimeInterval = 30, deleteDbOnNotReadyNode: TimeInterval? = nil, hasEpilog: Bool = false
    ) {
        self.bothDownBehavior = bothDownBehavior
        self.twoSafe = twoSafe
        self.unreachableTimeout = unreachableTimeout
        self.repStateTimeout = repStateTimeout
        self.deleteDbOnNotReadyNode = deleteDbOnNotReadyNode
        self.hasEpilog = hasEpilog
    }
}

/// What the reconciler knows of one pod: the raw facts from the Pod, its Node, the agent and
/// the last `.status`. The classifier derives the pod's state from these.
public struct PodObservation: Sendable, Equatable {
    public var name: String
    /// The pod incarnation the facts describe exists. Set false when the Pod is gone, or was
    /// replaced by a new one (another uid) whose agent has not answered yet.
    public var exists: Bool
    /// The Pod has a deletionTimestamp (its containers may still run during the grace period).
    public var deleting: Bool
    /// The `tt` container is seen terminated: its processes, the database's included, are gone.
    public var containerTerminated: Bool
    /// The Pod's Ready condition.
    public var ready: Bool
    public var createdAt: Date?
    public var nodeName: String?
    /// Since when the pod's node is NotReady (or Unknown); nil while it is Ready.
    public var nodeNotReadySince: Date?
    /// The last call to the agent (status read or stream) succeeded.
    public var agentReachable: Bool
    /// `podStatus.lastTimeReachable`: when the agent last answered. Unknown counts from here
    /// (from `createdAt` when it never answered).
    public var lastTimeReachable: Date?
    /// The agent's last status; used only while the agent is reachable.
    public var status: AgentStatus?
    /// `replicationStatus.lastTimeRepStateChanged`. nil counts as long ago.
    public var repStateSince: Date?
    /// When `repPeerPState` last changed. nil counts as long ago.
    public var peerStateSince: Date?
    /// A repDuplicate job is running on this pod.
    public var duplicating: Bool
    /// Why the operator cannot repair this pod (e.g. createDb refused the metadata); nil when it can.
    public var terminalReason: String?
    /// The pod state written by the last reconcile (`podStatus[].highLevelState`).
    public var previousState: PodState?

    public init(
        name: String, exists: Bool = true, deleting: Bool = false, containerTerminated: Bool = false, ready: Bool = false,
        createdAt: Date? = nil, nodeName: String? = nil, nodeNotReadySince: Date? = nil, agentReachable: Bool = false,
        lastTimeReachable: Date? = nil, status: AgentStatus? = nil, repStateSince: Date? = nil, peerStateSince: Date? = nil,
        duplicating: Bool = false, terminalReason: String? = nil, previousState: PodState? = nil
    ) {
        self.name = name
        self.exists = exists
        self.deleting = deleting
        self.containerTerminated = containerTerminated
        self.ready = ready
        self.createdAt = createdAt
        self.nodeName = nodeName
        self.nodeNotReadySince = nodeNotReadySince
        self.agentReachable = agentReachable
        self.lastTimeReachable = lastTimeReachable
        self.status = status
        self.repStateSince = repStateSince
        self.peerStateSince = peerStateSince
        self.duplicating = duplicating
        self.terminalReason = terminalReason
        self.previousState = previousState
    }

    /// The pod's processes are known to be gone: its database cannot accept writes.
    public var confirmedGone: Bool { !exists || containerTerminated }

    /// The agent answers now and its status is at hand.
    public var reachableStatus: AgentStatus? {
        guard exists, !containerTerminated, agentReachable else { return nil }
        return status
    }
}

/// Everything one decision rests on. Time comes in as `now`: the machine reads no clock.
public struct PairObservation: Sendable, Equatable {
    /// `status.highLevelState` (see `PairState(statusValue:)`).
    public var state: PairState
    /// `status.prevHighLevelState`: the state before the current one.
    public var previousState: PairState?
    /// `status.lastHighLevelStateSwitch`.
    public var stateSince: Date?
    /// The pod the status names as the intended active, and the intended standby.
    public var active: PodObservation
    public var standby: PodObservation
    public var settings: PairSettings
    public var now: Date
    /// Which of stopManaging and reexamine changed since the engine last recorded them.
    public var edges: EdgeTriggers

    public init(
        state: PairState, previousState: PairState? = nil, stateSince: Date? = nil, active: PodObservation,
        standby: PodObservation, settings: PairSettings = PairSettings(), now: Date,
        edges: EdgeTriggers = EdgeTriggers(stopManagingChanged: false, reexamineChanged: false)
    ) {
        self.state = state
        self.previousState = previousState
        self.stateSince = stateSince
        self.active = active
        self.standby = standby
        self.settings = settings
        self.now = now
        self.edges = edges
    }

    /// The observation of the pod named `name`.
    public func pod(_ name: String) -> PodObservation? {
        name == active.name ? active : name == standby.name ? standby : nil
    }
}

/// One thing for the reconciler to do. Each names its pod; each is idempotent, so running a
/// decision's actions again after a crash does no harm.
public enum PairAction: Sendable, Equatable, CustomStringConvertible {
    /// createDb: create the instance and database, apply db.ini, adminUser and schema.sql, and
    /// start it as an active.
    case createDb(pod: String)
    /// createRepScheme: allow the pair's pods to replicate from this database.
    case createRepScheme(pod: String, twoSafe: Bool)
    /// createRepEpilog: run epilog.sql once.
    case createRepEpilog(pod: String)
    /// repDeactivate: fence the database; it refuses writes from now on.
    case fence(pod: String)
    /// repDeactivate with `stop`: fence the database and shut its server down cleanly once the
    /// standby has received everything it wrote. A switchover's fence: the promoted standby then
    /// continues this database's history, which follows it as a standby with nothing to rewind.
    case fenceAndStop(pod: String)
    /// repStateSetActive: make the database the active (starting its server first if needed).
    case promote(pod: String)
    /// repDuplicate: throw this pod's database away and replace it with a copy of `from`'s,
    /// started as a streaming standby.
    case duplicate(pod: String, from: String)
    /// A manual reduplicate: like `duplicate`, but always a whole copy (never pg_rewind).
    case copyWhole(pod: String, from: String)
    /// setActive: make the pod Ready (only the active is).
    case setActive(pod: String)
    /// clearActive: make the pod not Ready.
    case clearActive(pod: String)
    /// deleteDbOnNotReadyNode: delete the pod and its PVCs so that it comes back on a healthy node.
    case deletePodAndPVCs(pod: String)
    /// `GET /v1/status`: a fresh reading of the pod's status, for a step that waits on a
    /// position which the status stream reports only at the agent's interval (a switchover's
    /// catchup). Changes nothing.
    case readStatus(pod: String)

    public var pod: String {
        switch self {
        case .createDb(let pod), .createRepScheme(let pod, _), .createRepEpilog(let pod), .fence(let pod), .fenceAndStop(let pod), .promote(let pod),
             .duplicate(let pod, _), .copyWhole(let pod, _), .setActive(let pod), .clearActive(let pod), .deletePodAndPVCs(let pod),
             .readStatus(let pod):
            pod
        }
    }

    /// Oracle's agent verb, for the actions the agent runs.
    public var verb: String? {
        switch self {
        case .createDb: "createDb"
        case .createRepScheme: "createRepScheme"
        case .createRepEpilog: "createRepEpilog"
        case .fence, .fenceAndStop: "repDeactivate"
        case .promote: "repStateSetActive"
        case .duplicate, .copyWhole: "repDuplicate"
        case .setActive: "setActive"
        case .clearActive: "clearActive"
        case .deletePodAndPVCs, .readStatus: nil
        }
    }

    /// The action can leave the pod's database accepting writes.
    public var makesWritable: Bool {
        switch self {
        case .createDb, .promote: true
        default: false
        }
    }

    public var description: String {
        switch self {
        case .duplicate(let pod, let from): "repDuplicate \(pod) from \(from)"
        case .copyWhole(let pod, let from): "repDuplicate \(pod) from \(from) (a whole copy)"
        case .createRepScheme(let pod, let twoSafe): "createRepScheme \(pod)\(twoSafe ? " (RETURN TWOSAFE)" : "")"
        case .deletePodAndPVCs(let pod): "delete pod \(pod) and its PVCs"
        case .readStatus(let pod): "read the status of \(pod)"
        default: "\(verb ?? "") \(pod)"
        }
    }
}

/// An Event on the TimesTenClassic, with Oracle's reasons.
public struct PairEvent: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case normal = "Normal"
        case warning = "Warning"
    }

    /// Oracle's reasons.
    public enum Reason {
        public static let stateChange = "StateChange"
        public static let info = "Info"
        public static let error = "Error"
        public static let create = "Create"
        public static let failedCreate = "FailedCreate"
        public static let taskFailed = "TaskFailed"
    }

    public var kind: Kind
    public var reason: String
    public var message: String

    public init(_ kind: Kind, reason: String, _ message: String) {
        self.kind = kind
        self.reason = reason
        self.message = message
    }

    public var description: String { "\(kind.rawValue) \(reason): \(message)" }
}

/// The `.status` fields a decision sets.
public struct PairStatusUpdate: Sendable, Equatable {
    /// `highLevelState`.
    public var state: PairState
    /// `prevHighLevelState` after the decision (the old state when it changed).
    public var previousState: PairState?
    /// The state changed: `lastHighLevelStateSwitch` becomes now.
    public var stateChanged: Bool
    /// The pods by intended role (`podStatus[].intendedState`). They differ from the
    /// observation's after a FAILOVER or a choice made in BothDown or Reexamine.
    public var intendedActive: String
    public var intendedStandby: String
    /// The intended roles were swapped by this decision (FAILOVER, or BothDown or Reexamine
    /// choosing the other database).
    public var rolesSwapped: Bool
    /// `activePods`: the pods whose database accepts writes now.
    public var activePods: [String]
    /// `podStatus[].highLevelState` of each pod.
    public var podStates: [String: PodState]
}

/// The output of one decision.
///
/// How to carry it out: write `status` first, then emit `events`, then run `actions` in order,
/// stopping at the first that fails (the next reconcile decides again from what it then sees).
/// Writing the status first is what makes a failover resumable: the swap of intended roles is on
/// record before the standby is promoted, so a new leader that finds an intended active still
/// in standby role promotes it.
public struct PairDecision: Sendable, Equatable {
    public var status: PairStatusUpdate
    public var actions: [PairAction]
    public var events: [PairEvent]
    /// Why the pair is where it is, or what it waits for (for logs and the console).
    public var note: String
    /// Decide again at this time even if nothing changes (a timeout falls due).
    public var recheckAt: Date?

    public var state: PairState { status.state }
}
