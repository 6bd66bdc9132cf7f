import Foundation
import KubeAPI
import Logging
import OperatorEngine
import Synchronization

/// A cluster the console can watch: the client, the context's name and its default namespace.
public struct ConsoleCluster: Sendable {
    public var client: KubeClient
    public var context: String

    public init(client: KubeClient, context: String) {
        self.client = client
        self.context = context
    }
}

/// The console: the terminal, the model source, the log follower and the key map, meeting in
/// one event loop (`run`). Keys, snapshots, log batches, the clock and resizes arrive as events;
/// each changes the state or the model, and the screen is rendered and handed to the backend
/// only when one of them changed what it shows.
public final class ConsoleRuntime: Sendable {
    public struct Options: Sendable {
        public var cluster: ConsoleCluster
        /// Another context's cluster, for `:ctx NAME`.
        public var connect: @Sendable (_ context: String) throws -> ConsoleCluster
        /// nil: every namespace.
        public var namespace: String?
        public var engineRequested: String
        public var engineMode: EngineInfo.Mode
        public var leaseName: String
        public var leaseNamespace: String
        public var knownLocal: Bool
        public var local: LocalNodeTraits?
        public var theme: Theme
        /// Where `:theme NAME` looks for NAME.yaml before the built-in themes.
        public var themeDirectories: [String]
        public var backend: TerminalBackend.Options
        public var logCapacity: Int
        public var environment: [String: String]

        public init(
            cluster: ConsoleCluster, connect: @escaping @Sendable (String) throws -> ConsoleCluster, namespace: String?,
            engineRequested: String, engineMode: EngineInfo.Mode, leaseName: String = "tenops-operator", leaseNamespace: String = "default",
            knownLocal: Bool = false, local: LocalNodeTraits? = nil, theme: Theme, themeDirectories: [String] = [],
            backend: TerminalBackend.Options = TerminalBackend.Options(), logCapacity: Int = 10_000,
            environment: [String: String] = ProcessInfo.processInfo.environment
        ) {
            self.cluster = cluster
            self.connect = connect
            self.namespace = namespace
            self.engineRequested = engineRequested
            self.engineMode = engineMode
            self.leaseName = leaseName
            self.leaseNamespace = leaseNamespace
            self.knownLocal = knownLocal
            self.local = local
            self.theme = theme
            self.themeDirectories = themeDirectories
            self.backend = backend
            self.logCapacity = logCapacity
            self.environment = environment
        }
    }

    /// What reaches the loop.
    enum Event: Sendable {
        case input(TerminalInput)
        case snapshot(generation: Int, ConsoleSnapshot)
        case logs(LogLinesReady)
        case tick
        case actionPhase(pair: PairKey, action: ConsoleAction, ActionDialog.Phase)
        case described(title: String, yaml: String)
        /// A task of `spawn` is done: the loop stops holding it.
        case spawnedFinished(Int)
        case quit
    }

    public let options: Options
    private let events: AsyncStream<Event>
    private let eventContinuation: AsyncStream<Event>.Continuation
    private let engineMode: Mutex<EngineInfo.Mode>
    private let currentSource = Mutex<ConsoleModelSource?>(nil)
    private let logger: Logger

    public init(options: Options, logger: Logger = Logger(label: "tenops.console")) {
        self.options = options
        self.logger = logger
        engineMode = Mutex(options.engineMode)
        (events, eventContinuation) = AsyncStream<Event>.makeStream()
    }

    /// Ends `run` as `q` does (SIGINT, SIGTERM).
    public func quit() { eventContinuation.yield(.quit) }

    /// The engine's mode changed (this console won or lost the Lease).
    public func setEngineMode(_ mode: EngineInfo.Mode) {
        engineMode.withLock { $0 = mode }
        currentSource.withLock { $0 }?.setEngineMode(mode)
    }

    /// Takes the terminal and runs until the user quits or `quit` is called; the terminal is
    /// given back before it returns, whatever happened.
    public func run() async throws {
        let backend = try TerminalBackend(theme: options.theme, options: options.backend)
        let size = try await backend.start()
        let forward = Task { [eventContinuation] in
            for await input in backend.input { eventContinuation.yield(.input(input)) }
            // The terminal thread ended by itself (its terminal went away).
            eventContinuation.yield(.quit)
        }
        let clock = Task { [eventContinuation] in await Self.tick(eventContinuation) }
        var loop = EventLoop(runtime: self, backend: backend, width: size.width, height: size.height)
        await loop.run(events)
        clock.cancel()
        loop.stopAll()
        await backend.stop()
        forward.cancel()
    }

    /// One tick at every whole second: the header's clock, ages and NotReady timers count.
    static func tick(_ continuation: AsyncStream<Event>.Continuation) async {
        while !Task.isCancelled {
            let now = Date().timeIntervalSince1970
            let wait = max(0.001, now.rounded(.down) + 1 - now)
            try? await Task.sleep(for: .seconds(wait))
            if Task.isCancelled { return }
            continuation.yield(.tick)
        }
    }

