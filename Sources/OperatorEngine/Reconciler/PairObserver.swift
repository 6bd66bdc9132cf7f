import Foundation
import KubeAPI
import Logging

/// The informers the reconciler reads from, and the snapshot of one pair built from their caches.
public final class PairObserver: Sendable {
    /// Selects the objects TenOps builds. Secrets are filtered by it (there may be many others): a
    /// Secret of the pair's name without these labels is invisible, and creating it then fails
    /// with AlreadyExists, which `PairActor` reports as an Error event.
    public static let managedSelector = "app.kubernetes.io/managed-by=tenops"
    /// Selects everything of any pair, pods and claims included (they carry the selector labels only).
    public static let pairSelector = "tenops.io/pair"

    public let pairs: Informer<TimesTenClassic>
    public let statefulSets: Informer<StatefulSet>
    public let services: Informer<Service>
    public let secrets: Informer<Secret>
    public let pods: Informer<Pod>
    public let claims: Informer<PairClaim>
    public let nodes: Informer<Node>

    /// The caches hold objects as compact JSON (``ObjectStore/Layout/compact``): an operator in
    /// charge of many pairs reads each only when it reconciles that pair, and the parsed trees
    /// would cost three to four times the memory.
    public init(client: KubeClient, namespace: String?, logger: Logger) {
        pairs = Informer(client: client, namespace: namespace, layout: .compact, logger: logger)
        // Unfiltered: a StatefulSet or Service of the pair's name that lacks the labels must still be
        // seen, to be adopted (no controller) or reported (another controller) through Drift.
        statefulSets = Informer(client: client, namespace: namespace, layout: .compact, logger: logger)
        services = Informer(client: client, namespace: namespace, layout: .compact, logger: logger)
        secrets = Informer(client: client, namespace: namespace, labelSelector: Self.managedSelector, layout: .compact, logger: logger)
        // Indexed by node: a node's readiness change reads the pods on it, not every pod.
        pods = Informer(client: client, namespace: namespace, labelSelector: Self.pairSelector,
                        indexers: [Self.nodeIndex: { pod in pod.spec.nodeName.map { [$0] } ?? [] }], layout: .compact,
                        transform: Self.cachedPod, logger: logger)
        // By pair: a reconcile reads its pair's two claims, not every claim of the namespace.
        claims = Informer(client: client, namespace: namespace, labelSelector: Self.pairSelector,
                          indexers: [Self.pairIndex: { claim in claim.metadata.labels[Self.pairSelector].map { [Self.pairIndexValue(claim.namespace, $0)] } ?? [] }],
                          layout: .compact, logger: logger)
        nodes = Informer(client: client, logger: logger)
    }

    /// Runs every informer until the calling Task is cancelled.
    func runInformers() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.pairs.run() }
            group.addTask { await self.statefulSets.run() }
            group.addTask { await self.services.run() }
            group.addTask { await self.secrets.run() }
            group.addTask { await self.pods.run() }
            group.addTask { await self.claims.run() }
            group.addTask { await self.nodes.run() }
        }
    }

    func waitForSync() async {
        await pairs.waitForSync()
        await statefulSets.waitForSync()
        await services.waitForSync()
        await secrets.waitForSync()
        await pods.waitForSync()
        await claims.waitForSync()
        await nodes.waitForSync()
    }

    /// The pair `key` and what it owns, from the caches; nil when the TimesTenClassic is gone.
    public func snapshot(_ key: ObjectKey, now: Date = Date()) -> PairSnapshot? {
        guard let object = pairs.store.get(key) else { return nil }
        let names = PairNames(object)
        let namespace = names.namespace
        var snapshot = PairSnapshot(object: object, now: now)
        snapshot.statefulSet = statefulSets.store.get(namespace: namespace, name: names.statefulSet)
        snapshot.service = services.store.get(namespace: namespace, name: names.service)
        snapshot.caSecret = secrets.store.get(namespace: namespace, name: names.caSecret)
        snapshot.agentTLSSecret = secrets.store.get(namespace: namespace, name: names.agentTLSSecret)
        for podName in names.pods {
            guard let pod = pods.store.get(namespace: namespace, name: podName) else { continue }
            snapshot.pods[podName] = pod
            if let nodeName = pod.spec.nodeName, let node = nodes.store.get(namespace: nil, name: nodeName) {
                snapshot.nodes[nodeName] = node
            }
        }
        snapshot.claims = claims.store.byIndex(Self.pairIndex, Self.pairIndexValue(namespace, names.name)).sorted { $0.name < $1.name }
        return snapshot
    }

    /// What the pod cache keeps of a pod: all but its spec, of which only `nodeName`. The engine
    /// never reads the rest (the containers and volumes come from the StatefulSet, which it
    /// compares) nor writes a pod back, and the spec is half a pod: 4 KB a pair at rest.
    @Sendable static func cachedPod(_ pod: Pod) -> Pod {
        var kept = pod
        var spec: JSONObject = [:]
        if let nodeName = pod.spec.nodeName { spec["nodeName"] = .string(nodeName) }
        kept.json["spec"] = .object(spec)
        return kept
    }

    /// The claims' index by pair, and its value: `NAMESPACE/PAIR`.
    static let pairIndex = "pair"
    static func pairIndexValue(_ namespace: String?, _ pair: String) -> String { "\(namespace ?? "default")/\(pair)" }

    /// The pair an owned object belongs to: its controller reference to a TimesTenClassic, else
    /// its `tenops.io/pair` label.
    static func pairKey(of object: some APIObject) -> ObjectKey? {
        let meta = object.metadata
        if let reference = meta.controllerReference?.json, reference["kind"]?.stringValue == TimesTenClassic.resourceType.kind,
           let name = reference["name"]?.stringValue {
            return ObjectKey(namespace: meta.namespace, name: name)
        }
        if let name = meta.labels["tenops.io/pair"] { return ObjectKey(namespace: meta.namespace, name: name) }
        return nil
    }

    /// The pods' index by node name.
    static let nodeIndex = "node"

    /// The pairs with a pod on node `name`.
    func pairKeys(onNode name: String) -> [ObjectKey] {
        Set(pods.store.byIndex(Self.nodeIndex, name).compactMap { Self.pairKey(of: $0) }).sorted()
    }
}
