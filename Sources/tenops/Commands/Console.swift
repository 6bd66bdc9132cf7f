import ArgumentParser
import Console
import Foundation
import KubeAPI
import LocalCluster
import Logging
import OperatorEngine

#if canImport(Glibc)
import Glibc
#endif

/// `tenops console`: the dashboard on any cluster of the kubeconfig.
///
/// Engine modes: `observe` only watches; `auto` campaigns for the Lease `tenops operator` uses
/// and runs the engine in this process while it holds it, watching otherwise; `embedded` does
/// the same and says that the engine was asked for. The header shows the mode in effect and the
/// Lease's holder.
struct Console: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Open the operations console on a cluster.",
        discussion: """
            Watches the namespace of -n (or the context's), or every namespace with -A. While it runs, \
            logs go to --log-file. With --engine auto or embedded it campaigns for the operator's \
            Lease and reconciles pairs while it holds it.
            """)

    enum EngineChoice: String, ExpressibleByArgument, CaseIterable {
        case auto, embedded, observe
    }

    @OptionGroup var kube: KubeOptions
    @Flag(name: [.customShort("A"), .long], help: "Watch every namespace.") var allNamespaces = false
    @Option(help: "auto, embedded or observe.") var engine: EngineChoice = .auto
    @Option(help: "Theme: default, light, high-contrast, monochrome, or NAME.yaml in ./themes or ~/.config/tenops/themes.")
    var theme = "default"
    @Option(help: "The leader-election Lease's name (as `tenops operator --lease-name`).") var leaseName = "tenops-operator"
    @Option(help: "The Lease's namespace (default: the watched namespace, else default).") var leaseNamespace: String?
    @Option(help: "Where logs go while the console runs (default: $TMPDIR/tenops-console.log).") var logFile: String?
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel = "info"
    /// How often the heap trimmer looks; its first look faults the heap's top reserve in. Tests
    /// shorten it to see that happen.
    @Option(help: .hidden) var heapTrimInterval = 60

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level: unknown level \"\(logLevel)\"") }
        guard heapTrimInterval >= 1 else { throw ValidationError("--heap-trim-interval: at least 1 second") }
        if allNamespaces && kube.namespace != nil { throw ValidationError("-n and -A exclude each other") }
    }

    /// A log pane following a chatty pod churns the heap, from every thread of the console. So,
    /// before the first thread but main exists (`TenOps.main`):
    /// - every thread is given the one arena, where what one thread frees is reused by the next
    ///   allocation of any, and no arena appears mid-run;
    /// - a block of 32 KiB or more (a frame's cell grid, a batch of log lines) gets pages of its
    ///   own, returned as soon as it is freed, unless a free chunk of the heap holds it;
    /// - malloc may give the top of the heap back once 32 KiB of it are free (not 128), so that
    ///   such a chunk is rarely there. Without this, the batch of log lines freed twenty times a
    ///   second at the top left one; a watch made again placed its curl buffers in it, for
    ///   minutes, and the batches moved up into new pages. In diagnostic runs, the heap stepped by
    ///   76 KiB over the informers' first reconnects with `ChunkBuffers` alone, by 84 KiB with
    ///   this alone, and not at all with both. (With the reserve below, a free gives back only
    ///   what lies above the top's 512 KiB, which stay resident.)
    /// - curl, not yet initialized, allocates through `CurlMemory`, which keeps the blocks of 1
    ///   to 64 KiB a transfer frees (its two 16 KiB buffers, one of 1,496 bytes) for the next
    ///   one. Each watch made again took new ones,
    ///   which malloc placed on new pages at the top of the heap, the freed pair having been cut
    ///   up by the small blocks of the streaming log within milliseconds;
    /// - the heap keeps `heapReserve` free at its top when it grows or gives pages back, which
    ///   the trimmer faults in at the first minute (`HeapTrimmer.prefaultTop`).
    static func tuneHeap() {
        HeapTrimmer.limitArenas(to: 1)
        HeapTrimmer.fixMmapThreshold(at: 32 << 10)
        HeapTrimmer.fixTrimThreshold(at: 32 << 10)
        HeapTrimmer.fixTopPad(at: Int32(heapReserve))
        CurlMemory.install()
    }

    /// The free bytes at the heap's top kept resident from the first minute on. The heap settles
    /// for minutes after the first: a short-lived block of a size with no free chunk left goes
    /// on the top, and a page of it is new to the RSS (8 to 32 KiB in ten minutes in the
    /// benchmark's runs, each time a brk or a first touch). With the top's pages faulted in once,
    /// those blocks land on pages the RSS already counts; only a heap that grows by more than
    /// this shows.
    static let heapReserve = 512 << 10

    func run() async throws {
        let signals = TerminationSignal.install()
        let logPath = logFile ?? (NSTemporaryDirectory() as NSString).appendingPathComponent("tenops-console.log")
        FileLogHandler.bootstrap(path: logPath, level: Logger.Level(rawValue: logLevel) ?? .info)
        let logger = Logger(label: "tenops.console")
        let theme = try ConsoleLaunch.theme(named: theme)
        let config = try kube.clusterConfig()
        let client = KubeClient(config: config)
        let namespace = allNamespaces ? nil : config.namespace
        let lease = LeaderElectionConfig(
            leaseName: leaseName, namespace: leaseNamespace ?? namespace ?? "default", identity: Operator.identity(),
            releaseOnCancel: true)
        let runtime = ConsoleRuntime(options: ConsoleRuntime.Options(
            cluster: ConsoleCluster(client: client, context: config.contextName ?? "in-cluster"),
            connect: { context in try kube.connect(context: context) },
            namespace: namespace, engineRequested: engine.rawValue, engineMode: .observe,
            leaseName: lease.leaseName, leaseNamespace: lease.namespace, local: ConsoleLaunch.localNodeTraits,
            theme: theme, themeDirectories: ConsoleLaunch.themeDirectories(),
            backend: ConsoleLaunch.backendOptions(logPath: logPath)), logger: logger)

        var election: Task<Void, Never>?
        if engine != .observe {
            let elector = LeaderElector(client: client, config: lease, logger: logger)
            election = Task {
                await elector.run {
                    runtime.setEngineMode(.embedded)
                    await PairReconciler(client: client, namespace: namespace, logger: logger).run()
                    runtime.setEngineMode(.observe)
                }
            }
        }
        let stopper = Task {
            let signal = await signals.wait()
            logger.info("\(signal): closing the console")
            runtime.quit()
        }
        defer { stopper.cancel() }
        // What the heap frees goes back, as in `tenops operator`, but only once the heap grew by
        // a mebibyte after the first minute (a relist): a trim also takes the free pages that the
        // log pane's lines and the watches use again later, which then come back a page at a time
        // (`TrimPolicy`). With the thresholds of `tuneHeap`, the first minute leaves little to take.
        // The first minute and each trim leave the heap's top reserve resident.
        let trimmer = Task {
            await HeapTrimmer.run(
                every: .seconds(heapTrimInterval), policy: .afterHeapGrowth(bytes: 1 << 20), reserve: Self.heapReserve, logger: logger)
        }
        defer { trimmer.cancel() }
        logger.info("console on \(config.server), \(namespace.map { "namespace \($0)" } ?? "every namespace"), engine \(engine.rawValue)")
        logger.debug("curl allocates through CurlMemory: \(CurlMemory.isInstalled)")
        try await runtime.run()
        if let election {
            election.cancel()
            if await !Operator.finishes(election, within: .seconds(10)) { logger.warning("the engine did not stop in time") }
        }
    }
}