    // MARK: For the loop

    func send(_ event: Event) { eventContinuation.yield(event) }

    func makeSource(cluster: ConsoleCluster, namespace: String?, sameClusterAsEngine: Bool) -> ConsoleModelSource {
        let configuration = ConsoleModelSource.Configuration(
            context: cluster.context, namespace: namespace,
            engineRequested: sameClusterAsEngine ? options.engineRequested : "observe",
            leaseName: options.leaseName, leaseNamespace: options.leaseNamespace, knownLocal: options.knownLocal && sameClusterAsEngine,
            local: options.local)
        let mode = sameClusterAsEngine ? engineMode.withLock { $0 } : .observe
        let source = ConsoleModelSource(client: cluster.client, configuration: configuration, engineMode: mode, logger: logger)
        currentSource.withLock { $0 = sameClusterAsEngine ? source : nil }
        return source
    }

    var log: Logger { logger }
}

/// The loop's own state: touched by `run` only, never shared.
struct EventLoop {
    let runtime: ConsoleRuntime
    let backend: TerminalBackend
    var width: Int
    var height: Int
    var state = ConsoleState()
    var snapshot: ConsoleSnapshot
    var logs: LogRing
    let glyphs: Glyphs
    /// The header clock's zone, read once: the frames compare it, not look it up.
    let timeZone = TimeZone.current
    var cluster: ConsoleCluster
    var namespace: String?
    var sameClusterAsEngine = true
    var sourceGeneration = 0
    var sourceTask: Task<Void, Never>?
    var logStream = 0
    var logTask: Task<Void, Never>?
    var shown: CellGrid?
    /// The grid shown before `shown`, drawn over for the next frame: by then the backend has
    /// moved on to `shown`, so its cells are this loop's alone and no frame allocates a grid.
    var spare: CellGrid?
    /// The screen but its log pane, kept between frames that only bring log lines.
    var screen = ConsoleScreenMemo()
    /// Tasks of `spawn` still running, by number, so that leaving cancels them.
    var pendingTasks: [Int: Task<Void, Never>] = [:]
    var spawned = 0

    init(runtime: ConsoleRuntime, backend: TerminalBackend, width: Int, height: Int) {
        self.runtime = runtime
        self.backend = backend
        self.width = width
        self.height = height
        let options = runtime.options
        cluster = options.cluster
        namespace = options.namespace
        logs = LogRing(capacity: options.logCapacity)
        glyphs = Glyphs.forEnvironment(options.environment)
        snapshot = ConsoleSnapshot(
            context: cluster.context, namespace: namespace, engine: EngineInfo(requested: options.engineRequested, mode: options.engineMode),
            api: .degraded("connecting"), isLocalCluster: options.knownLocal, now: Date())
        state.themeName = options.theme.name
        state.screenWidth = width
        state.screenHeight = height
    }

    mutating func run(_ events: AsyncStream<ConsoleRuntime.Event>) async {
        startSource()
        render(cause: "start")
        for await event in events {
            let before = state
            var cause = ""
            var changed = false
            switch event {
            case .input(let input):
                if case .resize(let newWidth, let newHeight) = input {
                    width = newWidth
                    height = newHeight
                    shown = nil
                    changed = true
                }
                guard let key = KeyCodes.key(for: input, width: width, height: height) else { break }
                cause = "key"
                let effects = ConsoleInput.handle(key: key, state: &state, snapshot: snapshot, logs: logs)
                for effect in effects {
                    if effect == .quit { return }
                    perform(effect)
                }
            case .snapshot(let generation, let fresh):
                guard generation == sourceGeneration else { break }
                cause = "snapshot"
                changed = !ConsoleModelSource.sameContent(snapshot, fresh) || changed
                snapshot = fresh
                followDialog()
            case .logs(let ready):
                guard ready.stream == logStream, state.logs.pod != nil else { break }
                cause = "logs"
                changed = ready.moveLines(into: &logs) > 0 || changed
            case .tick:
                cause = "tick"
                snapshot.now = Date()
                changed = true
            case .actionPhase(let pair, let action, let phase):
                cause = "action"
                if case .dialog(var dialog) = state.overlay, dialog.pair == pair, dialog.action == action {
                    dialog.phase = phase
                    state.overlay = .dialog(dialog)
                    followDialog()
                }
            case .described(let title, let yaml):
                cause = "describe"
                if case .describe(_, _, let offset)? = state.overlay {
                    state.overlay = .describe(title: title, yaml: yaml, offset: offset)
                }
            case .spawnedFinished(let number):
                pendingTasks[number] = nil
            case .quit:
                return
            }
            if state.quitting { return }
            if changed || state != before { render(cause: cause) }
        }
    }

