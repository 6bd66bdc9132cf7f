import Foundation
import KubeAPI
import Logging

/// Performs a `PairPlan` through the Kubernetes API: creates and patches owned objects, writes
/// the status through the status subresource and records events through the EventRecorder.
public struct PairActor: Sendable {
    /// How a plan went.
    public enum Outcome: Sendable, Equatable {
        case done
        /// Something must be read again first (a conflict, an object that appeared meanwhile) or
        /// a request failed: reconcile again, with backoff.
        case requeue(String)
    }

    let client: KubeClient
    let recorder: EventRecorder
    let logger: Logger
    /// Told of each status write: the object as written, and the resourceVersion it replaced.
    let statusWritten: @Sendable (TimesTenClassic, String?) -> Void

    public init(client: KubeClient, recorder: EventRecorder, logger: Logger,
                statusWritten: @escaping @Sendable (TimesTenClassic, String?) -> Void = { _, _ in }) {
        self.client = client
        self.recorder = recorder
        self.logger = logger
        self.statusWritten = statusWritten
    }

    /// Performs the actions in order and stops at the first that fails.
    public func perform(_ plan: PairPlan, on snapshot: PairSnapshot) async -> Outcome {
        let object = snapshot.object
        let names = snapshot.names
        var certificates: PairCertificates?
        func pairCertificates() throws -> PairCertificates {
            if let certificates { return certificates }
            let loaded = try PairCertificates.load(caSecret: snapshot.caSecret, for: names)
            guard !loaded.created else { throw PairCertificateError(secret: names.caSecret, message: "is missing") }
            certificates = loaded.0
            return loaded.0
        }
        for action in plan.actions {
            do {
                switch action {
                case .createCASecret:
                    let created = try PairCertificates.create(for: names)
                    _ = try await client.create(try created.caSecret(owner: object))
                    certificates = created
                case .createAgentTLSSecret:
                    _ = try await client.create(try pairCertificates().agentTLSSecret(owner: object))
                case .reissueAgentTLSSecret:
                    var secret = try pairCertificates().agentTLSSecret(owner: object)
                    secret.metadata.resourceVersion = snapshot.agentTLSSecret?.metadata.resourceVersion
                    _ = try await client.update(secret)
                case .create(let kind, let json):
                    switch kind {
                    case .service: _ = try await client.create(Service(json: json))
                    case .statefulSet: _ = try await client.create(StatefulSet(json: json))
                    }
                case .patch(let kind, let name, let patch):
                    switch kind {
                    case .service:
                        _ = try await client.patch(Service.self, name: name, namespace: names.namespace, patchType: .merge, patch: .object(patch))
                    case .statefulSet:
                        _ = try await client.patch(StatefulSet.self, name: name, namespace: names.namespace, patchType: .merge,
                                                   patch: .object(patch))
                    }
                case .event(let event):
                    await recorder.record(object, type: event.type, reason: event.reason, message: event.message)
                case .updateStatus(let status):
                    var updated = object
                    updated.status = status
                    statusWritten(try await client.updateStatus(updated), object.resourceVersion)
                }
            } catch {
                return await failed(action, error, object: object)
            }
        }
        return .done
    }

    private func failed(_ action: KubeAction, _ error: any Error, object: TimesTenClassic) async -> Outcome {
        let apiError = error as? KubeAPIError
        if apiError?.isAlreadyExists == true {
            let secretName: String? = switch action {
            case .createCASecret: PairNames(object).caSecret
            case .createAgentTLSSecret: PairNames(object).agentTLSSecret
            default: nil
            }
            // Either the cache lags behind our own create (then all is well), or the Secret is
            // someone else's and invisible to the label-filtered cache: say so.
            if let secretName, let existing = try? await client.get(Secret.self, name: secretName, namespace: object.namespace),
               existing.metadata.labels["app.kubernetes.io/managed-by"] != "tenops" {
                await recorder.record(object, type: .warning, reason: PlannedEvent.Reason.error,
                                      message: "Secret \(secretName) exists without the labels \(PairObserver.managedSelector); TenOps leaves it alone")
            }
        }
        if apiError?.isConflict == true || apiError?.isAlreadyExists == true || apiError?.isNotFound == true {
            logger.debug("\(action): \(error); reconciling again", metadata: ["pair": "\(object.key)"])
            return .requeue("\(action): \(error)")
        }
        logger.warning("\(action) failed: \(error)", metadata: ["pair": "\(object.key)"])
        switch action {
        case .createCASecret, .createAgentTLSSecret, .create:
            await recorder.record(object, type: .warning, reason: PlannedEvent.Reason.failedCreate, message: "\(action) failed: \(error)")
        case .reissueAgentTLSSecret, .patch:
            await recorder.record(object, type: .warning, reason: PlannedEvent.Reason.taskFailed, message: "\(action) failed: \(error)")
        case .event, .updateStatus:
            break
        }
        return .requeue("\(action): \(error)")
    }
}
