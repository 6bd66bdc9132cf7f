import Foundation
import KubeAPI
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A node that runs pods as local processes: a kubelet for any API server, reached only through
/// the public API (`tenops node`, and the nodes of `tenops local`).
///
/// - It registers its Node object and heartbeats as the kubelet does: the Lease
///   `kube-node-lease/NAME`, renewed every `heartbeatInterval`, and the Node's conditions.
/// - It watches the pods bound to it (`spec.nodeName=NAME`) and runs each container's
///   `command` + `args` as a process group of its own, with the environment, volumes and pod IP
///   described in `ContainerEnvironment`, `PodVolumes` and `PodAddressPool`; it restarts
///   containers by their restart policy with crash-loop backoff, runs their probes, and reports
///   container and pod status the moment something changes.
/// - A deleted pod gets SIGTERM, its grace period, then SIGKILL; its object is removed once
///   its processes are gone.
/// - Container output goes to files, served at the kubelet endpoint (see `KubeletServer`).
/// - The annotation `tenops.io/simulate` on its Node object plays a failure: `poweroff` kills
///   every process and stops heartbeats, `partition` stops heartbeats and every API write;
///   removing it (or any other value) brings the node back.
/// - Started again on the same directory, it kills what is left of its previous run and starts
///   the pods still bound to it (each container's restartCount goes up by one), with the same
///   pod IPs and the same claim data.
public final class ProcessNode: Sendable {
    public struct Options: Sendable {
        /// The node name, e.g. "node-a".
        public var name: String
        /// Everything of this node lives under it (see `NodeLayout`).
        public var stateDirectory: String
        /// The node's own loopback IPv4 address: its InternalIP, and where the kubelet endpoint
        /// listens.
        public var address: String
        /// The first one to three octets of the pod IPs; nil takes the node address's first
        /// three (a node at 127.1.0.1 gives its pods 127.1.0.2, 127.1.0.3, ...).
        public var podAddressPrefix: String?
        /// The kubelet endpoint's port; 0 picks a free one, remembered across restarts.
        public var kubeletPort: Int
        /// How often the Lease is renewed and the Node's conditions are written.
        public var heartbeatInterval: Duration
        /// Extra node labels; `kubernetes.io/hostname=NAME` is always set.
        public var labels: [String: String]
        /// The crash-loop backoff schedule.
        public var restartBackoff: RestartBackoff
        /// When the node stops, how long its pods get between SIGTERM and SIGKILL at most.
        public var shutdownGracePeriod: Duration
        /// The CA that client certificates at the kubelet endpoint must chain to; nil takes the
        /// cluster CA from the kubeconfig.
        public var clientCertificateAuthorityPEM: Data?

        public init(
            name: String, stateDirectory: String, address: String = "127.0.0.1", podAddressPrefix: String? = nil,
            kubeletPort: Int = 0, heartbeatInterval: Duration = .seconds(10), labels: [String: String] = [:],
            restartBackoff: RestartBackoff = RestartBackoff(), shutdownGracePeriod: Duration = .seconds(10),
            clientCertificateAuthorityPEM: Data? = nil
        ) {
            self.name = name
            self.stateDirectory = stateDirectory
            self.address = address
            self.podAddressPrefix = podAddressPrefix
            self.kubeletPort = kubeletPort
            self.heartbeatInterval = heartbeatInterval
            self.labels = labels
            self.restartBackoff = restartBackoff
            self.shutdownGracePeriod = shutdownGracePeriod
            self.clientCertificateAuthorityPEM = clientCertificateAuthorityPEM
        }
    }

    /// The Node annotation that plays a failure: `poweroff` or `partition`.
    public static let simulateAnnotation = NodeSimulation.annotation

    public let name: String
    /// `https://ADDRESS:PORT`, the kubelet endpoint.
    public let kubeletURL: String
    private let commands: AsyncStream<NodeCommand>.Continuation
    private let loop: Task<Void, Never>
    private let background: [Task<Void, Never>]
    private let server: Task<Void, Never>
    private let stopped = Mutex(false)
    private let reaper: NodeReaper?

    private init(name: String, kubeletURL: String, commands: AsyncStream<NodeCommand>.Continuation, loop: Task<Void, Never>,
                 background: [Task<Void, Never>], server: Task<Void, Never>, reaper: NodeReaper?) {
        self.reaper = reaper
        self.name = name
        self.kubeletURL = kubeletURL
        self.commands = commands
        self.loop = loop
        self.background = background
        self.server = server
    }

