import Foundation
import KubeAPI
import Synchronization
import Testing
@testable import LocalCluster

/// The controllers under test against a real local API server, with nodes played by the test.
///
/// A node played by the test is a Node object and a Lease in kube-node-lease that the test
/// writes as a kubelet would; it runs no processes (the process node is tested on its own).
/// Its kubelet, a loop here, renews the lease while the node is alive, reports the pods bound
/// to it Running and Ready (unless the test does that itself), and completes the deletion of
/// its terminating pods, as a kubelet does once their containers have stopped.
final class PlayedCluster: Sendable {
    struct Kubelets {
        var alive: Set<String> = []
        var reportReady = true
        var finishDeletions = true
    }

    let local: LocalServer
    let client: KubeClient
    let kubelets = Mutex(Kubelets())

    private init(local: LocalServer, client: KubeClient) {
        self.local = local
        self.client = client
    }

    /// Runs `body` with the server, namespace `ns`, the played nodes (name: labels) and the
    /// ControllerManager (grace period 2 s); stops everything afterwards.
    static func with(nodes: [String: [String: String]], reportReady: Bool = true, _ body: (PlayedCluster) async throws -> Void) async throws {
        try await LocalServer.with { local in
            let cluster = PlayedCluster(local: local, client: try local.client())
            cluster.kubelets.withLock { $0.reportReady = reportReady }
            _ = try await cluster.client.create(Namespace(name: "ns"))
            for (name, labels) in nodes.sorted(by: { $0.key < $1.key }) { try await cluster.addNode(name, labels: labels) }
            let options = ControllerManager.Options(nodeMonitorGracePeriod: .seconds(2), nodeMonitorPeriod: .milliseconds(100))
            let manager = Task { await ControllerManager(client: cluster.client, options: options).run() }
            let kubeletLoop = Task { await cluster.playKubelets() }
            func stop() async {
                manager.cancel()
                kubeletLoop.cancel()
                await manager.value
                await kubeletLoop.value
            }
            do {
                try await body(cluster)
            } catch {
                await stop()
                throw error
            }
            await stop()
        }
    }

    /// Registers a node as its kubelet would: the Node, its Ready condition, its Lease.
    func addNode(_ name: String, labels: [String: String] = [:]) async throws {
        var node = Node(name: name)
        node.metadata.labels = labels.merging(["kubernetes.io/hostname": name]) { mine, _ in mine }
        _ = try await client.create(node)
        try await setNodeReady(name, "True")
        var lease = Lease(name: name, namespace: "kube-node-lease")
        lease.spec.holderIdentity = name
        lease.spec.leaseDurationSeconds = 40
        lease.spec.renewTime = Date()
        _ = try await client.create(lease)
        kubelets.withLock { _ = $0.alive.insert(name) }
    }

    /// Stops or resumes a node's heartbeats and its kubelet.
    func setAlive(_ name: String, _ alive: Bool) {
        kubelets.withLock { if alive { $0.alive.insert(name) } else { $0.alive.remove(name) } }
    }

    func setNodeReady(_ name: String, _ status: String) async throws {
        _ = try await client.modify(Node.self, name: name, status: true) { node in
            var conditions = node.conditions
            conditions.set("Ready", status: status, reason: status == "True" ? "KubeletReady" : "KubeletNotReady",
                           message: "set by the kubelet played by the test", now: Date())
            node.conditions = conditions
        }
    }

    /// Writes a pod's status through the status subresource, as its kubelet would.
    func setPod(_ name: String, phase: String, ready: Bool) async throws {
        _ = try await client.modify(Pod.self, name: name, namespace: "ns", status: true) { pod in
            pod.status.phase = phase
            pod.status.conditions.set("Ready", status: ready ? "True" : "False", now: Date())
        }
    }

