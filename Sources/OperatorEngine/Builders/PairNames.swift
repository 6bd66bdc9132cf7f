import Foundation
import KubeAPI

/// The names, labels and ports of the objects that make up one pair. Object `sample` in
/// namespace `ns` gives StatefulSet and headless Service `sample`, pods `sample-0` and
/// `sample-1` reachable as `sample-N.sample.ns.svc.cluster.local`, Secrets `sample-ca` and
/// `sample-agent-tls`.
public struct PairNames: Sendable, Equatable {
    public static let agentPort = 8443
    public static let replicas = 2
    public static let clusterDomain = "cluster.local"

    /// The TimesTenClassic's name: also the StatefulSet's, the Service's and the database's.
    public var name: String
    public var namespace: String

    public init(name: String, namespace: String) {
        self.name = name
        self.namespace = namespace
    }

    public init(_ object: TimesTenClassic) {
        self.init(name: object.metadata.name ?? "", namespace: object.metadata.namespace ?? "default")
    }

    public var statefulSet: String { name }
    public var service: String { name }
    /// The pair CA's certificate and key; no pod mounts it.
    public var caSecret: String { "\(name)-ca" }
    /// `ca.crt`, `tls.crt`, `tls.key`: what the pods mount at /agent-tls.
    public var agentTLSSecret: String { "\(name)-agent-tls" }
    public var pods: [String] { (0..<Self.replicas).map(pod) }

    public func pod(_ ordinal: Int) -> String { "\(name)-\(ordinal)" }

    /// `NAME-N.NAME.NS.svc.cluster.local`.
    public func podDNSName(_ ordinal: Int) -> String { "\(pod(ordinal)).\(service).\(namespace).svc.\(Self.clusterDomain)" }

    /// `NAME.NS.svc`: the name the operator checks the agent's certificate against.
    public var agentServerName: String { "\(service).\(namespace).svc" }

    /// What selects the pair's pods, for the StatefulSet, the Service and anti-affinity.
    public var selectorLabels: [String: String] {
        ["app.kubernetes.io/name": "timesten-classic", "app.kubernetes.io/instance": name, "tenops.io/pair": name]
    }

    /// The labels of every object the builders make.
    public var labels: [String: String] {
        selectorLabels.merging(["app.kubernetes.io/managed-by": "tenops"]) { first, _ in first }
    }

    /// Metadata for an object of the pair: name, namespace, labels and the controller reference.
    func metadata(_ objectName: String, owner: TimesTenClassic) -> ObjectMeta {
        var metadata = ObjectMeta()
        metadata.name = objectName
        metadata.namespace = namespace
        metadata.labels = labels
        metadata.ownerReferences = [PairNames.ownerReference(owner)]
        return metadata
    }

    /// The reference that makes the TimesTenClassic the controller of an object, so that
    /// deleting it deletes the object.
    public static func ownerReference(_ owner: TimesTenClassic) -> OwnerReference {
        var reference = OwnerReference(owner: owner, controller: true, blockOwnerDeletion: true)
        reference.apiVersion = TimesTenClassic.resourceType.apiVersion
        reference.kind = TimesTenClassic.resourceType.kind
        return reference
    }
}