    /// Renders and hands the grid over, unless it is the grid on screen already.
    mutating func render(cause: String) {
        let started = ContinuousClock.now
        var grid = spare ?? CellGrid(width: width, height: height)
        spare = nil
        screen.render(snapshot, state, logs: state.logs.pod == nil ? nil : logs, into: &grid, width: width, height: height, glyphs: glyphs,
                      timeZone: timeZone)
        guard grid != shown else {
            spare = grid
            return
        }
        let elapsed = started.duration(to: .now)
        let micros = Double(elapsed.components.seconds) * 1e6 + Double(elapsed.components.attoseconds) / 1e12
        spare = shown
        shown = grid
        backend.draw(TerminalBackend.Frame(grid: grid, renderMicroseconds: micros, cause: cause))
    }

    /// A dialog waiting for its action ends when `status.lastAction` of its id has a result
    /// (or the engine refused the id because another action ran).
    mutating func followDialog() {
        guard case .dialog(var dialog) = state.overlay, case .submitted(let id) = dialog.phase, let pair = snapshot.pair(dialog.pair)
        else { return }
        if let last = pair.lastAction, last.id == id, !last.isRunning, let result = last.state {
            dialog.phase = .finished(succeeded: result == ActionState.succeeded, message: last.message ?? result)
        } else if pair.object["status"]?["rejectedActionId"].stringValue == id {
            let running = pair.lastAction.map { "\($0.verb ?? "action") \($0.id)" } ?? "another action"
            dialog.phase = .finished(succeeded: false, message: "refused: \(running) is still running")
        } else {
            return
        }
        state.overlay = .dialog(dialog)
    }

    // MARK: Effects

    mutating func perform(_ effect: ConsoleEffect) {
        switch effect {
        case .submit(let action, let pair):
            let actions = ConsoleActions(client: cluster.client, local: runtime.options.local)
            let runtime = self.runtime
            spawn {
                let phase = await actions.submit(action, pair: pair)
                runtime.send(.actionPhase(pair: pair, action: action, phase))
            }
        case .streamLogs(let pair, let pod):
            startLogs(pair: pair, pod: pod)
        case .stopLogs:
            stopLogs()
        case .switchNamespace(let namespace):
            self.namespace = namespace
            stopLogs()
            startSource()
        case .switchContext(let context):
            do {
                let next = try runtime.options.connect(context)
                cluster = next
                sameClusterAsEngine = context == runtime.options.cluster.context
                stopLogs()
                startSource()
            } catch {
                state.flash = Flash("context \(context): \(error)", isError: true)
            }
        case .switchTheme(let name):
            do {
                let theme = try Theme.named(name, searching: runtime.options.themeDirectories)
                backend.setTheme(theme)
                state.themeName = theme.name
                state.flash = Flash("theme: \(theme.name)")
                shown = nil
            } catch {
                state.flash = Flash("\(error)", isError: true)
            }
        case .describe(let pair):
            let actions = ConsoleActions(client: cluster.client, local: runtime.options.local)
            let runtime = self.runtime
            spawn {
                let described = await actions.describe(pair)
                runtime.send(.described(title: described.title, yaml: described.yaml))
            }
        case .quit:
            break
        }
    }

    mutating func startSource() {
        sourceTask?.cancel()
        sourceGeneration += 1
        let generation = sourceGeneration
        let source = runtime.makeSource(cluster: cluster, namespace: namespace, sameClusterAsEngine: sameClusterAsEngine)
        snapshot.context = cluster.context
        snapshot.namespace = namespace
        snapshot.api = .degraded("connecting")
        let runtime = self.runtime
        sourceTask = Task { await source.run { runtime.send(.snapshot(generation: generation, $0)) } }
    }

    mutating func startLogs(pair: PairKey, pod: String) {
        logTask?.cancel()
        logs.removeAll()
        logStream += 1
        state.logs.pod = pair
        state.logs.podName = pod
        let stream = logStream
        let follower = LogFollower(client: cluster.client, capacity: logs.capacity, byteCapacity: logs.byteCapacity)
        let runtime = self.runtime
        logTask = Task { await follower.follow(namespace: pair.namespace, pod: pod, stream: stream) { runtime.send(.logs($0)) } }
    }

    mutating func stopLogs() {
        logTask?.cancel()
        logTask = nil
        logStream += 1
        logs.removeAll()
    }

    mutating func spawn(_ work: @escaping @Sendable () async -> Void) {
        spawned += 1
        let number = spawned
        let runtime = self.runtime
        pendingTasks[number] = Task {
            await work()
            runtime.send(.spawnedFinished(number))
        }
    }

    func stopAll() {
        sourceTask?.cancel()
        logTask?.cancel()
        pendingTasks.values.forEach { $0.cancel() }
    }
}
