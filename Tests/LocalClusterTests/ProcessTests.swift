import Foundation
import KubeAPI
import Synchronization
import Testing
@testable import LocalCluster

/// A `tenops local --headless` process, stopped by PID.
final class TenopsLocalProcess: @unchecked Sendable {
    let process = Process()
    let directory: String

    init(directory: String, extraArguments: [String] = []) throws {
        self.directory = directory
        let binary = try tenopsBinary()
        try? FileManager.default.removeItem(atPath: "\(directory)/kubeconfig")
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["local", "--dir", directory, "--headless", "--no-sample"] + extraArguments
        // Its output goes to a file in its directory, for a failing test to show.
        let log = "\(directory)/tenops-local.log"
        if !FileManager.default.fileExists(atPath: log) { FileManager.default.createFile(atPath: log, contents: nil) }
        let handle = FileHandle(forWritingAtPath: log)
        handle?.seekToEndOfFile()
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }

    /// Waits for the kubeconfig the server writes once it serves.
    func waitUntilServing() async -> Bool {
        await eventually(timeout: .seconds(20)) { FileManager.default.fileExists(atPath: "\(self.directory)/kubeconfig") }
    }

    var log: String { (try? String(contentsOfFile: "\(directory)/tenops-local.log", encoding: .utf8)) ?? "" }

    func signal(_ number: Int32) {
        if process.isRunning { kill(process.processIdentifier, number) }
    }

    /// SIGTERM, so that its nodes stop their pods' processes; SIGKILL if it has not exited
    /// within 20 s. The process is a separate one, so this wait holds no server of the test.
    func stop() {
        guard process.isRunning else { return }
        let pid = process.processIdentifier
        kill(pid, SIGTERM)
        let deadline = Date().addingTimeInterval(20)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(pid, SIGKILL) }
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
