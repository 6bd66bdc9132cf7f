import Foundation
import KubeAPI
import LocalCluster

/// Issue #4's figures:
/// - time from pod creation to Running for a trivial command (`sleep`), p50 and p99 over 200
///   pods created one after another. The path is the real one: the API server, the scheduler
///   (controllers in this process) and a `tenops node` process, each over HTTPS; the time runs
///   from the create call to the watch event that shows phase Running.
/// - the node process's CPU and RSS in steady state while it runs those 200 pods, read from
///   /proc over a 20 s window after a 10 s settle.
enum NodeBench {
    static let podCount = 200

    static func run() async throws {
        print("node")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tenops-bench-node-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let server = try await LocalAPIServer.start(.init(stateDirectory: "\(directory)/state"))
        let kubeconfig = "\(directory)/state/kubeconfig"
        let client = KubeClient(config: try ClusterConfig.load(kubeconfig: kubeconfig))
        let controllers = Task { await ControllerManager(client: client).run() }
        let node = try NodeProcess(kubeconfig: kubeconfig, directory: "\(directory)/node")
        do {
            try await measure(client: client, node: node)
        } catch {
            await node.stop()
            controllers.cancel()
            await server.stop()
            throw error
        }
        await node.stop()
        controllers.cancel()
        await server.stop()
    }

    static func measure(client: KubeClient, node: NodeProcess) async throws {
        try await waitUntil("node \(NodeProcess.name) is Ready", timeout: .seconds(30)) {
            ((try? await client.get(Node.self, name: NodeProcess.name))?.json["status"]?["conditions"].arrayValue ?? [])
                .contains { $0["type"].stringValue == "Ready" && $0["status"].stringValue == "True" }
        }
        let events = try await client.watch(Pod.self, namespace: "default")
        var iterator = events.makeAsyncIterator()
        var startup = Samples()
        for index in 0..<podCount {
            let name = "trivial-\(index)"
            let started = ContinuousClock.now
            _ = try await client.create(trivialPod(name))
            while true {
                guard let event = try await iterator.next() else { throw BenchError("the pod watch ended") }
                if event.object.name == name, event.object.status.phase == "Running" { break }
                if ContinuousClock.now - started > .seconds(30) { throw BenchError("pod \(name) was not Running within 30 s") }
            }
            startup.add((ContinuousClock.now - started).inSeconds)
        }
        figure("pod creation to Running (sleep), p50 over \(podCount)", ms(startup.percentile(50)), target: "<= 150 ms")
        figure("pod creation to Running (sleep), p99 over \(podCount)", ms(startup.percentile(99)))

        try await Task.sleep(for: .seconds(10))
        let before = try node.usage()
        let window = Duration.seconds(20)
        try await Task.sleep(for: window)
        let after = try node.usage()
        let cpu = (after.cpuSeconds - before.cpuSeconds) / window.inSeconds * 100
        figure("node with \(podCount) pods, steady-state CPU", String(format: "%.1f %% of one core", cpu))
        figure("node with \(podCount) pods, RSS", String(format: "%.1f MiB", Double(after.rssKiB) / 1024))
    }

    static func trivialPod(_ name: String) -> Pod {
        var pod = Pod(json: [:])
        pod.json = [
            "apiVersion": "v1", "kind": "Pod",
            "metadata": .object(["name": .string(name), "namespace": "default"]),
            "spec": .object([
                "terminationGracePeriodSeconds": 1,
                "containers": .array([.object(["name": "main", "image": "none", "command": .array(["sleep", "3600"])])]),
            ]),
        ]
        return pod
    }

    static func ms(_ seconds: Double) -> String { String(format: "%.1f ms", seconds * 1000) }

    static func waitUntil(_ what: String, timeout: Duration, _ condition: () async -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while !(await condition()) {
            if ContinuousClock.now > deadline { throw BenchError("timed out waiting until \(what)") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}

/// A `tenops node` process (the binary beside this one), stopped by PID.
struct NodeProcess {
    static let name = "bench-node"
    let process = Process()

    init(kubeconfig: String, directory: String) throws {
        let ownBinary = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let tenops = URL(fileURLWithPath: ownBinary).deletingLastPathComponent().appendingPathComponent("tenops").path
        guard FileManager.default.isExecutableFile(atPath: tenops) else {
            throw BenchError("\(tenops) is not built; `make bench` builds it")
        }
        process.executableURL = URL(fileURLWithPath: tenops)
        process.arguments = ["node", "--kubeconfig", kubeconfig, "--name", Self.name, "--dir", directory, "--address", "127.200.0.1"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    struct Usage {
        let cpuSeconds: Double
        let rssKiB: Int
    }

    /// utime + stime from /proc/PID/stat and VmRSS from /proc/PID/status.
    func usage() throws -> Usage {
        let pid = process.processIdentifier
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let afterName = stat.lastIndex(of: ")")
        else { throw BenchError("the node process \(pid) is gone") }
        let fields = stat[stat.index(after: afterName)...].split(separator: " ")
        // Fields after the name start at state (field 3); utime and stime are fields 14 and 15.
        guard fields.count > 13, let utime = Double(fields[11]), let stime = Double(fields[12]) else {
            throw BenchError("cannot read /proc/\(pid)/stat")
        }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let rss = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }
            .flatMap { Int($0.split(separator: " ").dropFirst().first ?? "") } ?? 0
        return Usage(cpuSeconds: (utime + stime) / ticks, rssKiB: rss)
    }

    /// SIGTERM, then SIGKILL after 10 s; the node stops its pods' processes on SIGTERM.
    func stop() async {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        let deadline = ContinuousClock.now + .seconds(10)
        while process.isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(50)) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        while process.isRunning { try? await Task.sleep(for: .milliseconds(10)) }
    }
}
