import Foundation
import KubeAPI

/// The metadata a pair's first database is built from: the ConfigMaps of `dbConfigMap` and the
/// Secrets of `dbSecret`, projected at /ttconfig. Checked only while the pair is Initializing
/// (afterwards the database exists and the files are not read again), so a pair at rest makes
/// no reads.
public struct PairMetadata: Sendable, Equatable {
    /// What is missing, in words a person can act on; nil when everything is there.
    public var problem: String?
    /// Some source holds an epilog.sql.
    public var hasEpilog: Bool

    /// The condition that reports it.
    public static let condition = "MetadataAvailable"

    public init(problem: String?, hasEpilog: Bool) {
        self.problem = problem
        self.hasEpilog = hasEpilog
    }

    /// Reads the sources. A source that cannot be read for another reason than its absence is
    /// reported as such.
    public static func check(_ object: TimesTenClassic, client: KubeClient) async -> PairMetadata {
        let namespace = PairNames(object).namespace
        var missing: [String] = []
        var keys: Set<String> = []
        let spec = object.ttspec
        for name in spec.dbConfigMap {
            do {
                keys.formUnion(try await client.get(ConfigMap.self, name: name, namespace: namespace).data.keys)
            } catch {
                missing.append(error.isNotFound ? "dbConfigMap \(name) does not exist" : "dbConfigMap \(name) cannot be read: \(error)")
            }
        }
        for name in spec.dbSecret {
            do {
                let secret = try await client.get(Secret.self, name: name, namespace: namespace)
                keys.formUnion(secret.data.keys)
                keys.formUnion(secret.stringData.keys)
            } catch {
                missing.append(error.isNotFound ? "dbSecret \(name) does not exist" : "dbSecret \(name) cannot be read: \(error)")
            }
        }
        let problem = missing.isEmpty ? nil : missing.joined(separator: "; ") + " in namespace \(namespace): the database cannot be created until it does"
        return PairMetadata(problem: problem, hasEpilog: keys.contains("epilog.sql"))
    }

    /// Sets the condition; returns whether it changed, and the message to report when it
    /// turned bad.
    public static func record(_ metadata: PairMetadata, in status: inout TimesTenClassicStatus, now: Date) -> (Bool, String?) {
        let value = metadata.problem == nil ? "True" : "False"
        let message = metadata.problem ?? "Every dbConfigMap and dbSecret is present"
        if let old = status.conditions[type: condition], old.status == value, old.message == message { return (false, nil) }
        status.setCondition(Condition(
            type: condition, status: value, reason: metadata.problem == nil ? "Present" : "Missing", message: message,
            lastTransitionTime: now))
        return (true, metadata.problem)
    }
}
