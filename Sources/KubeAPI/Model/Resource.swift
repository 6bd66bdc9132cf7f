/// Where a kind lives in the REST API: group, version, plural and scope.
public struct ResourceType: Sendable, Hashable, CustomStringConvertible {
    public let group: String
    public let version: String
    public let kind: String
    public let plural: String
    public let namespaced: Bool

    public init(group: String, version: String, kind: String, plural: String, namespaced: Bool) {
        self.group = group
        self.version = version
        self.kind = kind
        self.plural = plural
        self.namespaced = namespaced
    }

    /// `v1` for the core group, `GROUP/VERSION` otherwise.
    public var apiVersion: String { group.isEmpty ? version : "\(group)/\(version)" }

    public var description: String { group.isEmpty ? plural : "\(plural).\(group)" }

    /// `/api/v1` or `/apis/GROUP/VERSION`.
    public var apiPrefix: String { group.isEmpty ? "/api/\(version)" : "/apis/\(group)/\(version)" }

    /// The collection path; `namespace` nil means every namespace (or a cluster-scoped kind).
    public func collectionPath(namespace: String?) -> String {
        if namespaced, let namespace {
            return "\(apiPrefix)/namespaces/\(PathSegment.escape(namespace))/\(plural)"
        }
        return "\(apiPrefix)/\(plural)"
    }

    public func objectPath(namespace: String?, name: String, subresource: String? = nil) -> String {
        var path = "\(collectionPath(namespace: namespaced ? namespace : nil))/\(PathSegment.escape(name))"
        if let subresource { path += "/\(subresource)" }
        return path
    }
}

enum PathSegment {
    /// Percent-escapes a path segment. Kubernetes names are DNS labels, but a hostile name must
    /// never change which path is requested.
    static func escape(_ segment: String) -> String {
        var allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~:@".utf8)
        allowed.remove(UInt8(ascii: "/"))
        var result = ""
        for byte in segment.utf8 {
            if allowed.contains(byte) {
                result.append(Character(Unicode.Scalar(byte)))
            } else {
                result += "%" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
            }
        }
        if result == "." || result == ".." { return result.replacingOccurrences(of: ".", with: "%2E") }
        return result
    }
}

extension ResourceType {
    public static let pods = ResourceType(group: "", version: "v1", kind: "Pod", plural: "pods", namespaced: true)
    public static let nodes = ResourceType(group: "", version: "v1", kind: "Node", plural: "nodes", namespaced: false)
    public static let services = ResourceType(group: "", version: "v1", kind: "Service", plural: "services", namespaced: true)
    public static let secrets = ResourceType(group: "", version: "v1", kind: "Secret", plural: "secrets", namespaced: true)
    public static let configMaps = ResourceType(group: "", version: "v1", kind: "ConfigMap", plural: "configmaps", namespaced: true)
    public static let persistentVolumeClaims = ResourceType(
        group: "", version: "v1", kind: "PersistentVolumeClaim", plural: "persistentvolumeclaims", namespaced: true)
    public static let namespaces = ResourceType(group: "", version: "v1", kind: "Namespace", plural: "namespaces", namespaced: false)
    public static let coreEvents = ResourceType(group: "", version: "v1", kind: "Event", plural: "events", namespaced: true)
    public static let events = ResourceType(group: "events.k8s.io", version: "v1", kind: "Event", plural: "events", namespaced: true)
    public static let statefulSets = ResourceType(group: "apps", version: "v1", kind: "StatefulSet", plural: "statefulsets", namespaced: true)
    public static let leases = ResourceType(group: "coordination.k8s.io", version: "v1", kind: "Lease", plural: "leases", namespaced: true)
    public static let customResourceDefinitions = ResourceType(
        group: "apiextensions.k8s.io", version: "v1", kind: "CustomResourceDefinition", plural: "customresourcedefinitions",
        namespaced: false)
}
