import Foundation
import KubeAPI
import Logging
import Synchronization

/// The controllers a local cluster needs around its pods, run against the API like
/// kube-controller-manager's and kube-scheduler's: StatefulSets, scheduling and node lifecycle.
/// (Garbage collection through ownerReferences happens in the API server at deletion time.)
public struct ControllerManager: Sendable {
    public struct Options: Sendable {
        /// How long a node may miss heartbeats before it is NotReady (Kubernetes: 40 s).
        public var nodeMonitorGracePeriod: Duration
        /// How often node heartbeats are checked (Kubernetes: 5 s; here the check reads a cache).
        public var nodeMonitorPeriod: Duration

        public init(nodeMonitorGracePeriod: Duration = .seconds(40), nodeMonitorPeriod: Duration = .milliseconds(500)) {
            self.nodeMonitorGracePeriod = nodeMonitorGracePeriod
            self.nodeMonitorPeriod = nodeMonitorPeriod
        }
    }

    let client: KubeClient
    let options: Options

    public init(client: KubeClient, options: Options = Options()) {
        self.client = client
        self.options = options
    }

    /// Runs every controller until the calling Task is cancelled.
    public func run() async {
        let recorder = EventRecorder(client: client, component: "tenops-controller-manager")
        let schedulerEvents = EventRecorder(client: client, component: Scheduler.name)
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await StatefulSetController(client: client, recorder: recorder).run() }
            group.addTask { await Scheduler(client: client, recorder: schedulerEvents).run() }
            group.addTask {
                await NodeLifecycleController(client: client, recorder: recorder, grace: options.nodeMonitorGracePeriod,
                                              period: options.nodeMonitorPeriod).run()
            }
        }
    }
}

/// What a controller needs of an informer: to run it and to know it has synced.
protocol ControllerInformer: Sendable {
    func run() async
    var hasSynced: Bool { get }
}

extension Informer: ControllerInformer {}

/// Runs `informers` as child tasks and, once all have synced, `body`; returns when the calling
/// task is cancelled and `body` has returned.
func withSyncedInformers(_ informers: [any ControllerInformer], _ body: () async -> Void) async {
    await withTaskGroup(of: Void.self) { group in
        for informer in informers { group.addTask { await informer.run() } }
        while !Task.isCancelled, !informers.allSatisfy(\.hasSynced) {
            try? await Task.sleep(for: .milliseconds(20))
        }
        if !Task.isCancelled { await body() }
        group.cancelAll()
    }
}

/// Hands keys to `work` one at a time until the calling task is cancelled. `work` returns
/// whether the key is done; if not, it comes back after the queue's per-key backoff.
func processQueue<Key: Hashable & Sendable>(_ queue: WorkQueue<Key>, _ work: (Key) async -> Bool) async {
    await withTaskCancellationHandler {
        while let key = await queue.get() {
            if await work(key) { await queue.forget(key) } else { await queue.addRateLimited(key) }
            await queue.done(key)
        }
    } onCancel: {
        Task { await queue.shutDown() }
    }
}

extension Array where Element == Condition {
    /// Sets the condition of `type`: lastTransitionTime moves only when the status does, and a
    /// nil reason or message keeps the one there. Returns whether anything changed.
    @discardableResult
    mutating func set(_ type: String, status: String, reason: String? = nil, message: String? = nil, now: Date) -> Bool {
        var condition = self[type: type] ?? Condition(type: type, status: "")
        let before = condition
        if condition.status != status { condition.lastTransitionTime = now }
        condition.status = status
        if let reason { condition.reason = reason }
        if let message { condition.message = message }
        guard condition != before || self[type: type] == nil else { return false }
        if let index = firstIndex(where: { $0.type == type }) { self[index] = condition } else { append(condition) }
        return true
    }
}

// MARK: - StatefulSet

/// Keeps each StatefulSet's pods and claims as its spec says (see `StatefulSetPlanner`), adopts
/// its orphaned pods, and writes its status.
final class StatefulSetController: Sendable {
    let client: KubeClient
    let recorder: EventRecorder
    let sets: Informer<StatefulSet>
    let pods: Informer<Pod>
    let claims: Informer<PersistentVolumeClaim>
    let queue = WorkQueue<ObjectKey>()
    let logger = Logger(label: "tenops.statefulset-controller")