extension KubeOptions {
    /// The cluster of another context of the same kubeconfig, for `:ctx NAME`.
    func connect(context: String) throws -> ConsoleCluster {
        var config = try ClusterConfig.load(kubeconfig: kubeconfig, context: context)
        if let namespace { config.namespace = namespace }
        return ConsoleCluster(client: KubeClient(config: config), context: config.contextName ?? context)
    }
}

/// What `tenops console` and `tenops local` share to open the console.
enum ConsoleLaunch {
    /// How the console recognises tenops' process nodes and asks one to fail: the node reports
    /// the `tenops://` container runtime (LocalCluster's `ProcessRuntime`) and obeys
    /// `tenops.io/simulate`.
    static let localNodeTraits = LocalNodeTraits(
        simulationAnnotation: NodeSimulation.annotation,
        isProcessNode: ProcessRuntime.runs,
        simulationPatch: { mode in
            guard let mode else { return NodeSimulation.clearPatch }
            return NodeSimulation(rawValue: mode)?.patch
        })

    /// `$TENOPS_THEMES`, `./themes`, then `~/.config/tenops/themes`; the built-in themes after them.
    static func themeDirectories(environment: [String: String] = ProcessInfo.processInfo.environment) -> [String] {
        var directories: [String] = []
        if let own = environment["TENOPS_THEMES"], !own.isEmpty { directories.append(own) }
        directories.append(FileManager.default.currentDirectoryPath + "/themes")
        let config = environment["XDG_CONFIG_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? (NSHomeDirectory() + "/.config")
        directories.append(config + "/tenops/themes")
        return directories
    }

    static func theme(named name: String) throws -> Theme {
        do {
            return try Theme.named(name, searching: themeDirectories())
        } catch {
            throw ValidationError("--theme: \(error)")
        }
    }

    /// Stray output goes to the log while curses holds the terminal; `TENOPS_CONSOLE_TRACE`
    /// names a file for one line per flush (the benchmark's instrument).
    static func backendOptions(logPath: String, environment: [String: String] = ProcessInfo.processInfo.environment)
        -> TerminalBackend.Options
    {
        TerminalBackend.Options(
            outputRedirect: logPath, environment: environment,
            tracePath: environment["TENOPS_CONSOLE_TRACE"].flatMap { $0.isEmpty ? nil : $0 })
    }

    /// Whether stdin and stdout are a terminal the console can take.
    static var hasTerminal: Bool { isatty(STDIN_FILENO) == 1 && isatty(STDOUT_FILENO) == 1 }
}

/// swift-log into a file, one line a record, for processes whose terminal is the console's:
/// `2025-01-31T12:04:31.123Z info tenops.engine: message key=value`.
struct FileLogHandler: LogHandler {
    let label: String
    let descriptor: Int32
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Bootstraps swift-log for this process into `path` (appended to). When the file cannot be
    /// opened, records go nowhere rather than onto the console's screen.
    static func bootstrap(path: String, level: Logger.Level) {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        LoggingSystem.bootstrap { label in
            var handler = FileLogHandler(label: label, descriptor: descriptor)
            handler.logLevel = level
            return handler
        }
    }

    func log(event: LogEvent) {
        guard descriptor >= 0 else { return }
        var merged = metadata
        if let own = event.metadata { merged.merge(own) { _, new in new } }
        var line = "\(JSONLogHandler.timestamp(Date())) \(event.level) \(label): \(event.message)"
        for key in merged.keys.sorted() {
            let value = JSONLogHandler.isCredential(key) ? "[redacted]" : "\(merged[key]!)"
            line += " \(key)=\(value)"
        }
        line += "\n"
        JSONLogHandler.writeAll(line, to: descriptor)
    }
}
