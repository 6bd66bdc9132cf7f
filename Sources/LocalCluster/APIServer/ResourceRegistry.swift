import KubeAPI
import Synchronization

/// One served resource: where it lives, how it is named, what it supports.
public struct ServedResource: Sendable, Equatable {
    public var group: String
    public var version: String
    public var kind: String
    public var plural: String
    public var singular: String
    public var namespaced: Bool
    public var shortNames: [String]
    public var categories: [String]
    /// Subresources beyond the object itself: "status", "log".
    public var subresources: Set<String>
    /// A CRD's additionalPrinterColumns.
    public var printerColumns: [PrinterColumn]
    /// A CRD's structural schema for this version, when it has one.
    public var schema: JSONObject?
    /// The CRD that registered this resource.
    public var crdName: String?

    public var apiVersion: String { group.isEmpty ? version : "\(group)/\(version)" }
    public var groupVersion: String { apiVersion }
    /// The storage key: the same object may be served under several versions of a CRD.
    public var storageKey: String { group.isEmpty ? plural : "\(plural).\(group)" }
    public var hasStatus: Bool { subresources.contains("status") }

    public var verbs: [String] {
        ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
    }

    public struct PrinterColumn: Sendable, Equatable {
        public var name: String
        public var type: String
        public var jsonPath: String
        public var description: String
        public var priority: Int
        public var format: String?
    }

    init(group: String, version: String, kind: String, plural: String, namespaced: Bool, shortNames: [String] = [],
         categories: [String] = [], subresources: Set<String> = []) {
        self.group = group
        self.version = version
        self.kind = kind
        self.plural = plural
        self.singular = kind.lowercased()
        self.namespaced = namespaced
        self.shortNames = shortNames
        self.categories = categories
        self.subresources = subresources
        self.printerColumns = []
        self.schema = nil
        self.crdName = nil
    }
}

/// The kinds this server serves: the built-in ones, plus every version of every CRD that is
/// established. Thread-safe; CRD changes take effect at once.
public final class ResourceRegistry: Sendable {
    private let custom = Mutex<[String: [ServedResource]]>([:])  // CRD name -> served versions
    public let builtIn: [ServedResource]

    public init() {
        let all = ["all"]
        builtIn = [
            ServedResource(group: "", version: "v1", kind: "Namespace", plural: "namespaces", namespaced: false, shortNames: ["ns"], subresources: ["status"]),
            ServedResource(group: "", version: "v1", kind: "Pod", plural: "pods", namespaced: true, shortNames: ["po"], categories: all, subresources: ["status", "log", "binding"]),
            ServedResource(group: "", version: "v1", kind: "Service", plural: "services", namespaced: true, shortNames: ["svc"], categories: all, subresources: ["status"]),
            ServedResource(group: "", version: "v1", kind: "Endpoints", plural: "endpoints", namespaced: true, shortNames: ["ep"]),
            ServedResource(group: "", version: "v1", kind: "Secret", plural: "secrets", namespaced: true),
            ServedResource(group: "", version: "v1", kind: "ConfigMap", plural: "configmaps", namespaced: true, shortNames: ["cm"]),
            ServedResource(group: "", version: "v1", kind: "ServiceAccount", plural: "serviceaccounts", namespaced: true, shortNames: ["sa"]),
            ServedResource(group: "", version: "v1", kind: "PersistentVolumeClaim", plural: "persistentvolumeclaims", namespaced: true, shortNames: ["pvc"], subresources: ["status"]),
            ServedResource(group: "", version: "v1", kind: "PersistentVolume", plural: "persistentvolumes", namespaced: false, shortNames: ["pv"], subresources: ["status"]),
            ServedResource(group: "", version: "v1", kind: "Node", plural: "nodes", namespaced: false, shortNames: ["no"], subresources: ["status"]),
            ServedResource(group: "", version: "v1", kind: "Event", plural: "events", namespaced: true, shortNames: ["ev"]),
            ServedResource(group: "apps", version: "v1", kind: "StatefulSet", plural: "statefulsets", namespaced: true, shortNames: ["sts"], categories: all, subresources: ["status", "scale"]),
            ServedResource(group: "apps", version: "v1", kind: "Deployment", plural: "deployments", namespaced: true, shortNames: ["deploy"], categories: all, subresources: ["status", "scale"]),
            ServedResource(group: "events.k8s.io", version: "v1", kind: "Event", plural: "events", namespaced: true, shortNames: ["ev"]),
            ServedResource(group: "coordination.k8s.io", version: "v1", kind: "Lease", plural: "leases", namespaced: true),
            ServedResource(group: "rbac.authorization.k8s.io", version: "v1", kind: "Role", plural: "roles", namespaced: true),
            ServedResource(group: "rbac.authorization.k8s.io", version: "v1", kind: "RoleBinding", plural: "rolebindings", namespaced: true),
            ServedResource(group: "rbac.authorization.k8s.io", version: "v1", kind: "ClusterRole", plural: "clusterroles", namespaced: false),
            ServedResource(group: "rbac.authorization.k8s.io", version: "v1", kind: "ClusterRoleBinding", plural: "clusterrolebindings", namespaced: false),
            ServedResource(group: "apiextensions.k8s.io", version: "v1", kind: "CustomResourceDefinition", plural: "customresourcedefinitions", namespaced: false, shortNames: ["crd", "crds"], subresources: ["status"]),
        ]
    }

    /// Every served resource, built-in first.
    public var all: [ServedResource] {
        builtIn + custom.withLock { $0.values.flatMap { $0 } }.sorted { ($0.group, $0.plural, $0.version) < ($1.group, $1.plural, $1.version) }
    }

    /// The resource for a group/version and plural.
    public func find(group: String, version: String, plural: String) -> ServedResource? {
        all.first { $0.group == group && $0.version == version && $0.plural == plural }
    }

    /// Groups and their versions, in a stable order with the core group first.
    public var groups: [(name: String, versions: [String])] {
        var order: [String] = []
        var versions: [String: [String]] = [:]
        for resource in all {
            if versions[resource.group] == nil { order.append(resource.group) }
            if !(versions[resource.group]?.contains(resource.version) ?? false) { versions[resource.group, default: []].append(resource.version) }
        }
        return order.map { ($0, versions[$0] ?? []) }
    }

    /// Registers (or replaces) the served versions of a CRD.
    func register(crdName: String, resources: [ServedResource]) {
        custom.withLock { $0[crdName] = resources }
    }

    func unregister(crdName: String) {
        custom.withLock { $0[crdName] = nil }
    }
}