    init(client: KubeClient, recorder: EventRecorder) {
        self.client = client
        self.recorder = recorder
        sets = Informer(client: client)
        pods = Informer(client: client, indexers: ["owner": { pod in pod.metadata.controllerReference.map { [$0.uid] } ?? [] }])
        claims = Informer(client: client)
    }

    func run() async {
        let queue = self.queue
        let sets = self.sets
        sets.addHandler { event in Task { await queue.add(event.object.key) } }
        pods.addHandler { event in
            let pod = event.object
            let owners: [ObjectKey]
            if let owner = pod.metadata.controllerReference {
                owners = owner.kind == "StatefulSet" ? [ObjectKey(namespace: pod.namespace, name: owner.name)] : []
            } else {
                // An orphan: any set that would adopt it.
                owners = sets.store.list(namespace: pod.namespace ?? "default").filter { Self.wouldAdopt($0, pod) }.map(\.key)
            }
            if !owners.isEmpty { Task { for key in owners { await queue.add(key) } } }
        }
        // A claim deleted under a Pending pod is created again.
        claims.addHandler { event in
            guard case .deleted(let claim) = event else { return }
            let keys = sets.store.list(namespace: claim.namespace ?? "default").map(\.key)
            Task { for key in keys { await queue.add(key) } }
        }
        await withSyncedInformers([sets, pods, claims]) {
            await processQueue(queue) { key in
                do {
                    try await reconcile(key)
                    return true
                } catch {
                    logger.warning("statefulset \(key): \(error)")
                    return false
                }
            }
        }
    }

    static func wouldAdopt(_ set: StatefulSet, _ pod: Pod) -> Bool {
        pod.metadata.controllerReference == nil && pod.metadata.deletionTimestamp == nil && set.metadata.deletionTimestamp == nil
            && StatefulSetPlanner.ordinal(of: pod.name, in: set.name) != nil
            && SchedulingPolicy.matches(JSONValue.object(set.json)["spec"]["selector"], pod.metadata.labels)
    }

    func reconcile(_ key: ObjectKey) async throws(KubeAPIError) {
        guard let set = sets.store.get(key), let uid = set.uid else { return }
        if try await adoptOrphans(of: set) { return }  // the adopted pods come back as events
        let plan = StatefulSetPlanner.plan(
            set, pods: pods.store.byIndex("owner", uid), claims: Set(claims.store.list(namespace: key.namespace ?? "default").map(\.name)))
        for claim in plan.createClaims { try await create(claim, for: set) }
        for pod in plan.createPods { try await create(pod, for: set) }
        for pod in plan.deletePods {
            do {
                try await client.delete(Pod.self, name: pod.name, namespace: pod.namespace, options: DeleteOptions(preconditionUID: pod.uid))
                await recorder.record(set, type: .normal, reason: "SuccessfulDelete", message: "delete Pod \(pod.name) in StatefulSet \(set.name) successful")
            } catch {
                // Gone already, or replaced by a newer pod of the same name (the uid precondition).
                guard error.isNotFound || error.isConflict else {
                    await recorder.record(set, type: .warning, reason: "FailedDelete",
                                          message: "delete Pod \(pod.name) in StatefulSet \(set.name) failed error: \(error)")
                    throw error
                }
            }
        }
        let current = set.json["status"]?.objectValue ?? [:]
        if plan.status.contains(where: { current[$0.key] != $0.value }) {
            do {
                _ = try await client.patch(StatefulSet.self, name: key.name, namespace: key.namespace, patchType: .merge,
                                           patch: ["status": .object(plan.status)], subresource: "status")
            } catch {
                if !error.isNotFound { throw error }
            }
        }
        if let delay = plan.requeueAfter { await queue.addAfter(key, delay) }
    }

