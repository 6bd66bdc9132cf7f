import Foundation
import KubeAPI
import Testing

/// deploy/ for a real cluster (issue #7): the kustomization as a real API server's dry run sees
/// it, through the real kubectl, and the RBAC read for least privilege.
@Suite("deploy/ manifests", .serialized, .timeLimit(.minutes(5)))
struct DeployManifestTests {
    static let deploy = "\(packageRoot)/deploy"

    /// The documents of one file under deploy/, as mappings.
    static func documents(_ file: String) throws -> [JSONObject] {
        let text = try String(contentsOfFile: "\(deploy)/\(file)", encoding: .utf8)
        return try JSONValue.parseYAMLDocuments(text, source: "deploy/\(file)").map { document in
            guard let object = document.objectValue else { throw KubeAPIError.configuration("deploy/\(file): a document is not a mapping") }
            return object
        }
    }

    /// How `kubectl apply` names an object in its output: `deployment.apps/tenops-operator`.
    static func kubectlName(_ object: JSONObject) -> String {
        let value = JSONValue.object(object)
        let apiVersion = value["apiVersion"].stringValue ?? ""
        let group = apiVersion.contains("/") ? String(apiVersion.split(separator: "/")[0]) : ""
        let kind = (value["kind"].stringValue ?? "?").lowercased()
        return "\(group.isEmpty ? kind : "\(kind).\(group)")/\(value["metadata"]["name"].stringValue ?? "?")"
    }

    static func strings(_ value: JSONValue) -> [String] { value.arrayValue?.compactMap(\.stringValue) ?? [] }

