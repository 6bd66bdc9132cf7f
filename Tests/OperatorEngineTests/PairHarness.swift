import AgentTestSupport
import Foundation
import KubeAPI
import Synchronization

/// `tenops local --headless` as a real process, with its engine and the sample pair, observed
/// through kubectl and reached through psql, as a user would. Stopped by PID; its directory is
/// removed.
final class LocalPair: @unchecked Sendable {  // immutable after init, except the Process
    static let psql = "/usr/lib/postgresql/15/bin/psql"

    let directory: String
    let state: String
    let kubeconfig: String
    private let process = Process()
    private var operatorProcess: Process?

    /// `engine` false runs the cluster without the in-process engine (`startOperator` runs one).
    init(engine: Bool = true, sample: Bool = true, nodeGracePeriod: Int = 4) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("tenops-pair-\(UUID().uuidString.prefix(8))").path
        state = directory + "/state"
        kubeconfig = state + "/kubeconfig"
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        var arguments = ["local", "--dir", state, "--headless", "--node-grace-period", String(nodeGracePeriod)]
        if !engine { arguments.append("--no-engine") }
        if !sample { arguments.append("--no-sample") }
        try start(process, arguments, log: "tenops-local.log")
    }

    private func start(_ process: Process, _ arguments: [String], log: String) throws {
        process.executableURL = URL(fileURLWithPath: try tenopsBinary())
        process.arguments = arguments
        let path = "\(directory)/\(log)"
        FileManager.default.createFile(atPath: path, contents: nil)
        let handle = FileHandle(forWritingAtPath: path)
        handle?.seekToEndOfFile()
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }

    var log: String { (try? String(contentsOfFile: "\(directory)/tenops-local.log", encoding: .utf8)) ?? "" }
    /// The end of the logs of `container` in pod `pod`, on every node that ran it, for a failure's message.
    func containerLogs(_ pod: String, container: String = "tt", bytes: Int = 4000) -> String {
        let nodes = "\(state)/nodes"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: nodes)) ?? []
        return names.sorted().compactMap { node -> String? in
            let directory = "\(nodes)/\(node)/pods/default_\(pod)/logs/\(container)"
            guard let files = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return nil }
            return files.sorted().map { file in
                let text = (try? String(contentsOfFile: "\(directory)/\(file)", encoding: .utf8)) ?? ""
                return "--- \(node) \(pod) \(container)/\(file):\n\(text.suffix(bytes))"
            }.joined(separator: "\n")
        }.joined(separator: "\n")
    }

    /// What each thread of process `pid` is doing, from /proc (name, state, kernel wait channel,
    /// system call), for a failure's message: it tells a hung process from a busy or a dead one.
    static func threads(of pid: Int32) -> String {
        let tasks = "/proc/\(pid)/task"
        guard let ids = try? FileManager.default.contentsOfDirectory(atPath: tasks) else { return "process \(pid) is gone" }
        func read(_ path: String) -> String {
            ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "?").trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return "process \(pid), \(ids.count) threads:\n" + ids.sorted { (Int($0) ?? 0) < (Int($1) ?? 0) }.map { id in
            let stat = read("\(tasks)/\(id)/stat")
            let state = stat.split(separator: ")").last?.split(separator: " ").first.map(String.init) ?? "?"
            let syscall = read("\(tasks)/\(id)/syscall").split(separator: " ").first.map(String.init) ?? "?"
            return "  \(id) \(read("\(tasks)/\(id)/comm")) state \(state) wchan \(read("\(tasks)/\(id)/wchan")) syscall \(syscall)"
        }.joined(separator: "\n")
    }

    var operatorLog: String { (try? String(contentsOfFile: "\(directory)/tenops-operator.log", encoding: .utf8)) ?? "" }

    /// The engine as its own process: `tenops operator` against this cluster.
    func startOperator() throws {
        let process = Process()
        try start(process, ["operator", "--kubeconfig", kubeconfig, "-n", "default"], log: "tenops-operator.log")
        operatorProcess = process
    }

    func killOperator() async {
        guard let process = operatorProcess, process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        _ = await process.exited(within: .seconds(10))
    }

    /// SIGTERM (the nodes stop their pods' processes), SIGKILL after 20 s; then the directory goes.
    func stop() {
        for process in [operatorProcess, process].compactMap({ $0 }) where process.isRunning {
            let pid = process.processIdentifier
            kill(pid, SIGTERM)
            let deadline = Date().addingTimeInterval(20)
            while process.isRunning && Date() < deadline { usleep(20_000) }
            if process.isRunning { kill(pid, SIGKILL) }
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    // MARK: kubectl

    func kubectl(_ arguments: [String], input: String? = nil) async throws -> ProcessOutput {
        var environment = ProcessInfo.processInfo.environment
        environment["KUBECONFIG"] = nil
        environment["HOME"] = directory
        environment["KUBECACHEDIR"] = "\(directory)/kubectl-cache"
        return try await ChildProcess.run("/usr/bin/kubectl", ["--kubeconfig", kubeconfig] + arguments, environment: environment, input: input,
                                          timeout: .seconds(30))
    }

    func jsonpath(_ object: String, _ path: String) async -> String {
        guard let result = try? await kubectl(["get", object, "-o", "jsonpath={\(path)}"]), result.status == 0 else { return "" }
        return result.out
    }

    /// The pair's state and active pod, as `kubectl get ttc` prints them.
    func pairRow(_ name: String = "sample") async -> (state: String, active: String)? {
        guard let result = try? await kubectl(["get", "ttc", name, "--no-headers"]), result.status == 0 else { return nil }
        let fields = result.out.split(whereSeparator: \.isWhitespace).map(String.init)
        guard fields.count >= 3 else { return nil }
        return (fields[1], fields[2])
    }

    /// Waits until `kubectl get ttc` shows `state`; returns the ACTIVE column.
    func waitFor(_ state: String, pair: String = "sample", timeout: Duration = .seconds(60), where accept: (String) -> Bool = { _ in true })
        async -> String?
    {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let row = await pairRow(pair), row.state == state, accept(row.active) { return row.active }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return nil
    }

    func podIP(_ pod: String) async -> String { await jsonpath("pod/\(pod)", ".status.podIP") }

    func podNode(_ pod: String) async -> String { await jsonpath("pod/\(pod)", ".spec.nodeName") }

    func events(_ pair: String = "sample") async -> String {
        (try? await kubectl(["get", "events", "--field-selector", "involvedObject.name=\(pair)", "--sort-by=.lastTimestamp"]))?.out ?? ""
    }

    // MARK: Processes and SQL

    /// The postmaster of `pod`, found by its data directory; its parent is the pod's agent.
    func postmaster(_ pod: String) async throws -> (pid: Int32, agent: Int32)? {
        let found = try await ChildProcess.run("/usr/bin/pgrep", ["-f", "postgres -D \(state)/nodes/.*/tt-persistent-\(pod)/pgdata "])
        guard let pid = found.out.split(separator: "\n").compactMap({ Int32($0) }).first else { return nil }
        let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        let fields = stat.split(separator: ")").last?.split(separator: " ") ?? []
        guard fields.count > 2, let parent = Int32(fields[2]) else { return nil }
        return (pid, parent)
    }

    /// Runs SQL on the database `sample` at `host` as the sample's admin; nil output on failure.
    func sql(_ host: String, _ statement: String, timeout: Duration = .seconds(10)) async throws -> ProcessOutput {
        var environment = ProcessInfo.processInfo.environment
        environment["PGPASSWORD"] = "CHANGE-ME"
        environment["PGCONNECT_TIMEOUT"] = "2"
        return try await ChildProcess.run(
            Self.psql, ["-h", host, "-p", "5432", "-U", "admin", "-d", "sample", "-v", "ON_ERROR_STOP=1", "-Atqc", statement],
            environment: environment, timeout: timeout)
    }
}

/// Writes rows one by one to whichever pod is active, remembering each acknowledged commit.
final class ContinuousWriter: Sendable {
    private let acknowledged = Mutex<[Int]>([])
    private let task = Mutex<Task<Void, Never>?>(nil)

    var ids: [Int] { acknowledged.withLock { $0 } }

    func start(_ pair: LocalPair, first: Int = 1) {
        let running = Task { [self] in
            var next = first
            var target = ""
            while !Task.isCancelled {
                if target.isEmpty, let row = await pair.pairRow(), row.active.hasPrefix("sample-") {
                    target = await pair.podIP(row.active)
                }
                guard !target.isEmpty else {
                    try? await Task.sleep(for: .milliseconds(50))
                    continue
                }
                let result = try? await pair.sql(target, "INSERT INTO acceptance_rows VALUES (\(next))", timeout: .seconds(20))
                if result?.status == 0 {
                    let id = next
                    self.acknowledged.withLock { $0.append(id) }
                    next += 1
                } else {
                    // A failed insert may or may not have committed: never reuse its id.
                    next += 1
                    target = ""
                    try? await Task.sleep(for: .milliseconds(20))
                }
            }
        }
        task.withLock { $0 = running }
    }

    func stop() async {
        let running = task.withLock { $0 }
        running?.cancel()
        await running?.value
    }
}
