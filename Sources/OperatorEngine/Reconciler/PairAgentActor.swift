import Foundation
import KubeAPI
import Logging

/// Carries out the state machine's actions: Oracle's verbs through each pod's agent, and the
/// deletion of a pod and its claims for deleteDbOnNotReadyNode. Each action is idempotent; the
/// first that fails stops the rest, and the next reconcile decides again.
public struct PairAgentActor: Sendable {
    /// What an action needs to know of the pair at the moment it runs.
    public struct Context: Sendable {
        public var pair: TimesTenClassic
        public var snapshot: PairSnapshot

        public init(pair: TimesTenClassic, snapshot: PairSnapshot) {
            self.pair = pair
            self.snapshot = snapshot
        }

        var names: PairNames { snapshot.names }
        func podKey(_ pod: String) -> ObjectKey { ObjectKey(namespace: names.namespace, name: pod) }
        func uid(_ pod: String) -> String? { snapshot.pods[pod]?.uid }
        func address(_ pod: String) -> String? { snapshot.pods[pod]?.status.podIP }
        /// The pods' addresses, to be allowed to replicate.
        var peerAddresses: [String] { names.pods.compactMap(address) }
    }

    /// An action that did not happen.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var action: PairAction
        public var message: String
        /// Worth a Warning event (a refusal or an error), not only a retry (an agent that is
        /// busy or not yet reachable).
        public var reportable: Bool