    @Test("kubectl apply -k deploy --dry-run=server: every object is accepted by the API server, nothing is stored")
    func serverDryRun() async throws {
        let kustomization = try Self.documents("kustomization.yaml")
        let files = Self.strings(JSONValue.object(try #require(kustomization.first))["resources"])
        #expect(files == ["namespace.yaml", "crd.yaml", "rbac.yaml", "operator.yaml", "sample.yaml"])
        let objects = try files.flatMap { try Self.documents($0) }
        let names = objects.map(Self.kubectlName)
        #expect(Set(names).count == names.count, "an object appears twice: \(names)")

        try await withLocalServer { kubectl in
            // Two objects are created for real first; a dry run cannot stand in for them:
            // - the Namespace: a server dry run does not store it, so the dry runs of the
            //   objects in tenops-system are refused with `Error from server (NotFound): error
            //   when creating "deploy": namespaces "tenops-system" not found`, as on a real
            //   cluster;
            // - the CRD: kubectl looks up every kind before it applies anything, so without the
            //   CRD the TimesTenClassic of sample.yaml is refused (this server's discovery answers
            //   `error validating data: the server could not find the requested resource`, a
            //   real cluster's `no matches for kind "TimesTenClassic"`).
            // Both then show up in the dry run as "unchanged".
            let namespace = try await kubectl(["apply", "-f", "\(Self.deploy)/namespace.yaml"], nil)
            #expect(namespace.status == 0 && namespace.out.contains("namespace/tenops-system created"), "\(namespace)")
            let crd = try await kubectl(["apply", "-f", "\(Self.deploy)/crd.yaml"], nil)
            #expect(crd.status == 0 && crd.out.contains("timestenclassics.tenops.io created"), "\(crd)")
            let established = try await kubectl(
                ["wait", "--for=condition=Established", "--timeout=60s", "crd/timestenclassics.tenops.io"], nil)
            #expect(established.status == 0, "\(established)")

            let dryRun = try await kubectl(["apply", "-k", Self.deploy, "--dry-run=server"], nil)
            #expect(dryRun.status == 0, "\(dryRun)")
            #expect(!dryRun.err.contains("rror"), "\(dryRun)")
            let lines = dryRun.out.split(separator: "\n").map(String.init)
            #expect(lines.count == objects.count, "\(dryRun)")
            for name in names {
                let isReal = name == "namespace/tenops-system" || name == "customresourcedefinition.apiextensions.k8s.io/timestenclassics.tenops.io"
                let expected = "\(name) \(isReal ? "unchanged" : "created") (server dry run)"
                #expect(lines.contains(expected), "expected \"\(expected)\" in:\n\(dryRun)")
            }

            // A dry run stores nothing.
            for (resource, namespace, name) in [("deployment", "tenops-system", "tenops-operator"),
                                                 ("serviceaccount", "tenops-system", "tenops-operator"),
                                                 ("role", "default", "tenops-operator"),
                                                 ("timestenclassic", "default", "sample")] {
                let get = try await kubectl(["get", resource, name, "-n", namespace], nil)
                #expect(get.status != 0 && get.err.contains("NotFound"), "\(resource) \(namespace)/\(name): \(get)")
            }
            let clusterRole = try await kubectl(["get", "clusterrole", "tenops-operator-nodes"], nil)
            #expect(clusterRole.status != 0 && clusterRole.err.contains("NotFound"), "\(clusterRole)")
        }
    }

    @Test("rbac.yaml is least privilege: no wildcards, no deleting Secrets, nodes read only; and it grants what the operator uses")
    func leastPrivilege() throws {
        let documents = try Self.documents("rbac.yaml")
        func kind(_ object: JSONObject) -> String { JSONValue.object(object)["kind"].stringValue ?? "" }
        func name(_ object: JSONObject) -> String { JSONValue.object(object)["metadata"]["name"].stringValue ?? "" }
        func namespace(_ object: JSONObject) -> String? { JSONValue.object(object)["metadata"]["namespace"].stringValue }
        #expect(documents.map(kind).sorted() == ["ClusterRole", "ClusterRoleBinding", "Role", "Role", "RoleBinding", "RoleBinding", "ServiceAccount"])

        let serviceAccount = try #require(documents.first { kind($0) == "ServiceAccount" })
        #expect(name(serviceAccount) == "tenops-operator" && namespace(serviceAccount) == "tenops-system")

        struct Grant: Hashable { var scope: String; var group: String; var resource: String; var verb: String }
        var grants: Set<Grant> = []
        let roles = documents.filter { ["Role", "ClusterRole"].contains(kind($0)) }
        for role in roles {
            let scope = kind(role) == "ClusterRole" ? "cluster" : (namespace(role) ?? "?")
            let rules = JSONValue.object(role)["rules"].arrayValue ?? []
            #expect(!rules.isEmpty, "\(kind(role)) \(name(role)) has no rules")
            for rule in rules {
                let groups = Self.strings(rule["apiGroups"]), resources = Self.strings(rule["resources"]), verbs = Self.strings(rule["verbs"])
                let context = "\(kind(role)) \(name(role)): \(rule)"
                #expect(!groups.isEmpty && !resources.isEmpty && !verbs.isEmpty, "\(context)")
                for field in [groups, resources, verbs, Self.strings(rule["resourceNames"])] {
                    #expect(!field.contains { $0.contains("*") }, "a wildcard in \(context)")
                }
                #expect(rule["nonResourceURLs"].isNull, "\(context)")
                #expect(Set(verbs).isDisjoint(with: ["escalate", "bind", "impersonate", "deletecollection"]), "\(context)")
                if resources.contains("secrets") { #expect(!verbs.contains("delete"), "Secrets may be deleted: \(context)") }
                for group in groups { for resource in resources { for verb in verbs {
                    grants.insert(Grant(scope: scope, group: group, resource: resource, verb: verb))
                } } }
            }
        }

        // The ClusterRole reads nodes and nothing else.
        let cluster = grants.filter { $0.scope == "cluster" }
        #expect(Set(cluster.map(\.resource)) == ["nodes"] && Set(cluster.map(\.group)) == [""])
        #expect(Set(cluster.map(\.verb)) == ["get", "list", "watch"])

        // What the engine does (PairObserver's informers, PairActor, PairAgentActor, PairMetadata,
        // EventRecorder, LeaderElector) is granted, in the namespace it belongs to.
        let needed: [(scope: String, group: String, resource: String, verbs: [String])] = [
            ("default", "tenops.io", "timestenclassics", ["get", "list", "watch", "update", "patch"]),
            ("default", "tenops.io", "timestenclassics/status", ["update", "patch"]),
            ("default", "apps", "statefulsets", ["get", "list", "watch", "create", "update", "patch"]),
            ("default", "", "services", ["get", "list", "watch", "create", "update", "patch"]),
            ("default", "", "secrets", ["get", "list", "watch", "create", "update"]),
            ("default", "", "configmaps", ["get", "list", "watch"]),
            ("default", "", "pods", ["get", "list", "watch", "delete"]),
            ("default", "", "persistentvolumeclaims", ["get", "list", "watch", "delete"]),
            ("default", "", "events", ["create", "patch"]),
            ("default", "events.k8s.io", "events", ["create", "patch"]),
            ("tenops-system", "coordination.k8s.io", "leases", ["get", "create", "update"]),
            ("cluster", "", "nodes", ["get", "list", "watch"]),
        ]
        for need in needed {
            for verb in need.verbs {
                #expect(grants.contains(Grant(scope: need.scope, group: need.group, resource: need.resource, verb: verb)),
                        "\(verb) \(need.group)/\(need.resource) in \(need.scope) is not granted")
            }
        }
        // Nothing on CRDs, nothing that creates pods: the installer and the StatefulSet do that.
        #expect(!grants.contains { $0.group == "apiextensions.k8s.io" })
        #expect(Set(grants.filter { $0.resource == "pods" }.map(\.verb)) == ["get", "list", "watch", "delete"])

        // Every binding gives its own role to the operator's ServiceAccount, and only to it.
        for binding in documents.filter({ ["RoleBinding", "ClusterRoleBinding"].contains(kind($0)) }) {
            let value = JSONValue.object(binding)
            let roleKind = kind(binding) == "RoleBinding" ? "Role" : "ClusterRole"
            #expect(value["roleRef"]["kind"].stringValue == roleKind, "\(name(binding))")
            let role = roles.first { kind($0) == roleKind && name($0) == value["roleRef"]["name"].stringValue && namespace($0) == namespace(binding) }
            #expect(role != nil, "\(kind(binding)) \(name(binding)) names a role this file does not define")
            let subjects = value["subjects"].arrayValue ?? []
            #expect(subjects.count == 1 && subjects.first?["kind"].stringValue == "ServiceAccount"
                    && subjects.first?["name"].stringValue == "tenops-operator" && subjects.first?["namespace"].stringValue == "tenops-system",
                    "\(name(binding)): \(subjects)")
        }
    }

    @Test("operator.yaml: two replicas electing a leader, probes on 8080, non-root with a read-only root, no capabilities, its ServiceAccount and -n default")
    func operatorDeployment() throws {
        let documents = try Self.documents("operator.yaml")
        let deployment = JSONValue.object(try #require(documents.first { JSONValue.object($0)["kind"].stringValue == "Deployment" }))
        #expect(deployment["metadata"]["name"].stringValue == "tenops-operator" && deployment["metadata"]["namespace"].stringValue == "tenops-system")
        let pod = deployment["spec"]["template"]["spec"]
        #expect(pod["serviceAccountName"].stringValue == "tenops-operator")
        #expect(pod["securityContext"]["runAsNonRoot"].boolValue == true)
        let containers = pod["containers"].arrayValue ?? []
        #expect(containers.count == 1)
        let container = try #require(containers.first)
        #expect(container["image"].stringValue == "tenops:latest" && container["imagePullPolicy"].stringValue == "IfNotPresent")
        #expect(Self.strings(container["command"]) == ["tenops", "operator", "-n", "default"])
        let security = container["securityContext"]
        #expect(security["runAsNonRoot"].boolValue == true)
        #expect((security["runAsUser"].intValue ?? pod["securityContext"]["runAsUser"].intValue ?? 0) > 0)
        #expect(security["readOnlyRootFilesystem"].boolValue == true && security["allowPrivilegeEscalation"].boolValue == false)
        #expect(Self.strings(security["capabilities"]["drop"]) == ["ALL"])
        #expect(container["resources"]["limits"]["memory"].stringValue != nil && container["resources"]["requests"]["cpu"].stringValue != nil)
        #expect((container["ports"].arrayValue ?? []).contains { $0["name"].stringValue == "http" && $0["containerPort"].intValue == 8080 })
        // Two replicas elect a leader through a Lease in their own namespace (POD_NAMESPACE), so a
        // rolling update is safe: no Recreate strategy.
        #expect(deployment["spec"]["replicas"].intValue == 2)
        #expect(deployment["spec"]["strategy"]["type"].stringValue != "Recreate")
        let env = container["env"].arrayValue ?? []
        let podNamespace = env.first { $0["name"].stringValue == "POD_NAMESPACE" }
        #expect(podNamespace?["valueFrom"]["fieldRef"]["fieldPath"].stringValue == "metadata.namespace", "\(env)")
        // In-cluster credentials come from the service account: no kubeconfig is handed over.
        #expect(!env.contains { $0["name"].stringValue == "KUBECONFIG" }, "\(env)")
        #expect(!documents.contains { JSONValue.object($0)["kind"].stringValue == "ConfigMap" })
        // The probes are served by `tenops operator` on the http port (8080).
        #expect(container["livenessProbe"]["httpGet"]["path"].stringValue == "/healthz")
        #expect(container["readinessProbe"]["httpGet"]["path"].stringValue == "/readyz")
        for probe in ["livenessProbe", "readinessProbe"] {
            let port = container[probe]["httpGet"]["port"]
            #expect(port.stringValue == "http" || port.intValue == 8080, "\(probe): \(port)")
        }
        // The PodDisruptionBudget is a comment: the local API server does not serve policy/v1.
        #expect(!documents.contains { JSONValue.object($0)["kind"].stringValue == "PodDisruptionBudget" })
    }
}
