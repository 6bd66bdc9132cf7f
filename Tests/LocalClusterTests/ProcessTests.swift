import Foundation
import KubeAPI
import Synchronization
import Testing
@testable import LocalCluster

/// A `tenops local --headless` process, stopped by PID.
final class TenopsLocalProcess: @unchecked Sendable {
    let process = Process()
    let directory: String

    init(directory: String) throws {
        self.directory = directory
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let candidates = [Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("tenops").path,
                          packageRoot.appendingPathComponent(".build/debug/tenops").path]
        guard let binary = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw LocalClusterError.configuration("the tenops binary is not built (looked in \(candidates))")
        }
        try? FileManager.default.removeItem(atPath: "\(directory)/kubeconfig")
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["local", "--dir", directory, "--headless", "--no-sample"]
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
    }

    /// Waits for the kubeconfig the server writes once it serves.
    func waitUntilServing() async -> Bool {
        await eventually(timeout: .seconds(20)) { FileManager.default.fileExists(atPath: "\(self.directory)/kubeconfig") }
    }

    func signal(_ number: Int32) {
        if process.isRunning { kill(process.processIdentifier, number) }
    }

    func stop() {
        signal(SIGKILL)
        process.waitUntilExit()
    }
}

final class Acknowledged: Sendable {
    private let names = Mutex<[String]>([])
    func add(_ name: String) { names.withLock { $0.append(name) } }
    var all: [String] { names.withLock { $0 } }
}

@Suite("tenops local as a real process", .serialized, .timeLimit(.minutes(5)))
struct ProcessTests {
    @Test("SIGTERM stops it cleanly; started again, it serves the same objects on the same port")
    func startStopRestart() async throws {
        let directory = try ScratchDirectory()
        let first = try TenopsLocalProcess(directory: directory.path)
        defer { first.stop() }
        #expect(await first.waitUntilServing())
        let kubeconfig = "\(directory.path)/kubeconfig"
        let created = try await Kubectl.run(["--kubeconfig", kubeconfig, "create", "namespace", "kept"])
        #expect(created.status == 0, "\(created.err)")
        let server = try ClusterConfig.load(kubeconfig: kubeconfig).server
        first.signal(SIGTERM)
        #expect(await first.process.exited())
        #expect(first.process.terminationReason == .exit && first.process.terminationStatus == 0)

        let second = try TenopsLocalProcess(directory: directory.path)
        defer { second.stop() }
        #expect(await second.waitUntilServing())
        #expect(try ClusterConfig.load(kubeconfig: kubeconfig).server == server)
        let listed = try await Kubectl.run(["--kubeconfig", kubeconfig, "get", "namespace", "kept"])
        #expect(listed.status == 0 && listed.out.contains("kept"), "\(listed.err)")
    }

    @Test("kill -9 in the middle of writes loses nothing that was acknowledged")
    func killDuringWrites() async throws {
        let directory = try ScratchDirectory()
        let running = try TenopsLocalProcess(directory: directory.path)
        defer { running.stop() }
        #expect(await running.waitUntilServing())
        let kubeconfig = "\(directory.path)/kubeconfig"
        let acknowledged = Acknowledged()
        let writers = (0..<4).map { writer in
            Task {
                let client = KubeClient(config: try ClusterConfig.load(kubeconfig: kubeconfig), retryPolicy: .none)
                var index = 0
                while !Task.isCancelled {
                    let name = "w\(writer)-\(index)"
                    var map = ConfigMap(name: name, namespace: "default")
                    map.data = ["payload": String(repeating: "p", count: 512)]
                    do {
                        _ = try await client.create(map)
                        acknowledged.add(name)
                    } catch {
                        return  // the server is gone
                    }
                    index += 1
                }
            }
        }
        try await Task.sleep(for: .milliseconds(1500))
        running.signal(SIGKILL)
        #expect(await running.process.exited())
        for writer in writers { _ = await writer.result }
        let written = acknowledged.all
        #expect(written.count > 100)

        let restarted = try TenopsLocalProcess(directory: directory.path)
        defer { restarted.stop() }
        #expect(await restarted.waitUntilServing())
        let client = KubeClient(config: try ClusterConfig.load(kubeconfig: kubeconfig))
        let stored = Set(try await client.listAll(ConfigMap.resourceType, namespace: "default").items.map(\.name))
        let lost = written.filter { !stored.contains($0) }
        #expect(lost.isEmpty, "lost \(lost.count) acknowledged writes: \(lost.prefix(5))")
    }
}
