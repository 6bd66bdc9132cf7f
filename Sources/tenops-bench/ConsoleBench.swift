import Foundation
import KubeAPI
import LocalCluster
import OperatorEngine
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `tenops-bench console [--pairs 1000] [--redraws 50] [--keys 100] [--idle-seconds 60] [--log-minutes 10] [--log-rate 10000]`
///
/// The console as a person runs it: `tenops console` in a tmux pane of 200x60, against a local
/// API server in this process holding `--pairs` TimesTenClassic objects whose status is written
/// directly (SIMULATED pairs: no pods run them, as DESIGN.md allows for scale benchmarks). The
/// console writes one line per flush to a trace file (`TENOPS_CONSOLE_TRACE`); the figures:
/// - full redraw: a resize makes the console render every cell and curses write them all;
///   render + flush time, p50 and p99;
/// - CPU while idle: /proc/PID/stat of the console over `--idle-seconds` with nothing changing;
/// - keypress to updated screen: `tmux send-keys j|k` to the end of the flush that shows it;
/// - RSS while the log pane follows a SIMULATED daemonlog of `--log-rate` lines a second (the
///   API server's log source writes them; no container does) for `--log-minutes`.
enum ConsoleBench {
    struct Settings {
        var pairs = 1000
        var redraws = 50
        var keys = 100
        var idleSeconds = 60
        var logMinutes = 10.0
        var logRate = 10_000

        init(_ options: [String]) {
            func value(_ name: String) -> String? { options.firstIndex(of: name).flatMap { options.indices.contains($0 + 1) ? options[$0 + 1] : nil } }
            pairs = value("--pairs").flatMap(Int.init) ?? pairs
            redraws = value("--redraws").flatMap(Int.init) ?? redraws
            keys = value("--keys").flatMap(Int.init) ?? keys
            idleSeconds = value("--idle-seconds").flatMap(Int.init) ?? idleSeconds
            logMinutes = value("--log-minutes").flatMap(Double.init) ?? logMinutes
            logRate = value("--log-rate").flatMap(Int.init) ?? logRate
        }
    }

    static let namespace = "default"

    static func run() async throws {
        let settings = Settings(Bench.options)
        print("console: tenops console in tmux 200x60, \(settings.pairs) SIMULATED pairs (status written directly, no pods)")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tenops-bench-console-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let logs = SimulatedDaemonLog(rate: settings.logRate)
        let server = try await LocalAPIServer.start(.init(stateDirectory: "\(directory)/state", logSource: logs))
        let tmux = BenchTmux()
        var pid: Int32?
        do {
            let kubeconfig = "\(directory)/state/kubeconfig"
            let client = KubeClient(config: try ClusterConfig.load(kubeconfig: kubeconfig))
            try await ClusterSetup.install(client: client, sample: false, logger: .init(label: "bench"))
            try await createPairs(settings.pairs, client: client)
            try await createLogPod(client: client)

            let trace = "\(directory)/trace"
            try await tmux.start([try tenopsBinary(), "console", "--kubeconfig", kubeconfig, "-n", namespace, "--engine", "observe",
                                  "--log-file", "\(directory)/console.log"],
                                 environment: ["TENOPS_CONSOLE_TRACE": trace])
            pid = try await tmux.panePID()
            let console = try pid.unwrap("the console's pid")
            let frames = TraceReader(path: trace)
            try await tmux.waitFor("\(settings.pairs) pairs on screen", timeout: .seconds(120)) { $0.contains("[\(settings.pairs)]") }
            try await Task.sleep(for: .seconds(2))

            try await fullRedraws(settings.redraws, tmux: tmux, frames: frames)
            try await keyLatency(settings.keys, tmux: tmux, frames: frames)
            try await idle(seconds: settings.idleSeconds, pid: console, frames: frames)
            try await logStreaming(minutes: settings.logMinutes, rate: settings.logRate, pid: console, tmux: tmux, logs: logs)
        } catch {
            await stop(tmux: tmux, pid: pid, server: server)
            throw error
        }
        await stop(tmux: tmux, pid: pid, server: server)
    }

