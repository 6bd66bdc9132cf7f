import Foundation
import KubeAPI

/// `.status` of a TimesTenClassic, with Oracle's field names. The engine writes it; a new leader
/// carries on from it alone.
///
/// States are kept as the strings Oracle uses (`Normal`, `ActiveDown`, `Healthy`, `Down`, ...):
/// their meanings and transitions belong to `PairStateMachine`. Times are RFC 3339 in UTC with
/// microseconds (Oracle writes epoch seconds). Fields TenOps adds: `podStatus[].node`,
/// `podStatus[].replicationStatus.lagBytes`, `lastAction` and `conditions`.
public struct TimesTenClassicStatus: JSONBacked {
    public var json: JSONObject
    public init(json: JSONObject) { self.json = json }

    public var highLevelState: String? { get { get("highLevelState") } set { set("highLevelState", newValue) } }
    public var prevHighLevelState: String? { get { get("prevHighLevelState") } set { set("prevHighLevelState", newValue) } }
    public var lastHighLevelStateSwitch: Date? { get { get("lastHighLevelStateSwitch") } set { set("lastHighLevelStateSwitch", newValue) } }
    /// The active pod's name, as `kubectl get ttc` prints it.
    public var activePods: String? { get { get("activePods") } set { set("activePods", newValue) } }
    public var observedGeneration: Int? { get { get("observedGeneration") } set { set("observedGeneration", newValue) } }
    public var lastReconcile: Date? { get { get("lastReconcile") } set { set("lastReconcile", newValue) } }
    /// The `stopManaging` value the engine last acted on.
    public var prevStopManaging: String? { get { get("prevStopManaging") } set { set("prevStopManaging", newValue) } }
    /// The `reexamine` value the engine last acted on.
    public var prevReexamine: String? { get { get("prevReexamine") } set { set("prevReexamine", newValue) } }
    /// One entry per pod, `NAME-0` and `NAME-1`.
    public var podStatus: [PairPodStatus] { get { views("podStatus") } set { setViews("podStatus", newValue) } }
    public var lastAction: ActionRecord? {
        get { self[field: "lastAction"].objectValue.map(ActionRecord.init(json:)) }
        set { self[field: "lastAction"] = newValue.map { .object($0.json) } ?? .null }
    }
    /// TenOps: the last action id refused because another action was running; it never starts.
    public var rejectedActionId: String? { get { get("rejectedActionId") } set { set("rejectedActionId", newValue) } }
    /// Conditions such as `SpecValid`, for what a person must fix.
    public var conditions: [Condition] { get { views("conditions") } set { setViews("conditions", newValue) } }

    /// Moves to `state`, keeping the previous one and the time of the switch. No change when
    /// the pair is already in `state`.
    public mutating func switchState(to state: String, at time: Date) {
        guard highLevelState != state else { return }
        prevHighLevelState = highLevelState
        highLevelState = state
        lastHighLevelStateSwitch = time
    }

    /// The entry of pod `name`; setting it replaces that entry or appends it, in name order.
    public subscript(pod name: String) -> PairPodStatus? {
        get { podStatus.first { $0.name == name } }
        set {
            var entries = podStatus.filter { $0.name != name }
            if var entry = newValue {
                entry.name = name
                entries.append(entry)
                entries.sort { $0.name < $1.name }
            }
            podStatus = entries
        }
    }

    /// Records the edge-triggered values of `spec` as seen, so that only their next change counts.
    public mutating func recordEdgeTriggers(of spec: TTSpec) {
        prevStopManaging = spec.stopManaging
        prevReexamine = spec.reexamine
    }

    /// Sets the condition of `condition.type`, keeping its lastTransitionTime while its status holds.
    public mutating func setCondition(_ condition: Condition) {
        var updated = condition
        if let old = conditions[type: condition.type], old.status == condition.status, let since = old.lastTransitionTime {
            updated.lastTransitionTime = since
        }
        conditions = conditions.filter { $0.type != condition.type } + [updated]
    }
}

/// Which edge-triggered fields changed since the engine last recorded them (Oracle: any change of
/// value counts, whatever the new value). Before the first record, nothing counts as a change:
/// an object created with `stopManaging` set is managed until that value changes.
public struct EdgeTriggers: Sendable, Equatable {
    public var stopManagingChanged: Bool
    public var reexamineChanged: Bool

    public init(stopManagingChanged: Bool, reexamineChanged: Bool) {
        self.stopManagingChanged = stopManagingChanged
        self.reexamineChanged = reexamineChanged
    }

    public init(spec: TTSpec, status: TimesTenClassicStatus) {
        let recorded = status.highLevelState != nil
        func changed(_ now: String?, _ before: String?) -> Bool { recorded && (now ?? "") != (before ?? "") }
        self.init(stopManagingChanged: changed(spec.stopManaging, status.prevStopManaging),
                  reexamineChanged: changed(spec.reexamine, status.prevReexamine))
    }

    public var any: Bool { stopManagingChanged || reexamineChanged }
}

/// One `podStatus[]` entry.
public struct PairPodStatus: JSONBacked {
    public var json: JSONObject
    public init(json: JSONObject) { self.json = json }

    public init(name: String) {
        self.init(json: [:])
        self.name = name
    }

