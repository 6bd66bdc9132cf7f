import KubeAPI

/// Where a pod may run, decided as kube-scheduler's filters would for the features TenOps
/// uses. Pure.
///
/// Filters, in order, each with kube-scheduler's message:
/// - the pod's claims: each must exist and not be terminating; a claim that carries
///   `volume.kubernetes.io/selected-node` pins the pod to that node, because local volumes do
///   not move;
/// - node readiness (Ready=True) and `spec.unschedulable`;
/// - `nodeSelector` and required node affinity (`nodeSelectorTerms`);
/// - required pod anti-affinity, both ways: the pod's own terms against the pods already in a
///   topology domain, and theirs against it. A domain is the nodes sharing the value of the
///   term's `topologyKey` label; for `kubernetes.io/hostname` a node without the label is its
///   own domain (named after the node).
///
/// Among the nodes that pass, the one with the fewest pods wins, then the first by name.
/// Pods that finished (Succeeded, Failed) hold no place. Not modelled: taints and tolerations,
/// resources, preferred terms, pod affinity, namespaceSelector other than `{}`.
enum SchedulingPolicy {
    enum Outcome: Equatable {
        case bind(node: String)
        case unschedulable(message: String)
    }

    /// The annotation a claim carries once a node was chosen for it, as with WaitForFirstConsumer.
    static let selectedNodeAnnotation = "volume.kubernetes.io/selected-node"
    static let hostnameLabel = "kubernetes.io/hostname"

    static func place(_ pod: Pod, nodes: [Node], podsOnNodes: [String: [Pod]], claims: [String: PersistentVolumeClaim]) -> Outcome {
        let nodes = nodes.sorted { $0.name < $1.name }
        let claimed: [PersistentVolumeClaim]
        switch claimsOf(pod, claims: claims) {
        case .failure(let problem): return .unschedulable(message: "0/\(nodes.count) nodes are available: \(problem.message).")
        case .success(let found): claimed = found
        }
        let pinned = claimed.lazy.compactMap { $0.metadata.annotations[selectedNodeAnnotation] }.first { !$0.isEmpty }
        let residents: [String: [Pod]] = podsOnNodes.mapValues { pods in
            pods.filter { $0.key != pod.key && !["Succeeded", "Failed"].contains($0.status.phase ?? "") }
        }
        var reasons: [String: Int] = [:]
        var candidates: [(name: String, load: Int)] = []
        for node in nodes {
            let reason: String? =
                if let pinned, pinned != node.name { "node(s) had volume node affinity conflict" }
                else if !node.isReady { "node(s) were not ready" }
                else if node.unschedulable { "node(s) were unschedulable" }
                else if !matchesNodeSelection(pod, node) { "node(s) didn't match Pod's node affinity/selector" }
                else if violatesAntiAffinity(pod, on: node, nodes: nodes, residents: residents) {
                    "node(s) didn't match pod anti-affinity rules"
                } else { nil }
            if let reason {
                reasons[reason, default: 0] += 1
            } else {
                candidates.append((node.name, residents[node.name]?.count ?? 0))
            }
        }
        if let best = candidates.min(by: { ($0.load, $0.name) < ($1.load, $1.name) }) {
            return .bind(node: best.name)
        }
        let detail = reasons.map { "\($0.value) \($0.key)" }.sorted().joined(separator: ", ")
        return .unschedulable(message: "0/\(nodes.count) nodes are available\(detail.isEmpty ? "" : ": \(detail)").")
    }

    struct ClaimProblem: Error, Equatable {
        var message: String
    }

    /// The claims a pod mounts, all of which must exist and not be terminating.
    static func claimsOf(_ pod: Pod, claims: [String: PersistentVolumeClaim]) -> Result<[PersistentVolumeClaim], ClaimProblem> {
        var found: [PersistentVolumeClaim] = []
        for name in pod.spec.volumes.compactMap(\.persistentVolumeClaimName) {
            guard let claim = claims[name] else { return .failure(ClaimProblem(message: "persistentvolumeclaim \"\(name)\" not found")) }
            if claim.metadata.deletionTimestamp != nil {
                return .failure(ClaimProblem(message: "persistentvolumeclaim \"\(name)\" is being deleted"))
            }
            found.append(claim)
        }
        return .success(found)
    }

