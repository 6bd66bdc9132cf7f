import Foundation
import KubeAPI
import OperatorEngine

/// What the informers hold at one moment: the input of `SnapshotBuilder`.
public struct ClusterContents: Sendable {
    public var pairs: [TimesTenClassic]
    public var pods: [Pod]
    public var nodes: [KubeAPI.Node]
    public var claims: [PersistentVolumeClaim]
    public var events: [CoreEvent]
    /// The leader Lease, when it exists.
    public var lease: Lease?

    public init(pairs: [TimesTenClassic] = [], pods: [Pod] = [], nodes: [KubeAPI.Node] = [], claims: [PersistentVolumeClaim] = [],
                events: [CoreEvent] = [], lease: Lease? = nil) {
        self.pairs = pairs
        self.pods = pods
        self.nodes = nodes
        self.claims = claims
        self.events = events
        self.lease = lease
    }
}

/// How to recognise `tenops local`'s process nodes and ask one of them to fail. Console cannot
/// import LocalCluster (DESIGN.md), so the command that knows it passes these in.
public struct LocalNodeTraits: Sendable {
    /// The Node annotation that asks a process node to fail (`tenops.io/simulate`).
    public var simulationAnnotation: String
    /// Whether a Node object is one of tenops' process nodes.
    public var isProcessNode: @Sendable (KubeAPI.Node) -> Bool
    /// The merge patch that takes a node down (`poweroff`, `partition`) or, with nil, brings it up.
    public var simulationPatch: @Sendable (_ mode: String?) -> JSONValue?

    public init(simulationAnnotation: String, isProcessNode: @escaping @Sendable (KubeAPI.Node) -> Bool,
                simulationPatch: @escaping @Sendable (String?) -> JSONValue?) {
        self.simulationAnnotation = simulationAnnotation
        self.isProcessNode = isProcessNode
        self.simulationPatch = simulationPatch
    }
}

/// The header's facts that do not come from the caches.
public struct SnapshotHeader: Sendable, Equatable {
    public var context: String
    public var namespace: String?
    public var engine: EngineInfo
    public var api: APIHealth
    /// true: the console was started by `tenops local`, whatever the nodes say.
    public var knownLocal: Bool

    public init(context: String, namespace: String?, engine: EngineInfo, api: APIHealth = .ok, knownLocal: Bool = false) {
        self.context = context
        self.namespace = namespace
        self.engine = engine
        self.api = api
        self.knownLocal = knownLocal
    }
}

/// Builds the console's snapshot from the informers' contents. Pure: the same contents and
/// `now` give the same snapshot, so an unchanged cluster costs no redraw.
public enum SnapshotBuilder {
    /// Events kept per pair: the pane shows a screenful; older ones are in `kubectl get events`.
    public static let eventsPerPair = 50
    /// The claim template every pod of a pair mounts its database from.
    static let persistentClaim = "tt-persistent"

    public static func build(_ contents: ClusterContents, header: SnapshotHeader, local: LocalNodeTraits?, now: Date) -> ConsoleSnapshot {
        var pods: [String: Pod] = [:]
        for pod in contents.pods { pods[key(pod.metadata.namespace, pod.metadata.name)] = pod }
        var claims: [String: PersistentVolumeClaim] = [:]
        for claim in contents.claims { claims[key(claim.metadata.namespace, claim.metadata.name)] = claim }
        let nodes = contents.nodes.map { node(of: $0, local: local) }
        var nodesByName: [String: NodeRow] = [:]
        for node in nodes { nodesByName[node.name] = node }

        let pairs = contents.pairs.map { pair in
            row(of: pair, pods: pods, claims: claims, nodes: nodesByName)
        }
        var engine = header.engine
        engine.leaseHolder = contents.lease.flatMap { $0.spec.holderIdentity.flatMap { $0.isEmpty ? nil : $0 } }
        let isLocal = header.knownLocal || (local.map { traits in !contents.nodes.isEmpty && contents.nodes.allSatisfy(traits.isProcessNode) } ?? false)
        return ConsoleSnapshot(
            context: header.context, namespace: header.namespace, engine: engine, api: header.api, pairs: pairs,
            nodes: nodes.sorted { $0.name < $1.name }, events: events(contents.events, pairs: contents.pairs), isLocalCluster: isLocal, now: now)
    }

    // MARK: Pairs

    static func row(of pair: TimesTenClassic, pods: [String: Pod], claims: [String: PersistentVolumeClaim], nodes: [String: NodeRow]) -> PairRow {
        let names = PairNames(pair)
        let status = pair.status
        let ttspec = pair.ttspec
        let entries = status.podStatus
        let standby = entries.first { $0.intendedState == PodRole.standby.rawValue }
        let podRows = names.pods.compactMap { name -> PodRow? in
            let entry = entries.first { $0.name == name }
            let pod = pods[key(names.namespace, name)]
            guard entry != nil || pod != nil else { return nil }
            return podRow(name: name, namespace: names.namespace, entry: entry, pod: pod, claims: claims, nodes: nodes)
        }
        return PairRow(
            key: PairKey(namespace: names.namespace, name: names.name),
            state: status.highLevelState, previousState: status.prevHighLevelState, stateSince: status.lastHighLevelStateSwitch,
            active: status.activePods.flatMap { $0.isEmpty ? nil : $0 },
            standby: standby?.name,
            lagBytes: standby?.replicationStatus.lagBytes,
            created: pair.metadata.creationTimestamp,
            stopManaging: ttspec.stopManaging, reexamine: ttspec.reexamine,
            deleteDbOnNotReadyNode: ttspec.deleteDbOnNotReadyNode,
            repReturnServiceAttribute: ttspec.repReturnServiceAttribute.rawValue,
            lastAction: status.lastAction, pods: podRows, object: pair.json)
    }

