import Foundation
import KubeAPI
@_exported import TestSupport
@testable import LocalCluster

/// A directory removed when the test is done with it.
final class ScratchDirectory: @unchecked Sendable {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("tenops-lc-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    @discardableResult
    func write(_ name: String, _ text: String) throws -> String {
        let full = "\(path)/\(name)"
        try Data(text.utf8).write(to: URL(fileURLWithPath: full))
        return full
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// A real local API server in this process, on 127.0.0.1, with its state in a scratch
/// directory. `with` always stops it.
struct LocalServer: Sendable {
    let server: LocalAPIServer
    let directory: ScratchDirectory

    var kubeconfig: String { "\(directory.path)/state/kubeconfig" }

    static func with<R: Sendable>(directory: ScratchDirectory? = nil, _ body: (LocalServer) async throws -> R) async throws -> R {
        let directory = try directory ?? ScratchDirectory()
        let server = try await LocalAPIServer.start(.init(stateDirectory: "\(directory.path)/state"))
        let local = LocalServer(server: server, directory: directory)
        do {
            let result = try await body(local)
            await server.stop()
            return result
        } catch {
            await server.stop()
            throw error
        }
    }

    func client() throws -> KubeClient {
        KubeClient(config: try ClusterConfig.load(kubeconfig: kubeconfig), retryPolicy: RetryPolicy(maxAttempts: 2))
    }

    /// Runs the real kubectl against this server.
    @discardableResult
    func kubectl(_ arguments: [String], input: String? = nil) async throws -> ProcessOutput {
        try await Kubectl.run(["--kubeconfig", kubeconfig] + arguments, input: input)
    }
}

enum Kubectl {
    /// Runs /usr/bin/kubectl with no user configuration or cache, off the cooperative pool.
    static func run(_ arguments: [String], input: String? = nil) async throws -> ProcessOutput {
        var environment = ProcessInfo.processInfo.environment
        environment["KUBECONFIG"] = nil
        environment["HOME"] = FileManager.default.temporaryDirectory.path  // no user cache or config
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("tenops-kubectl-cache-\(UUID().uuidString)").path
        environment["KUBECACHEDIR"] = cache
        defer { try? FileManager.default.removeItem(atPath: cache) }
        return try await ChildProcess.run("/usr/bin/kubectl", arguments, environment: environment, input: input)
    }
}

/// A kubectl process left running (for `get -w`), stopped by PID.
final class RunningKubectl: @unchecked Sendable {
    let process = Process()
    private let output = Pipe()
    private let lock = NSLock()
    private var collected = Data()

    init(_ arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/kubectl")
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["HOME"] = FileManager.default.temporaryDirectory.path
        process.environment = environment
        process.standardOutput = output
        process.standardError = output
        output.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self else { return }
            self.lock.lock()
            self.collected.append(data)
            self.lock.unlock()
        }
        try process.run()
    }

    var text: String {
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: collected, as: UTF8.self)
    }

    func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        output.fileHandleForReading.readabilityHandler = nil
    }
}

func eventually(timeout: Duration = .seconds(10), _ condition: @Sendable () async -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return await condition()
}

/// The PIDs of running `tenops node-reaper` processes for the node at `directory` or nodes under it.
func reapers(under directory: String) -> [pid_t] {
    ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { entry in
        guard let pid = pid_t(entry), ProcStat.read(pid)?.isRunning == true,
              let raw = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return nil }
        let arguments = raw.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        return arguments.contains(NodeReaperCommand.name) && arguments.contains { $0 == directory || $0.hasPrefix(directory + "/") } ? pid : nil
    }
}