    /// Shadows `JSONBacked.name` (metadata.name), which an entry does not have.
    public var name: String { get { get("name") ?? "" } set { set("name", newValue) } }
    /// Active or Standby.
    public var intendedState: String? { get { get("intendedState") } set { set("intendedState", newValue) } }
    /// The pod's state: Healthy, Down, OtherDown, Unknown, CatchingUp, Terminal, ...
    public var highLevelState: String? { get { get("highLevelState") } set { set("highLevelState", newValue) } }
    public var ready: Bool? { get { get("ready") } set { set("ready", newValue) } }
    public var active: Bool? { get { get("active") } set { set("active", newValue) } }
    public var podStatus: PodBlock { get { view("podStatus") } set { setView("podStatus", newValue) } }
    public var dbStatus: DatabaseBlock { get { view("dbStatus") } set { setView("dbStatus", newValue) } }
    public var replicationStatus: ReplicationBlock { get { view("replicationStatus") } set { setView("replicationStatus", newValue) } }
    /// TenOps: the pod's node.
    public var node: NodeBlock { get { view("node") } set { setView("node", newValue) } }

    /// `podStatus{}`: the pod as Kubernetes and the agent show it.
    public struct PodBlock: JSONBacked {
        public var json: JSONObject
        public init(json: JSONObject) { self.json = json }

        public var podPhase: String? { get { get("podPhase") } set { set("podPhase", newValue) } }
        public var podIP: String? { get { get("podIP") } set { set("podIP", newValue) } }
        /// Up, Down or Unknown.
        public var agent: String? { get { get("agent") } set { set("agent", newValue) } }
        public var lastTimeReachable: Date? { get { get("lastTimeReachable") } set { set("lastTimeReachable", newValue) } }
        /// TenOps: the pod incarnation whose agent the engine has reached. A pod of another uid
        /// whose agent has not answered yet holds no running database.
        public var uid: String? { get { get("uid") } set { set("uid", newValue) } }
        /// TenOps: the tt container's restart count.
        public var restarts: Int? { get { get("restarts") } set { set("restarts", newValue) } }
    }

    /// `dbStatus{}`.
    public struct DatabaseBlock: JSONBacked {
        public var json: JSONObject
        public init(json: JSONObject) { self.json = json }

        /// What the agent says of the database (e.g. None, Created, Loaded).
        public var db: String? { get { get("db") } set { set("db", newValue) } }
        public var dbUpdatable: Bool? { get { get("dbUpdatable") } set { set("dbUpdatable", newValue) } }
    }

    /// `replicationStatus{}`.
    public struct ReplicationBlock: JSONBacked {
        public var json: JSONObject
        public init(json: JSONObject) { self.json = json }

        public var repAgent: String? { get { get("repAgent") } set { set("repAgent", newValue) } }
        /// ACTIVE, STANDBY, IDLE, FAILED or RECOVERING.
        public var repState: String? { get { get("repState") } set { set("repState", newValue) } }
        public var repPeerPState: String? { get { get("repPeerPState") } set { set("repPeerPState", newValue) } }
        public var lastTimeRepStateChanged: Date? {
            get { get("lastTimeRepStateChanged") }
            set { set("lastTimeRepStateChanged", newValue) }
        }
        /// TenOps: when `repPeerPState` last changed.
        public var lastTimeRepPeerPStateChanged: Date? {
            get { get("lastTimeRepPeerPStateChanged") }
            set { set("lastTimeRepPeerPStateChanged", newValue) }
        }
        /// TenOps: bytes the standby is behind.
        public var lagBytes: Int? { get { get("lagBytes") } set { set("lagBytes", newValue) } }
    }

    /// `node{}` (TenOps): where the pod runs and since when its node is not Ready.
    public struct NodeBlock: JSONBacked {
        public var json: JSONObject
        public init(json: JSONObject) { self.json = json }

        /// The node's name; "" when unknown. Not optional, so that it shadows `JSONBacked.name`
        /// (metadata.name) in every expression, as `OwnerReference.name` does.
        public var name: String { get { get("name") ?? "" } set { set("name", newValue.isEmpty ? nil : newValue) } }
        /// The node's Ready condition: True, False or Unknown.
        public var ready: String? { get { get("ready") } set { set("ready", newValue) } }
        /// When the node stopped being Ready; nil while it is Ready. `deleteDbOnNotReadyNode` counts from here.
        public var notReadySince: Date? { get { get("notReadySince") } set { set("notReadySince", newValue) } }
    }
}

/// `status.lastAction`: the result of the last manual action (annotation `tenops.io/action`).
public struct ActionRecord: JSONBacked {
    public var json: JSONObject
    public init(json: JSONObject) { self.json = json }

    public var id: String { get { get("id") ?? "" } set { set("id", newValue) } }
    /// switchover, failover or reduplicate.
    public var verb: String? { get { get("verb") } set { set("verb", newValue) } }
    public var pod: String? { get { get("pod") } set { set("pod", newValue) } }
    /// Running, Succeeded or Failed.
    public var state: String? { get { get("state") } set { set("state", newValue) } }
    public var message: String? { get { get("message") } set { set("message", newValue) } }
    public var startTime: Date? { get { get("startTime") } set { set("startTime", newValue) } }
    public var endTime: Date? { get { get("endTime") } set { set("endTime", newValue) } }
    /// TenOps: the step a running action is at (fencing, catchup, promoting, reattaching, copying).
    public var phase: String? { get { get("phase") } set { set("phase", newValue) } }
    /// TenOps: how a database was re-attached or copied: rewind or basebackup.
    public var method: String? { get { get("method") } set { set("method", newValue) } }
    /// TenOps: a copy's progress.
    public var bytesDone: Int? { get { get("bytesDone") } set { set("bytesDone", newValue) } }
    public var bytesTotal: Int? { get { get("bytesTotal") } set { set("bytesTotal", newValue) } }

    public init(id: String) {
        self.init(json: [:])
        self.id = id
    }

    /// Running, not yet Succeeded or Failed.
    public var isRunning: Bool { state == ActionState.running }
}

/// The states of a manual action.
public enum ActionState {
    public static let running = "Running"
    public static let succeeded = "Succeeded"
    public static let failed = "Failed"
}
