import Foundation
import KubeAPI
import Testing
@testable import LocalCluster

/// Objects for the pure controller logic, built as the API server would hold them.
enum Fixture {
    static func node(_ name: String, ready: String = "True", labels: [String: String] = [:], unschedulable: Bool = false) -> Node {
        var node = Node(name: name)
        node.metadata.labels = labels
        if unschedulable { node[field: "spec"] = ["unschedulable": true] }
        node.conditions = [Condition(type: "Ready", status: ready)]
        return node
    }

    /// A pod; `claims` become PVC volumes, `antiAffinity` a required hostname term on app=VALUE.
    static func pod(_ name: String, namespace: String = "ns", labels: [String: String] = ["app": "web"], node: String? = nil,
                    claims: [String] = [], nodeSelector: [String: String] = [:], antiAffinity: String? = nil,
                    phase: String? = nil, terminating: Bool = false) -> Pod {
        var pod = Pod(name: name, namespace: namespace)
        pod.metadata.labels = labels
        if terminating { pod.metadata.deletionTimestamp = Date() }
        var spec = PodSpec()
        spec.nodeName = node
        spec.nodeSelector = nodeSelector
        spec.containers = [Container(name: "c", image: "busybox")]
        spec.volumes = claims.map { Volume(json: ["name": .string($0), "persistentVolumeClaim": ["claimName": .string($0)]]) }
        if let antiAffinity { spec[field: "affinity"] = hostnameAntiAffinity(app: antiAffinity) }
        pod.spec = spec
        pod.status.phase = phase
        return pod
    }

    static func hostnameAntiAffinity(app: String) -> JSONValue {
        ["podAntiAffinity": ["requiredDuringSchedulingIgnoredDuringExecution": [
            ["topologyKey": "kubernetes.io/hostname", "labelSelector": ["matchLabels": ["app": .string(app)]]],
        ]]]
    }

    static func claim(_ name: String, namespace: String = "ns", selectedNode: String? = nil, terminating: Bool = false) -> PersistentVolumeClaim {
        var claim = PersistentVolumeClaim(name: name, namespace: namespace)
        if let selectedNode { claim.metadata.annotations = [SchedulingPolicy.selectedNodeAnnotation: selectedNode] }
        if terminating { claim.metadata.deletionTimestamp = Date() }
        return claim
    }

    /// StatefulSet NAME in `ns` with claim template `data` and pods labelled app=NAME, as stored
    /// (uid, generation); `antiAffinity` keeps its pods on different nodes.
    static func statefulSet(_ name: String = "web", replicas: Int, policy: String = "OrderedReady", strategy: String = "RollingUpdate",
                            image: String = "v1", antiAffinity: Bool = false, extra: JSONObject = [:]) -> StatefulSet {
        var podSpec: JSONObject = ["containers": [["name": "c", "image": .string(image)]]]
        if antiAffinity { podSpec["affinity"] = hostnameAntiAffinity(app: name) }
        var spec: JSONObject = [
            "replicas": .int(Int64(replicas)), "serviceName": .string(name), "podManagementPolicy": .string(policy),
            "updateStrategy": ["type": .string(strategy)],
            "selector": ["matchLabels": ["app": .string(name)]],
            "template": ["metadata": ["labels": ["app": .string(name)]], "spec": .object(podSpec)],
            "volumeClaimTemplates": [["metadata": ["name": "data"], "spec": ["resources": ["requests": ["storage": "1Gi"]]]]],
        ]
        for (key, value) in extra { spec[key] = value }
        return StatefulSet(json: ["apiVersion": "apps/v1", "kind": "StatefulSet",
                                  "metadata": ["name": .string(name), "namespace": "ns", "uid": "set-uid", "generation": 3], "spec": .object(spec)])
    }

    static func revision(_ set: StatefulSet) -> String { "\(set.name)-\(StatefulSetPlanner.revisionHash(set.template))" }