    private func playKubelets() async {
        while !Task.isCancelled {
            let state = kubelets.withLock { $0 }
            for name in state.alive {
                _ = try? await client.modify(Lease.self, name: name, namespace: "kube-node-lease") { $0.spec.renewTime = Date() }
            }
            for pod in (try? await client.list(Pod.self).items) ?? [] where state.alive.contains(pod.spec.nodeName ?? "") {
                if pod.metadata.deletionTimestamp != nil {
                    if state.finishDeletions {
                        _ = try? await client.delete(Pod.self, name: pod.name, namespace: pod.namespace,
                                                     options: DeleteOptions(preconditionUID: pod.uid, gracePeriodSeconds: 0))
                    }
                } else if state.reportReady, (pod.status.phase ?? "Pending") == "Pending" {
                    try? await setPod(pod.name, phase: "Running", ready: true)
                }
            }
            try? await Task.sleep(for: .milliseconds(150))
        }
    }

    // MARK: Reading

    func pod(_ name: String) async -> Pod? { try? await client.get(Pod.self, name: name, namespace: "ns") }
    func pods() async -> [Pod] { (try? await client.list(Pod.self, namespace: "ns").items) ?? [] }
    func set(_ name: String) async -> StatefulSet? { try? await client.get(StatefulSet.self, name: name, namespace: "ns") }
    func node(_ name: String) async -> Node? { try? await client.get(Node.self, name: name) }

    func events(about name: String, namespace: String = "ns", reason: String) async -> [CoreEvent] {
        let options = ListOptions(fieldSelector: "involvedObject.name=\(name),reason=\(reason)")
        return (try? await client.list(CoreEvent.self, namespace: namespace, options: options).items) ?? []
    }

    /// Whether a Warning FailedScheduling event with this message comes about the pod. (An
    /// earlier attempt may have failed otherwise, e.g. before the scheduler saw a new claim.)
    func sawFailedScheduling(_ pod: String, _ message: String) async -> Bool {
        await eventually {
            await self.events(about: pod, reason: "FailedScheduling").contains { $0.message == message && $0.type == "Warning" }
        }
    }

    /// `kubectl ARGS -o json`, parsed.
    func kubectlJSON(_ arguments: [String]) async throws -> JSONValue {
        let output = try await local.kubectl(arguments + ["-o", "json"])
        #expect(output.status == 0, "\(output.err)")
        return try JSONParser.parse(Data(output.out.utf8))
    }

    /// A fixture set as a user would write it: no uid, no generation.
    static func manifest(_ set: StatefulSet) -> StatefulSet {
        var fresh = set
        fresh.metadata = ObjectMeta(json: ["name": .string(set.name), "namespace": "ns"])
        return fresh
    }

    func create(_ set: StatefulSet) async throws {
        _ = try await client.create(Self.manifest(set))
    }

    func scale(_ name: String, to replicas: Int) async throws {
        _ = try await client.patch(StatefulSet.self, name: name, namespace: "ns", patchType: .merge, patch: ["spec": ["replicas": .int(Int64(replicas))]])
    }
}

@Suite("Controllers against the local API server, with nodes played by the test", .timeLimit(.minutes(5)))
struct ControllerTests {
    static let twoNodes: [String: [String: String]] = ["node-a": [:], "node-b": [:]]

