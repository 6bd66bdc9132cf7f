import Foundation
import KubeAPI
import Logging
import NIOConcurrencyHelpers
import Synchronization

/// The agents' side of the informers: one status stream per pod incarnation, each kept in an
/// ``AgentView``, and a callback whenever something a decision rests on changes (a postmaster
/// crash arrives here the moment the agent sees it). Also holds the repDuplicate jobs the engine
/// follows and the operator's client certificates, one per pair CA.
///
/// A standby's stream may rest while its active vouches for it (``rest(_:vouchedBy:)``): the
/// view keeps the standby's last status, takes its lag from the active's, and wakes (a stream
/// again, the view unsettled until it answers) the moment the active stops vouching, loses its
/// own stream, or anyone calls ``wake(_:why:)``. That halves the streams of pairs at rest.
public final class PairAgents: Sendable {
    /// The pod a view belongs to.
    public typealias PodKey = ObjectKey

    private struct Watch {
        var view: AgentView
        var client: AgentClient
        /// The open (or reopening) stream; nil while it rests or before it starts.
        var follower: StatusFollower?
        /// The pair the pod belongs to.
        var pair: ObjectKey
        /// The pod whose stream vouches for this one while this one's stream rests.
        var voucher: PodKey?
    }

    /// A watch in a box of its own, so that the dictionary's table holds a reference per slot,
    /// not a whole `Watch` (hundreds of bytes, in every slot of a table kept at most 3/4 full).
    /// Unchecked: a slot is only touched under the lock of `watches`.
    private final class Slot: @unchecked Sendable {
        var watch: Watch
        init(_ watch: Watch) { self.watch = watch }
    }

    /// The watches by pod, and which rest on which: every lookup by key, none a scan.
    private struct Watches {
        private var byPod: [PodKey: Slot] = [:]
        /// Voucher -> the pods resting on it.
        private var restingOn: [PodKey: Set<PodKey>] = [:]
        private(set) var restingCount = 0

        subscript(pod: PodKey) -> Watch? {
            get { byPod[pod]?.watch }
            set {
                let before = byPod[pod]?.watch.voucher
                if let newValue, let slot = byPod[pod] {
                    slot.watch = newValue
                } else {
                    byPod[pod] = newValue.map(Slot.init)
                }
                let after = newValue?.voucher
                guard before != after else { return }
                if let before {
                    restingOn[before]?.remove(pod)
                    if restingOn[before]?.isEmpty == true { restingOn[before] = nil }
                    restingCount -= 1
                }
                if let after {
                    restingOn[after, default: []].insert(pod)
                    restingCount += 1
                }
            }
        }

        @discardableResult
        mutating func removeValue(forKey pod: PodKey) -> Watch? {
            let old = self[pod]
            self[pod] = nil
            return old
        }

        var keys: Dictionary<PodKey, Slot>.Keys { byPod.keys }
        var all: [Watch] { byPod.values.map(\.watch) }
        var count: Int { byPod.count }
        func peers(restingOn voucher: PodKey) -> Set<PodKey> { restingOn[voucher] ?? [] }
    }

    private let watches = Mutex(Watches())
    private let identities = Mutex<[ObjectKey: (caPEM: Data, tls: TLSSettings)]>([:])
    private let logger: Logger
    /// Called with the pair's key when a view of one of its pods changes in a way that matters.
    private let onChange: @Sendable (ObjectKey) -> Void
    /// Called with the pair's key when a pod's status changes in a way no decision rests on (lag,
    /// WAL position), which `.status` still reports.
    private let onDrift: @Sendable (ObjectKey) -> Void

    public init(
        logger: Logger, onDrift: @escaping @Sendable (ObjectKey) -> Void = { _ in }, onChange: @escaping @Sendable (ObjectKey) -> Void
    ) {
        self.logger = logger
        self.onChange = onChange
        self.onDrift = onDrift
    }

