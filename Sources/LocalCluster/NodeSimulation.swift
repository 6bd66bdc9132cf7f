import KubeAPI

/// A failure a process node plays on request, so that a person (or a test) can watch the
/// operator handle it: `tenops local node-down`, the console's node keys.
///
/// The request is the annotation `tenops.io/simulate` on the Node object, so any client with
/// the right to patch nodes can make it, whether the node runs in `tenops local` or on its own.
public enum NodeSimulation: String, Sendable, CaseIterable {
    /// Every process on the node is killed and heartbeats stop, as when the machine loses power.
    case poweroff
    /// Heartbeats stop and the processes keep running, as when the network splits.
    case partition

    public static let annotation = "tenops.io/simulate"

    /// The merge patch that starts this simulation.
    public var patch: JSONValue {
        .object(["metadata": .object(["annotations": .object([Self.annotation: .string(rawValue)])])])
    }

    /// The merge patch that brings a node back up.
    public static let clearPatch: JSONValue = .object(["metadata": .object(["annotations": .object([annotation: .null])])])

    /// The simulation a Node object asks for, if any.
    public init?(node: JSONObject) {
        guard let value = node["metadata"]?["annotations"][Self.annotation].stringValue, let mode = NodeSimulation(rawValue: value)
        else { return nil }
        self = mode
    }
}
