import ArgumentParser
import Console
import Dispatch
import Foundation
import KubeAPI
import LocalCluster
import Logging
import OperatorEngine

struct Local: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a local cluster on loopback: the API server, controllers and three nodes (node-a, node-b, node-c).",
        discussion: """
            State lives under --dir: objects, certificates and data survive a restart. \
            DIR/kubeconfig is written once the API server serves; point kubectl at it.
            """,
        subcommands: [LocalNodeDown.self, LocalNodeUp.self])

    @OptionGroup var state: LocalStateOptions
    var dir: String { state.dir }
    @Flag(help: "Run without the console.") var headless = false
    @Flag(help: "Do not create the sample pair.") var noSample = false
    @Flag(help: "Do not run the operator engine in this process (run `tenops operator` against DIR/kubeconfig instead).")
    var noEngine = false
    @Option(help: "API server port (0: a free one, remembered across restarts).") var port = 0

    @Option(help: "Seconds a node may miss heartbeats before it is NotReady.") var nodeGracePeriod = 40
    @Option(help: "The console's theme: default, light, high-contrast, monochrome, or NAME.yaml in ./themes.") var theme = "default"

    func run() async throws {
        let signals = TerminationSignal.install()
        // With the console, the terminal is its: every log line goes to DIR/console.log from the start.
        let console = !headless && ConsoleLaunch.hasTerminal
        let consoleLog = URL(fileURLWithPath: dir).appendingPathComponent("console.log").standardizedFileURL.path
        if console {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            FileLogHandler.bootstrap(path: consoleLog, level: .info)
        }
        let consoleTheme = console ? try ConsoleLaunch.theme(named: theme) : nil
        let plane = try await LocalControlPlane.start(
            LocalControlPlane.Options(stateDirectory: dir, port: port, nodeMonitorGracePeriod: .seconds(nodeGracePeriod)))
        let kubeconfig = URL(fileURLWithPath: dir).appendingPathComponent("kubeconfig").standardizedFileURL.path
        print("tenops local: API server at \(plane.server.url)")
        print("tenops local: nodes \(plane.nodes.map(\.name).joined(separator: ", "))")
        print("tenops local: kubeconfig \(kubeconfig)")
        print("tenops local: try  kubectl --kubeconfig \(kubeconfig) get nodes")
        let logger = Logger(label: "tenops.engine")
        let engineClient = try plane.server.componentClient(user: "system:serviceaccount:tenops-system:tenops-operator", groups: [])
        var engine: Task<Void, Never>?
        do {
            try await ClusterSetup.install(client: engineClient, sample: !noSample, logger: logger)
        } catch {
            await plane.stop()
            throw error
        }
        if !noEngine {
            engine = Task { await PairReconciler(client: engineClient, logger: logger).run() }
            print("tenops local: operator engine running\(noSample ? "" : "; sample pair default/sample: kubectl --kubeconfig \(kubeconfig) get ttc")")
        }
        if !headless && !console {
            print("tenops local: no terminal for the console; running headless. Ctrl-C stops.")
        }
        fflush(nil)  // a pipe or log file sees these lines now
        let trimmer = Task { await HeapTrimmer.run(logger: logger) }
        defer { trimmer.cancel() }
        if let consoleTheme {
            print("tenops local: opening the console (logs: \(consoleLog)); q quits and stops the cluster")
            fflush(nil)
            try await runConsole(kubeconfig: kubeconfig, theme: consoleTheme, logPath: consoleLog, signals: signals)
            print("tenops local: stopping")
        } else {
            let signal = await signals.wait()
            print("tenops local: \(signal), stopping")
        }
        fflush(nil)
        engine?.cancel()
        await engine?.value
        await plane.stop()
    }
}

extension Local {
    /// The console on this cluster, as its administrator, until `q` or a signal. The engine runs
    /// in this process already, so the console neither campaigns nor needs a Lease.
    func runConsole(kubeconfig: String, theme: Theme, logPath: String, signals: TerminationSignal) async throws {
        let config = try ClusterConfig.load(kubeconfig: kubeconfig)
        let runtime = ConsoleRuntime(options: ConsoleRuntime.Options(
            cluster: ConsoleCluster(client: KubeClient(config: config), context: config.contextName ?? "tenops-local"),
            connect: { context in
                let other = try ClusterConfig.load(kubeconfig: kubeconfig, context: context)
                return ConsoleCluster(client: KubeClient(config: other), context: other.contextName ?? context)
            },
            namespace: nil, engineRequested: noEngine ? "observe" : "embedded", engineMode: noEngine ? .observe : .embedded,
            knownLocal: true, local: ConsoleLaunch.localNodeTraits, theme: theme, themeDirectories: ConsoleLaunch.themeDirectories(),
            backend: ConsoleLaunch.backendOptions(logPath: logPath)))
        let stopper = Task {
            _ = await signals.wait()
            runtime.quit()
        }
        defer { stopper.cancel() }
        try await runtime.run()
    }
}

/// SIGINT and SIGTERM, caught from the moment `install()` runs, so a signal that arrives while
/// a command is still starting up is not lost (nor fatal) but answered once it is up.
final class TerminationSignal: @unchecked Sendable {  // sources are only kept alive, never touched again
    private let names: AsyncStream<String>
    private let sources: [any DispatchSourceSignal]

    private init(names: AsyncStream<String>, sources: [any DispatchSourceSignal]) {
        self.names = names
        self.sources = sources
    }

    static func install() -> TerminationSignal {
        let (names, continuation) = AsyncStream<String>.makeStream(bufferingPolicy: .bufferingOldest(1))
        var sources: [any DispatchSourceSignal] = []
        for (number, name) in [(SIGINT, "SIGINT"), (SIGTERM, "SIGTERM")] {
            Foundation.signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { continuation.yield(name) }
            source.resume()
            sources.append(source)
        }
        return TerminationSignal(names: names, sources: sources)
    }

    /// The first signal's name.
    func wait() async -> String {
        for await name in names { return name }
        return "end"
    }
}
