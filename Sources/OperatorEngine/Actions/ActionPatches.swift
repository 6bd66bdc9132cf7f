import Foundation
import KubeAPI

/// How a client asks for a manual action: the merge patches the CLI and the console write onto a
/// TimesTenClassic, kept in one place so that both ask the same way.
extension ManualActionRequest {
    /// A fresh request id: eight hex digits, unique enough among one pair's actions.
    public static func newID() -> String { String(UUID().uuidString.lowercased().prefix(8)) }

    /// The merge patch that puts this request in the annotation `tenops.io/action`.
    public var mergePatch: JSONValue {
        .object(["metadata": .object(["annotations": .object([Self.annotation: .string(annotationValue)])])])
    }
}

/// Oracle's edge-triggered fields of `spec.ttspec`: any change of value is the request.
public enum EdgeTrigger: String, Sendable, CaseIterable {
    /// Examine the pair again (and leave ManualInterventionRequired).
    case reexamine
    /// Stop managing the pair until reexamine changes.
    case stopManaging

    /// A value no earlier request used.
    public static func freshValue(now: Date = Date()) -> String {
        "tenops-\(Int(now.timeIntervalSince1970))-\(ManualActionRequest.newID())"
    }

    /// The merge patch that sets the field to `value`.
    public func mergePatch(value: String) -> JSONValue {
        .object(["spec": .object(["ttspec": .object([rawValue: .string(value)])])])
    }
}