    private func create<T: KubeObject>(_ object: T, for set: StatefulSet) async throws(KubeAPIError) {
        let what = "\(T.resourceType == .pods ? "Pod" : "Claim") \(object.name) in StatefulSet \(set.name)"
        do {
            _ = try await client.create(object)
            await recorder.record(set, type: .normal, reason: "SuccessfulCreate", message: "create \(what) successful")
        } catch {
            if error.isAlreadyExists { return }
            await recorder.record(set, type: .warning, reason: "FailedCreate", message: "create \(what) failed error: \(error)")
            throw error
        }
    }

    /// Adopts pods that match the set's selector and name but have no controller (after the set
    /// was deleted with the orphan policy and created again), as ControllerRefManager does.
    private func adoptOrphans(of set: StatefulSet) async throws(KubeAPIError) -> Bool {
        let orphans = pods.store.list(namespace: set.namespace ?? "default").filter { Self.wouldAdopt(set, $0) }
        guard !orphans.isEmpty else { return false }
        // As ControllerRefManager's canAdopt: the set read fresh, not from the cache, must still
        // be this one and not being deleted. A set deleted with the orphan policy would otherwise
        // take back, from a cache that lags, the pods the API server has just released.
        guard let fresh = try? await client.get(StatefulSet.self, name: set.name, namespace: set.namespace),
              fresh.uid == set.uid, fresh.metadata.deletionTimestamp == nil
        else { return false }
        for pod in orphans {
            let references = (pod.metadata.ownerReferences + [OwnerReference(owner: set)]).map { JSONValue.object($0.json) }
            let patch: JSONValue = ["metadata": ["ownerReferences": .array(references), "resourceVersion": .string(pod.resourceVersion ?? "")]]
            do {
                _ = try await client.patch(Pod.self, name: pod.name, namespace: pod.namespace, patchType: .merge, patch: patch)
            } catch {
                if !error.isNotFound, !error.isConflict { throw error }
            }
        }
        return !orphans.isEmpty
    }
}

// MARK: - Scheduler

/// Binds pending pods to nodes (see `SchedulingPolicy`) through the `binding` subresource, as
/// kube-scheduler does: decisions count the bindings made but not yet seen in the cache (the
/// assumed pods); a pod's claims get the selected-node annotation before it is bound; a pod
/// that cannot be placed gets a FailedScheduling event and PodScheduled=False, and is tried
/// again with backoff and whenever nodes, claims or pods change.
final class Scheduler: Sendable {
    static let name = "default-scheduler"

    let client: KubeClient
    let recorder: EventRecorder
    let pods: Informer<Pod>
    let nodes: Informer<Node>
    let claims: Informer<PersistentVolumeClaim>
    let queue = WorkQueue<ObjectKey>(rateLimiter: RateLimiter(baseDelay: .milliseconds(200), maxDelay: .seconds(10)))
    /// Bindings made but not yet seen in the cache, so that the next decision counts them.
    let assumed = Mutex<[ObjectKey: Pod]>([:])

    init(client: KubeClient, recorder: EventRecorder) {
        self.client = client
        self.recorder = recorder
        pods = Informer(client: client, indexers: ["node": { [$0.spec.nodeName ?? ""] }])
        nodes = Informer(client: client)
        claims = Informer(client: client)
    }

    static func isOurs(_ pod: Pod) -> Bool {
        let scheduler = pod.spec.json["schedulerName"]?.stringValue ?? ""
        return scheduler.isEmpty || scheduler == name
    }

    static func isPending(_ pod: Pod) -> Bool {
        (pod.spec.nodeName ?? "").isEmpty && pod.metadata.deletionTimestamp == nil && isOurs(pod)
    }

    func run() async {
        let queue = self.queue
        let pods = self.pods
        let requeuePending: @Sendable () -> Void = {
            let waiting = pods.store.byIndex("node", "").filter(Self.isPending).map(\.key)
            if !waiting.isEmpty { Task { for key in waiting { await queue.add(key) } } }
        }
        pods.addHandler { [weak self] event in
            let pod = event.object
            switch event {
            case .deleted:
                self?.assumed.withLock { _ = $0.removeValue(forKey: pod.key) }
                requeuePending()  // a freed place may let others in
            case .added, .updated:
                if Self.isPending(pod) {
                    Task { await queue.add(pod.key) }
                } else if !(pod.spec.nodeName ?? "").isEmpty {
                    self?.assumed.withLock { _ = $0.removeValue(forKey: pod.key) }
                    if case .updated(let old, _) = event, old.status.phase != pod.status.phase { requeuePending() }
                }
            }
        }
        nodes.addHandler { _ in requeuePending() }
        claims.addHandler { _ in requeuePending() }
        await withSyncedInformers([pods, nodes, claims]) {
            await processQueue(queue) { key in await schedule(key) }
        }
    }

