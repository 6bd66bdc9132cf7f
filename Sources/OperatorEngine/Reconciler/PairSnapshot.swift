import Foundation
import KubeAPI

/// A PersistentVolumeClaim, as far as the reconciler reads one (KubeAPI has no typed model yet).
public struct PairClaim: KubeObject {
    public static let resourceType = ResourceType.persistentVolumeClaims
    public var json: JSONObject
    public init(json: JSONObject) { self.json = json }

    public var phase: String? { JSONValue.object(json)["status"]["phase"].stringValue }
}

/// Everything the reconciler knows about one pair at one moment: the TimesTenClassic and the
/// objects it owns, as the informer caches hold them. A plain value, so that `PairPlanner` is a
/// pure function of it.
public struct PairSnapshot: Sendable {
    public var object: TimesTenClassic
    public var statefulSet: StatefulSet?
    public var service: Service?
    /// `NAME-ca`.
    public var caSecret: Secret?
    /// `NAME-agent-tls`.
    public var agentTLSSecret: Secret?
    /// `NAME-0` and `NAME-1`, by name, those that exist.
    public var pods: [String: Pod]
    /// The nodes of those pods, by name, those that exist.
    public var nodes: [String: Node]
    /// The pair's claims (label `tenops.io/pair`).
    public var claims: [PairClaim]
    /// The time the snapshot was taken: the planner's only clock.
    public var now: Date

    public init(object: TimesTenClassic, statefulSet: StatefulSet? = nil, service: Service? = nil, caSecret: Secret? = nil,
                agentTLSSecret: Secret? = nil, pods: [String: Pod] = [:], nodes: [String: Node] = [:], claims: [PairClaim] = [],
                now: Date = Date()) {
        self.object = object
        self.statefulSet = statefulSet
        self.service = service
        self.caSecret = caSecret
        self.agentTLSSecret = agentTLSSecret
        self.pods = pods
        self.nodes = nodes
        self.claims = claims
        self.now = now
    }

    public var names: PairNames { PairNames(object) }
}