    @Test("a StatefulSet of 2 with a claim template: owned pods and claims by ordinal, on different nodes; a third waits with FailedScheduling until a node joins; scale down")
    func statefulSetAcrossNodes() async throws {
        try await PlayedCluster.with(nodes: Self.twoNodes) { cluster in
            let manifest = JSONWriter.string(.object(PlayedCluster.manifest(Fixture.statefulSet(replicas: 2, policy: "Parallel", antiAffinity: true)).json))
            let applied = try await cluster.local.kubectl(["apply", "-f", "-"], input: manifest)
            #expect(applied.status == 0, "\(applied.err)")
            let set = try #require(await cluster.set("web"))
            #expect(await eventually { await cluster.set("web")?.readyReplicas == 2 })

            let pods = try await cluster.kubectlJSON(["get", "pods", "-n", "ns"])["items"].arrayValue ?? []
            #expect(pods.map { $0["metadata"]["name"] } == ["web-0", "web-1"])
            for (ordinal, pod) in pods.enumerated() {
                #expect(pod["spec"]["hostname"] == .string("web-\(ordinal)"))
                #expect(pod["spec"]["subdomain"] == "web")
                #expect(pod["spec"]["volumes"].arrayValue?.first?["persistentVolumeClaim"]["claimName"] == .string("data-web-\(ordinal)"))
                let owner = pod["metadata"]["ownerReferences"].arrayValue?.first ?? .null
                #expect(owner["kind"] == "StatefulSet" && owner["uid"] == .string(set.uid ?? "") && owner["controller"] == true && owner["blockOwnerDeletion"] == true)
                #expect(pod["status"]["conditions"].arrayValue?.contains { $0["type"] == "PodScheduled" && $0["status"] == "True" } == true)
            }
            let nodesOfPods = pods.map { $0["spec"]["nodeName"].stringValue ?? "" }
            #expect(Set(nodesOfPods) == ["node-a", "node-b"])

            // Each claim is placed where its pod went, and is kept by the default retention policy.
            let claims = try await cluster.kubectlJSON(["get", "pvc", "-n", "ns"])["items"].arrayValue ?? []
            #expect(claims.map { $0["metadata"]["name"] } == ["data-web-0", "data-web-1"])
            #expect(claims.map { $0["metadata"]["annotations"][SchedulingPolicy.selectedNodeAnnotation].stringValue ?? "" } == nodesOfPods)
            #expect(claims.allSatisfy { $0["metadata"]["ownerReferences"].isNull })

            try await cluster.scale("web", to: 3)
            #expect(await cluster.sawFailedScheduling("web-2", "0/2 nodes are available: 2 node(s) didn't match pod anti-affinity rules."))
            #expect(await eventually { await cluster.pod("web-2")?.status.conditions[type: "PodScheduled"]?.reason == "Unschedulable" })
            #expect(await cluster.pod("web-2")?.spec.nodeName == nil)

            try await cluster.addNode("node-c")
            #expect(await eventually { await cluster.pod("web-2")?.spec.nodeName == "node-c" })
            #expect(await eventually { await cluster.set("web")?.readyReplicas == 3 })

            try await cluster.scale("web", to: 1)
            #expect(await eventually { await cluster.pods().map(\.name) == ["web-0"] })
            #expect(await eventually { await cluster.set("web")?.statusReplicas == 1 })
            let kept = try await cluster.client.list(PersistentVolumeClaim.self, namespace: "ns").items.map(\.name)
            #expect(kept == ["data-web-0", "data-web-1", "data-web-2"])
            #expect(await eventually { await cluster.events(about: "web", reason: "SuccessfulDelete").count == 2 })
        }
    }

    @Test("nodeSelector is honoured; a claim's selected node pins its pod, which waits while that node is NotReady or a claim is missing")
    func placement() async throws {
        try await PlayedCluster.with(nodes: ["node-a": ["disk": "ssd"], "node-b": [:], "node-x": [:]]) { cluster in
            let client = cluster.client
            _ = try await client.create(Fixture.pod("ssd", labels: [:], nodeSelector: ["disk": "ssd"]))
            _ = try await client.create(Fixture.claim("c1", selectedNode: "node-x"))
            _ = try await client.create(Fixture.pod("pinned", labels: [:], claims: ["c1"]))
            #expect(await eventually { await cluster.pod("ssd")?.spec.nodeName == "node-a" })
            #expect(await eventually { await cluster.pod("pinned")?.spec.nodeName == "node-x" })

            try await cluster.setNodeReady("node-x", "False")
            try await Task.sleep(for: .milliseconds(300))  // for the scheduler's node cache to see it
            _ = try await client.create(Fixture.claim("c2", selectedNode: "node-x"))
            _ = try await client.create(Fixture.pod("waits", labels: [:], claims: ["c2"]))
            _ = try await client.create(Fixture.pod("unclaimed", labels: [:], claims: ["later"]))
            #expect(await cluster.sawFailedScheduling("waits", "0/3 nodes are available: 1 node(s) were not ready, 2 node(s) had volume node affinity conflict."))
            #expect(await cluster.sawFailedScheduling("unclaimed", "0/3 nodes are available: persistentvolumeclaim \"later\" not found."))
            let described = try await cluster.local.kubectl(["describe", "pod", "waits", "-n", "ns"])
            #expect(described.out.contains("FailedScheduling"), "\(described.out)")
            #expect(await cluster.pod("waits")?.spec.nodeName == nil)

            try await cluster.setNodeReady("node-x", "True")
            _ = try await client.create(Fixture.claim("later"))
            #expect(await eventually { await cluster.pod("waits")?.spec.nodeName == "node-x" })
            #expect(await eventually { await cluster.pod("unclaimed")?.spec.nodeName != nil })
            let placed = try await client.get(PersistentVolumeClaim.self, name: "later", namespace: "ns")
            #expect(placed.metadata.annotations[SchedulingPolicy.selectedNodeAnnotation] == (await cluster.pod("unclaimed"))?.spec.nodeName)
        }
    }