    /// The pod the controller would create for `ordinal`, as a kubelet left it.
    static func member(_ set: StatefulSet, _ ordinal: Int, phase: String? = "Running", ready: Bool = true, revision: String? = nil,
                       terminating: Bool = false, readySince: Date = Date(timeIntervalSince1970: 0)) -> Pod {
        var pod = StatefulSetPlanner.pod(for: set, ordinal: ordinal, revision: revision ?? Self.revision(set))
        pod.metadata.uid = "uid-\(ordinal)"
        if terminating { pod.metadata.deletionTimestamp = Date() }
        pod.status.phase = phase
        pod.status.conditions = [Condition(type: "Ready", status: ready ? "True" : "False", lastTransitionTime: readySince)]
        return pod
    }
}

@Suite("Controller logic: scheduling policy and StatefulSet planner", .timeLimit(.minutes(5)))
struct ControllerLogicTests {
    typealias Outcome = SchedulingPolicy.Outcome

    static let abc = [Fixture.node("a"), Fixture.node("b"), Fixture.node("c")]

    static func place(_ pod: Pod, _ nodes: [Node] = abc, on placed: [String: [Pod]] = [:],
                      claims: [PersistentVolumeClaim] = []) -> Outcome {
        SchedulingPolicy.place(pod, nodes: nodes, podsOnNodes: placed,
                               claims: Dictionary(uniqueKeysWithValues: claims.map { ($0.name, $0) }))
    }

    // MARK: Scheduling policy

    @Test("the fewest pods wins, then the first name; finished pods hold no place, terminating ones do")
    func tieBreak() {
        #expect(Self.place(Fixture.pod("p")) == .bind(node: "a"))
        let busy = [Fixture.pod("x", labels: [:], node: "a")]
        #expect(Self.place(Fixture.pod("p"), on: ["a": busy]) == .bind(node: "b"))
        #expect(Self.place(Fixture.pod("p"), on: ["a": busy, "b": busy, "c": busy + busy]) == .bind(node: "a"))
        #expect(Self.place(Fixture.pod("p"), on: ["a": [Fixture.pod("x", labels: [:], node: "a", phase: "Succeeded")]]) == .bind(node: "a"))
        #expect(Self.place(Fixture.pod("p"), on: ["a": [Fixture.pod("x", labels: [:], node: "a", terminating: true)]]) == .bind(node: "b"))
        // The pod itself, as seen on a node in an assumed binding, does not count against it.
        #expect(Self.place(Fixture.pod("p"), on: ["a": [Fixture.pod("p", node: "a")]]) == .bind(node: "a"))
    }

    @Test("node filters, each with kube-scheduler's message", arguments: [
        ([Fixture.node("a", ready: "False"), Fixture.node("b")], Fixture.pod("p"), Outcome.bind(node: "b")),
        ([Fixture.node("a", ready: "Unknown"), Fixture.node("b", ready: "False")], Fixture.pod("p"),
         .unschedulable(message: "0/2 nodes are available: 2 node(s) were not ready.")),
        ([Fixture.node("a", unschedulable: true), Fixture.node("b")], Fixture.pod("p"), .bind(node: "b")),
        ([Fixture.node("a", unschedulable: true)], Fixture.pod("p"), .unschedulable(message: "0/1 nodes are available: 1 node(s) were unschedulable.")),
        ([Fixture.node("a"), Fixture.node("b", labels: ["disk": "ssd"])], Fixture.pod("p", nodeSelector: ["disk": "ssd"]), .bind(node: "b")),
        ([Fixture.node("a", labels: ["disk": "hdd"])], Fixture.pod("p", nodeSelector: ["disk": "ssd"]),
         .unschedulable(message: "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector.")),
        ([], Fixture.pod("p"), .unschedulable(message: "0/0 nodes are available.")),
    ] as [([Node], Pod, Outcome)])
    func nodeFilters(nodes: [Node], pod: Pod, expected: Outcome) {
        #expect(Self.place(pod, nodes) == expected)
    }

