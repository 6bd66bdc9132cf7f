import Foundation
import KubeAPI
import Logging
import NIOConcurrencyHelpers
import Synchronization

/// The agents' side of the informers: one status stream per pod incarnation, each kept in an
/// ``AgentView``, and a callback whenever something a decision rests on changes (a postmaster
/// crash arrives here the moment the agent sees it). Also holds the repDuplicate jobs the engine
/// follows and the operator's client certificates, one per pair CA.
public final class PairAgents: Sendable {
    /// The pod a view belongs to.
    public typealias PodKey = ObjectKey

    private struct Watch {
        var view: AgentView
        var client: AgentClient
        var task: Task<Void, Never>?
    }

    private let watches = Mutex<[PodKey: Watch]>([:])
    private let identities = Mutex<[ObjectKey: (caPEM: Data, tls: TLSSettings)]>([:])
    private let logger: Logger
    /// Called with the pod's key when its view changes in a way that matters.
    private let onChange: @Sendable (PodKey) -> Void
    /// Called with the pod's key when its status changes in a way no decision rests on (lag,
    /// WAL position), which `.status` still reports.
    private let onDrift: @Sendable (PodKey) -> Void

    public init(
        logger: Logger, onDrift: @escaping @Sendable (PodKey) -> Void = { _ in }, onChange: @escaping @Sendable (PodKey) -> Void
    ) {
        self.logger = logger
        self.onChange = onChange
        self.onDrift = onDrift
    }

    deinit {
        watches.withLock { $0.values.forEach { $0.task?.cancel() } }
    }

    // MARK: Views

    public func view(_ pod: PodKey) -> AgentView? { watches.withLock { $0[pod]?.view } }

    /// The client of the agent being watched for `pod`.
    public func client(_ pod: PodKey) -> AgentClient? { watches.withLock { $0[pod]?.client } }

    /// Changes a view, if it still describes incarnation `uid`.
    public func update(_ pod: PodKey, uid: String, _ change: (inout AgentView) -> Void) {
        watches.withLock { watches in
            guard var watch = watches[pod], watch.view.podUID == uid else { return }
            change(&watch.view)
            watches[pod] = watch
        }
    }

    /// Records a status that a verb answered with, as if the stream had brought it.
    public func record(_ status: AgentStatus, for pod: PodKey, uid: String) {
        update(pod, uid: uid) { view in
            view.status = status
            view.reachable = true
            view.settled = true
            view.lastTimeReachable = Date()
            view.lastError = nil
        }
    }

    // MARK: Watching

    /// Watches the agent of pod incarnation `uid` at `client`, unless that is already done;
    /// a watch of an older incarnation or another address is replaced.
    public func watch(_ pod: PodKey, uid: String, client: AgentClient, now: Date = Date()) {
        let started: Bool = watches.withLock { watches in
            if let existing = watches[pod], existing.view.podUID == uid, existing.client.baseURL == client.baseURL { return false }
            watches[pod]?.task?.cancel()
            watches[pod] = Watch(view: AgentView(podUID: uid, address: client.baseURL, watchingSince: now), client: client)
            return true
        }
        guard started else { return }
        logger.debug("watching the agent of \(pod) at \(client.baseURL)")
        let task = Task<Void, Never> { [weak self] in await self?.follow(pod, uid: uid, client: client) }
        watches.withLock { watches in
            if watches[pod]?.view.podUID == uid, watches[pod]?.task == nil { watches[pod]?.task = task } else { task.cancel() }
        }
    }

    /// Stops watching `pod` and forgets its view.
    public func stop(_ pod: PodKey) {
        let watch = watches.withLock { $0.removeValue(forKey: pod) }
        watch?.task?.cancel()
    }

    /// Stops every watch of pods in `namespace` whose name is not in `keep` and begins with `prefix`.
    public func stopAll(except keep: Set<PodKey>, where belongs: (PodKey) -> Bool) {
        let stopped: [Watch] = watches.withLock { watches in
            let gone = watches.keys.filter { belongs($0) && !keep.contains($0) }
            return gone.compactMap { watches.removeValue(forKey: $0) }
        }
        stopped.forEach { $0.task?.cancel() }
    }

    public var watchedPods: [PodKey] { watches.withLock { Array($0.keys) } }

    private func follow(_ pod: PodKey, uid: String, client: AgentClient) async {
        var backoff: Duration = .milliseconds(100)
        while !Task.isCancelled {
            let opened = NIOLockedValueBox(false)
            do {
                try await client.followStatus(opened: { opened.withLockedValue { $0 = true } }) { [weak self] status in
                    self?.received(status, pod: pod, uid: uid)
                }
                lost(pod, uid: uid, why: "the agent closed its status stream")
            } catch {
                if Task.isCancelled { return }
                lost(pod, uid: uid, why: "\(error)")
            }
            // A stream that got as far as opening starts the next attempt from the shortest wait.
            if opened.withLockedValue({ $0 }) { backoff = .milliseconds(100) }
            do { try await Task.sleep(for: backoff) } catch { return }
            backoff = min(backoff * 2, .seconds(2))
        }
    }

    private func received(_ status: AgentStatus, pod: PodKey, uid: String) {
        var changed = false
        var drifted = false
        update(pod, uid: uid) { view in
            changed = !view.reachable || !view.settled || AgentView.decisive(view.status) != AgentView.decisive(status)
            drifted = view.status != status
            view.status = status
            view.reachable = true
            view.settled = true
            view.lastTimeReachable = Date()
            view.lastError = nil
        }
        if changed { onChange(pod) } else if drifted { onDrift(pod) }
    }

    private func lost(_ pod: PodKey, uid: String, why: String) {
        var changed = false
        update(pod, uid: uid) { view in
            changed = view.reachable || !view.settled
            view.reachable = false
            view.settled = true
            view.lastError = why
        }
        if changed {
            logger.info("agent of \(pod) unreachable: \(why)")
            onChange(pod)
        }
    }

    // MARK: Jobs

    /// Follows a repDuplicate job that has started on `pod`: the view shows its progress, and
    /// its end (either way) calls back.
    public func follow(job: AgentJobStatus, on pod: PodKey, uid: String, client: AgentClient) {
        update(pod, uid: uid) { view in
            view.job = job
            view.jobError = nil
        }
        Task { [weak self] in
            var failure: String?
            do {
                _ = try await client.waitForJob(job.id, pollInterval: .milliseconds(100)) { [weak self] progress in
                    self?.update(pod, uid: uid) { $0.job = progress }
                }
            } catch {
                failure = "\(error)"
            }
            guard let self else { return }
            self.update(pod, uid: uid) { view in
                if var finished = view.job {
                    finished.state = failure == nil ? .succeeded : .failed
                    view.job = finished
                }
                view.jobError = failure
            }
            if let failure { self.logger.warning("repDuplicate on \(pod) failed: \(failure)") }
            self.onChange(pod)
        }
    }

    // MARK: Identity

    /// The operator's TLS settings for the agents of a pair: its own clientAuth certificate,
    /// issued once per pair CA and kept in memory only.
    public func tls(for pair: ObjectKey, certificates: PairCertificates) throws -> TLSSettings {
        let caPEM = Data(try certificates.authority.certificate.pem.utf8)
        if let cached = identities.withLock({ $0[pair] }), cached.caPEM == caPEM { return cached.tls }
        let tls = try certificates.agentTLSSettings(client: try certificates.issueOperatorClient())
        identities.withLock { $0[pair] = (caPEM, tls) }
        return tls
    }

    public func forget(pair: ObjectKey) {
        _ = identities.withLock { $0.removeValue(forKey: pair) }
    }
}
