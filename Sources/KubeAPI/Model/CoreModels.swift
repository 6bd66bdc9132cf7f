import Foundation

// Typed views for the kinds TenOps touches. Each exposes the fields TenOps reads or writes;
// everything else stays in `json` and goes back to the server as it came.

public struct Pod: KubeObject {
    public static let resourceType = ResourceType.pods
    public var json: JSONObject
    public init(json: JSONObject) { self.json = json }

    public var spec: PodSpec { get { child("spec") } set { setChild("spec", newValue) } }
    public var status: PodStatus { get { child("status") } set { setChild("status", newValue) } }

    /// True when the Ready condition is True.
    public var isReady: Bool { status.conditions[type: "Ready"]?.isTrue ?? false }
}

public struct PodSpec: JSONBacked {
    public var json: JSONObject
    public init(json: JSONObject) { self.json = json }

    public var nodeName: String? { get { string("nodeName") } set { setString("nodeName", newValue) } }
    public var hostname: String? { get { string("hostname") } set { setString("hostname", newValue) } }
    public var subdomain: String? { get { string("subdomain") } set { setString("subdomain", newValue) } }
    public var restartPolicy: String? { get { string("restartPolicy") } set { setString("restartPolicy", newValue) } }
    public var serviceAccountName: String? { get { string("serviceAccountName") } set { setString("serviceAccountName", newValue) } }
    public var terminationGracePeriodSeconds: Int? {
        get { int("terminationGracePeriodSeconds") }
        set { setInt("terminationGracePeriodSeconds", newValue) }
    }
    public var nodeSelector: [String: String] { get { stringMap("nodeSelector") } set { setStringMap("nodeSelector", newValue) } }
    public var containers: [Container] { get { children("containers") } set { setChildren("containers", newValue) } }
    public var volumes: [Volume] { get { children("volumes") } set { setChildren("volumes", newValue) } }
}

public struct Container: JSONBacked {
    public var json: JSONObject
    public init(json: JSONObject) { self.json = json }

    public init(name: String, image: String, command: [String] = [], args: [String] = []) {
        self.init(json: [:])
        self.name = name
        self.image = image
        self.command = command
        self.args = args
    }

    public var name: String { get { string("name") ?? "" } set { setString("name", newValue) } }
    public var image: String? { get { string("image") } set { setString("image", newValue) } }
    public var command: [String] { get { strings("command") } set { setStrings("command", newValue) } }
    public var args: [String] { get { strings("args") } set { setStrings("args", newValue) } }
    public var env: [EnvVar] { get { children("env") } set { setChildren("env", newValue) } }
    public var volumeMounts: [VolumeMount] { get { children("volumeMounts") } set { setChildren("volumeMounts", newValue) } }
}

public struct EnvVar: JSONBacked {
    public var json: JSONObject
    public init(json: JSONObject) { self.json = json }
    public init(name: String, value: String) {
        self.init(json: ["name": .string(name), "value": .string(value)])
    }
    public var name: String { get { string("name") ?? "" } set { setString("name", newValue) } }
    public var value: String? { get { string("value") } set { setString("value", newValue) } }
    /// `valueFrom`, kept as JSON: fieldRef, secretKeyRef, configMapKeyRef.
    public var valueFrom: JSONObject? { json["valueFrom"]?.objectValue }
}

public struct VolumeMount: JSONBacked {
    public var json: JSONObject
    public init(json: JSONObject) { self.json = json }
    public var name: String { get { string("name") ?? "" } set { setString("name", newValue) } }
    public var mountPath: String { get { string("mountPath") ?? "" } set { setString("mountPath", newValue) } }
    public var readOnly: Bool? { get { bool("readOnly") } set { setBool("readOnly", newValue) } }
}

public struct Volume: JSONBacked {
    public var json: JSONObject
    public init(json: JSONObject) { self.json = json }
    public var name: String { get { string("name") ?? "" } set { setString("name", newValue) } }
    public var persistentVolumeClaimName: String? { json.value(at: ["persistentVolumeClaim", "claimName"]).stringValue }
    public var secretName: String? { json.value(at: ["secret", "secretName"]).stringValue }
    public var configMapName: String? { json.value(at: ["configMap", "name"]).stringValue }
}

public struct PodStatus: JSONBacked {
    public var json: JSONObject
    public init(json: JSONObject) { self.json = json }

