import Foundation
import KubeAPI

/// How an existing object differs from what a builder wants.
///
/// The comparison is "does the existing object say everything the wanted one says": fields the
/// API server fills in (defaults, status, resourceVersion) never count as drift. Arrays must
/// have the same length and match element by element.
public struct DriftReport: Sendable, Equatable {
    /// Paths where the object must change, e.g. `spec.template.spec.containers[0].image`.
    public var differences: [String] = []
    /// The subset of `differences` that an update cannot change: the object must be deleted and
    /// created again (for a StatefulSet, with `propagationPolicy: Orphan` to keep the pods).
    public var immutable: [String] = []
    /// The object is controlled by something else (another uid): leave it alone and report it.
    public var foreignController: String?
    /// A JSON merge patch that fixes every difference but the immutable ones; nil when none.
    public var patch: JSONObject?

    public var matches: Bool { differences.isEmpty && foreignController == nil }
}

public enum Drift {
    /// The StatefulSet's drift. Only `replicas`, `template` and `updateStrategy` of its spec may
    /// change; `selector`, `serviceName`, `podManagementPolicy` and `volumeClaimTemplates` may not.
    public static func statefulSet(_ existing: StatefulSet, wanted: StatefulSet, owner: TimesTenClassic) -> DriftReport {
        report(existing.json, wanted.json, owner: owner, mutableSpec: ["replicas", "template", "updateStrategy"])
    }

    /// The Service's drift. `clusterIP` (None, for a headless Service) may not change.
    public static func service(_ existing: Service, wanted: Service, owner: TimesTenClassic) -> DriftReport {
        report(existing.json, wanted.json, owner: owner, mutableSpec: ["ports", "selector", "publishNotReadyAddresses"])
    }

    /// Whether a Secret carries the owner's controller reference and the pair's labels; its data
    /// is checked by `PairCertificates` (certificates are never rebuilt to compare them).
    public static func secretMetadata(_ existing: Secret, wanted: Secret, owner: TimesTenClassic) -> DriftReport {
        report(existing.json, wanted.json, owner: owner, mutableSpec: [])
    }

    static func report(_ existing: JSONObject, _ wanted: JSONObject, owner: TimesTenClassic, mutableSpec: Set<String>) -> DriftReport {
        var report = DriftReport()
        let existingMeta = ObjectMeta(json: existing["metadata"]?.objectValue ?? [:])
        // Read through `json`: `uid` and `name` also exist on every JSONBacked (as metadata's).
        if let controller = existingMeta.controllerReference?.json, controller["uid"] != owner.json.value(at: ["metadata", "uid"]) {
            let describe = { (key: String) in controller[key]?.stringValue ?? "?" }
            report.foreignController = "\(describe("kind")) \(describe("name")) (uid \(describe("uid")))"
            return report
        }
        var patch = JSONObject()
        var metadataPatch = JSONObject()
        let wantedMeta = ObjectMeta(json: wanted["metadata"]?.objectValue ?? [:])
        let missingLabels = wantedMeta.labels.filter { existingMeta.labels[$0.key] != $0.value }
        for key in missingLabels.keys.sorted() { report.differences.append("metadata.labels['\(key)']") }
        if !missingLabels.isEmpty { metadataPatch["labels"] = PairObjects.labelsJSON(missingLabels) }
        if existingMeta.controllerReference == nil {
            report.differences.append("metadata.ownerReferences")
            let references = existingMeta.ownerReferences + [PairNames.ownerReference(owner)]
            metadataPatch["ownerReferences"] = .array(references.map { .object($0.json) })
        }
        if !metadataPatch.isEmpty { patch["metadata"] = .object(metadataPatch) }

        var specPatch = JSONObject()
        let existingSpec = existing["spec"]?.objectValue ?? [:]
        for (key, value) in (wanted["spec"]?.objectValue ?? [:]).sorted(by: { $0.key < $1.key }) {
            var paths: [String] = []
            differences(value, existingSpec[key] ?? .null, path: "spec.\(key)", into: &paths)
            guard !paths.isEmpty else { continue }
            report.differences += paths
            if mutableSpec.contains(key) { specPatch[key] = value } else { report.immutable += paths }
        }
        if !specPatch.isEmpty { patch["spec"] = .object(specPatch) }
        report.patch = patch.isEmpty ? nil : patch
        return report
    }

    /// Appends the paths where `existing` does not say what `wanted` says.
    static func differences(_ wanted: JSONValue, _ existing: JSONValue, path: String, into paths: inout [String]) {
        switch (wanted, existing) {
        case (.object(let wantedObject), .object(let existingObject)):
            for (key, value) in wantedObject.sorted(by: { $0.key < $1.key }) {
                differences(value, existingObject[key] ?? .null, path: "\(path).\(key)", into: &paths)
            }
        case (.array(let wantedItems), .array(let existingItems)) where wantedItems.count == existingItems.count:
            for (index, pair) in zip(wantedItems, existingItems).enumerated() {
                differences(pair.0, pair.1, path: "\(path)[\(index)]", into: &paths)
            }
        case (.array(let items), .null) where items.isEmpty:
            break  // an empty list the server leaves out
        case (.object(let members), .null) where members.isEmpty:
            break
        case (.int, _), (.double, _):
            if wanted.doubleValue != existing.doubleValue { paths.append(path) }
        case (.string(let wantedText), .string(let existingText)) where path.hasSuffix(".storage"):
            // The server may write a quantity in its canonical form (1.5Gi as 1536Mi).
            if wantedText != existingText, Quantity.bytes(wantedText) == nil || Quantity.bytes(wantedText) != Quantity.bytes(existingText) {
                paths.append(path)
            }
        default:
            if wanted != existing { paths.append(path) }
        }
    }
}