    /// Starts the node: ends leftovers of a previous run, opens the kubelet endpoint, registers
    /// the Node and its Lease, and begins to run the pods bound to it.
    public static func start(_ options: Options, client: KubeClient, logger: Logger) async throws -> ProcessNode {
        guard NodeLayout.isSafeName(options.name) else {
            throw LocalClusterError.configuration("the node name \(options.name.debugDescription) is not a DNS-1123 name")
        }
        var probe = in_addr()
        guard inet_pton(AF_INET, options.address, &probe) == 1 else {
            throw LocalClusterError.configuration("the node address must be an IPv4 address, not \(options.address.debugDescription)")
        }
        let pool = try PodAddressPool(prefix: options.podAddressPrefix ?? PodAddressPool.defaultPrefix(forNodeAddress: options.address),
                                      nodeAddress: options.address)
        let layout = NodeLayout(root: options.stateDirectory)
        try NodeLayout.makeDirectory(layout.root)
        try NodeLayout.makeDirectory(layout.podsDirectory)
        await NodeReaper.waitForPrevious(layout: layout)
        let leftovers = await ProcessRecords.killLeftovers(podsDirectory: layout.podsDirectory)
        if leftovers > 0 { logger.notice("killed \(leftovers) processes left by the previous run of node \(options.name)") }

        let tls = try KubeletCertificates.serverConfiguration(
            directory: layout.pkiDirectory, nodeName: options.name, address: options.address,
            clientCA: options.clientCertificateAuthorityPEM ?? client.config.tls.certificateAuthorityPEM)
        let running = RunningInstances()
        let remembered = (try? String(contentsOfFile: layout.portFile, encoding: .utf8)).flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        let (port, server) = try await KubeletServer.start(
            host: options.address, port: options.kubeletPort != 0 ? options.kubeletPort : remembered ?? 0,
            fallBackToAnyPort: options.kubeletPort == 0, tls: tls, logs: ContainerLogReader(layout: layout, running: running))
        try? String(port).write(toFile: layout.portFile, atomically: true, encoding: .utf8)

        let registration = NodeRegistration(client: client, node: NodeDescription(
            name: options.name, address: options.address, kubeletPort: port, labels: options.labels))
        let initialMode: NodeMode
        do {
            let existing = try? await client.get(Node.self, name: options.name)
            initialMode = NodeMode(existing.flatMap { NodeSimulation(node: $0.json) })
            if initialMode == .online { try await registration.register(existingConditions: existing?.conditions ?? []) }
        } catch {
            server.cancel()
            throw error
        }
        // From here on nothing fails before the pods may start.
        let reaper: NodeReaper?
        switch NodeReaper.start(layout: layout) {
        case .success(let started):
            reaper = started
        case .failure(let error):
            logger.notice("node \(options.name): no reaper (\(error)); if this process dies, its pods' processes run on until the node starts again")
            reaper = nil
        }

        let connectivity = NodeConnectivity()
        connectivity.mode = initialMode
        let context = NodeContext(
            nodeName: options.name, nodeAddress: options.address, client: client, layout: layout,
            addresses: PodAddressBook(path: layout.addressFile, pool: pool), running: running, connectivity: connectivity,
            restartBackoff: options.restartBackoff, shutdownGracePeriod: options.shutdownGracePeriod,
            baseEnvironment: ContainerCommand.baseEnvironment(), objects: APIReferencedObjects(client: client), logger: logger)

        let pods = Informer<Pod>(client: client, fieldSelector: "spec.nodeName=\(options.name)", logger: logger)
        let nodes = Informer<Node>(client: client, fieldSelector: "metadata.name=\(options.name)", logger: logger)
        let (stream, commands) = AsyncStream.makeStream(of: NodeCommand.self)
        pods.addHandler { commands.yield(.pod($0)) }
        nodes.addHandler { event in
            if case .deleted = event { return }
            commands.yield(.simulation(NodeSimulation(node: event.object.json)))
        }
        let beat: @Sendable () async -> Void = {
            do {
                try await registration.beat(existingConditions: nodes.store.get(namespace: nil, name: options.name)?.conditions ?? [])
            } catch {
                logger.warning("node \(options.name): heartbeat failed: \(error)")
            }
        }
        let heartbeats = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: options.heartbeatInterval)
                if !Task.isCancelled, connectivity.canWrite { await beat() }
            }
        }
        let loop = Task {
            var loop = NodeLoop(context: context, pods: pods, commands: commands, initialMode: initialMode, heartbeat: beat)
            await loop.run(stream)
        }
        let informers = [Task { await pods.run() }, Task { await nodes.run() }]
        logger.info("node \(options.name) at \(options.address), kubelet endpoint on port \(port)")
        return ProcessNode(name: options.name, kubeletURL: "https://\(options.address):\(port)", commands: commands, loop: loop,
                           background: [heartbeats] + informers, server: server, reaper: reaper)
    }

    /// Stops heartbeats, stops every pod process (SIGTERM, then SIGKILL after at most the
    /// shutdown grace period) and closes the kubelet endpoint. Pod objects stay: a node that
    /// starts again on the same directory takes them up.
    public func stop() async {
        let first = stopped.withLock { stopped in
            defer { stopped = true }
            return !stopped
        }
        guard first else { return }
        background[0].cancel()
        await background[0].value
        await withCheckedContinuation { done in commands.yield(.stop(done)) }
        await loop.value
        // The pods are stopped and their records gone: the reaper has nothing left to do.
        reaper?.release()
        for task in background { task.cancel() }
        for task in background { await task.value }
        server.cancel()
        await server.value
    }
}
