import Foundation

/// A Kubernetes object of a known kind, as a view onto its JSON.
public protocol KubeObject: APIObject {
    static var resourceType: ResourceType { get }
}

extension KubeObject {
    /// A new object of this kind with apiVersion, kind, name and namespace set.
    public init(name: String, namespace: String? = nil) {
        self.init(json: [
            "apiVersion": .string(Self.resourceType.apiVersion),
            "kind": .string(Self.resourceType.kind),
        ])
        metadata.name = name
        if Self.resourceType.namespaced { metadata.namespace = namespace }
    }
}

extension JSONBacked {
    public var apiVersion: String? { get { string("apiVersion") } set { setString("apiVersion", newValue) } }
    public var kind: String? { get { string("kind") } set { setString("kind", newValue) } }
}

/// A whole API object, with metadata: a typed `KubeObject` or an `UnstructuredObject`. The
/// metadata shortcuts live here, not on every `JSONBacked`, so that a part of an object (an
/// OwnerReference, a Container) cannot reach for a `metadata` it does not have.
public protocol APIObject: JSONBacked {}

extension APIObject {
    public var metadata: ObjectMeta { get { child("metadata") } set { setChild("metadata", newValue) } }

    public var name: String { metadata.name ?? "" }
    public var namespace: String? { metadata.namespace }
    public var resourceVersion: String? { metadata.resourceVersion }
    public var uid: String? { metadata.uid }

    /// `namespace/name`, or `name` for cluster-scoped objects: the key used by caches and queues.
    public var key: ObjectKey { ObjectKey(namespace: metadata.namespace, name: metadata.name ?? "") }
}

/// Any object, kind unknown to the client: custom resources and everything without a model.
public struct UnstructuredObject: APIObject, Hashable {
    public var json: JSONObject
    public init(json: JSONObject) { self.json = json }
}

/// `namespace/name`, the identity of an object within its kind.
public struct ObjectKey: Sendable, Hashable, CustomStringConvertible, Comparable {
    public var namespace: String?
    public var name: String

    public init(namespace: String?, name: String) {
        self.namespace = namespace.flatMap { $0.isEmpty ? nil : $0 }
        self.name = name
    }

    /// Parses `ns/name` or `name`.
    public init(_ text: String) {
        if let slash = text.firstIndex(of: "/") {
            self.init(namespace: String(text[..<slash]), name: String(text[text.index(after: slash)...]))
        } else {
            self.init(namespace: nil, name: text)
        }
    }

    public var description: String { namespace.map { "\($0)/\(name)" } ?? name }

    /// By namespace (none first), then name. A store sorts its keys at every list, so this
    /// compares the parts rather than build `description` twice per comparison.
    public static func < (lhs: ObjectKey, rhs: ObjectKey) -> Bool {
        switch (lhs.namespace, rhs.namespace) {
        case (nil, .some): return true
        case (.some, nil): return false
        case (let left?, let right?) where left != right: return left < right
        default: return lhs.name < rhs.name
        }
    }
}

public struct ObjectMeta: JSONBacked {
    public var json: JSONObject
    public init(json: JSONObject) { self.json = json }

    public var name: String? { get { string("name") } set { setString("name", newValue) } }
    public var generateName: String? { get { string("generateName") } set { setString("generateName", newValue) } }
    public var namespace: String? { get { string("namespace") } set { setString("namespace", newValue) } }
    public var uid: String? { get { string("uid") } set { setString("uid", newValue) } }
    public var resourceVersion: String? { get { string("resourceVersion") } set { setString("resourceVersion", newValue) } }
    public var generation: Int? { get { int("generation") } set { setInt("generation", newValue) } }
    public var creationTimestamp: Date? { get { time("creationTimestamp") } set { setTime("creationTimestamp", newValue) } }
    public var deletionTimestamp: Date? { get { time("deletionTimestamp") } set { setTime("deletionTimestamp", newValue) } }
    public var labels: [String: String] { get { stringMap("labels") } set { setStringMap("labels", newValue) } }
    public var annotations: [String: String] { get { stringMap("annotations") } set { setStringMap("annotations", newValue) } }
    public var finalizers: [String] { get { strings("finalizers") } set { setStrings("finalizers", newValue) } }
    public var ownerReferences: [OwnerReference] {
        get { children("ownerReferences") }
        set { setChildren("ownerReferences", newValue) }
    }
    /// The owner that is the controller, if any.
    public var controllerReference: OwnerReference? { ownerReferences.first { $0.controller == true } }
}

public struct OwnerReference: JSONBacked {
    public var json: JSONObject
    public init(json: JSONObject) { self.json = json }

    public init(owner: some APIObject, controller: Bool = true, blockOwnerDeletion: Bool = true) {
        self.init(json: [:])
        apiVersion = owner.apiVersion
        kind = owner.kind
        name = owner.metadata.name ?? ""
        uid = owner.metadata.uid ?? ""
        self.controller = controller
        self.blockOwnerDeletion = blockOwnerDeletion
    }

    public var name: String { get { string("name") ?? "" } set { setString("name", newValue) } }
    public var uid: String { get { string("uid") ?? "" } set { setString("uid", newValue) } }
    public var controller: Bool? { get { bool("controller") } set { setBool("controller", newValue) } }
    public var blockOwnerDeletion: Bool? { get { bool("blockOwnerDeletion") } set { setBool("blockOwnerDeletion", newValue) } }
}

/// A status condition, as used by Pods, Nodes, StatefulSets and custom resources.
public struct Condition: JSONBacked {
    public var json: JSONObject
    public init(json: JSONObject) { self.json = json }

    public init(type: String, status: String, reason: String? = nil, message: String? = nil, lastTransitionTime: Date? = nil) {
        self.init(json: [:])
        self.type = type
        self.status = status
        self.reason = reason
        self.message = message
        self.lastTransitionTime = lastTransitionTime
    }

    public var type: String { get { string("type") ?? "" } set { setString("type", newValue) } }
    public var status: String { get { string("status") ?? "Unknown" } set { setString("status", newValue) } }
    public var reason: String? { get { string("reason") } set { setString("reason", newValue) } }
    public var message: String? { get { string("message") } set { setString("message", newValue) } }
    public var lastTransitionTime: Date? { get { time("lastTransitionTime") } set { setTime("lastTransitionTime", newValue) } }
    public var lastHeartbeatTime: Date? { get { time("lastHeartbeatTime") } set { setTime("lastHeartbeatTime", newValue) } }
    public var isTrue: Bool { status == "True" }
}

extension Array where Element == Condition {
    public subscript(type type: String) -> Condition? { first { $0.type == type } }
}