    /// Returns true when the pod is placed (or no longer needs placing).
    func schedule(_ key: ObjectKey) async -> Bool {
        guard let pod = pods.store.get(key), Self.isPending(pod), assumed.withLock({ $0[key] }) == nil else { return true }
        let nodeList = nodes.store.list()
        var onNodes: [String: [Pod]] = [:]
        for node in nodeList { onNodes[node.name] = pods.store.byIndex("node", node.name) }
        for (assumedKey, placed) in assumed.withLock({ $0 }) where (pods.store.get(assumedKey)?.spec.nodeName ?? "").isEmpty {
            onNodes[placed.spec.nodeName ?? "", default: []].append(placed)
        }
        var claimsByName: [String: PersistentVolumeClaim] = [:]
        for claim in claims.store.list(namespace: key.namespace ?? "default") { claimsByName[claim.name] = claim }

        switch SchedulingPolicy.place(pod, nodes: nodeList, podsOnNodes: onNodes, claims: claimsByName) {
        case .bind(let node):
            var placed = pod
            placed.spec.nodeName = node
            assumed.withLock { $0[key] = placed }
            do {
                try await selectNode(node, forClaimsOf: pod, claims: claimsByName)
                let binding: JSONValue = ["apiVersion": "v1", "kind": "Binding", "metadata": ["name": .string(key.name)],
                                          "target": ["apiVersion": "v1", "kind": "Node", "name": .string(node)]]
                _ = try await client.send(method: "POST", path: ResourceType.pods.objectPath(namespace: key.namespace, name: key.name, subresource: "binding"),
                                          body: JSONWriter.data(binding), contentType: "application/json")
            } catch {
                assumed.withLock { _ = $0.removeValue(forKey: key) }
                await recorder.record(pod, type: .warning, reason: "FailedScheduling", message: "Binding rejected: \(error)")
                return false
            }
            await recorder.record(pod, type: .normal, reason: "Scheduled", message: "Successfully assigned \(key) to \(node)")
            return true
        case .unschedulable(let message):
            await recorder.record(pod, type: .warning, reason: "FailedScheduling", message: message)
            var conditions = pod.status.conditions
            if conditions.set("PodScheduled", status: "False", reason: "Unschedulable", message: message, now: Date()) {
                _ = try? await client.modify(Pod.self, name: pod.name, namespace: pod.namespace, status: true) { pod in
                    pod.status.conditions.set("PodScheduled", status: "False", reason: "Unschedulable", message: message, now: Date())
                }
            }
            return false
        }
    }

    /// PreBind: claims not yet placed are placed on the pod's node, where their volumes will live.
    private func selectNode(_ node: String, forClaimsOf pod: Pod, claims: [String: PersistentVolumeClaim]) async throws(KubeAPIError) {
        for name in pod.spec.volumes.compactMap(\.persistentVolumeClaimName) {
            guard let claim = claims[name], (claim.metadata.annotations[SchedulingPolicy.selectedNodeAnnotation] ?? "").isEmpty else { continue }
            let patch: JSONValue = ["metadata": ["annotations": [SchedulingPolicy.selectedNodeAnnotation: .string(node)]]]
            _ = try await client.patch(PersistentVolumeClaim.self, name: name, namespace: claim.namespace, patchType: .merge, patch: patch)
        }
    }
}

// MARK: - Node lifecycle

