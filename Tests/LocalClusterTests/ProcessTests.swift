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
        if !FileManager.default.fileExists(atPath: log) { _ = FileManager.default.createFile(atPath: log, contents: nil) }
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

    @Test("kill -9 of tenops local: each node's reaper ends the processes of its pods; a clean stop leaves no reaper behind")
    func reaperEndsOrphans() async throws {
        let directory = try ScratchDirectory()
        let running = try TenopsLocalProcess(directory: directory.path)
        defer { running.stop() }
        #expect(await running.waitUntilServing())
        let kubeconfig = "\(directory.path)/kubeconfig"
        // The API server serves before the nodes have started.
        #expect(await eventually(timeout: .seconds(20)) { reapers(under: directory.path).count == 3 },
                "one reaper per node: \(reapers(under: directory.path))")
        let pod = """
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "sleeper", "namespace": "default"},
             "spec": {"nodeName": "node-a", "containers": [{"name": "main", "image": "none", "command": ["sleep", "600"]}]}}
            """
        let file = "\(directory.path)/sleeper.json"
        try pod.write(toFile: file, atomically: true, encoding: .utf8)
        let created = try await Kubectl.run(["--kubeconfig", kubeconfig, "create", "-f", file])
        #expect(created.status == 0, "\(created.err)")
        let record = "\(directory.path)/nodes/node-a/pods/default_sleeper/processes/main"
        #expect(await eventually(timeout: .seconds(20)) { FileManager.default.fileExists(atPath: record) }, "\(running.log)")
        let fields = ((try? String(contentsOfFile: record, encoding: .utf8)) ?? "").split(whereSeparator: \.isWhitespace)
        let sleeper = try #require(fields.first.flatMap { pid_t($0) })
        // Whatever happens below, the sleeper does not outlive the test.
        defer { if ProcStat.read(sleeper)?.isRunning == true { kill(sleeper, SIGKILL) } }
        #expect(ProcStat.read(sleeper)?.isRunning == true)

        running.signal(SIGKILL)
        #expect(await running.process.exited())
        #expect(await eventually(timeout: .seconds(10)) { ProcStat.read(sleeper)?.isRunning != true },
                "the pod's process outlived tenops local")
        #expect(await eventually(timeout: .seconds(10)) { reapers(under: directory.path).isEmpty }, "the reapers exit once done")
        let reaperLog = (try? String(contentsOfFile: "\(directory.path)/nodes/node-a/reaper.log", encoding: .utf8)) ?? ""
        #expect(reaperLog.contains("killed 1 processes"), "\(reaperLog)")

        // Started again and stopped cleanly: its reapers go with it.
        let restarted = try TenopsLocalProcess(directory: directory.path)
        defer { restarted.stop() }
        #expect(await restarted.waitUntilServing())
        #expect(await eventually(timeout: .seconds(10)) { reapers(under: directory.path).count == 3 })
        restarted.signal(SIGTERM)
        #expect(await restarted.process.exited())
        #expect(await eventually(timeout: .seconds(10)) { reapers(under: directory.path).isEmpty }, "reapers left after a clean stop")
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