    /// `nodeSelector`, and required node affinity: any of the terms, each with all of its
    /// expressions (In, NotIn, Exists, DoesNotExist, Gt, Lt on labels; `metadata.name` fields).
    static func matchesNodeSelection(_ pod: Pod, _ node: Node) -> Bool {
        let labels = node.metadata.labels
        guard pod.spec.nodeSelector.allSatisfy({ labels[$0.key] == $0.value }) else { return false }
        let required = affinity(pod)["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        guard let terms = required["nodeSelectorTerms"].arrayValue else { return true }
        return terms.contains { term in
            let expressions = term["matchExpressions"].arrayValue ?? []
            let fields = term["matchFields"].arrayValue ?? []
            guard !expressions.isEmpty || !fields.isEmpty else { return false }  // an empty term matches nothing
            return expressions.allSatisfy { expressionMatches($0, labels) }
                && fields.allSatisfy { $0["key"].stringValue == "metadata.name" && expressionMatches($0, ["metadata.name": node.name]) }
        }
    }

    /// Required anti-affinity, both ways, within the node's topology domain for each term.
    static func violatesAntiAffinity(_ pod: Pod, on node: Node, nodes: [Node], residents: [String: [Pod]]) -> Bool {
        func domainPods(_ key: String) -> [Pod] {
            guard let value = topologyValue(node, key) else { return [] }
            return nodes.filter { topologyValue($0, key) == value }.flatMap { residents[$0.name] ?? [] }
        }
        for term in antiAffinityTerms(pod) {
            if domainPods(term.topologyKey).contains(where: { term.matches($0) }) { return true }
        }
        for resident in residents.values.joined() {
            for term in antiAffinityTerms(resident) where term.matches(pod) {
                if domainPods(term.topologyKey).contains(where: { $0.key == resident.key }) { return true }
            }
        }
        return false
    }

    /// A node's place in a topology: its label value; for hostname, the node's name when unlabelled.
    static func topologyValue(_ node: Node, _ key: String) -> String? {
        node.metadata.labels[key] ?? (key == hostnameLabel ? node.name : nil)
    }

    struct AntiAffinityTerm {
        var topologyKey: String
        var selector: JSONValue
        /// nil: every namespace.
        var namespaces: Set<String>?

        func matches(_ other: Pod) -> Bool {
            if let namespaces, !namespaces.contains(other.namespace ?? "default") { return false }
            return SchedulingPolicy.matches(selector, other.metadata.labels)
        }
    }

    static func antiAffinityTerms(_ pod: Pod) -> [AntiAffinityTerm] {
        let terms = affinity(pod)["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"].arrayValue ?? []
        return terms.compactMap { term in
            guard let key = term["topologyKey"].stringValue, !key.isEmpty else { return nil }
            var namespaces: Set<String>? = Set(term["namespaces"].arrayValue?.compactMap(\.stringValue) ?? [])
            if term["namespaceSelector"].objectValue?.isEmpty == true {
                namespaces = nil  // `{}` selects every namespace
            } else if namespaces?.isEmpty == true {
                namespaces = [pod.namespace ?? "default"]
            }
            return AntiAffinityTerm(topologyKey: key, selector: term["labelSelector"], namespaces: namespaces)
        }
    }

    private static func affinity(_ pod: Pod) -> JSONValue { JSONValue.object(pod.spec.json)["affinity"] }

    /// A metav1.LabelSelector: matchLabels and matchExpressions. A missing selector matches
    /// nothing; an empty one matches everything.
    static func matches(_ selector: JSONValue, _ labels: [String: String]) -> Bool {
        guard case .object(let object) = selector else { return false }
        for (key, value) in object["matchLabels"]?.objectValue ?? [:] where labels[key] != value.stringValue {
            return false
        }
        return (object["matchExpressions"]?.arrayValue ?? []).allSatisfy { expressionMatches($0, labels) }
    }

    /// One requirement: In, NotIn, Exists, DoesNotExist, and for node selectors Gt and Lt.
    static func expressionMatches(_ expression: JSONValue, _ labels: [String: String]) -> Bool {
        guard let key = expression["key"].stringValue else { return false }
        let values = expression["values"].arrayValue?.compactMap(\.stringValue) ?? []
        let value = labels[key]
        switch expression["operator"].stringValue {
        case "In": return value.map(values.contains) ?? false
        case "NotIn": return !(value.map(values.contains) ?? false)
        case "Exists": return value != nil
        case "DoesNotExist": return value == nil
        case "Gt", "Lt":
            guard values.count == 1, let bound = Int64(values[0]), let actual = value.flatMap({ Int64($0) }) else { return false }
            return expression["operator"].stringValue == "Gt" ? actual > bound : actual < bound
        default: return false
        }
    }
}