    @Test("OrderedReady waits for Ready; readyReplicas follows Ready; a deleted pod comes back with its claim on its node; a failed pod is replaced")
    func orderedReadyAndRecreation() async throws {
        try await PlayedCluster.with(nodes: Self.twoNodes, reportReady: false) { cluster in
            try await cluster.create(Fixture.statefulSet(replicas: 2))
            #expect(await eventually { await cluster.pod("web-0")?.spec.nodeName != nil })
            try await Task.sleep(for: .milliseconds(500))
            #expect(await cluster.pod("web-1") == nil)

            try await cluster.setPod("web-0", phase: "Running", ready: true)
            #expect(await eventually { await cluster.pod("web-1")?.spec.nodeName != nil })
            try await cluster.setPod("web-1", phase: "Running", ready: true)
            #expect(await eventually { await cluster.set("web")?.readyReplicas == 2 })
            try await cluster.setPod("web-1", phase: "Running", ready: false)
            #expect(await eventually { await cluster.set("web")?.readyReplicas == 1 })
            try await cluster.setPod("web-1", phase: "Running", ready: true)

            let first = try #require(await cluster.pod("web-0"))
            let deleted = try await cluster.local.kubectl(["delete", "pod", "web-0", "-n", "ns", "--wait=false"])
            #expect(deleted.status == 0, "\(deleted.err)")
            #expect(await eventually { await cluster.pod("web-0").map { $0.uid != first.uid && $0.spec.nodeName != nil } ?? false })
            let second = try #require(await cluster.pod("web-0"))
            #expect(second.spec.volumes.first?.persistentVolumeClaimName == "data-web-0")
            #expect(second.spec.nodeName == first.spec.nodeName)  // its claim lives there
            #expect(try await cluster.client.list(PersistentVolumeClaim.self, namespace: "ns").items.count == 2)

            // web-1 fails; in order, it is replaced once web-0 is Ready again.
            let failed = try #require(await cluster.pod("web-1"))
            try await cluster.setPod("web-1", phase: "Failed", ready: false)
            try await cluster.setPod("web-0", phase: "Running", ready: true)
            #expect(await eventually { await cluster.pod("web-1").map { $0.uid != failed.uid } ?? false })
            #expect(await cluster.pod("web-1")?.spec.volumes.first?.persistentVolumeClaimName == "data-web-1")
        }
    }

    @Test("a node whose lease is not renewed turns Unknown after the grace period and its pods not Ready; with heartbeats back it stays Ready")
    func nodeLifecycle() async throws {
        try await PlayedCluster.with(nodes: Self.twoNodes) { cluster in
            _ = try await cluster.client.create(Fixture.pod("on-a", node: "node-a"))
            _ = try await cluster.client.create(Fixture.pod("on-b", node: "node-b"))
            #expect(await eventually { await cluster.pods().filter(\.isReady).count == 2 })

            let stopped = ContinuousClock.now
            cluster.setAlive("node-a", false)
            #expect(await eventually(timeout: .seconds(8)) { await cluster.node("node-a")?.readyStatus == "Unknown" })
            #expect(stopped.duration(to: .now) > .milliseconds(1500))
            let node = try await cluster.kubectlJSON(["get", "node", "node-a"])
            let ready = node["status"]["conditions"].arrayValue?.first { $0["type"] == "Ready" } ?? .null
            #expect(ready["reason"] == "NodeStatusUnknown" && ready["message"] == "Kubelet stopped posting node status.")
            #expect(await eventually { await cluster.pod("on-a")?.isReady == false })
            #expect(await cluster.pod("on-b")?.isReady == true)
            #expect(await cluster.node("node-b")?.readyStatus == "True")
            #expect(await !cluster.events(about: "node-a", namespace: "default", reason: "NodeNotReady").isEmpty)

            // Heartbeats resume and the node's kubelet reports Ready: the controller leaves it so.
            cluster.setAlive("node-a", true)
            try await cluster.setNodeReady("node-a", "True")
            try await Task.sleep(for: .milliseconds(2500))
            #expect(await cluster.node("node-a")?.readyStatus == "True")
        }
    }