    static func podRow(name: String, namespace: String, entry: PairPodStatus?, pod: Pod?, claims: [String: PersistentVolumeClaim],
                       nodes: [String: NodeRow]) -> PodRow {
        var row = PodRow(name: name)
        if let entry {
            switch entry.intendedState {
            case PodRole.active.rawValue?: row.role = .active
            case PodRole.standby.rawValue?: row.role = .standby
            default: row.role = .none
            }
            row.agent = entry.podStatus.agent
            row.podState = entry.highLevelState
            row.database = entry.dbStatus.db
            row.updatable = entry.dbStatus.dbUpdatable
            row.repState = entry.replicationStatus.repState
            row.repPeerState = entry.replicationStatus.repPeerPState
            row.lagBytes = entry.replicationStatus.lagBytes
            row.restarts = entry.podStatus.restarts
            let node = entry.node
            if !node.name.isEmpty {
                row.node = node.name
                row.nodeReady = node.ready.map { $0 == "True" }
                row.nodeNotReadySince = node.notReadySince
            }
        }
        if let pod {
            row.phase = pod.metadata.deletionTimestamp != nil ? "Terminating" : pod.status.phase
            row.ready = pod.isReady
            if let restarts = pod.status.containerStatuses.first(where: { $0.name == "tt" })?.restartCount { row.restarts = restarts }
            if let node = pod.spec.nodeName, !node.isEmpty { row.node = node }
            row.pvc = pod.spec.volumes.first { $0.name == persistentClaim }?.persistentVolumeClaimName
        }
        // The node's own record is fresher than what the engine last wrote into the status.
        if let name = row.node, let node = nodes[name] {
            row.nodeReady = node.ready
            row.nodeNotReadySince = node.ready == false ? node.notReadySince ?? row.nodeNotReadySince : nil
        }
        let claim = row.pvc ?? "\(persistentClaim)-\(name)"
        if let found = claims[key(namespace, claim)] {
            row.pvc = claim
            row.pvcPhase = found.phase
        }
        return row
    }

    // MARK: Nodes

    static func node(of node: KubeAPI.Node, local: LocalNodeTraits?) -> NodeRow {
        let ready = node.conditions[type: "Ready"]
        let isReady: Bool? = ready.map { $0.isTrue }
        let annotation = local.flatMap { node.metadata.annotations[$0.simulationAnnotation] }
        return NodeRow(
            name: node.metadata.name ?? "", ready: isReady,
            notReadySince: isReady == false ? ready?.lastTransitionTime : nil,
            simulation: annotation.flatMap { $0.isEmpty ? nil : $0 })
    }

    // MARK: Events

    /// The pairs' events, newest first, at most `eventsPerPair` each. An event about an earlier
    /// object of the same name (another uid) is left out.
    static func events(_ events: [CoreEvent], pairs: [TimesTenClassic]) -> [PairKey: [PairStatusReport.EventRow]] {
        var uids: [PairKey: String?] = [:]
        for pair in pairs {
            uids[PairKey(namespace: pair.metadata.namespace ?? "default", name: pair.metadata.name ?? "")] = pair.metadata.uid
        }
        var grouped: [PairKey: [(order: Int, row: PairStatusReport.EventRow)]] = [:]
        for (order, event) in events.enumerated() {
            let involved = event.involvedObject
            guard involved.kind == TimesTenClassic.resourceType.kind else { continue }
            let pair = PairKey(namespace: involved.namespace ?? event.metadata.namespace ?? "default", name: involved.name)
            guard let uid = uids[pair] else { continue }
            if let uid, let eventUID = involved.uid, !eventUID.isEmpty, eventUID != uid { continue }
            grouped[pair, default: []].append((order, PairStatusReport.EventRow(event)))
        }
        return grouped.mapValues { rows in
            Array(newestFirst(rows).prefix(eventsPerPair))
        }
    }

    /// Newest first; among events of the same second, the later in the cache's order (the
    /// recorder names events by creation time) comes first; events without a time last.
    static func newestFirst(_ rows: [(order: Int, row: PairStatusReport.EventRow)]) -> [PairStatusReport.EventRow] {
        rows.sorted { a, b in
            switch (a.row.lastSeen, b.row.lastSeen) {
            case let (x?, y?) where x != y: return x > y
            case (.some, nil): return true
            case (nil, .some): return false
            default: return a.order > b.order
            }
        }.map(\.row)
    }

    private static func key(_ namespace: String?, _ name: String?) -> String { "\(namespace ?? "")/\(name ?? "")" }
}
