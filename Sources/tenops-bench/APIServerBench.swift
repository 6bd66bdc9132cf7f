import Dispatch
import Foundation
import KubeAPI
import LocalCluster
import Synchronization

/// Issue #3's figures: creates per second with 1 and 16 clients, a LIST of 10,000 objects, and
/// watch delivery latency with 10 watchers. The API server runs in this process with its real
/// write-ahead log in a temporary directory; the clients are KubeClients over HTTPS with the
/// admin client certificate, as kubectl's would be.
enum APIServerBench {
    static func run() async throws {
        print("apiserver")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tenops-bench-api-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let server = try await LocalAPIServer.start(.init(stateDirectory: directory))
        do {
            try await measure(kubeconfig: "\(directory)/kubeconfig")
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }

    static func client(_ kubeconfig: String) throws -> KubeClient {
        KubeClient(config: try ClusterConfig.load(kubeconfig: kubeconfig), retryPolicy: RetryPolicy(maxAttempts: 1))
    }

    static func configMap(_ name: String, sentAt: UInt64? = nil) -> ConfigMap {
        var map = ConfigMap(name: name, namespace: "default")
        map.metadata.labels = ["app": "bench", "tier": "db"]
        map.data = ["setting": "value-\(name)", "other": String(repeating: "x", count: 200)]
        if let sentAt { map.metadata.annotations = ["bench/sent": String(sentAt)] }
        return map
    }

    static func measure(kubeconfig: String) async throws {
        let one = try client(kubeconfig)
        for index in 0..<200 { _ = try await one.create(configMap("warm-\(index)")) }

        // 1 client, sequential.
        let sequential = 2_000
        let clock = ContinuousClock()
        let oneElapsed = try await clock.measure {
            for index in 0..<sequential { _ = try await one.create(configMap("seq-\(index)")) }
        }
        figure("creates/s, 1 client (sequential)", "\(Int(Double(sequential) / oneElapsed.inSeconds))")

        // 16 clients, concurrent.
        let clients = try (0..<16).map { _ in try client(kubeconfig) }
        let perClient = 500
        let parallelElapsed = try await clock.measure {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (number, client) in clients.enumerated() {
                    group.addTask {
                        for index in 0..<perClient { _ = try await client.create(configMap("par-\(number)-\(index)")) }
                    }
                }
                try await group.waitForAll()
            }
        }
        figure("creates/s, 16 concurrent clients", "\(Int(Double(16 * perClient) / parallelElapsed.inSeconds))", target: ">= 2000")

        // LIST of 10,000 objects.
        let existing = try await one.list(ConfigMap.self, namespace: "default").items.count
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (number, client) in clients.enumerated() {
                group.addTask {
                    var index = number
                    while existing + index < 10_000 {
                        _ = try await client.create(configMap("fill-\(index)"))
                        index += 16
                    }
                }
            }
            try await group.waitForAll()
        }
        var listTimes = Samples()
        var listed = 0
        for _ in 0..<5 {
            let start = clock.now
            listed = try await one.list(ConfigMap.self, namespace: "default").items.count
            listTimes.add(start.duration(to: clock.now).inSeconds)
        }
        figure("LIST of \(listed) ConfigMaps, p50 over 5", String(format: "%.0f ms", listTimes.percentile(50) * 1000))

        // Watch delivery latency, 10 watchers: from just before the create is sent to the event
        // arriving at each watcher.
        let watchers = 10, events = 500
        let latencies = LatencyLog()
        let resourceVersion = try await one.list(ConfigMap.self, namespace: "default", options: ListOptions(limit: 1)).resourceVersion
        var tasks: [Task<Void, any Error>] = []
        for _ in 0..<watchers {
            let stream = try await client(kubeconfig).watch(
                ConfigMap.self, namespace: "default", options: WatchOptions(resourceVersion: resourceVersion, labelSelector: "app=bench"))
            tasks.append(Task {
                var seen = 0
                for try await event in stream where event.type == .added {
                    guard let sent = event.object.metadata.annotations["bench/sent"].flatMap(UInt64.init) else { continue }
                    let now = DispatchTime.now().uptimeNanoseconds
                    latencies.add(Double(now - sent) / 1e9)
                    seen += 1
                    if seen == events { return }
                }
            })
        }
        try await Task.sleep(for: .milliseconds(200))
        for index in 0..<events {
            _ = try await one.create(configMap("watched-\(index)", sentAt: DispatchTime.now().uptimeNanoseconds))
            try await Task.sleep(for: .milliseconds(2))
        }
        for task in tasks { try await task.value }
        var samples = Samples()
        for value in latencies.values { samples.add(value) }
        figure("watch delivery, \(watchers) watchers x \(events) events, p50", String(format: "%.2f ms", samples.percentile(50) * 1000))
        figure("watch delivery, p99", String(format: "%.2f ms", samples.percentile(99) * 1000), target: "<= 5 ms")
    }
}

/// Latencies collected by many watcher tasks.
final class LatencyLog: Sendable {
    private let storage = Mutex<[Double]>([])
    func add(_ value: Double) { storage.withLock { $0.append(value) } }
    var values: [Double] { storage.withLock { $0 } }
}
