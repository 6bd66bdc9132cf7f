import Foundation
import Logging
import Synchronization

public struct LeaderElectionConfig: Sendable {
    public var leaseName: String
    public var namespace: String
    public var identity: String
    /// How long a lease is honoured after its last renewal.
    public var leaseDuration: Duration
    /// How long the leader keeps trying to renew before it gives up leadership.
    public var renewDeadline: Duration
    /// Pause between attempts to acquire or renew.
    public var retryPeriod: Duration
    /// Clear the holder when `run` is cancelled, so that another replica takes over at once.
    public var releaseOnCancel: Bool

    public init(leaseName: String, namespace: String, identity: String, leaseDuration: Duration = .seconds(15),
                renewDeadline: Duration = .seconds(10), retryPeriod: Duration = .seconds(2), releaseOnCancel: Bool = true) {
        self.releaseOnCancel = releaseOnCancel
        self.leaseName = leaseName
        self.namespace = namespace
        self.identity = identity
        self.leaseDuration = leaseDuration
        self.renewDeadline = renewDeadline
        self.retryPeriod = retryPeriod
    }
}

/// Leader election over a `coordination.k8s.io/v1` Lease, with client-go's rules:
/// - a lease is free when it has no holder, or when its record has not changed for
///   `leaseDuration` as measured on this machine's clock (so clock skew between contenders does
///   not matter);
/// - every write carries the resourceVersion read, so two contenders cannot both win;
/// - the leader renews every `retryPeriod` and steps down if it cannot renew within
///   `renewDeadline`;
/// - on shutdown the leader clears the holder so another replica takes over at once.
public final class LeaderElector: Sendable {
    public let config: LeaderElectionConfig
    private let client: KubeClient
    private let logger: Logger

    private struct Observation {
        var holder: String?
        var renewTime: String?
        var duration: Duration
        var observedAt: ContinuousClock.Instant
    }
    private struct State {
        var observation: Observation?
        var leading = false
        var holderHandlers: [@Sendable (String?) -> Void] = []
        /// The Lease as this replica last wrote it, for the leader's renewals.
        var written: Lease?
    }
    private let state = Mutex(State())

    public init(client: KubeClient, config: LeaderElectionConfig, logger: Logger = Logger(label: "tenops.leader")) {
        // Lease calls never retry and never outlive the renew deadline: a leader that cannot
        // reach the API must find out in time to step down.
        let timeout = min(client.requestTimeout, max(.milliseconds(200), config.renewDeadline / 2))
        self.client = KubeClient(config: client.config, transport: client.transport, retryPolicy: .none, requestTimeout: timeout,
                                 userAgent: client.userAgent, logger: client.logger)
        self.config = config
        self.logger = logger
    }

    public var isLeader: Bool { state.withLock { $0.leading } }
    /// The holder as last observed (nil when free or not yet read).
    public var observedHolder: String? { state.withLock { $0.observation?.holder } }

    /// Called with the new holder whenever the observed holder changes.
    public func onHolderChange(_ handler: @escaping @Sendable (String?) -> Void) {
        state.withLock { $0.holderHandlers.append(handler) }
    }

