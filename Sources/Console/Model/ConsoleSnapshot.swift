import Foundation
import KubeAPI
import OperatorEngine

/// A pair's identity across namespaces.
public struct PairKey: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var namespace: String
    public var name: String

    public init(namespace: String, name: String) {
        self.namespace = namespace
        self.name = name
    }

    public static func < (a: PairKey, b: PairKey) -> Bool { (a.namespace, a.name) < (b.namespace, b.name) }
    public var description: String { "\(namespace)/\(name)" }
}

/// Everything the console shows, as values: built from the informers' caches by
/// `ConsoleModelSource`, rendered by the views. Two equal snapshots draw the same screen, so an
/// unchanged snapshot (and an unchanged UI state) costs no redraw.
public struct ConsoleSnapshot: Sendable, Equatable {
    public var context: String
    /// nil: every namespace (`-A`).
    public var namespace: String?
    public var engine: EngineInfo
    public var api: APIHealth
    /// In the order of the informer's cache; the views sort and filter.
    public var pairs: [PairRow]
    public var nodes: [NodeRow]
    /// Per pair, newest first.
    public var events: [PairKey: [PairStatusReport.EventRow]]
    /// The cluster is `tenops local`'s: the node keys (down, partition, up) apply.
    public var isLocalCluster: Bool
    /// When this snapshot was taken; ages and timers count from it.
    public var now: Date

    public init(
        context: String, namespace: String?, engine: EngineInfo, api: APIHealth = .ok, pairs: [PairRow] = [],
        nodes: [NodeRow] = [], events: [PairKey: [PairStatusReport.EventRow]] = [:], isLocalCluster: Bool = false, now: Date
    ) {
        self.context = context
        self.namespace = namespace
        self.engine = engine
        self.api = api
        self.pairs = pairs
        self.nodes = nodes
        self.events = events
        self.isLocalCluster = isLocalCluster
        self.now = now
    }

    public func pair(_ key: PairKey) -> PairRow? { pairs.first { $0.key == key } }
}

/// Whether this console runs the engine, and who holds the leader Lease.
public struct EngineInfo: Sendable, Equatable {
    public enum Mode: String, Sendable, Equatable, CaseIterable {
        /// The engine runs in this process (it holds the Lease, or there is no Lease: `tenops local`).
        case embedded
        /// Another process runs the engine; this console only watches.
        case observe
    }

    /// What the user asked for: `auto`, `embedded` or `observe`.
    public var requested: String
    public var mode: Mode
    /// The Lease's holder identity; nil when nobody holds it or there is no Lease.
    public var leaseHolder: String?

    public init(requested: String, mode: Mode, leaseHolder: String? = nil) {
        self.requested = requested
        self.mode = mode
        self.leaseHolder = leaseHolder
    }
}

/// How the API server answers the console's watches.
public enum APIHealth: Sendable, Equatable {
    case ok
    /// Answers, with trouble (a watch that keeps restarting, slow answers).
    case degraded(String)
    case unreachable(String)
}

/// One TimesTenClassic, flattened for the views.
public struct PairRow: Sendable, Equatable {
    public var key: PairKey
    /// `status.highLevelState`; nil before the engine has written any status.
    public var state: String?
    public var previousState: String?
    public var stateSince: Date?
    public var active: String?
    public var standby: String?
    /// The standby's replication lag in bytes, as the engine last recorded it.
    public var lagBytes: Int?
    public var created: Date?
    /// `spec.ttspec.stopManaging` and `reexamine` as written, for the dialogs that change them.
    public var stopManaging: String?
    public var reexamine: String?
    /// `spec.ttspec.deleteDbOnNotReadyNode`, seconds; nil when unset.
    public var deleteDbOnNotReadyNode: Int?
    public var repReturnServiceAttribute: String?
    public var lastAction: ActionRecord?
    /// `NAME-0` then `NAME-1`; an entry exists for a pod the status or the Pod cache knows.
    public var pods: [PodRow]
    /// The object as the API server sent it, for `d` (describe).
    public var object: JSONObject

