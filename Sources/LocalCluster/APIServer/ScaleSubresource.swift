import Foundation
import KubeAPI

/// The `scale` subresource of StatefulSets and Deployments: an `autoscaling/v1` Scale that
/// reads and writes the object's `spec.replicas` (what `kubectl scale` uses).
enum ScaleSubresource {
    /// The Scale view of a workload object.
    static func scale(of object: JSONObject) -> JSONObject {
        let metadata = object["metadata"]?.objectValue ?? [:]
        var scaleMetadata: JSONObject = [:]
        for key in ["name", "namespace", "uid", "resourceVersion", "creationTimestamp"] {
            if let value = metadata[key] { scaleMetadata[key] = value }
        }
        let labels = object["spec"]?["selector"]["matchLabels"].objectValue ?? [:]
        let selector = labels.keys.sorted().compactMap { key in labels[key]?.stringValue.map { "\(key)=\($0)" } }.joined(separator: ",")
        return [
            "apiVersion": "autoscaling/v1", "kind": "Scale",
            "metadata": .object(scaleMetadata),
            "spec": .object(["replicas": .int(object["spec"]?["replicas"].intValue ?? 1)]),
            "status": .object(["replicas": .int(object["status"]?["replicas"].intValue ?? 0), "selector": .string(selector)]),
        ]
    }

    /// The object with the replicas a Scale asks for; a Scale without a valid
    /// `spec.replicas` is refused and changes nothing.
    static func apply(_ requested: JSONObject, to object: JSONObject) throws -> JSONObject {
        guard let replicas = requested["spec"]?["replicas"].intValue else {
            throw APIError(code: 422, reason: "Invalid", message: "Scale.autoscaling \"\(object["metadata"]?["name"].stringValue ?? "")\" is invalid: spec.replicas: Required value")
        }
        guard (0...Int64(Int32.max)).contains(replicas) else {
            throw APIError(code: 422, reason: "Invalid", message: "spec.replicas: Invalid value: \(replicas): must be greater than or equal to 0")
        }
        var updated = object
        var spec = updated["spec"]?.objectValue ?? [:]
        spec["replicas"] = .int(replicas)
        updated["spec"] = .object(spec)
        return updated
    }
}