    /// Campaigns until leadership is won, runs `lead` while leading, and campaigns again if it is
    /// lost. `lead` is cancelled when leadership is lost. Returns when the calling Task is
    /// cancelled; the lease is released then if this replica holds it.
    public func run(lead: @escaping @Sendable () async -> Void) async {
        while !Task.isCancelled {
            await acquire()
            if Task.isCancelled { break }
            logger.info("became leader", metadata: ["lease": "\(config.namespace)/\(config.leaseName)", "identity": "\(config.identity)"])
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await lead() }
                group.addTask { await self.renewUntilLost() }
                // Whichever ends first (leadership lost, or lead returned) ends the term.
                _ = await group.next()
                group.cancelAll()
            }
            setLeading(false)
            logger.info("stopped leading", metadata: ["lease": "\(config.namespace)/\(config.leaseName)"])
        }
        if config.releaseOnCancel {
            // The calling Task is cancelled by now, which would abort the release's requests:
            // release from a fresh Task.
            await Task { await self.release() }.value
        }
    }

    /// One attempt to take or renew the lease. Returns true when this replica holds it.
    ///
    /// A leader whose lease is still valid renews from the copy it last wrote, without reading
    /// the Lease first (client-go's fast path): the write carries that copy's resourceVersion,
    /// so it fails if anyone else wrote since, and the attempt then reads the Lease as a
    /// contender does.
    public func tryAcquireOrRenew(now: Date = Date()) async -> Bool {
        if let written = state.withLock({ $0.leading ? $0.written : nil }), !observedExpired() {
            var renewed = written
            var record = newRecord(now: now, transitions: written.spec.leaseTransitions ?? 0)
            record.acquireTime = written.spec.acquireTime
            renewed.spec = record
            do {
                let stored = try await client.update(renewed)
                observe(holder: config.identity, renewTime: stored.spec.json["renewTime"]?.stringValue, duration: config.leaseDuration)
                state.withLock { $0.written = stored }
                setLeading(true)
                return true
            } catch {
                logger.debug("lease renewal from the last written copy failed; reading the lease", metadata: ["error": "\(error)"])
            }
        }
        do {
            let lease: Lease
            do {
                lease = try await client.get(Lease.self, name: config.leaseName, namespace: config.namespace)
            } catch .notFound {
                var fresh = Lease(name: config.leaseName, namespace: config.namespace)
                fresh.spec = newRecord(now: now, transitions: 0)
                let stored = try await client.create(fresh)
                observe(holder: config.identity, renewTime: fresh.spec.json["renewTime"]?.stringValue, duration: config.leaseDuration)
                state.withLock { $0.written = stored }
                setLeading(true)
                return true
            }
            let spec = lease.spec
            // The holder's own lease duration decides when its lease expires.
            observe(holder: spec.holderIdentity.flatMap { $0.isEmpty ? nil : $0 }, renewTime: spec.json["renewTime"]?.stringValue,
                    duration: .seconds(max(1, spec.leaseDurationSeconds ?? Int(config.leaseDuration.components.seconds))))
            let heldByUs = spec.holderIdentity == config.identity
            if !heldByUs, let holder = spec.holderIdentity, !holder.isEmpty, !observedExpired() {
                setLeading(false)
                return false
            }
            var updated = lease
            var record = newRecord(now: now, transitions: spec.leaseTransitions ?? 0)
            if heldByUs {
                record.acquireTime = spec.acquireTime
            } else {
                record.leaseTransitions = (spec.leaseTransitions ?? 0) + 1
            }
            updated.spec = record
            let written = try await client.update(updated)
            observe(holder: config.identity, renewTime: written.spec.json["renewTime"]?.stringValue, duration: config.leaseDuration)
            state.withLock { $0.written = written }
            setLeading(true)
            return true
        } catch {
            logger.debug("lease attempt failed", metadata: ["error": "\(error)"])
            return false
        }
    }

    /// Gives the lease up if this replica holds it.
    public func release() async {
        guard isLeader || observedHolder == config.identity else { return }
        do {
            var lease = try await client.get(Lease.self, name: config.leaseName, namespace: config.namespace)
            guard lease.spec.holderIdentity == config.identity else { return }
            var spec = lease.spec
            spec.holderIdentity = nil
            spec.leaseDurationSeconds = 1
            spec.renewTime = Date()
            lease.spec = spec
            _ = try await client.update(lease)
            observe(holder: nil, renewTime: nil, duration: .seconds(1))
        } catch {
            logger.warning("could not release the lease", metadata: ["error": "\(error)"])
        }
        setLeading(false)
    }

    // MARK: Internals

    private func acquire() async {
        while !Task.isCancelled {
            if await tryAcquireOrRenew() { return }
            try? await Task.sleep(for: jittered(config.retryPeriod))
        }
    }

    private func renewUntilLost() async {
        var lastRenew = ContinuousClock.now
        while !Task.isCancelled {
            try? await Task.sleep(for: config.retryPeriod)
            if Task.isCancelled { return }
            let attemptStarted = ContinuousClock.now
            if await tryAcquireOrRenew() {
                lastRenew = attemptStarted  // the lease counts from when the renewal was sent
                continue
            }
            // Someone else holds it, or the deadline passed without a renewal: step down.
            if !isLeader || lastRenew.duration(to: .now) > config.renewDeadline {
                logger.warning("could not renew the lease within the deadline", metadata: ["lease": "\(config.leaseName)"])
                return
            }
        }
    }

    private func newRecord(now: Date, transitions: Int) -> LeaseSpec {
        var spec = LeaseSpec()
        spec.holderIdentity = config.identity
        spec.leaseDurationSeconds = max(1, Int(config.leaseDuration.components.seconds))
        spec.acquireTime = now
        spec.renewTime = now
        spec.leaseTransitions = transitions
        return spec
    }

    private func observe(holder: String?, renewTime: String?, duration: Duration) {
        let (changedHolder, handlers) = state.withLock { state -> (Bool, [@Sendable (String?) -> Void]) in
            let previous = state.observation
            if previous?.holder != holder || previous?.renewTime != renewTime || previous == nil {
                state.observation = Observation(holder: holder, renewTime: renewTime, duration: duration, observedAt: .now)
            }
            return (previous?.holder != holder || previous == nil, state.holderHandlers)
        }
        if changedHolder { handlers.forEach { $0(holder) } }
    }

    private func observedExpired() -> Bool {
        state.withLock { state in
            guard let observation = state.observation else { return true }
            return observation.observedAt.duration(to: .now) > observation.duration
        }
    }

    private func setLeading(_ leading: Bool) {
        state.withLock { state in
            state.leading = leading
            if !leading { state.written = nil }
        }
    }

    private func jittered(_ duration: Duration) -> Duration {
        .seconds(fraction: duration.inSeconds * Double.random(in: 1.0...1.2))
    }
}