    static func stop(tmux: BenchTmux, pid: Int32?, server: LocalAPIServer) async {
        await tmux.killServer()
        if let pid, kill(pid, 0) == 0 {
            kill(pid, SIGTERM)
            try? await Task.sleep(for: .seconds(1))
            if kill(pid, 0) == 0 { kill(pid, SIGKILL) }
        }
        await server.stop()
    }

    // MARK: The simulated cluster

    /// `sim-NNNN`, in every state the console colours, with both pods' entries, as the engine
    /// would have written them.
    static func createPairs(_ count: Int, client: KubeClient) async throws {
        let states = ["Normal", "Normal", "Normal", "Normal", "ActiveDown", "StandbyDown", "ActiveTakeover", "Initializing"]
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    for index in stride(from: worker, to: count, by: 8) {
                        let name = String(format: "sim-%04d", index)
                        var pair = TimesTenClassic(name: name, namespace: namespace)
                        pair.json["spec"] = ["ttspec": ["image": "tenops:latest", "deleteDbOnNotReadyNode": 60]]
                        _ = try await client.create(pair)
                        let status = simulatedStatus(name: name, state: states[index % states.count], lag: index * 37)
                        _ = try await client.patch(TimesTenClassic.self, name: name, namespace: namespace, patchType: .merge,
                                                   patch: ["status": .object(status)], subresource: "status")
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    static func simulatedStatus(name: String, state: String, lag: Int) -> JSONObject {
        func entry(_ pod: String, _ role: String, node: String) -> JSONValue {
            [
                "name": .string(pod), "intendedState": .string(role), "highLevelState": "Healthy", "ready": true,
                "podStatus": ["podPhase": "Running", "agent": "Up", "restarts": 0],
                "dbStatus": ["db": "Loaded", "dbUpdatable": .bool(role == "Active")],
                "replicationStatus": ["repState": .string(role.uppercased()), "repPeerPState": "streaming", "lagBytes": .int(Int64(lag))],
                "node": ["name": .string(node), "ready": "True"],
            ]
        }
        return [
            "highLevelState": .string(state), "prevHighLevelState": "Initializing", "activePods": .string("\(name)-0"),
            "lastHighLevelStateSwitch": .string(KubeTime.formatMicro(Date().addingTimeInterval(-300))),
            "podStatus": [entry("\(name)-0", "Active", node: "sim-node-a"), entry("\(name)-1", "Standby", node: "sim-node-b")],
        ]
    }

    /// The first pair's first pod, as an object only (SIMULATED: no node runs it); its
    /// daemonlog comes from `SimulatedDaemonLog`.
    static func createLogPod(client: KubeClient) async throws {
        let pod = Pod(json: [
            "apiVersion": "v1", "kind": "Pod",
            "metadata": ["name": "sim-0000-0", "namespace": .string(namespace), "labels": ["tenops.io/pair": "sim-0000"]],
            "spec": ["nodeName": "simulated-node", "containers": [["name": "tt", "image": "tenops"], ["name": "daemonlog", "image": "tenops"]]],
        ])
        _ = try await client.create(pod)
    }

    // MARK: Figures

    static func fullRedraws(_ count: Int, tmux: BenchTmux, frames: TraceReader) async throws {
        var samples = Samples()
        var parts: [(String, KeyPath<TraceFrame, Double>, Samples)] = [
            ("render", \.renderMicroseconds, Samples()), ("grid diff", \.diffMicroseconds, Samples()),
            ("cells into curses", \.cursesMicroseconds, Samples()), ("curses refresh to the terminal", \.refreshMicroseconds, Samples()),
        ]
        for index in 0..<count {
            let mark = frames.count()
            try await tmux.run(["resize-window", "-x", "200", "-y", index % 2 == 0 ? "59" : "60"])
            let frame = try await frames.wait(timeout: .seconds(10)) { $0.index >= mark && $0.full }
            samples.add(frame.renderMicroseconds + frame.flushMicroseconds)
            for part in parts.indices { parts[part].2.add(frame[keyPath: parts[part].1]) }
        }
        figure("full redraw (render + flush, 200x60), p50 / p99",
               String(format: "%.2f / %.2f ms", samples.percentile(50) / 1000, samples.percentile(99) / 1000), target: "<= 5 ms")
        for (name, _, part) in parts {
            figure("  of which \(name), p50 / p99", String(format: "%.2f / %.2f ms", part.percentile(50) / 1000, part.percentile(99) / 1000))
        }
    }

    static func keyLatency(_ count: Int, tmux: BenchTmux, frames: TraceReader) async throws {
        var samples = Samples()
        for index in 0..<count {
            let mark = frames.count()
            let sent = Date().timeIntervalSince1970
            try await tmux.run(["send-keys", index % 2 == 0 ? "j" : "k"])
            let frame = try await frames.wait(timeout: .seconds(10)) { $0.index >= mark && $0.cause.split(separator: "+").contains("key") }
            samples.add((frame.time - sent) * 1000)
            try await Task.sleep(for: .milliseconds(20))
        }
        figure("keypress to updated screen (send-keys to flush), p50 / p99",
               String(format: "%.1f / %.1f ms", samples.percentile(50), samples.percentile(99)), target: "<= 50 ms")
    }

    static func idle(seconds: Int, pid: Int32, frames: TraceReader) async throws {
        try await Task.sleep(for: .seconds(2))
        let before = try ProcessStats(pid: pid)
        let mark = frames.count()
        try await Task.sleep(for: .seconds(seconds))
        let after = try ProcessStats(pid: pid)
        let percent = (after.cpuSeconds - before.cpuSeconds) / after.wall(since: before) * 100
        let drawn = frames.frames().filter { $0.index >= mark }
        figure("CPU while idle over \(seconds) s (the clock ticks once a second)", String(format: "%.2f %% of a core", percent), target: "< 1 %")
        figure("  flushes meanwhile, cells written", "\(drawn.count), \(drawn.reduce(0) { $0 + $1.cells })")
    }

    static func logStreaming(minutes: Double, rate: Int, pid: Int32, tmux: BenchTmux, logs: SimulatedDaemonLog) async throws {
        try await tmux.run(["send-keys", "g"])
        try await tmux.run(["send-keys", "l"])
        try await tmux.waitFor("the simulated daemonlog in the log pane", timeout: .seconds(20)) { $0.contains("simulated daemonlog") }
        let start = try ProcessStats(pid: pid)
        let producedAtStart = logs.produced
        var rss: [(minute: Double, kib: Int, anon: Int, file: Int)] = []
        var heap: [(minute: Double, kib: Int)] = []
        let total = Duration.seconds(minutes * 60)
        let began = ContinuousClock.now
        while began.duration(to: .now) < total {
            try await Task.sleep(for: .seconds(min(10, max(1, minutes * 6))))
            let now = try ProcessStats(pid: pid)
            rss.append((began.duration(to: .now) / .seconds(60), now.rssKiB, now.anonKiB, now.fileKiB))
            heap.append((rss.last!.minute, try ProcessStats.heapExtentKiB(pid: pid)))
        }
        let end = try ProcessStats(pid: pid)
        let produced = logs.produced - producedAtStart
        let wall = end.wall(since: start)
        let screen = try await tmux.capture()
        let shown = screen.matches(of: /simulated daemonlog (\d+)/).compactMap { Int($0.1) }.max() ?? 0
        let firstMinute = rss.last { $0.minute <= 1.0 } ?? rss.first!
        let afterFirst = rss.filter { $0.minute > 1.0 }
        let maxAfter = afterFirst.map(\.kib).max() ?? firstMinute.kib
        figure("log streaming: lines served by the SIMULATED daemonlog", String(format: "%.0f lines/s over %.1f min", Double(produced) / wall, wall / 60),
               target: "\(rate) lines/s")
        figure("  newest line on screen behind the newest served", "\(max(0, logs.produced - 1 - shown)) lines")
        figure("  console CPU while streaming", String(format: "%.1f %% of a core", (end.cpuSeconds - start.cpuSeconds) / wall * 100))
        figure("  RSS at 1 min / at the end / max after 1 min",
               "\(firstMinute.kib / 1024) / \(rss.last!.kib / 1024) / \(maxAfter / 1024) MiB", target: "flat after the first minute")
        figure("  RSS growth after the first minute", "\((maxAfter - firstMinute.kib)) KiB at most; \(rss.last!.kib - firstMinute.kib) KiB at the end")
        figure("  RSS trend after the first minute (least squares)", String(format: "%+.1f KiB/min", Self.slope(afterFirst.map { ($0.minute, $0.kib) })))
        figure("  of the growth at the end: anonymous / file pages",
               "\(rss.last!.anon - firstMinute.anon) / \(rss.last!.file - firstMinute.file) KiB")
        let heapAtFirst = heap.last { $0.minute <= 1.0 } ?? heap.first!
        figure("  heap extent (brk) at 1 min, growth after it at most / at the end",
               "\(heapAtFirst.kib) KiB, \((heap.filter { $0.minute > 1.0 }.map(\.kib).max() ?? heapAtFirst.kib) - heapAtFirst.kib) / \(heap.last!.kib - heapAtFirst.kib) KiB")
        print(String(format: "  RSS at 1 min: %.1f MiB; samples (min: KiB above it, anonymous/file): ", Double(firstMinute.kib) / 1024)
              + rss.map { String(format: "%.1f: %+d/%+d", $0.minute, $0.anon - firstMinute.anon, $0.file - firstMinute.file) }.joined(separator: ", "))
    }

    /// The least-squares slope of RSS over time, in KiB a minute: growth shows as a steady
    /// positive trend, where the allocator's back and forth averages out.
    static func slope(_ samples: [(minute: Double, kib: Int)]) -> Double {
        guard samples.count > 1 else { return 0 }
        let n = Double(samples.count)
        let meanX = samples.reduce(0) { $0 + $1.minute } / n
        let meanY = samples.reduce(0) { $0 + Double($1.kib) } / n
        let covariance = samples.reduce(0) { $0 + ($1.minute - meanX) * (Double($1.kib) - meanY) }
        let variance = samples.reduce(0) { $0 + ($1.minute - meanX) * ($1.minute - meanX) }
        return variance > 0 ? covariance / variance : 0
    }

    static func tenopsBinary() throws -> String {
        let own = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let path = URL(fileURLWithPath: own).deletingLastPathComponent().appendingPathComponent("tenops").path
        guard FileManager.default.isExecutableFile(atPath: path) else { throw BenchFailure("no tenops next to tenops-bench (\(path)): build both") }
        return path
    }
}

struct BenchFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension Optional {
    func unwrap(_ what: String) throws -> Wrapped {
        guard let self else { throw BenchFailure("no \(what)") }
        return self
    }
}

// MARK: - The simulated daemonlog

/// SIMULATED: the daemonlog of any pod, as the API server's log source, `rate` lines a second
/// in chunks every 10 ms, for as long as the client follows. No container writes it.
final class SimulatedDaemonLog: PodLogSource {
    let rate: Int
    private let counter = Atomic<Int>(0)

    init(rate: Int) { self.rate = rate }

    /// Lines written so far, over every stream.
    var produced: Int { counter.load(ordering: .relaxed) }

    func logs(pod: JSONObject, node: JSONObject?, options: PodLogOptions) async throws -> AsyncThrowingStream<Data, any Error> {
        let (stream, continuation) = AsyncThrowingStream<Data, any Error>.makeStream(bufferingPolicy: .bufferingOldest(64))
        let rate = self.rate
        let padding = String(repeating: "x", count: 40)
        let task = Task {
            let start = ContinuousClock.now
            var written = 0
            while !Task.isCancelled {
                let due = Int(Double(rate) * start.duration(to: .now).inSecondsDouble)
                if due > written {
                    var chunk = ""
                    chunk.reserveCapacity((due - written) * 100)
                    let stamp = KubeTime.formatMicro(Date())
                    for _ in written..<due {
                        let number = self.counter.add(1, ordering: .relaxed).oldValue
                        chunk += "\(stamp) simulated daemonlog \(number) LOG: checkpoint record \(padding)\n"
                    }
                    written = due
                    if case .dropped = continuation.yield(Data(chunk.utf8)) {
                        // The client is behind by 64 chunks: the server keeps no more than that.
                    }
                }
                guard options.follow else { break }
                try? await Task.sleep(for: .milliseconds(10))
            }
            continuation.finish()
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }
}

extension Duration {
    var inSecondsDouble: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

// MARK: - Measuring the console

/// One line of the console's trace.
struct TraceFrame {
    var index: Int
    var time: Double
    var cause: String
    var renderMicroseconds: Double
    var flushMicroseconds: Double
    /// The parts of the flush: the grid diff, the cells into curses, curses out to the terminal.
    var diffMicroseconds: Double
    var cursesMicroseconds: Double
    var refreshMicroseconds: Double
    var cells: Int
    var full: Bool

    init?(index: Int, line: Substring) {
        var fields: [Substring: Substring] = [:]
        for word in line.split(separator: " ").dropFirst() {
            guard let equals = word.firstIndex(of: "=") else { continue }
            fields[word[..<equals]] = word[word.index(after: equals)...]
        }
        guard let time = fields["time"].flatMap({ Double($0) }) else { return nil }
        self.index = index
        self.time = time
        cause = String(fields["cause"] ?? "")
        renderMicroseconds = fields["render_us"].flatMap { Double($0) } ?? 0
        flushMicroseconds = fields["flush_us"].flatMap { Double($0) } ?? 0
        diffMicroseconds = fields["diff_us"].flatMap { Double($0) } ?? 0
        cursesMicroseconds = fields["curses_us"].flatMap { Double($0) } ?? 0
        refreshMicroseconds = fields["refresh_us"].flatMap { Double($0) } ?? 0
        cells = fields["cells"].flatMap { Int($0) } ?? 0
        full = fields["full"] == "1"
    }
}

/// The trace file, read as it grows: each look reads only the bytes appended since the last,
/// so that waiting for a frame (a look every 2 ms) costs the console's two cores next to nothing.
final class TraceReader: Sendable {
    private struct State {
        var offset: UInt64 = 0
        var partial = Data()
        var parsed: [TraceFrame] = []
    }

    let path: String
    private let state = Mutex(State())

    init(path: String) { self.path = path }

    /// Every frame traced so far, in order.
    func frames() -> [TraceFrame] {
        state.withLock { state in
            guard let file = FileHandle(forReadingAtPath: path) else { return state.parsed }
            defer { try? file.close() }
            try? file.seek(toOffset: state.offset)
            let appended = (try? file.readToEnd()) ?? Data()
            state.offset += UInt64(appended.count)
            state.partial.append(appended)
            while let newline = state.partial.firstIndex(of: 0x0A) {
                let line = String(decoding: state.partial[state.partial.startIndex..<newline], as: UTF8.self)
                state.partial = Data(state.partial[state.partial.index(after: newline)...])
                if let frame = TraceFrame(index: state.parsed.count, line: line[...]) { state.parsed.append(frame) }
            }
            return state.parsed
        }
    }

    func count() -> Int { frames().count }

    func wait(timeout: Duration, _ matches: (TraceFrame) -> Bool) async throws -> TraceFrame {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let frame = frames().first(where: matches) { return frame }
            try await Task.sleep(for: .milliseconds(2))
        }
        throw BenchFailure("no matching frame in the console's trace within \(timeout)")
    }
}

/// CPU time and memory of a process, from /proc.
struct ProcessStats {
    var cpuSeconds: Double
    var rssKiB: Int
    /// Of the RSS: anonymous pages (the heap, stacks, mmapped blocks) and pages of files (code).
    var anonKiB: Int
    var fileKiB: Int
    var taken: ContinuousClock.Instant

    init(pid: Int32) throws {
        let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        let fields = stat.split(separator: ")").last?.split(separator: " ") ?? []
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else {
            throw BenchFailure("cannot read /proc/\(pid)/stat")
        }
        cpuSeconds = (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        func kib(_ field: String) -> Int {
            let line = status.split(separator: "\n").first { $0.hasPrefix(field + ":") } ?? ""
            return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
        }
        rssKiB = kib("VmRSS")
        anonKiB = kib("RssAnon")
        fileKiB = kib("RssFile")
        taken = .now
    }

    func wall(since earlier: ProcessStats) -> Double { earlier.taken.duration(to: taken).inSecondsDouble }

    /// The size of the process's brk heap (the `[heap]` line of /proc/PID/maps): it grows only
    /// when malloc finds no room in its heap's free chunks and top, so RSS held flat by pages
    /// faulted in ahead still shows here as a heap that needed more.
    static func heapExtentKiB(pid: Int32) throws -> Int {
        // The kernel names each mapping of the brk heap "[heap]"; it may be split in more than one.
        let maps = try String(contentsOfFile: "/proc/\(pid)/maps", encoding: .utf8)
        let ranges = maps.split(separator: "\n").filter { $0.hasSuffix("[heap]") }.compactMap { line -> (Int, Int)? in
            let bounds = line.split(separator: " ").first?.split(separator: "-").compactMap { Int($0, radix: 16) } ?? []
            return bounds.count == 2 ? (bounds[0], bounds[1]) : nil
        }
        guard let start = ranges.map(\.0).min(), let end = ranges.map(\.1).max() else { throw BenchFailure("no [heap] in /proc/\(pid)/maps") }
        return (end - start) / 1024
    }
}

// MARK: - tmux

/// A tmux server of its own socket, driven through posix_spawn: tmux's server outlives its
/// client and would keep open the descriptor Foundation's Process watches for the client's exit.
final class BenchTmux: Sendable {
    let socket = "tenops-bench-\(UUID().uuidString.prefix(8).lowercased())"

    func start(_ argv: [String], environment: [String: String]) async throws {
        let variables = ["LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"].merging(environment) { _, own in own }
        let assignments = variables.keys.sorted().map { "\($0)=\(Self.quote(variables[$0]!))" }
        let command = "exec env " + assignments.joined(separator: " ") + " " + argv.map(Self.quote).joined(separator: " ")
        let (status, output) = try await spawn(["-f", "/dev/null", "set-option", "-g", "remain-on-exit", "on", ";",
                                                "new-session", "-d", "-x", "200", "-y", "60", command])
        guard status == 0 else { throw BenchFailure("tmux new-session: \(output)") }
    }

    func run(_ arguments: [String]) async throws {
        let (status, output) = try await spawn(arguments)
        guard status == 0 else { throw BenchFailure("tmux \(arguments.joined(separator: " ")): \(output)") }
    }

    func capture() async throws -> String { try await spawn(["capture-pane", "-p"]).output }

    func panePID() async throws -> Int32? { Int32(try await spawn(["display-message", "-p", "#{pane_pid}"]).output.trimmingCharacters(in: .whitespacesAndNewlines)) }

    func waitFor(_ what: String, timeout: Duration, _ condition: (String) -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if condition(try await capture()) { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw BenchFailure("timed out waiting for \(what); the screen:\n\(try await capture())")
    }

    func killServer() async {
        let path = try? await spawn(["display-message", "-p", "#{socket_path}"]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        _ = try? await spawn(["kill-server"])
        if let path, !path.isEmpty { unlink(path) }
    }

    static func quote(_ word: String) -> String { "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    static let closeFrom: CloseFrom? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np")
        .map { unsafeBitCast($0, to: CloseFrom.self) }

    /// tmux with nothing inherited but its stdio, default signal dispositions and no mask
    /// (a server with SIGCHLD blocked would never reap its pane).
    private func spawn(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        let argv = ["/usr/bin/tmux", "-L", socket] + arguments
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("tenops-bench-spawn-\(UUID().uuidString)").path
        defer { unlink(output) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        guard let closeFrom = Self.closeFrom else { throw BenchFailure("this glibc has no posix_spawn_file_actions_addclosefrom_np") }
        _ = closeFrom(&actions, 3)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var everySignal = sigset_t()
        sigfillset(&everySignal)
        sigdelset(&everySignal, SIGKILL)
        sigdelset(&everySignal, SIGSTOP)
        var noSignal = sigset_t()
        sigemptyset(&noSignal)
        posix_spawnattr_setsigdefault(&attributes, &everySignal)
        posix_spawnattr_setsigmask(&attributes, &noSignal)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        let cArguments = argv.map { strdup($0) } + [nil]
        defer { cArguments.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, argv[0], &actions, &attributes, cArguments, environ)
        guard spawned == 0 else { throw BenchFailure("cannot start tmux: error \(spawned)") }
        let child = pid
        let status: Int32 = await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                var status: Int32 = 0
                while waitpid(child, &status, 0) < 0 && errno == EINTR {}
                continuation.resume(returning: status)
            }
        }
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        return ((status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F), text)
    }
}