    @Test("required node affinity: any term, all expressions, Gt/Lt and metadata.name fields")
    func nodeAffinity() {
        func pod(_ terms: JSONValue) -> Pod {
            var pod = Fixture.pod("p")
            pod.spec[field: "affinity"] = ["nodeAffinity": ["requiredDuringSchedulingIgnoredDuringExecution": ["nodeSelectorTerms": terms]]]
            return pod
        }
        let nodes = [Fixture.node("a", labels: ["zone": "1", "cpus": "4"]), Fixture.node("b", labels: ["zone": "2", "cpus": "16"])]
        #expect(Self.place(pod([["matchExpressions": [["key": "zone", "operator": "In", "values": ["2"]]]]]), nodes) == .bind(node: "b"))
        #expect(Self.place(pod([["matchExpressions": [["key": "zone", "operator": "NotIn", "values": ["1"]]]]]), nodes) == .bind(node: "b"))
        #expect(Self.place(pod([["matchExpressions": [["key": "cpus", "operator": "Gt", "values": ["8"]]]]]), nodes) == .bind(node: "b"))
        #expect(Self.place(pod([["matchExpressions": [["key": "cpus", "operator": "Lt", "values": ["8"]]]]]), nodes) == .bind(node: "a"))
        #expect(Self.place(pod([["matchFields": [["key": "metadata.name", "operator": "In", "values": ["b"]]]]]), nodes) == .bind(node: "b"))
        // Terms are ORed; expressions within a term are ANDed.
        #expect(Self.place(pod([["matchExpressions": [["key": "zone", "operator": "In", "values": ["9"]]]],
                                ["matchExpressions": [["key": "zone", "operator": "Exists"], ["key": "cpus", "operator": "In", "values": ["16"]]]]]),
                           nodes) == .bind(node: "b"))
        #expect(Self.place(pod([["matchExpressions": [["key": "zone", "operator": "DoesNotExist"]]]]), nodes)
                == .unschedulable(message: "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector."))
        #expect(Self.place(pod([[:]]), nodes)  // an empty term matches nothing
                == .unschedulable(message: "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector."))
    }

    @Test("a claim's selected node pins the pod there, even when that node cannot take it")
    func pinnedClaims() {
        let pod = Fixture.pod("p", claims: ["data"])
        #expect(Self.place(pod, claims: [Fixture.claim("data", selectedNode: "c")]) == .bind(node: "c"))
        #expect(Self.place(pod, claims: [Fixture.claim("data")]) == .bind(node: "a"))
        let down = [Fixture.node("a"), Fixture.node("b"), Fixture.node("c", ready: "Unknown")]
        #expect(Self.place(pod, down, claims: [Fixture.claim("data", selectedNode: "c")]) == .unschedulable(
            message: "0/3 nodes are available: 1 node(s) were not ready, 2 node(s) had volume node affinity conflict."))
        #expect(Self.place(pod, claims: [Fixture.claim("data", selectedNode: "gone")]) == .unschedulable(
            message: "0/3 nodes are available: 3 node(s) had volume node affinity conflict."))
    }

    @Test("a claim that is missing or terminating makes the pod wait")
    func missingClaims() {
        #expect(Self.place(Fixture.pod("p", claims: ["data"])) == .unschedulable(
            message: "0/3 nodes are available: persistentvolumeclaim \"data\" not found."))
        #expect(Self.place(Fixture.pod("p", claims: ["data"]), claims: [Fixture.claim("data", terminating: true)]) == .unschedulable(
            message: "0/3 nodes are available: persistentvolumeclaim \"data\" is being deleted."))
        // A claim of the same name in another namespace is not the pod's.
        #expect(SchedulingPolicy.claimsOf(Fixture.pod("p", claims: ["data"]), claims: [:]) == .failure(.init(message: "persistentvolumeclaim \"data\" not found")))
    }

    @Test("required anti-affinity on hostname: the pod's own terms and the residents' terms")
    func antiAffinity() {
        let web0 = Fixture.pod("web-0", node: "a", antiAffinity: "web")
        let web1 = Fixture.pod("web-1", antiAffinity: "web")
        #expect(Self.place(web1, on: ["a": [web0]]) == .bind(node: "b"))
        let web2 = Fixture.pod("web-2", antiAffinity: "web")
        #expect(Self.place(web2, Array(Self.abc.prefix(2)), on: ["a": [web0], "b": [Fixture.pod("web-1", node: "b")]]) == .unschedulable(
            message: "0/2 nodes are available: 2 node(s) didn't match pod anti-affinity rules."))
        // Symmetry: a resident's term keeps a matching newcomer away, though the newcomer has no terms.
        let guardPod = Fixture.pod("g", labels: ["app": "guard"], node: "a", antiAffinity: "web")
        #expect(Self.place(Fixture.pod("plain"), on: ["a": [guardPod]]) == .bind(node: "b"))
        // Pods that do not match the selector do not count.
        #expect(Self.place(web1, on: ["b": [Fixture.pod("other", labels: ["app": "db"], node: "b")]]) == .bind(node: "a"))
    }

    @Test("anti-affinity namespaces: the pod's own by default, a list, or all with namespaceSelector {}")
    func antiAffinityNamespaces() {
        func pod(_ extra: JSONObject) -> Pod {
            var term: JSONObject = ["topologyKey": "kubernetes.io/hostname", "labelSelector": ["matchLabels": ["app": "web"]]]
            for (key, value) in extra { term[key] = value }
            var pod = Fixture.pod("p")
            pod.spec[field: "affinity"] = ["podAntiAffinity": ["requiredDuringSchedulingIgnoredDuringExecution": [.object(term)]]]
            return pod
        }
        // One pod on each node, so that only anti-affinity tells them apart.
        let elsewhere = ["a": [Fixture.pod("w", namespace: "other", node: "a")], "b": [Fixture.pod("d", labels: ["app": "db"], node: "b")],
                         "c": [Fixture.pod("d2", labels: ["app": "db"], node: "c")]]
        #expect(Self.place(pod([:]), on: elsewhere) == .bind(node: "a"))
        #expect(Self.place(pod(["namespaces": []]), on: elsewhere) == .bind(node: "a"))
        #expect(Self.place(pod(["namespaces": ["other"]]), on: elsewhere) == .bind(node: "b"))
        #expect(Self.place(pod(["namespaceSelector": [:]]), on: elsewhere) == .bind(node: "b"))
    }

    @Test("anti-affinity on another topology key: nodes sharing the label value are one domain; unlabelled nodes are free")
    func antiAffinityZones() {
        var pod = Fixture.pod("p")
        pod.spec[field: "affinity"] = ["podAntiAffinity": ["requiredDuringSchedulingIgnoredDuringExecution": [
            ["topologyKey": "zone", "labelSelector": ["matchExpressions": [["key": "app", "operator": "In", "values": ["web"]]]]],
        ]]]
        let nodes = [Fixture.node("a", labels: ["zone": "1"]), Fixture.node("b", labels: ["zone": "1"]), Fixture.node("c", labels: ["zone": "2"])]
        #expect(Self.place(pod, nodes, on: ["a": [Fixture.pod("w", node: "a")]]) == .bind(node: "c"))
        let unlabelled = [Fixture.node("a", labels: ["zone": "1"]), Fixture.node("b")]
        #expect(Self.place(pod, unlabelled, on: ["a": [Fixture.pod("w", node: "a")], "b": [Fixture.pod("w2", node: "b")]]) == .bind(node: "b"))
    }

    @Test("label selectors", arguments: [
        (["matchLabels": ["app": "web"]], ["app": "web", "x": "y"], true),
        (["matchLabels": ["app": "web"]], ["app": "db"], false),
        (["matchExpressions": [["key": "app", "operator": "In", "values": ["web", "db"]]]], ["app": "db"], true),
        (["matchExpressions": [["key": "app", "operator": "NotIn", "values": ["web"]]]], [:], true),
        (["matchExpressions": [["key": "app", "operator": "Exists"]]], [:], false),
        (["matchExpressions": [["key": "app", "operator": "DoesNotExist"]]], [:], true),
        (["matchExpressions": [["key": "app", "operator": "Sideways"]]], ["app": "web"], false),
        ([:], ["app": "web"], true),
        (nil, ["app": "web"], false),
    ] as [(JSONValue, [String: String], Bool)])
    func labelSelectors(selector: JSONValue, labels: [String: String], matches: Bool) {
        #expect(SchedulingPolicy.matches(selector, labels) == matches)
    }

    // MARK: StatefulSet planner

    static func plan(_ set: StatefulSet, _ pods: [Pod], claims: Set<String> = [], now: Date = Date()) -> StatefulSetPlanner.Plan {
        StatefulSetPlanner.plan(set, pods: pods, claims: claims, now: now)
    }

    @Test("Parallel creates every pod at once, with identity, labels, owner and claims; existing claims are reused")
    func parallelCreate() throws {
        let set = Fixture.statefulSet(replicas: 2, policy: "Parallel")
        let plan = Self.plan(set, [], claims: ["data-web-0"])
        #expect(plan.createPods.map(\.name) == ["web-0", "web-1"])
        #expect(plan.createClaims.map(\.name) == ["data-web-1"])
        #expect(plan.deletePods.isEmpty)
        let pod = try #require(plan.createPods.last)
        #expect(pod.namespace == "ns")
        #expect(pod.spec.hostname == "web-1")
        #expect(pod.spec.subdomain == "web")
        #expect(pod.metadata.labels == ["app": "web", "statefulset.kubernetes.io/pod-name": "web-1", "apps.kubernetes.io/pod-index": "1",
                                        "controller-revision-hash": Fixture.revision(set)])
        let owner = try #require(pod.metadata.ownerReferences.first)
        #expect(owner.kind == "StatefulSet" && owner.name == "web" && owner.uid == "set-uid")
        #expect(owner.controller == true && owner.blockOwnerDeletion == true)
        #expect(pod.spec.volumes.map(\.persistentVolumeClaimName) == ["data-web-1"])
        let claim = try #require(plan.createClaims.first)
        #expect(claim.namespace == "ns" && claim.metadata.labels == ["app": "web"])
        #expect(claim.requestedStorage == "1Gi")
        #expect(claim.metadata.ownerReferences.isEmpty)  // the default retention policy keeps claims
    }

    @Test("a claim template replaces a template volume of the same name; other volumes stay")
    func claimVolumes() {
        var set = Fixture.statefulSet(replicas: 1)
        set.json.setValue([["name": "data", "emptyDir": [:]], ["name": "tls", "secret": ["secretName": "s"]]],
                          at: ["spec", "template", "spec", "volumes"])
        let pod = StatefulSetPlanner.pod(for: set, ordinal: 0, revision: "r")
        #expect(pod.spec.volumes.map(\.name) == ["data", "tls"])
        #expect(pod.spec.volumes.map(\.persistentVolumeClaimName) == ["data-web-0", nil])
    }

    @Test("whenDeleted: Delete makes the set own its claims")
    func claimRetention() {
        let set = Fixture.statefulSet(replicas: 1, extra: ["persistentVolumeClaimRetentionPolicy": ["whenDeleted": "Delete", "whenScaled": "Retain"]])
        let owners = Self.plan(set, []).createClaims.first?.metadata.ownerReferences ?? []
        #expect(owners.map(\.uid) == ["set-uid"])
    }

    @Test("OrderedReady creates pod N+1 only once pod N is Running and Ready")
    func orderedReady() {
        let set = Fixture.statefulSet(replicas: 2)
        #expect(Self.plan(set, []).createPods.map(\.name) == ["web-0"])
        #expect(Self.plan(set, []).createClaims.map(\.name) == ["data-web-0"])
        #expect(Self.plan(set, [Fixture.member(set, 0, phase: "Pending", ready: false)], claims: ["data-web-0"]).createPods.isEmpty)
        #expect(Self.plan(set, [Fixture.member(set, 0, ready: false)], claims: ["data-web-0"]).createPods.isEmpty)
        #expect(Self.plan(set, [Fixture.member(set, 0, terminating: true)], claims: ["data-web-0"]).createPods.isEmpty)
        let next = Self.plan(set, [Fixture.member(set, 0)], claims: ["data-web-0"])
        #expect(next.createPods.map(\.name) == ["web-1"])
        #expect(next.createClaims.map(\.name) == ["data-web-1"])
    }

    @Test("a deleted pod comes back with the same claim, which is not created again")
    func recreate() {
        let set = Fixture.statefulSet(replicas: 2)
        let plan = Self.plan(set, [Fixture.member(set, 1)], claims: ["data-web-0", "data-web-1"])
        #expect(plan.createPods.map(\.name) == ["web-0"])
        #expect(plan.createPods.first?.spec.volumes.first?.persistentVolumeClaimName == "data-web-0")
        #expect(plan.createClaims.isEmpty)
    }

    @Test("a Pending pod whose claim was deleted gets the claim again")
    func pendingPodClaim() {
        let set = Fixture.statefulSet(replicas: 1)
        #expect(Self.plan(set, [Fixture.member(set, 0, phase: "Pending", ready: false)]).createClaims.map(\.name) == ["data-web-0"])
        #expect(Self.plan(set, [Fixture.member(set, 0, phase: nil, ready: false)]).createClaims.map(\.name) == ["data-web-0"])
        #expect(Self.plan(set, [Fixture.member(set, 0)]).createClaims.isEmpty)  // a running pod keeps what it has
    }

    @Test("a failed or succeeded pod is deleted, once, and the next pass recreates it", arguments: ["Failed", "Succeeded"])
    func finishedPods(phase: String) {
        let set = Fixture.statefulSet(replicas: 2)
        let claims: Set = ["data-web-0", "data-web-1"]
        #expect(Self.plan(set, [Fixture.member(set, 0), Fixture.member(set, 1, phase: phase, ready: false)], claims: claims).deletePods.map(\.name) == ["web-1"])
        #expect(Self.plan(set, [Fixture.member(set, 0), Fixture.member(set, 1, phase: phase, ready: false, terminating: true)], claims: claims).deletePods.isEmpty)
        #expect(Self.plan(set, [Fixture.member(set, 0)], claims: claims).createPods.map(\.name) == ["web-1"])
        // OrderedReady stops at a finished pod; Parallel goes on.
        let failedFirst = [Fixture.member(set, 0, phase: phase, ready: false)]
        #expect(Self.plan(set, failedFirst, claims: claims).createPods.isEmpty)
        let parallel = Fixture.statefulSet(replicas: 2, policy: "Parallel")
        let both = Self.plan(parallel, [StatefulSetPlanner.pod(for: parallel, ordinal: 0, revision: Fixture.revision(parallel))].map {
            var pod = $0
            pod.status.phase = phase
            return pod
        }, claims: claims)
        #expect(both.deletePods.map(\.name) == ["web-0"])
        #expect(both.createPods.map(\.name) == ["web-1"])
    }

    @Test("scale 3 to 1: Parallel deletes both at once, OrderedReady the highest first and waits for it to go")
    func scaleDown() {
        let ordered = Fixture.statefulSet(replicas: 1)
        let all = (0..<3).map { Fixture.member(ordered, $0) }
        #expect(Self.plan(ordered, all).deletePods.map(\.name) == ["web-2"])
        #expect(Self.plan(ordered, [all[0], all[1], Fixture.member(ordered, 2, terminating: true)]).deletePods.isEmpty)
        #expect(Self.plan(ordered, [all[0], all[1]]).deletePods.map(\.name) == ["web-1"])
        // An unhealthy condemned pod above another blocks; the lowest unhealthy one may go.
        #expect(Self.plan(ordered, [all[0], all[1], Fixture.member(ordered, 2, ready: false)]).deletePods.map(\.name) == ["web-2"])
        #expect(Self.plan(ordered, [all[0], Fixture.member(ordered, 1, ready: false), Fixture.member(ordered, 2, ready: false)]).deletePods.isEmpty)
        #expect(Self.plan(ordered, [all[0], Fixture.member(ordered, 1, ready: false), all[2]]).deletePods.map(\.name) == ["web-2"])
        let parallel = Fixture.statefulSet(replicas: 1, policy: "Parallel")
        let members = (0..<3).map { Fixture.member(parallel, $0) }
        #expect(Self.plan(parallel, members).deletePods.map(\.name) == ["web-2", "web-1"])
        #expect(Self.plan(parallel, [members[0], members[1], Fixture.member(parallel, 2, terminating: true)]).deletePods.map(\.name) == ["web-1"])
        // Deletion carries the pod's uid, for the precondition.
        #expect(Self.plan(parallel, members).deletePods.first?.uid == "uid-2")
    }

    @Test("OnDelete leaves pods of an old revision alone; new pods get the new revision")
    func onDelete() {
        let old = Fixture.statefulSet(replicas: 2, strategy: "OnDelete")
        let new = Fixture.statefulSet(replicas: 2, strategy: "OnDelete", image: "v2")
        let pods = (0..<2).map { Fixture.member(old, $0) }
        let plan = Self.plan(new, pods, claims: ["data-web-0", "data-web-1"])
        #expect(plan.deletePods.isEmpty && plan.createPods.isEmpty)
        #expect(plan.status["updatedReplicas"] == 0)
        let recreated = Self.plan(new, [pods[1]], claims: ["data-web-0", "data-web-1"])
        #expect(recreated.createPods.first?.metadata.labels["controller-revision-hash"] == Fixture.revision(new))
        #expect(Fixture.revision(new) != Fixture.revision(old))
    }

    @Test("RollingUpdate replaces from the highest ordinal, one at a time, each once the one before is Ready")
    func rollingUpdate() {
        let old = Fixture.statefulSet(replicas: 3)
        let new = Fixture.statefulSet(replicas: 3, image: "v2")
        let claims: Set = ["data-web-0", "data-web-1", "data-web-2"]
        let stale = (0..<3).map { Fixture.member(old, $0) }
        #expect(Self.plan(new, stale, claims: claims).deletePods.map(\.name) == ["web-2"])
        #expect(Self.plan(new, [stale[0], stale[1], Fixture.member(old, 2, terminating: true)], claims: claims).deletePods.isEmpty)
        #expect(Self.plan(new, [stale[0], stale[1]], claims: claims).createPods.map(\.name) == ["web-2"])
        #expect(Self.plan(new, [stale[0], stale[1], Fixture.member(new, 2, ready: false)], claims: claims).deletePods.isEmpty)
        #expect(Self.plan(new, [stale[0], stale[1], Fixture.member(new, 2)], claims: claims).deletePods.map(\.name) == ["web-1"])
        #expect(Self.plan(new, [stale[0], Fixture.member(new, 1), Fixture.member(new, 2)], claims: claims).deletePods.map(\.name) == ["web-0"])
        #expect(Self.plan(new, (0..<3).map { Fixture.member(new, $0) }, claims: claims).deletePods.isEmpty)
    }

    @Test("status counts pods, Ready ones, and revisions; currentRevision moves once all are updated and Ready")
    func status() {
        let old = Fixture.statefulSet(replicas: 3)
        var new = Fixture.statefulSet(replicas: 3, image: "v2")
        new.json.setValue(["currentRevision": .string(Fixture.revision(old))], at: ["status"])
        let pods = [Fixture.member(old, 0), Fixture.member(old, 1, ready: false), Fixture.member(new, 2), Fixture.member(old, 3, terminating: true)]
        let status = Self.plan(new, pods).status
        #expect(status["observedGeneration"] == 3)
        #expect(status["replicas"] == 4)
        #expect(status["readyReplicas"] == 3)  // a terminating pod that is still Ready counts, as in Kubernetes
        #expect(status["availableReplicas"] == 3)
        #expect(status["currentReplicas"] == 2)
        #expect(status["updatedReplicas"] == 1)
        #expect(status["currentRevision"] == .string(Fixture.revision(old)))
        #expect(status["updateRevision"] == .string(Fixture.revision(new)))
        let done = Self.plan(new, (0..<3).map { Fixture.member(new, $0) }).status
        #expect(done["currentRevision"] == .string(Fixture.revision(new)))
        #expect(done["currentReplicas"] == 3 && done["updatedReplicas"] == 3 && done["readyReplicas"] == 3)
        #expect(Self.plan(Fixture.statefulSet(replicas: 2), []).status["replicas"] == 0)
    }

    @Test("minReadySeconds: a pod Ready for less is not available, and the set is looked at again when it will be")
    func minReadySeconds() throws {
        let set = Fixture.statefulSet(replicas: 2, extra: ["minReadySeconds": 10])
        let now = Date()
        let plan = Self.plan(set, [Fixture.member(set, 0, readySince: now.addingTimeInterval(-4))], claims: ["data-web-0"], now: now)
        #expect(plan.status["readyReplicas"] == 1 && plan.status["availableReplicas"] == 0)
        #expect(plan.createPods.isEmpty)  // OrderedReady waits for availability
        let delay = try #require(plan.requeueAfter)
        #expect(delay > .seconds(5) && delay <= .seconds(6))
        let later = Self.plan(set, [Fixture.member(set, 0, readySince: now.addingTimeInterval(-11))], claims: ["data-web-0"], now: now)
        #expect(later.createPods.map(\.name) == ["web-1"] && later.requeueAfter == nil)
    }

    @Test("a set being deleted only gets its status")
    func deleting() {
        var set = Fixture.statefulSet(replicas: 2, policy: "Parallel")
        set.metadata.deletionTimestamp = Date()
        let plan = Self.plan(set, [Fixture.member(set, 0, phase: "Failed")])
        #expect(plan.createPods.isEmpty && plan.deletePods.isEmpty && plan.createClaims.isEmpty)
        #expect(plan.status["replicas"] == 1)
    }

    @Test("ordinals", arguments: [("web-0", 0), ("web-12", 12), ("web-01", nil), ("web-", nil), ("web-x", nil), ("webb-1", nil),
                                  ("web-1-2", nil), ("web-١", nil)] as [(String, Int?)])
    func ordinals(name: String, ordinal: Int?) {
        #expect(StatefulSetPlanner.ordinal(of: name, in: "web") == ordinal)
    }

    @Test("conditions: lastTransitionTime moves with the status only; reason and message are kept unless given")
    func conditions() {
        let then = Date(timeIntervalSince1970: 1000), now = Date(timeIntervalSince1970: 2000)
        var conditions = [Condition(type: "Ready", status: "True", reason: "KubeletReady", lastTransitionTime: then)]
        var changed = conditions.set("Ready", status: "True", now: now)
        #expect(!changed && conditions[type: "Ready"]?.lastTransitionTime == then)
        changed = conditions.set("Ready", status: "False", now: now)
        #expect(changed && conditions[type: "Ready"]?.lastTransitionTime == now && conditions[type: "Ready"]?.reason == "KubeletReady")
        changed = conditions.set("PodScheduled", status: "False", reason: "Unschedulable", message: "m", now: now)
        #expect(changed && conditions.map(\.type) == ["Ready", "PodScheduled"])
        changed = conditions.set("PodScheduled", status: "False", reason: "Unschedulable", message: "m", now: then)
        #expect(!changed)
    }
}