    @Test("deleting a StatefulSet: background takes its pods and owned claims; foreground keeps the set until its pods are gone; orphaned pods are adopted again")
    func garbageCollection() async throws {
        try await PlayedCluster.with(nodes: Self.twoNodes) { cluster in
            let owned = Fixture.statefulSet(replicas: 2, policy: "Parallel", extra: ["persistentVolumeClaimRetentionPolicy": ["whenDeleted": "Delete"]])
            try await cluster.create(owned)
            try await cluster.create(Fixture.statefulSet("fg", replicas: 1))
            try await cluster.create(Fixture.statefulSet("orph", replicas: 1))
            #expect(await eventually { await cluster.pods().filter(\.isReady).count == 4 })

            let background = try await cluster.local.kubectl(["delete", "statefulset", "web", "-n", "ns"])
            #expect(background.status == 0, "\(background.err)")
            #expect(await eventually { await !cluster.pods().contains { $0.name.hasPrefix("web-") } })
            let claims = try await cluster.client.list(PersistentVolumeClaim.self, namespace: "ns").items.map(\.name)
            #expect(claims == ["data-fg-0", "data-orph-0"])

            // Foreground: the pod is terminating while its kubelet holds it; the set waits for it.
            cluster.kubelets.withLock { $0.finishDeletions = false }
            let foreground = try await cluster.local.kubectl(["delete", "statefulset", "fg", "-n", "ns", "--cascade=foreground", "--wait=false"])
            #expect(foreground.status == 0, "\(foreground.err)")
            #expect(await eventually { await cluster.pod("fg-0")?.metadata.deletionTimestamp != nil })
            let waiting = try #require(await cluster.set("fg"))
            #expect(waiting.metadata.deletionTimestamp != nil && waiting.metadata.finalizers == ["foregroundDeletion"])
            cluster.kubelets.withLock { $0.finishDeletions = true }
            #expect(await eventually { await cluster.set("fg") == nil })
            #expect(await cluster.pod("fg-0") == nil)

            // Foreground with a pod no node holds (another scheduler's): both go at once.
            let owner = try await cluster.client.create(ConfigMap(name: "owner", namespace: "ns"))
            var unbound = Fixture.pod("unbound", labels: [:])
            unbound.spec[field: "schedulerName"] = "elsewhere"
            unbound.metadata.ownerReferences = [OwnerReference(owner: owner, controller: false)]
            _ = try await cluster.client.create(unbound)
            try await cluster.client.delete(ConfigMap.self, name: "owner", namespace: "ns", options: DeleteOptions(propagationPolicy: .foreground))
            #expect(await cluster.pod("unbound") == nil)
            #expect(try await cluster.client.list(ConfigMap.self, namespace: "ns").items.isEmpty)

            // Orphan: the pod stays without an owner, and a new set of the same name adopts it.
            let pod = try #require(await cluster.pod("orph-0"))
            let orphaned = try await cluster.local.kubectl(["delete", "statefulset", "orph", "-n", "ns", "--cascade=orphan"])
            #expect(orphaned.status == 0, "\(orphaned.err)")
            #expect(await eventually { await cluster.set("orph") == nil })
            #expect(await cluster.pod("orph-0")?.metadata.ownerReferences.isEmpty == true)
            try await cluster.create(Fixture.statefulSet("orph", replicas: 1))
            let adopter = try #require(await cluster.set("orph"))
            #expect(await eventually { await cluster.pod("orph-0")?.metadata.controllerReference?.json["uid"]?.stringValue == adopter.uid })
            #expect(await cluster.pod("orph-0")?.uid == pod.uid)
            #expect(await eventually { await cluster.set("orph")?.readyReplicas == 1 })
        }
    }
}
