import ArgumentParser
import Foundation
import KubeAPI
import Logging
import Metrics
import OperatorEngine
import Prometheus
import Synchronization

/// `tenops operator`: the engine as a process of its own, against any cluster, in-cluster or not.
///
/// Several replicas elect one leader through the Lease `tenops-operator` (KubeAPI's
/// LeaderElector); only the leader runs the engine, and it stops the engine the moment it loses
/// the Lease. SIGTERM or SIGINT stops the engine and releases the Lease, so that a standby replica
/// takes over at once, and the process exits 0. Every replica serves /healthz, /readyz and
/// /metrics over plain HTTP.
struct Operator: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the operator engine: reconcile TimesTenClassic pairs.",
        discussion: """
            Watches the namespace of -n (or the context's, or the service account's in a pod), or every namespace with -A. \
            Run several replicas: they elect one leader through a coordination.k8s.io Lease, and only the leader reconciles. \
            Serves /healthz, /readyz and /metrics (Prometheus) on --metrics-address.
            """)

    @OptionGroup var kube: KubeOptions
    @Flag(name: [.customShort("A"), .long], help: "Watch every namespace.") var allNamespaces = false
    @Flag(help: "Create or update the TimesTenClassic CRD before starting.") var installCRD = false

    @Option(help: "The leader-election Lease's name.") var leaseName = "tenops-operator"
    @Option(help: "The Lease's namespace (default: $POD_NAMESPACE, else the watched namespace, else default).")
    var leaseNamespace: String?
    @Option(help: "Seconds a Lease is honoured after its last renewal.") var leaseDuration: Double = 15
    @Option(help: "Seconds the leader keeps trying to renew before it stops leading.") var renewDeadline: Double = 10
    @Option(help: "Seconds between attempts to take or renew the Lease.") var retryPeriod: Double = 2

    @Option(help: "HOST:PORT for /healthz, /readyz and /metrics (port 0: any free port, printed at start).")
    var metricsAddress = "0.0.0.0:8080"
    @Option(help: "Log format on stderr: text or json (one object a line).") var logFormat: LogFormat = .text
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel = "info"

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level: unknown level \"\(logLevel)\"") }
        guard (try? HealthEndpoint.parseAddress(metricsAddress)) != nil else {
            throw ValidationError("--metrics-address: expected HOST:PORT, got \"\(metricsAddress)\"")
        }
        guard retryPeriod > 0, renewDeadline > retryPeriod * 1.2, leaseDuration > renewDeadline else {
            throw ValidationError("leader election needs --lease-duration > --renew-deadline > 1.2 x --retry-period > 0")
        }
    }

    func run() async throws {
        LogSetup.bootstrap(format: logFormat, level: Logger.Level(rawValue: logLevel) ?? .info)
        let signals = TerminationSignal.install()
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // Agent verbs include copies and database creation: buckets up to two minutes.
        factory.durationHistogramBuckets[EngineMetrics.Name.agentRequestDuration] =
            [.milliseconds(10), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
             .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30), .seconds(60), .seconds(120)]
        MetricsSystem.bootstrap(factory)
        EngineMetrics.leader(false)

        let logger = Logger(label: "tenops.operator")
        let config = try kube.clusterConfig()
        let client = KubeClient(config: config)
        if installCRD { try await ClusterSetup.install(client: client, sample: false, logger: logger) }
        let namespace = allNamespaces ? nil : config.namespace
        let environment = ProcessInfo.processInfo.environment
        let lease = LeaderElectionConfig(
            leaseName: leaseName,
            namespace: leaseNamespace ?? environment["POD_NAMESPACE"].flatMap { $0.isEmpty ? nil : $0 } ?? namespace ?? "default",
            identity: Self.identity(),
            leaseDuration: .seconds(leaseDuration), renewDeadline: .seconds(renewDeadline), retryPeriod: .seconds(retryPeriod),
            releaseOnCancel: true)

        let health = OperatorHealth()
        let endpoint = try await HealthEndpoint.start(address: metricsAddress, health: health, registry: registry)
        print("tenops operator: serving /healthz, /readyz and /metrics on http://\(endpoint.host):\(endpoint.port)")
        print("tenops operator: campaigning for the Lease \(lease.namespace)/\(lease.leaseName) as \(lease.identity)")
        fflush(nil)  // a pipe or log file sees the port now
        logger.info("serving /healthz, /readyz and /metrics", metadata: ["address": "\(endpoint.host):\(endpoint.port)"])
        logger.info("watching \(namespace.map { "namespace \($0)" } ?? "every namespace")",
                    metadata: ["server": "\(config.server)", "lease": "\(lease.namespace)/\(lease.leaseName)", "identity": "\(lease.identity)"])

        let elector = LeaderElector(client: client, config: lease, logger: logger)
        elector.onHolderChange { holder in
            health.campaigning()
            logger.info("lease holder: \(holder ?? "none")", metadata: ["lease": "\(lease.namespace)/\(lease.leaseName)"])
        }
        let election = Task {
            await elector.run {
                // One term of leadership: a fresh engine, cancelled when the term ends.
                health.leading(true)
                EngineMetrics.leader(true)
                let reconciler = PairReconciler(client: client, namespace: namespace, logger: logger)
                await withTaskGroup(of: Void.self) { group in
                    group.addTask { await reconciler.run() }
                    group.addTask {
                        await reconciler.waitUntilSynced()
                        guard !Task.isCancelled else { return }
                        health.synced()
                        logger.info("informers synced; reconciling")
                    }
                    await group.waitForAll()
                }
                health.leading(false)
                EngineMetrics.leader(false)
                EngineMetrics.forgetAllPairs()
            }
        }

        let trimmer = Task { await HeapTrimmer.run(logger: logger) }
        let signal = await signals.wait()
        logger.info("\(signal): stopping the engine and releasing the lease")
        trimmer.cancel()
        election.cancel()
        if await !Self.finishes(election, within: .seconds(max(5, renewDeadline))) {
            logger.warning("the engine did not stop in time; exiting anyway")
        }
        await endpoint.stop()
        logger.info("stopped")
    }

    /// `HOSTNAME_RANDOM`: the pod's name in a cluster, unique among replicas on one machine too.
    static func identity() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        let host = gethostname(&buffer, buffer.count) == 0
            ? String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "tenops"
        let random = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        return "\(host.isEmpty ? "tenops" : host)_\(String(repeating: "0", count: 8 - random.count))\(random)"
    }

    /// Waits for `task` at most `limit`; false when it is still running then.
    static func finishes(_ task: Task<Void, Never>, within limit: Duration) async -> Bool {
        let (stream, continuation) = AsyncStream<Bool>.makeStream(bufferingPolicy: .bufferingOldest(1))
        let waiter = Task {
            await task.value
            continuation.yield(true)
        }
        let timer = Task {
            try? await Task.sleep(for: limit)
            continuation.yield(false)
        }
        var iterator = stream.makeAsyncIterator()
        let finished = await iterator.next() ?? false
        timer.cancel()
        if !finished { waiter.cancel() }
        return finished
    }
}

/// What /readyz answers: a replica is ready once it campaigns (it has read the Lease); the
/// leader once its informers have synced.
final class OperatorHealth: Sendable {
    private struct State {
        var campaigning = false
        var leading = false
        var synced = false
    }
    private let state = Mutex(State())

    func campaigning() { state.withLock { $0.campaigning = true } }

    func leading(_ leading: Bool) {
        state.withLock {
            $0.leading = leading
            $0.synced = false
            if leading { $0.campaigning = true }
        }
    }

    func synced() { state.withLock { $0.synced = true } }

    /// nil when ready; else why not.
    var notReadyReason: String? {
        state.withLock { state in
            if state.leading { return state.synced ? nil : "leading; the informers have not synced yet" }
            return state.campaigning ? nil : "the leader Lease has not been read yet"
        }
    }

    var isLeading: Bool { state.withLock { $0.leading } }
}
