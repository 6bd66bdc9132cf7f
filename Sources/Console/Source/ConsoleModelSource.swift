import Foundation
import KubeAPI
import Logging
import OperatorEngine
import Synchronization

/// The console's model: informers on the pairs, their pods, claims and events, the nodes and the
/// leader Lease, turned into a `ConsoleSnapshot` whenever something changes.
///
/// Changes are coalesced: a burst (a relist, a thousand pairs changing state) gives one
/// snapshot, then the next may come `coalesceInterval` later at the soonest. A snapshot equal to
/// the last one (apart from its time) is not delivered, so nothing redraws. There is no periodic
/// request: the informers' watches are the only traffic.
public final class ConsoleModelSource: Sendable {
    public struct Configuration: Sendable {
        public var context: String
        /// nil: every namespace.
        public var namespace: String?
        /// What the user asked for: auto, embedded or observe.
        public var engineRequested: String
        public var leaseName: String
        public var leaseNamespace: String
        /// Started by `tenops local`: the node keys apply whatever the nodes say.
        public var knownLocal: Bool
        public var local: LocalNodeTraits?
        public var coalesceInterval: Duration

        public init(context: String, namespace: String?, engineRequested: String, leaseName: String = "tenops-operator",
                    leaseNamespace: String = "default", knownLocal: Bool = false, local: LocalNodeTraits? = nil,
                    coalesceInterval: Duration = .milliseconds(50)) {
            self.context = context
            self.namespace = namespace
            self.engineRequested = engineRequested
            self.leaseName = leaseName
            self.leaseNamespace = leaseNamespace
            self.knownLocal = knownLocal
            self.local = local
            self.coalesceInterval = coalesceInterval
        }
    }

    /// The label every pod and claim of a pair carries (PairNames.selectorLabels).
    static let pairLabel = "tenops.io/pair"

    /// The informers' first watches end after 15 to 30 seconds; later ones after 5 to 10
    /// minutes. A watch's end and its resume then run for the first time while the console
    /// settles, not minutes into its life: the code they need is paged in and the heap and the
    /// threads' stacks take their shape then, so the RSS after the first minute stays flat.
    /// It costs one more WATCH request per informer.
    static let warmUpWatchSeconds = 15

    public let configuration: Configuration
    public let health = WatchHealth()
    private let pairs: Informer<TimesTenClassic>
    private let pods: Informer<Pod>
    private let nodes: Informer<KubeAPI.Node>
    private let claims: Informer<PersistentVolumeClaim>
    private let events: Informer<CoreEvent>
    private let lease: Informer<Lease>
    private let dirty: AsyncStream<Void>
    private let dirtyContinuation: AsyncStream<Void>.Continuation
    private let engineMode: Mutex<EngineInfo.Mode>
    private let builds = Atomic<Int>(0)

    public init(client: KubeClient, configuration: Configuration, engineMode: EngineInfo.Mode = .observe,
                logger: Logger = Logger(label: "tenops.console")) {
        self.configuration = configuration
        self.engineMode = Mutex(engineMode)
        (dirty, dirtyContinuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let namespace = configuration.namespace
        let health = self.health
        let continuation = dirtyContinuation
        let mark: @Sendable () -> Void = { continuation.yield() }
        // Each informer reports its failures to `health` under its resource's plural, starts with
        // a short watch, and marks the model dirty on any change.
        func informer<T: KubeObject>(namespace: String?, labelSelector: String? = nil, fieldSelector: String? = nil) -> Informer<T> {
            let informer = Informer<T>(
                client: client, namespace: namespace, labelSelector: labelSelector, fieldSelector: fieldSelector,
                firstWatchTimeoutSeconds: Self.warmUpWatchSeconds,
                logger: health.logger(for: T.resourceType.plural, base: logger, changed: mark))
            informer.addHandler { _ in mark() }
            return informer
        }
        pairs = informer(namespace: namespace)
        pods = informer(namespace: namespace, labelSelector: Self.pairLabel)
        nodes = informer(namespace: nil)
        claims = informer(namespace: namespace, labelSelector: Self.pairLabel)
        events = informer(namespace: namespace, fieldSelector: "involvedObject.kind=\(TimesTenClassic.resourceType.kind)")
        lease = informer(namespace: configuration.leaseNamespace, fieldSelector: "metadata.name=\(configuration.leaseName)")
    }

    /// Whether this console runs the engine now (it won the Lease, or lost it).
    public func setEngineMode(_ mode: EngineInfo.Mode) {
        engineMode.withLock { $0 = mode }
        dirtyContinuation.yield()
    }

    /// Snapshots built so far (the benchmark and the tests count them).
    public var snapshotsBuilt: Int { builds.load(ordering: .relaxed) }

    public var hasSynced: Bool {
        pairs.hasSynced && pods.hasSynced && nodes.hasSynced && claims.hasSynced && events.hasSynced && lease.hasSynced
    }

    /// What the caches hold now.
    public func contents() -> ClusterContents {
        ClusterContents(pairs: pairs.store.list(), pods: pods.store.list(), nodes: nodes.store.list(), claims: claims.store.list(),
                        events: events.store.list(), lease: lease.store.list().first)
    }

    /// The snapshot of the caches now.
    public func snapshot(now: Date = Date()) -> ConsoleSnapshot {
        builds.add(1, ordering: .relaxed)
        let mode = engineMode.withLock { $0 }
        let header = SnapshotHeader(
            context: configuration.context, namespace: configuration.namespace,
            engine: EngineInfo(requested: configuration.engineRequested, mode: mode),
            api: health.health(synced: hasSynced), knownLocal: configuration.knownLocal)
        return SnapshotBuilder.build(contents(), header: header, local: configuration.local, now: now)
    }

    /// Runs the informers and delivers snapshots until the calling Task is cancelled.
    public func run(_ deliver: @escaping @Sendable (ConsoleSnapshot) -> Void) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.pairs.run() }
            group.addTask { await self.pods.run() }
            group.addTask { await self.nodes.run() }
            group.addTask { await self.claims.run() }
            group.addTask { await self.events.run() }
            group.addTask { await self.lease.run() }
            group.addTask { await self.coalesce(deliver) }
            await group.next()
            group.cancelAll()
        }
    }

    /// One snapshot per burst of changes, at most one per `coalesceInterval`.
    private func coalesce(_ deliver: @Sendable (ConsoleSnapshot) -> Void) async {
        dirtyContinuation.yield()
        var last: ConsoleSnapshot?
        for await _ in dirty {
            if Task.isCancelled { return }
            let snapshot = snapshot()
            if last.map({ !Self.sameContent($0, snapshot) }) ?? true {
                deliver(snapshot)
                last = snapshot
            }
            try? await Task.sleep(for: configuration.coalesceInterval)
        }
    }

    /// Equal apart from the time they were taken.
    static func sameContent(_ a: ConsoleSnapshot, _ b: ConsoleSnapshot) -> Bool {
        var b = b
        b.now = a.now
        return a == b
    }
}