        public var description: String { "\(action) failed: \(message)" }
    }

    let client: KubeClient
    let agents: PairAgents
    let recorder: EventRecorder
    let logger: Logger

    public init(client: KubeClient, agents: PairAgents, recorder: EventRecorder, logger: Logger) {
        self.client = client
        self.agents = agents
        self.recorder = recorder
        self.logger = logger
    }

    /// Runs `actions` in order; returns the failure that stopped them, if any.
    public func perform(_ actions: [PairAction], context: Context) async -> Failure? {
        for action in actions {
            let started = ContinuousClock.now
            do {
                try await perform(action, context: context)
                EngineMetrics.agentRequest(action, since: started)
                // A catchup reads statuses every few milliseconds: not worth a line each.
                if case .readStatus = action {} else {
                    logger.info("\(action): done in \(ContinuousClock.now - started)", metadata: ["pair": "\(context.pair.key)"])
                }
            } catch {
                EngineMetrics.agentRequest(action, since: started)
                logger.warning("\(error)", metadata: ["pair": "\(context.pair.key)"])
                if error.reportable {
                    await recorder.record(context.pair, type: .warning, reason: PairEvent.Reason.taskFailed, message: error.description)
                }
                return error
            }
        }
        return nil
    }

    func perform(_ action: PairAction, context: Context) async throws(Failure) {
        let pod = action.pod
        if case .deletePodAndPVCs = action {
            try await deletePodAndClaims(pod, action: action, context: context)
            return
        }
        let key = context.podKey(pod)
        guard let uid = context.uid(pod), let agent = agents.client(key) else {
            throw Failure(action: action, message: "the agent of \(pod) is not being watched yet", reportable: false)
        }
        let command: AgentCommand
        switch action {
        case .createDb: command = .createDb()
        case .createRepScheme(_, let twoSafe): command = .createRepScheme(peers: context.peerAddresses, twoSafe: twoSafe)
        case .createRepEpilog: command = .createRepEpilog()
        case .fence: command = .repDeactivate()
        case .fenceAndStop: command = .repDeactivate(stop: true)
        case .promote: command = .repStateSetActive
        case .setActive: command = .setActive
        case .clearActive: command = .clearActive
        case .duplicate(_, let from):
            try await duplicate(pod, from: from, rewind: true, action: action, agent: agent, uid: uid, context: context)
            return
        case .copyWhole(_, let from):
            try await duplicate(pod, from: from, rewind: false, action: action, agent: agent, uid: uid, context: context)
            return
        case .deletePodAndPVCs: return
        case .readStatus:
            do {
                agents.record(try await agent.status(), for: key, uid: uid)
            } catch {
                throw Failure(action: action, message: "\(error)", reportable: false)
            }
            return
        }
        do {
            let result = try await agent.perform(command)
            if case .done(_, let status?) = result { agents.record(status, for: key, uid: uid) }
            if action == .setActive(pod: pod) || action == .clearActive(pod: pod) {
                agents.update(key, uid: uid) { view in
                    view.readinessSet = action == .setActive(pod: pod)
                    view.readinessSetAt = Date()
                }
            }
        } catch {
            if action.appliesMetadata, let rejection = error.rejection, !rejection.isConflict {
                // The metadata (db.ini, adminUser, schema.sql, epilog.sql) was refused: no retry can help.
                agents.update(key, uid: uid) { $0.terminalReason = "\(command.verb) refused: \(rejection.message)"
                    + (rejection.stderr.map { ": \($0.trimmingCharacters(in: .whitespacesAndNewlines))" } ?? "") }
            }
            throw Failure(action: action, message: "\(error)", reportable: !(error.isUnreachable || error.rejection?.isConflict == true))
        }
    }

    /// Lets `pod` replicate from `from` (its address may be new), then starts the copy; the job
    /// is followed in the background so that the engine keeps deciding while it runs.
    func duplicate(
        _ pod: String, from: String, rewind: Bool, action: PairAction, agent: AgentClient, uid: String, context: Context
    ) async throws(Failure) {
        let sourceKey = context.podKey(from)
        guard let sourceAddress = context.address(from), let source = agents.client(sourceKey) else {
            throw Failure(action: action, message: "\(from) has no address or is not being watched yet", reportable: false)
        }
        let twoSafe = context.pair.ttspec.repReturnServiceAttribute == .returnTwosafe
        do throws(AgentClientError) {
            let result = try await source.perform(.createRepScheme(peers: context.peerAddresses, twoSafe: twoSafe))
            if case .done(_, let status?) = result, let sourceUID = context.uid(from) { agents.record(status, for: sourceKey, uid: sourceUID) }
            let started = try await agent.perform(.repDuplicate(from: sourceAddress, port: context.pair.ttspec.repPort, rewind: rewind))
            guard let job = started.job else { throw AgentClientError.malformed("repDuplicate answered without a job") }
            agents.follow(job: job, on: context.podKey(pod), uid: uid, client: agent)
        } catch {
            throw Failure(action: action, message: "\(error)", reportable: !(error.isUnreachable || error.rejection?.isConflict == true))
        }
    }

    /// deleteDbOnNotReadyNode: the pod goes, with its claims, so that the StatefulSet makes it
    /// again, with new claims, on a node that works.
    ///
    /// The decision may rest on a cache that has not yet seen an earlier deletion: only claims
    /// still tied to the NotReady node are deleted (never the new claims of a pod made again
    /// elsewhere), and the pod only in the incarnation the decision saw (a uid precondition).
    /// Claims go first, so that the StatefulSet cannot make the pod again on its old claim.
    func deletePodAndClaims(_ pod: String, action: PairAction, context: Context) async throws(Failure) {
        let namespace = context.names.namespace
        guard let nodeName = context.snapshot.pods[pod]?.spec.nodeName else { return }
        do {
            for claimName in [PairObjects.VolumeName.persistent, PairObjects.VolumeName.log].map({ "\($0)-\(pod)" }) {
                do {
                    let claim = try await client.get(PairClaim.self, name: claimName, namespace: namespace)
                    let pinned = claim.metadata.annotations[Self.selectedNodeAnnotation]
                    guard pinned == nil || pinned == nodeName else { continue }
                    let options = DeleteOptions(preconditionUID: claim.uid, preconditionResourceVersion: claim.resourceVersion)
                    _ = try await client.delete(PairClaim.self, name: claimName, namespace: namespace, options: options)
                } catch {
                    if !error.isNotFound && !error.isConflict { throw error }
                }
            }
            // The node is NotReady: no kubelet will confirm a graceful end, so the pod goes at once
            // (its processes are past reach, and the pair no longer counts on them).
            let options = DeleteOptions(preconditionUID: context.uid(pod), gracePeriodSeconds: 0)
            do {
                _ = try await client.delete(Pod.self, name: pod, namespace: namespace, options: options)
            } catch {
                // Gone, or already made again under another uid: done either way.
                if !error.isNotFound && !error.isConflict { throw error }
            }
        } catch {
            throw Failure(action: action, message: "\(error)", reportable: true)
        }
    }

    /// Where a claim's volume lives: the claim's pod can run only there.
    static let selectedNodeAnnotation = "volume.kubernetes.io/selected-node"
}

extension PairAction {
    /// The action applies the user's metadata files, which a retry cannot fix when they are wrong.
    var appliesMetadata: Bool {
        switch self {
        case .createDb, .createRepEpilog: true
        default: false
        }
    }
}
