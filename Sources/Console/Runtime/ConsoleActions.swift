import Foundation
import KubeAPI
import OperatorEngine

/// Carries out what a confirmed dialog asks, through the API only, exactly as the CLI does:
/// manual actions as the `tenops.io/action` annotation, reexamine and stopManaging as a new
/// value of their `spec.ttspec` field, node failures as the node's simulation annotation.
public struct ConsoleActions: Sendable {
    let client: KubeClient
    let local: LocalNodeTraits?

    public init(client: KubeClient, local: LocalNodeTraits?) {
        self.client = client
        self.local = local
    }

    /// Submits `action`; the dialog's next phase: `.submitted` for an action whose result
    /// `status.lastAction` reports, `.finished` for the others (or when the API refused).
    public func submit(_ action: ConsoleAction, pair: PairKey) async -> ActionDialog.Phase {
        do {
            switch action {
            case .switchover: return try await request(ManualActionRequest(id: ManualActionRequest.newID(), verb: .switchover), pair)
            case .failover: return try await request(ManualActionRequest(id: ManualActionRequest.newID(), verb: .failover), pair)
            case .reduplicate(let pod):
                return try await request(ManualActionRequest(id: ManualActionRequest.newID(), verb: .reduplicate, pod: pod), pair)
            case .reexamine:
                try await patchPair(pair, EdgeTrigger.reexamine.mergePatch(value: EdgeTrigger.freshValue()))
                return .finished(succeeded: true, message: "reexamine requested: the engine examines \(pair.name) again")
            case .stopManaging:
                try await patchPair(pair, EdgeTrigger.stopManaging.mergePatch(value: EdgeTrigger.freshValue()))
                return .finished(succeeded: true, message: "stopManaging changed: the engine leaves \(pair.name) alone until reexamine")
            case .nodeDown(let node, let mode):
                try await patchNode(node, mode: mode)
                return .finished(succeeded: true, message: "node \(node): \(mode) requested; it turns NotReady once its heartbeats are missed")
            case .nodeUp(let node):
                try await patchNode(node, mode: nil)
                return .finished(succeeded: true, message: "node \(node): up requested; heartbeats resume")
            }
        } catch {
            return .finished(succeeded: false, message: "not submitted: \(error)")
        }
    }

    private func request(_ request: ManualActionRequest, _ pair: PairKey) async throws -> ActionDialog.Phase {
        try await patchPair(pair, request.mergePatch)
        return .submitted(id: request.id)
    }

    private func patchPair(_ pair: PairKey, _ patch: JSONValue) async throws {
        _ = try await client.patch(TimesTenClassic.self, name: pair.name, namespace: pair.namespace, patchType: .merge, patch: patch)
    }

    private func patchNode(_ node: String, mode: String?) async throws {
        guard let local, let patch = local.simulationPatch(mode) else {
            throw ActionError("node failures can be simulated only on tenops local's process nodes")
        }
        _ = try await client.patch(KubeAPI.Node.self, name: node, patchType: .merge, patch: patch)
    }

    /// Reads the pair fresh (the cache may be a moment old) and renders it as YAML.
    public func describe(_ pair: PairKey) async -> (title: String, yaml: String) {
        let title = "timestenclassic \(pair.namespace)/\(pair.name)"
        do {
            let object = try await client.get(TimesTenClassic.resourceType, namespace: pair.namespace, name: pair.name)
            return (title, DescribeText.yaml(object))
        } catch {
            return (title, "# cannot read \(title): \(error)\n")
        }
    }
}

struct ActionError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