/// Watches node heartbeats as kube-controller-manager's node lifecycle controller does. A
/// heartbeat is a change of the node's Lease in kube-node-lease (renewTime) or of its Ready
/// condition's lastHeartbeatTime, timed on this machine's clock when seen. After the grace
/// period without one, every condition of the node becomes Unknown (NodeStatusUnknown, or
/// NodeStatusNeverUpdated for a node that never reported Ready) and a NodeNotReady event is
/// recorded; while a node is Unknown, its pods' Ready condition is set to False. When heartbeats
/// resume, the node's own kubelet reports Ready again. (Taints and eviction are not modelled.)
final class NodeLifecycleController: Sendable {
    let client: KubeClient
    let recorder: EventRecorder
    let grace: Duration
    let period: Duration
    let nodes: Informer<Node>
    let leases: Informer<Lease>
    let pods: Informer<Pod>

    struct Health {
        var heartbeat: String
        var seenAt: ContinuousClock.Instant
        var markedUnknown = false
    }
    let health = Mutex<[String: Health]>([:])

    init(client: KubeClient, recorder: EventRecorder, grace: Duration, period: Duration) {
        self.client = client
        self.recorder = recorder
        self.grace = grace
        self.period = period
        nodes = Informer(client: client)
        leases = Informer(client: client, namespace: "kube-node-lease")
        pods = Informer(client: client, indexers: ["node": { [$0.spec.nodeName ?? ""] }])
    }

    func run() async {
        await withSyncedInformers([nodes, leases, pods]) {
            while !Task.isCancelled {
                await monitor()
                try? await Task.sleep(for: period)
            }
        }
    }

    func monitor() async {
        let now = ContinuousClock.now
        let list = nodes.store.list()
        let names = Set(list.map(\.name))
        health.withLock { state in state = state.filter { names.contains($0.key) } }
        for node in list {
            let renew = leases.store.get(namespace: "kube-node-lease", name: node.name)?.spec.json["renewTime"]?.stringValue ?? ""
            let heartbeat = renew + "|" + (node.conditions[type: "Ready"]?.json["lastHeartbeatTime"]?.stringValue ?? "")
            let stale = health.withLock { state -> Bool in
                guard let seen = state[node.name], seen.heartbeat == heartbeat else {
                    state[node.name] = Health(heartbeat: heartbeat, seenAt: now)
                    return false
                }
                return !seen.markedUnknown && seen.seenAt.duration(to: now) > grace
            }
            if stale, await markUnknown(node) {
                health.withLock { $0[node.name]?.markedUnknown = true }
            }
            if node.readyStatus == "Unknown" { await markPodsNotReady(on: node.name) }
        }
    }

    /// Returns whether the node is now Unknown.
    private func markUnknown(_ node: Node) async -> Bool {
        let stamp = Date()
        do {
            _ = try await client.modify(Node.self, name: node.name, status: true) { node in
                var conditions = node.conditions
                if conditions[type: "Ready"] == nil {
                    conditions.set("Ready", status: "Unknown", reason: "NodeStatusNeverUpdated", message: "Kubelet never posted node status.", now: stamp)
                }
                for type in conditions.map(\.type) {
                    conditions.set(type, status: "Unknown", reason: "NodeStatusUnknown", message: "Kubelet stopped posting node status.", now: stamp)
                }
                node.conditions = conditions
            }
        } catch {
            Logger(label: "tenops.node-lifecycle").warning("could not mark node \(node.name) NotReady: \(error)")
            return false
        }
        if node.readyStatus != "Unknown" {
            await recorder.record(node, type: .normal, reason: "NodeNotReady", message: "Node \(node.name) status is now: NodeNotReady")
        }
        return true
    }

    /// kube-controller-manager's MarkPodsNotReady: Ready=False for the pods on the node.
    private func markPodsNotReady(on nodeName: String) async {
        let stamp = Date()
        for pod in pods.store.byIndex("node", nodeName) {
            guard let ready = pod.status.conditions[type: "Ready"], ready.status != "False" else { continue }
            do {
                _ = try await client.modify(Pod.self, name: pod.name, namespace: pod.namespace, status: true) { pod in
                    pod.status.conditions.set("Ready", status: "False", now: stamp)
                }
                await recorder.record(pod, type: .warning, reason: "NodeNotReady", message: "Node is not ready")
            } catch {
                Logger(label: "tenops.node-lifecycle").warning("could not mark pod \(pod.key) not Ready: \(error)")
            }
        }
    }
}