    deinit {
        watches.withLock { $0.all.forEach { $0.follower?.cancel() } }
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

    /// Watches the agent of pod incarnation `uid` of `pair` at `client`, unless that is already
    /// done; a watch of an older incarnation or another address is replaced.
    public func watch(_ pod: PodKey, of pair: ObjectKey, uid: String, client: AgentClient, now: Date = Date()) {
        let started: Bool = watches.withLock { watches in
            if let existing = watches[pod], existing.view.podUID == uid, existing.client.baseURL == client.baseURL { return false }
            watches[pod]?.follower?.cancel()
            watches[pod] = Watch(view: AgentView(podUID: uid, address: client.baseURL, watchingSince: now), client: client, pair: pair)
            return true
        }
        guard started else { return }
        defer { countStreams() }
        wakePeers(restingOn: pod, why: "the agent of \(pod) is watched anew")
        logger.debug("watching the agent of \(pod) at \(client.baseURL)")
        start(pod, uid: uid, client: client)
    }

    private func start(_ pod: PodKey, uid: String, client: AgentClient) {
        let follower = StatusFollower(client: client) { [weak self] status in
            self?.received(status, pod: pod, uid: uid)
        } lost: { [weak self] why in
            self?.lost(pod, uid: uid, why: why)
        }
        let kept: Bool = watches.withLock { watches in
            guard watches[pod]?.view.podUID == uid, watches[pod]?.follower == nil, watches[pod]?.voucher == nil else { return false }
            watches[pod]?.follower = follower
            return true
        }
        if kept { follower.start() }
    }

    /// Stops watching `pod` and forgets its view.
    public func stop(_ pod: PodKey) {
        let watch = watches.withLock { $0.removeValue(forKey: pod) }
        watch?.follower?.cancel()
        wakePeers(restingOn: pod, why: "the agent of \(pod) is no longer watched")
        countStreams()
    }

    /// Stops every watch of pods in `namespace` whose name is not in `keep` and begins with `prefix`.
    public func stopAll(except keep: Set<PodKey>, where belongs: (PodKey) -> Bool) {
        let stopped: [(PodKey, Watch)] = watches.withLock { watches in
            let gone = watches.keys.filter { belongs($0) && !keep.contains($0) }
            return gone.compactMap { key in watches.removeValue(forKey: key).map { (key, $0) } }
        }
        for (key, watch) in stopped {
            watch.follower?.cancel()
            wakePeers(restingOn: key, why: "the agent of \(key) is no longer watched")
        }
        if !stopped.isEmpty { countStreams() }
    }

    /// The pair that watched pod `pod` belongs to.
    private func pair(of pod: PodKey) -> ObjectKey? { watches.withLock { $0[pod]?.pair } }

    // MARK: Resting

    /// Lets the stream of `pod` rest while `voucher`'s status vouches for it (``StandbyRest/vouches(_:)``).
    /// Nothing happens unless both are watched, reachable and settled, and the voucher vouches now.
    public func rest(_ pod: PodKey, vouchedBy voucher: PodKey) {
        // The stream's follower, when the stream now rests (nil inside: it had not started yet).
        let rested: StatusFollower?? = watches.withLock { watches in
            guard var watch = watches[pod], watch.voucher == nil, watch.view.reachable, watch.view.settled,
                  let guarantor = watches[voucher], guarantor.voucher == nil, guarantor.view.reachable, guarantor.view.settled,
                  StandbyRest.vouches(guarantor.view.status)
            else { return nil }
            let follower = watch.follower
            watch.follower = nil
            watch.voucher = voucher
            watches[pod] = watch
            return .some(follower)
        }
        guard let follower = rested else { return }
        follower?.cancel()
        countStreams()
        logger.info("the status stream of \(pod) rests while \(voucher) vouches for it")
    }

    /// Ends the rest of `pod`'s stream, if it rests: the stream opens again, and the view is not
    /// settled (no decision rests on it) until the agent answers or the attempt fails.
    public func wake(_ pod: PodKey, why: String) {
        let woken: (uid: String, client: AgentClient)? = watches.withLock { watches in
            guard var watch = watches[pod], watch.voucher != nil else { return nil }
            watch.voucher = nil
            watch.view.settled = false
            // Vouched for until now: an unreachable agent counts from here, not from the rest's start.
            watch.view.lastTimeReachable = Date()
            watches[pod] = watch
            return (watch.view.podUID, watch.client)
        }
        guard let woken else { return }
        logger.info("the status stream of \(pod) wakes: \(why)")
        start(pod, uid: woken.uid, client: woken.client)
        countStreams()
    }

    /// Whether the stream of `pod` rests.
    private func isResting(_ pod: PodKey) -> Bool { watches.withLock { $0[pod]?.voucher != nil } }

    /// Takes in the tt container's restart count of incarnation `uid` as the pod reports it now.
    /// An awake, settled view records it as the count its status belongs to; a resting view
    /// whose container has restarted since wakes, since its status is no longer the agent's word.
    public func observeRestarts(_ pod: PodKey, uid: String, count: Int?) {
        let restarted: Bool = watches.withLock { watches in
            guard var watch = watches[pod], watch.view.podUID == uid else { return false }
            if watch.voucher != nil { return watch.view.restartCountAtStatus != count }
            if watch.view.reachable, watch.view.settled { watch.view.restartCountAtStatus = count }
            watches[pod] = watch
            return false
        }
        if restarted { wake(pod, why: "its tt container restarted") }
    }

    /// Publishes how many streams are open and how many rest (`tenops_agent_streams`).
    private func countStreams() {
        let (all, resting) = watches.withLock { watches in (watches.count, watches.restingCount) }
        EngineMetrics.agentStreams(open: all - resting, resting: resting)
    }

    private func wakePeers(restingOn voucher: PodKey, why: String) {
        let peers = watches.withLock { $0.peers(restingOn: voucher) }
        for peer in peers { wake(peer, why: why) }
    }

    private func received(_ status: AgentStatus, pod: PodKey, uid: String) {
        var changed = false
        var drifted = false
        // A status that a resting stream let through as it was cancelled is still news, but
        // a resting view stays resting.
        update(pod, uid: uid) { view in
            changed = !view.reachable || !view.settled || AgentView.decisive(view.status) != AgentView.decisive(status)
            drifted = view.status != status
            view.status = status
            view.reachable = true
            view.settled = true
            view.lastTimeReachable = Date()
            view.lastError = nil
        }
        vouch(status, from: pod)
        guard let pair = pair(of: pod) else { return }
        if changed { onChange(pair) } else if drifted { onDrift(pair) }
    }

    /// Hands the lag an active reports to the standbys resting on it, or wakes them when it no
    /// longer vouches for them. Before `onChange`: the reconcile it starts must not judge a
    /// standby from a status that no longer holds.
    private func vouch(_ status: AgentStatus, from voucher: PodKey) {
        let vouches = StandbyRest.vouches(status)
        let peers: Set<PodKey> = watches.withLock { watches in
            let peers = watches.peers(restingOn: voucher)
            guard vouches else { return peers }
            for key in peers {
                guard var watch = watches[key], var restingStatus = watch.view.status else { continue }
                restingStatus.bytesBehind = status.bytesBehind
                watch.view.status = restingStatus
                watch.view.lastTimeReachable = Date()
                watches[key] = watch
            }
            return peers
        }
        guard !vouches else { return }
        for peer in peers { wake(peer, why: "\(voucher) reports repState \(status.repState.rawValue), peer \(status.repPeerPState)") }
    }

    private func lost(_ pod: PodKey, uid: String, why: String) {
        var changed = false
        wakePeers(restingOn: pod, why: "the status stream of \(pod) is lost")
        guard !isResting(pod) else { return }
        update(pod, uid: uid) { view in
            changed = view.reachable || !view.settled
            view.reachable = false
            view.settled = true
            view.lastError = why
        }
        if changed {
            logger.info("agent of \(pod) unreachable: \(why)")
            if let pair = pair(of: pod) { onChange(pair) }
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
            if let pair = self.pair(of: pod) { self.onChange(pair) }
        }
    }

    // MARK: Identity

    /// The operator's TLS settings for the agents of a pair: its own clientAuth certificate,
    /// issued once per pair CA and kept in memory only.
    public func tls(for pair: ObjectKey, certificates: PairCertificates) throws -> TLSSettings {
        let caPEM = Data(certificates.caCertificatePEM.utf8)
        if let cached = identities.withLock({ $0[pair] }), cached.caPEM == caPEM { return cached.tls }
        let tls = try certificates.agentTLSSettings(client: try certificates.issueOperatorClient())
        identities.withLock { $0[pair] = (caPEM, tls) }
        return tls
    }

    public func forget(pair: ObjectKey) {
        _ = identities.withLock { $0.removeValue(forKey: pair) }
    }
}
