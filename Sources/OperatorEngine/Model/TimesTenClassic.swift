import Foundation
import KubeAPI

/// The `tenops.io/v1` TimesTenClassic: one active/standby pair. A view over the object's JSON,
/// like KubeAPI's models: fields it does not know stay in `json` untouched.
public struct TimesTenClassic: KubeObject {
    public static let resourceType = ResourceType(
        group: "tenops.io", version: "v1", kind: "TimesTenClassic", plural: "timestenclassics", namespaced: true)

    public var json: JSONObject
    public init(json: JSONObject) { self.json = json }

    public var spec: TimesTenClassicSpec { get { view("spec") } set { setView("spec", newValue) } }
    /// `spec.ttspec`, the part a user writes.
    public var ttspec: TTSpec { get { spec.ttspec } set { spec.ttspec = newValue } }
    public var status: TimesTenClassicStatus { get { view("status") } set { setView("status", newValue) } }

    /// The edge-triggered fields whose value changed since the operator last recorded them.
    public var edgeTriggers: EdgeTriggers { EdgeTriggers(spec: ttspec, status: status) }
}

public struct TimesTenClassicSpec: JSONBacked {
    public var json: JSONObject
    public init(json: JSONObject) { self.json = json }

    public var ttspec: TTSpec { get { view("ttspec") } set { setView("ttspec", newValue) } }
}

/// `spec.ttspec`, with Oracle's field names. Getters return the effective value: the field when
/// it is set, else the default below. A field of the wrong JSON type or an unknown enum value
/// also reads as the default; `SpecValidation` reports it, and the engine must not act on a
/// spec that has problems. Setting nil removes a field.
public struct TTSpec: JSONBacked {
    public var json: JSONObject
    public init(json: JSONObject) { self.json = json }

    /// Oracle's defaults, except `repPort` (see there).
    public enum Defaults {
        public static let imagePullPolicy = ImagePullPolicy.ifNotPresent
        public static let storageSize = "50Gi"
        public static let pollingInterval = 5
        public static let unreachableTimeout = 30
        public static let repStateTimeout = 30
        public static let bothDownBehavior = BothDownBehavior.best
        public static let repReturnServiceAttribute = ReturnService.noReturn
        /// Oracle's 4444 is TimesTen's replication agent port. With PostgreSQL, replication runs
        /// over the server's own port, which is also the port clients use: 5432, as everywhere
        /// else. Each pod has its own IP, so the two servers of a pair never collide.
        public static let repPort = 5432
        public static let agentGetTimeout = 60
        public static let agentPostTimeout = 600
        public static let agentAsyncTimeout = 600
        public static let daemonLogSidecar = true
        public static let replicationTopology = ReplicationTopology.activeStandbyPair
    }

    /// Required; "" when missing.
    public var image: String { get { get("image") ?? "" } set { set("image", newValue) } }
    public var imagePullPolicy: ImagePullPolicy {
        get { get("imagePullPolicy").flatMap(ImagePullPolicy.init(rawValue:)) ?? Defaults.imagePullPolicy }
        set { set("imagePullPolicy", newValue.rawValue) }
    }
    public var imagePullSecret: String? { get { get("imagePullSecret") } set { set("imagePullSecret", newValue) } }
    public var storageClassName: String? { get { get("storageClassName") } set { set("storageClassName", newValue) } }
    public var storageSize: String { get { get("storageSize") ?? Defaults.storageSize } set { set("storageSize", newValue) } }
    /// nil: no tt-log claim.
    public var logStorageSize: String? { get { get("logStorageSize") } set { set("logStorageSize", newValue) } }
    public var logStorageClassName: String? { get { get("logStorageClassName") } set { set("logStorageClassName", newValue) } }