    public var phase: String? { get { string("phase") } set { setString("phase", newValue) } }
    public var podIP: String? { get { string("podIP") } set { setString("podIP", newValue) } }
    public var hostIP: String? { get { string("hostIP") } set { setString("hostIP", newValue) } }
    public var reason: String? { get { string("reason") } set { setString("reason", newValue) } }
    public var message: String? { get { string("message") } set { setString("message", newValue) } }
    public var startTime: Date? { get { time("startTime") } set { setTime("startTime", newValue) } }
    public var conditions: [Condition] { get { children("conditions") } set { setChildren("conditions", newValue) } }
    public var containerStatuses: [ContainerStatus] {
        get { children("containerStatuses") }
        set { setChildren("containerStatuses", newValue) }
    }
}

public struct ContainerStatus: JSONBacked {
    public var json: JSONObject
    public init(json: JSONObject) { self.json = json }

    public var name: String { get { string("name") ?? "" } set { setString("name", newValue) } }
    public var ready: Bool { get { bool("ready") ?? false } set { setBool("ready", newValue) } }
    public var started: Bool? { get { bool("started") } set { setBool("started", newValue) } }
    public var restartCount: Int { get { int("restartCount") ?? 0 } set { setInt("restartCount", newValue) } }
    public var containerID: String? { get { string("containerID") } set { setString("containerID", newValue) } }
    /// `state`, with exactly one of `waiting`, `running`, `terminated`.
    public var state: JSONObject { get { json["state"]?.objectValue ?? [:] } set { self[field: "state"] = .object(newValue) } }
    public var isRunning: Bool { state["running"] != nil }
    public var terminatedExitCode: Int? { state["terminated"]?["exitCode"].intValue.map(Int.init) }
}

public struct Node: KubeObject {
    public static let resourceType = ResourceType.nodes
    public var json: JSONObject
    public init(json: JSONObject) { self.json = json }

    public var conditions: [Condition] {
        get { JSONValue.object(json)["status"]["conditions"].arrayValue?.compactMap { $0.objectValue.map(Condition.init) } ?? [] }
        set { var status = json["status"]?.objectValue ?? [:]; status["conditions"] = .array(newValue.map { .object($0.json) }); json["status"] = .object(status) }
    }
    /// Ready condition status: "True", "False", or "Unknown" (also when absent).
    public var readyStatus: String { conditions[type: "Ready"]?.status ?? "Unknown" }
    public var isReady: Bool { readyStatus == "True" }
    public var unschedulable: Bool { JSONValue.object(json)["spec"]["unschedulable"].boolValue ?? false }
}

public struct Service: KubeObject {
    public static let resourceType = ResourceType.services
    public var json: JSONObject
    public init(json: JSONObject) { self.json = json }

    public var clusterIP: String? { JSONValue.object(json)["spec"]["clusterIP"].stringValue }
    public var selector: [String: String] {
        (JSONValue.object(json)["spec"]["selector"].objectValue ?? [:]).compactMapValues(\.stringValue)
    }
}

public struct Secret: KubeObject {
    public static let resourceType = ResourceType.secrets
    public var json: JSONObject
    public init(json: JSONObject) { self.json = json }

    public var type: String? { get { string("type") } set { setString("type", newValue) } }

    /// `data`, base64-decoded. Values that are not valid base64 are left out.
    public var data: [String: Data] {
        get { stringMap("data").compactMapValues { Data(base64Encoded: $0) } }
        set { setStringMap("data", newValue.mapValues { $0.base64EncodedString() }) }
    }
    /// `stringData`, write-only on a real server.
    public var stringData: [String: String] { get { stringMap("stringData") } set { setStringMap("stringData", newValue) } }
}

public struct ConfigMap: KubeObject {
    public static let resourceType = ResourceType.configMaps
    public var json: JSONObject
    public init(json: JSONObject) { self.json = json }
    public var data: [String: String] { get { stringMap("data") } set { setStringMap("data", newValue) } }
}

public struct PersistentVolumeClaim: KubeObject {
    public static let resourceType = ResourceType.persistentVolumeClaims
    public var json: JSONObject
    public init(json: JSONObject) { self.json = json }

    public var storageClassName: String? { JSONValue.object(json)["spec"]["storageClassName"].stringValue }
    public var requestedStorage: String? { JSONValue.object(json)["spec"]["resources"]["requests"]["storage"].stringValue }
    public var volumeName: String? { JSONValue.object(json)["spec"]["volumeName"].stringValue }
    public var phase: String? { JSONValue.object(json)["status"]["phase"].stringValue }
}

public struct Namespace: KubeObject {
    public static let resourceType = ResourceType.namespaces
    public var json: JSONObject
    public init(json: JSONObject) { self.json = json }
}
