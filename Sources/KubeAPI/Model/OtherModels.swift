import Foundation

public struct StatefulSet: KubeObject {
    public static let resourceType = ResourceType.statefulSets
    public var json: JSONObject
    public init(json: JSONObject) { self.json = json }

    public var replicas: Int? {
        get { JSONValue.object(json)["spec"]["replicas"].intValue.map(Int.init) }
        set { json.setValue(newValue.map { .int(Int64($0)) } ?? .null, at: ["spec", "replicas"]) }
    }
    public var serviceName: String? { JSONValue.object(json)["spec"]["serviceName"].stringValue }
    public var podManagementPolicy: String? { JSONValue.object(json)["spec"]["podManagementPolicy"].stringValue }
    public var updateStrategyType: String? { JSONValue.object(json)["spec"]["updateStrategy"]["type"].stringValue }
    public var template: JSONObject { JSONValue.object(json)["spec"]["template"].objectValue ?? [:] }
    public var volumeClaimTemplates: [PersistentVolumeClaim] {
        (JSONValue.object(json)["spec"]["volumeClaimTemplates"].arrayValue ?? []).compactMap {
            $0.objectValue.map(PersistentVolumeClaim.init)
        }
    }
    public var statusReplicas: Int { JSONValue.object(json)["status"]["replicas"].intValue.map(Int.init) ?? 0 }
    public var readyReplicas: Int { JSONValue.object(json)["status"]["readyReplicas"].intValue.map(Int.init) ?? 0 }
}

public struct Lease: KubeObject {
    public static let resourceType = ResourceType.leases
    public var json: JSONObject
    public init(json: JSONObject) { self.json = json }

    public var spec: LeaseSpec { get { child("spec") } set { setChild("spec", newValue) } }
}

public struct LeaseSpec: JSONBacked {
    public var json: JSONObject
    public init(json: JSONObject) { self.json = json }

    public var holderIdentity: String? { get { string("holderIdentity") } set { setString("holderIdentity", newValue) } }
    public var leaseDurationSeconds: Int? { get { int("leaseDurationSeconds") } set { setInt("leaseDurationSeconds", newValue) } }
    public var acquireTime: Date? { get { time("acquireTime") } set { setTime("acquireTime", newValue, micro: true) } }
    public var renewTime: Date? { get { time("renewTime") } set { setTime("renewTime", newValue, micro: true) } }
    public var leaseTransitions: Int? { get { int("leaseTransitions") } set { setInt("leaseTransitions", newValue) } }
}

public struct CustomResourceDefinition: KubeObject {
    public static let resourceType = ResourceType.customResourceDefinitions
    public var json: JSONObject
    public init(json: JSONObject) { self.json = json }

    public var group: String? { JSONValue.object(json)["spec"]["group"].stringValue }
    public var plural: String? { JSONValue.object(json)["spec"]["names"]["plural"].stringValue }
    public var kindName: String? { JSONValue.object(json)["spec"]["names"]["kind"].stringValue }
    public var shortNames: [String] { JSONValue.object(json)["spec"]["names"]["shortNames"].arrayValue?.compactMap(\.stringValue) ?? [] }
    public var scope: String? { JSONValue.object(json)["spec"]["scope"].stringValue }
    public var servedVersions: [String] {
        (JSONValue.object(json)["spec"]["versions"].arrayValue ?? []).compactMap { version in
            version["served"].boolValue == true ? version["name"].stringValue : nil
        }
    }
}

/// A reference to the object an event is about.
public struct ObjectReference: JSONBacked, Hashable {
    public var json: JSONObject
    public init(json: JSONObject) { self.json = json }

    public init(_ object: some APIObject) {
        self.init(json: [:])
        apiVersion = object.apiVersion
        kind = object.kind
        name = object.metadata.name ?? ""
        namespace = object.metadata.namespace
        uid = object.metadata.uid
        resourceVersion = object.metadata.resourceVersion
    }

    public var name: String { get { string("name") ?? "" } set { setString("name", newValue) } }
    public var namespace: String? { get { string("namespace") } set { setString("namespace", newValue) } }
    public var uid: String? { get { string("uid") } set { setString("uid", newValue) } }
    public var resourceVersion: String? { get { string("resourceVersion") } set { setString("resourceVersion", newValue) } }
    public var fieldPath: String? { get { string("fieldPath") } set { setString("fieldPath", newValue) } }
}

/// A core/v1 Event, what `kubectl describe` shows.
public struct CoreEvent: KubeObject {
    public static let resourceType = ResourceType.coreEvents
    public var json: JSONObject
    public init(json: JSONObject) { self.json = json }

    public var involvedObject: ObjectReference { get { child("involvedObject") } set { setChild("involvedObject", newValue) } }
    public var reason: String? { get { string("reason") } set { setString("reason", newValue) } }
    public var message: String? { get { string("message") } set { setString("message", newValue) } }
    /// Normal or Warning.
    public var type: String? { get { string("type") } set { setString("type", newValue) } }
    public var count: Int { get { int("count") ?? 1 } set { setInt("count", newValue) } }
    public var firstTimestamp: Date? { get { time("firstTimestamp") } set { setTime("firstTimestamp", newValue) } }
    public var lastTimestamp: Date? { get { time("lastTimestamp") } set { setTime("lastTimestamp", newValue) } }
    public var sourceComponent: String? {
        get { JSONValue.object(json)["source"]["component"].stringValue }
        set { json.setValue(newValue.map(JSONValue.string) ?? .null, at: ["source", "component"]) }
    }
    public var reportingComponent: String? { get { string("reportingComponent") } set { setString("reportingComponent", newValue) } }
    public var reportingInstance: String? { get { string("reportingInstance") } set { setString("reportingInstance", newValue) } }
}

/// An events.k8s.io/v1 Event.
public struct Event: KubeObject {
    public static let resourceType = ResourceType.events
    public var json: JSONObject
    public init(json: JSONObject) { self.json = json }

    public var regarding: ObjectReference { get { child("regarding") } set { setChild("regarding", newValue) } }
    public var reason: String? { get { string("reason") } set { setString("reason", newValue) } }
    public var note: String? { get { string("note") } set { setString("note", newValue) } }
    public var type: String? { get { string("type") } set { setString("type", newValue) } }
    public var action: String? { get { string("action") } set { setString("action", newValue) } }
    public var eventTime: Date? { get { time("eventTime") } set { setTime("eventTime", newValue, micro: true) } }
    public var reportingController: String? { get { string("reportingController") } set { setString("reportingController", newValue) } }
    public var reportingInstance: String? { get { string("reportingInstance") } set { setString("reportingInstance", newValue) } }
    public var seriesCount: Int? { JSONValue.object(json)["series"]["count"].intValue.map(Int.init) }
}