    public init(
        key: PairKey, state: String? = nil, previousState: String? = nil, stateSince: Date? = nil, active: String? = nil,
        standby: String? = nil, lagBytes: Int? = nil, created: Date? = nil, stopManaging: String? = nil, reexamine: String? = nil,
        deleteDbOnNotReadyNode: Int? = nil, repReturnServiceAttribute: String? = nil, lastAction: ActionRecord? = nil,
        pods: [PodRow] = [], object: JSONObject = [:]
    ) {
        self.key = key
        self.state = state
        self.previousState = previousState
        self.stateSince = stateSince
        self.active = active
        self.standby = standby
        self.lagBytes = lagBytes
        self.created = created
        self.stopManaging = stopManaging
        self.reexamine = reexamine
        self.deleteDbOnNotReadyNode = deleteDbOnNotReadyNode
        self.repReturnServiceAttribute = repReturnServiceAttribute
        self.lastAction = lastAction
        self.pods = pods
        self.object = object
    }
}

/// One pod of a pair: what the engine recorded in `status.podStatus[]`, with the live Pod, Node
/// and PVC from the caches.
public struct PodRow: Sendable, Equatable {
    public enum Role: String, Sendable, Equatable { case active = "ACTIVE", standby = "STANDBY", none = "-" }

    public var name: String
    public var role: Role
    /// The Pod's phase from the cache (`Running`, `Pending`, ...); nil when the Pod does not exist.
    public var phase: String?
    /// The Pod's Ready condition.
    public var ready: Bool?
    public var restarts: Int?
    /// `Up`/`Down`, as the engine recorded it.
    public var agent: String?
    /// The pod's own state as the engine recorded it (`Healthy`, `Down`, `Terminal`, ...).
    public var podState: String?
    /// The database state (`Loaded`, `Unloaded`, ...) and whether it is updatable.
    public var database: String?
    public var updatable: Bool?
    public var repState: String?
    public var repPeerState: String?
    public var lagBytes: Int?
    public var node: String?
    /// The node's Ready condition from the Node cache; nil when unknown.
    public var nodeReady: Bool?
    /// When the node turned NotReady (from the Node's condition, else from the status).
    public var nodeNotReadySince: Date?
    /// The `tt-persistent` claim, and its phase.
    public var pvc: String?
    public var pvcPhase: String?

    public init(
        name: String, role: Role = .none, phase: String? = nil, ready: Bool? = nil, restarts: Int? = nil, agent: String? = nil,
        podState: String? = nil, database: String? = nil, updatable: Bool? = nil, repState: String? = nil,
        repPeerState: String? = nil, lagBytes: Int? = nil, node: String? = nil, nodeReady: Bool? = nil,
        nodeNotReadySince: Date? = nil, pvc: String? = nil, pvcPhase: String? = nil
    ) {
        self.name = name
        self.role = role
        self.phase = phase
        self.ready = ready
        self.restarts = restarts
        self.agent = agent
        self.podState = podState
        self.database = database
        self.updatable = updatable
        self.repState = repState
        self.repPeerState = repPeerState
        self.lagBytes = lagBytes
        self.node = node
        self.nodeReady = nodeReady
        self.nodeNotReadySince = nodeNotReadySince
        self.pvc = pvc
        self.pvcPhase = pvcPhase
    }
}

/// A cluster node, for the node keys and the NotReady timers.
public struct NodeRow: Sendable, Equatable {
    public var name: String
    public var ready: Bool?
    public var notReadySince: Date?
    /// `tenops.io/simulate` on a local node: `poweroff` or `partition`.
    public var simulation: String?

    public init(name: String, ready: Bool? = nil, notReadySince: Date? = nil, simulation: String? = nil) {
        self.name = name
        self.ready = ready
        self.notReadySince = notReadySince
        self.simulation = simulation
    }
}