    /// Seconds.
    public var pollingInterval: Int { get { get("pollingInterval") ?? Defaults.pollingInterval } set { set("pollingInterval", newValue) } }
    /// Seconds.
    public var unreachableTimeout: Int {
        get { get("unreachableTimeout") ?? Defaults.unreachableTimeout }
        set { set("unreachableTimeout", newValue) }
    }
    /// Seconds.
    public var repStateTimeout: Int { get { get("repStateTimeout") ?? Defaults.repStateTimeout } set { set("repStateTimeout", newValue) } }
    /// Seconds; nil: never delete a pod because of its node.
    public var deleteDbOnNotReadyNode: Int? { get { get("deleteDbOnNotReadyNode") } set { set("deleteDbOnNotReadyNode", newValue) } }

    public var bothDownBehavior: BothDownBehavior {
        get { get("bothDownBehavior").flatMap(BothDownBehavior.init(rawValue:)) ?? Defaults.bothDownBehavior }
        set { set("bothDownBehavior", newValue.rawValue) }
    }
    public var repReturnServiceAttribute: ReturnService {
        get { get("repReturnServiceAttribute").flatMap(ReturnService.init(rawValue:)) ?? Defaults.repReturnServiceAttribute }
        set { set("repReturnServiceAttribute", newValue.rawValue) }
    }
    public var repPort: Int { get { get("repPort") ?? Defaults.repPort } set { set("repPort", newValue) } }

    public var dbConfigMap: [String] { get { get("dbConfigMap") ?? [] } set { set("dbConfigMap", newValue.isEmpty ? nil : newValue) } }
    public var dbSecret: [String] { get { get("dbSecret") ?? [] } set { set("dbSecret", newValue.isEmpty ? nil : newValue) } }

    /// Edge-triggered. The schema takes a string or an integer; an integer reads as its decimal text.
    public var stopManaging: String? { get { edgeValue("stopManaging") } set { set("stopManaging", newValue) } }
    /// Edge-triggered, like `stopManaging`.
    public var reexamine: String? { get { edgeValue("reexamine") } set { set("reexamine", newValue) } }

    /// Seconds.
    public var agentGetTimeout: Int { get { get("agentGetTimeout") ?? Defaults.agentGetTimeout } set { set("agentGetTimeout", newValue) } }
    /// Seconds.
    public var agentPostTimeout: Int { get { get("agentPostTimeout") ?? Defaults.agentPostTimeout } set { set("agentPostTimeout", newValue) } }
    /// Seconds.
    public var agentAsyncTimeout: Int {
        get { get("agentAsyncTimeout") ?? Defaults.agentAsyncTimeout }
        set { set("agentAsyncTimeout", newValue) }
    }
    public var daemonLogSidecar: Bool { get { get("daemonLogSidecar") ?? Defaults.daemonLogSidecar } set { set("daemonLogSidecar", newValue) } }
    public var replicationTopology: ReplicationTopology {
        get { get("replicationTopology").flatMap(ReplicationTopology.init(rawValue:)) ?? Defaults.replicationTopology }
        set { set("replicationTopology", newValue.rawValue) }
    }

    private func edgeValue(_ key: String) -> String? {
        let value = self[field: key]
        return value.stringValue ?? value.intValue.map { String($0) }
    }
}

public enum ImagePullPolicy: String, Sendable, CaseIterable {
    case always = "Always"
    case ifNotPresent = "IfNotPresent"
    case never = "Never"
}

public enum BothDownBehavior: String, Sendable, CaseIterable {
    /// Restart from the database that is ahead.
    case best = "Best"
    /// Go to ManualInterventionRequired.
    case manual = "Manual"
}

/// `repReturnServiceAttribute`.
public enum ReturnService: String, Sendable, CaseIterable {
    case noReturn = "NO RETURN"
    /// Synchronous replication: a commit returns once the standby has it.
    case returnTwosafe = "RETURN TWOSAFE"
}

public enum ReplicationTopology: String, Sendable, CaseIterable {
    case activeStandbyPair
}
