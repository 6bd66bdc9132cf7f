import Foundation
import KubeAPI
import LocalCluster
import Logging
import OperatorEngine
import Synchronization
import Testing

@testable import Console

/// Objects as the API server hands them out, for the snapshot builder's tables.
private enum Objects {
    static let now = Date(timeIntervalSince1970: 1_714_979_289)

    static func pair(_ name: String = "sample", namespace: String = "default", uid: String = "uid-1", status: JSONObject = [:],
                     ttspec: JSONObject = ["image": "tenops:latest", "deleteDbOnNotReadyNode": 60]) -> TimesTenClassic {
        TimesTenClassic(json: [
            "apiVersion": "tenops.io/v1", "kind": "TimesTenClassic",
            "metadata": ["name": .string(name), "namespace": .string(namespace), "uid": .string(uid),
                         "creationTimestamp": .string(KubeTime.format(now.addingTimeInterval(-600)))],
            "spec": ["ttspec": .object(ttspec)], "status": .object(status),
        ])
    }

    static func entry(_ name: String, intended: String, state: String = "Healthy", node: String, lag: Int? = nil) -> JSONValue {
        var replication: JSONObject = ["repState": .string(intended == "Active" ? "ACTIVE" : "STANDBY")]
        if let lag { replication["lagBytes"] = .int(Int64(lag)) }
        return [
            "name": .string(name), "intendedState": .string(intended), "highLevelState": .string(state),
            "podStatus": ["agent": "Up", "restarts": 1], "dbStatus": ["db": "Loaded", "dbUpdatable": .bool(intended == "Active")],
            "replicationStatus": .object(replication), "node": ["name": .string(node), "ready": "True"],
        ]
    }

    static let normalStatus: JSONObject = [
        "highLevelState": "Normal", "prevHighLevelState": "Initializing", "activePods": "sample-0",
        "lastHighLevelStateSwitch": .string(KubeTime.formatMicro(now.addingTimeInterval(-60))),
        "podStatus": [entry("sample-0", intended: "Active", node: "node-a"), entry("sample-1", intended: "Standby", node: "node-b", lag: 2048)],
    ]

    static func pod(_ name: String, node: String, phase: String = "Running", ready: Bool = true, deleting: Bool = false) -> Pod {
        var metadata: JSONObject = ["name": .string(name), "namespace": "default", "labels": ["tenops.io/pair": "sample"]]
        if deleting { metadata["deletionTimestamp"] = .string(KubeTime.format(now)) }
        return Pod(json: [
            "metadata": .object(metadata),
            "spec": ["nodeName": .string(node), "volumes": [["name": "tt-persistent", "persistentVolumeClaim": ["claimName": .string("tt-persistent-\(name)")]]]],
            "status": ["phase": .string(phase), "conditions": [["type": "Ready", "status": .string(ready ? "True" : "False")]],
                       "containerStatuses": [["name": "tt", "restartCount": 3]]],
        ])
    }

    static func node(_ name: String, ready: String = "True", since: Date = now.addingTimeInterval(-42), runtime: String = "tenops://0.1.0",
                     simulate: String? = nil) -> KubeAPI.Node {
        var metadata: JSONObject = ["name": .string(name)]
        if let simulate { metadata["annotations"] = ["tenops.io/simulate": .string(simulate)] }
        return KubeAPI.Node(json: [
            "metadata": .object(metadata),
            "status": ["conditions": [["type": "Ready", "status": .string(ready), "lastTransitionTime": .string(KubeTime.format(since))]],
                       "nodeInfo": ["containerRuntimeVersion": .string(runtime)]],
        ])
    }

    static func claim(_ name: String, phase: String = "Bound") -> PersistentVolumeClaim {
        PersistentVolumeClaim(json: ["metadata": ["name": .string(name), "namespace": "default"], "status": ["phase": .string(phase)]])
    }

    static func event(_ name: String, pair: String = "sample", kind: String = "TimesTenClassic", uid: String? = "uid-1", type: String = "Normal",
                      reason: String = "StateChange", message: String, ago: TimeInterval?) -> CoreEvent {
        var involved: JSONObject = ["kind": .string(kind), "name": .string(pair), "namespace": "default"]
        if let uid { involved["uid"] = .string(uid) }
        var json: JSONObject = [
            "metadata": ["name": .string(name), "namespace": "default"], "involvedObject": .object(involved),
            "type": .string(type), "reason": .string(reason), "message": .string(message), "count": 1,
        ]
        if let ago { json["lastTimestamp"] = .string(KubeTime.format(now.addingTimeInterval(-ago))) }
        return CoreEvent(json: json)
    }

    static let traits = LocalNodeTraits(
        simulationAnnotation: "tenops.io/simulate",
        isProcessNode: { node in JSONValue.object(node.json)["status"]["nodeInfo"]["containerRuntimeVersion"].stringValue?.hasPrefix("tenops://") ?? false },
        simulationPatch: { _ in nil })

    static let header = SnapshotHeader(context: "ctx", namespace: "default", engine: EngineInfo(requested: "auto", mode: .observe))

    static func build(_ contents: ClusterContents, header: SnapshotHeader = header, local: LocalNodeTraits? = traits) -> ConsoleSnapshot {
        SnapshotBuilder.build(contents, header: header, local: local, now: now)
    }
}

@Suite("Console model source: snapshot builder, watch health, informers", .timeLimit(.minutes(5)))
struct ConsoleSourceTests {
    // MARK: The builder

    @Test("a Normal pair: roles, lag, status fields, and the live pod, node and claim")
    func normalPair() throws {
        let snapshot = Objects.build(ClusterContents(
            pairs: [Objects.pair(status: Objects.normalStatus)],
            pods: [Objects.pod("sample-0", node: "node-a"), Objects.pod("sample-1", node: "node-b", ready: false)],
            nodes: [Objects.node("node-a"), Objects.node("node-b")],
            claims: [Objects.claim("tt-persistent-sample-0"), Objects.claim("tt-persistent-sample-1", phase: "Pending")]))
        let pair = try #require(snapshot.pairs.first)
        #expect(pair.key == PairKey(namespace: "default", name: "sample"))
        #expect(pair.state == "Normal")
        #expect(pair.previousState == "Initializing")
        #expect(pair.stateSince == Objects.now.addingTimeInterval(-60))
        #expect(pair.active == "sample-0")
        #expect(pair.standby == "sample-1")
        #expect(pair.lagBytes == 2048)
        #expect(pair.deleteDbOnNotReadyNode == 60)
        #expect(pair.created == Objects.now.addingTimeInterval(-600))
        #expect(pair.pods.map(\.name) == ["sample-0", "sample-1"])
        #expect(pair.pods.map(\.role) == [.active, .standby])
        let standby = pair.pods[1]
        #expect(standby.phase == "Running")
        #expect(standby.ready == false)
        #expect(standby.restarts == 3)
        #expect(standby.agent == "Up")
        #expect(standby.podState == "Healthy")
        #expect(standby.database == "Loaded")
        #expect(standby.updatable == false)
        #expect(standby.repState == "STANDBY")
        #expect(standby.lagBytes == 2048)
        #expect(standby.node == "node-b")
        #expect(standby.nodeReady == true)
        #expect(standby.pvc == "tt-persistent-sample-1")
        #expect(standby.pvcPhase == "Pending")
        #expect(pair.object["metadata"]?["uid"].stringValue == "uid-1")
    }

    @Test("pod rows: what the status knows, what the cache knows, or both", arguments: [
        // (status entries, pods in the cache, expected pod names)
        (false, [String](), [String]()),
        (false, ["sample-1"], ["sample-1"]),
        (true, [String](), ["sample-0", "sample-1"]),
        (true, ["sample-0"], ["sample-0", "sample-1"]),
    ])
    func podRows(withStatus: Bool, cached: [String], expected: [String]) {
        let snapshot = Objects.build(ClusterContents(
            pairs: [Objects.pair(status: withStatus ? Objects.normalStatus : [:])],
            pods: cached.map { Objects.pod($0, node: "node-c") }))
        #expect(snapshot.pairs.first?.pods.map(\.name) == expected)
        if !withStatus, let only = snapshot.pairs.first?.pods.first {
            #expect(only.role == .none)
            #expect(only.node == "node-c")
        }
    }

    @Test("the node's own condition wins over what the status recorded", arguments: [
        // (node Ready status, pod being deleted, expected ready, expected since (seconds ago), expected phase)
        ("True", false, true as Bool?, nil as TimeInterval?, "Running"),
        ("False", false, false, 42, "Running"),
        ("Unknown", true, false, 42, "Terminating"),
    ])
    func nodeReadiness(ready: String, deleting: Bool, expectedReady: Bool?, since: TimeInterval?, phase: String) {
        let snapshot = Objects.build(ClusterContents(
            pairs: [Objects.pair(status: Objects.normalStatus)],
            pods: [Objects.pod("sample-0", node: "node-a", deleting: deleting)],
            nodes: [Objects.node("node-a", ready: ready, simulate: ready == "True" ? nil : "poweroff")]))
        let pod = snapshot.pairs.first?.pods.first
        #expect(pod?.nodeReady == expectedReady)
        #expect(pod?.nodeNotReadySince == since.map { Objects.now.addingTimeInterval(-$0) })
        #expect(pod?.phase == phase)
        #expect(snapshot.nodes.first?.simulation == (ready == "True" ? nil : "poweroff"))
        #expect(snapshot.nodes.first?.notReadySince == since.map { Objects.now.addingTimeInterval(-$0) })
    }

    @Test("events: the pair's own, newest first, not another kind's, not an earlier object's, at most eventsPerPair")
    func events() {
        var events = [
            Objects.event("e1", message: "old", ago: 300),
            Objects.event("e2", message: "new", ago: 5),
            Objects.event("e3", type: "Warning", message: "same second, later in the list", ago: 5),
            Objects.event("e4", kind: "Pod", message: "a pod's", ago: 1),
            Objects.event("e5", uid: "uid-0", message: "the previous incarnation's", ago: 2),
            Objects.event("e6", pair: "other", message: "another pair's", ago: 1),
            Objects.event("e7", uid: nil, message: "no uid, no time", ago: nil),
        ]
        var snapshot = Objects.build(ClusterContents(pairs: [Objects.pair()], events: events))
        let key = PairKey(namespace: "default", name: "sample")
        #expect(snapshot.events[key]?.map(\.message) == ["same second, later in the list", "new", "old", "no uid, no time"])
        #expect(snapshot.events.count == 1)

        events = (0..<(SnapshotBuilder.eventsPerPair + 10)).map { Objects.event("m\($0)", message: "m\($0)", ago: TimeInterval(1000 - $0)) }
        snapshot = Objects.build(ClusterContents(pairs: [Objects.pair()], events: events))
        #expect(snapshot.events[key]?.count == SnapshotBuilder.eventsPerPair)
        #expect(snapshot.events[key]?.first?.message == "m\(SnapshotBuilder.eventsPerPair + 9)")
    }

    @Test("the local cluster: started by tenops local, or every node a process node", arguments: [
        // (knownLocal, traits given, node runtimes, expected)
        (true, false, [String](), true),
        (false, true, ["tenops://0.1.0", "tenops://0.1.0"], true),
        (false, true, ["tenops://0.1.0", "containerd://1.7"], false),
        (false, true, [String](), false),
        (false, false, ["tenops://0.1.0"], false),
    ])
    func localCluster(knownLocal: Bool, traits: Bool, runtimes: [String], expected: Bool) {
        var header = Objects.header
        header.knownLocal = knownLocal
        let nodes = runtimes.enumerated().map { Objects.node("n\($0.offset)", runtime: $0.element) }
        let snapshot = Objects.build(ClusterContents(nodes: nodes), header: header, local: traits ? Objects.traits : nil)
        #expect(snapshot.isLocalCluster == expected)
    }

    @Test("the Lease's holder reaches the header; an empty holder is nobody")
    func leaseHolder() {
        func lease(_ holder: String?) -> Lease {
            var lease = Lease(name: "tenops-operator", namespace: "default")
            var spec = LeaseSpec(json: [:])
            spec.holderIdentity = holder
            lease.spec = spec
            return lease
        }
        #expect(Objects.build(ClusterContents(lease: lease("host_1234"))).engine.leaseHolder == "host_1234")
        #expect(Objects.build(ClusterContents(lease: lease(""))).engine.leaseHolder == nil)
        #expect(Objects.build(ClusterContents()).engine.leaseHolder == nil)
        #expect(Objects.build(ClusterContents()).engine.requested == "auto")
    }

    @Test("snapshots that differ only in their time count as the same")
    func sameContent() {
        let a = Objects.build(ClusterContents(pairs: [Objects.pair(status: Objects.normalStatus)]))
        var b = a
        b.now = a.now.addingTimeInterval(5)
        #expect(ConsoleModelSource.sameContent(a, b))
        b.pairs[0].state = "ActiveDown"
        #expect(!ConsoleModelSource.sameContent(a, b))
    }

    // MARK: Watch health

    @Test("the retry delay is read from the informer's message", arguments: [
        ("timestenclassics.tenops.io watch failed, retrying in 0.4 seconds", Duration.milliseconds(400)),
        ("pods watch failed, retrying in 12.5 seconds", .milliseconds(12_500)),
        ("pods watch failed", .seconds(30)),
        ("pods watch failed, retrying in soon", .seconds(30)),
    ])
    func retryDelay(message: String, expected: Duration) {
        #expect(WatchHealth.retryDelay(in: message) == expected)
    }

    @Test("an error's summary: a transport error's last clause, and that it is one", arguments: [
        ("transport error: GET https://127.0.0.1:9/api/v1/pods?limit=500: Failed to connect to 127.0.0.1 port 9 after 0 ms: Couldn't connect to server",
         "Couldn't connect to server", true),
        ("forbidden: pods is forbidden: User \"x\" cannot list", "forbidden: pods is forbidden: User \"x\" cannot list", false),
        ("transport error: timeout", "timeout", true),
    ])
    func summary(message: String, text: String, transport: Bool) {
        let summary = WatchHealth.summary(message)
        #expect(summary.text == text)
        #expect(summary.transport == transport)
    }

    @Test("a server that cannot be reached is unreachable at once")
    func transportFailure() {
        let health = WatchHealth()
        health.failed("pods", message: "transport error: GET https://x/api: Couldn't connect to server", retry: .seconds(1))
        #expect(health.health() == .unreachable("pods: Couldn't connect to server"))
    }

    @Test("health: ok, degraded by a failure, unreachable after three in a row, ok once the retries hold")
    func health() {
        let health = WatchHealth()
        let start = ContinuousClock.now
        #expect(health.health(now: start) == .ok)
        #expect(health.health(now: start, synced: false) == .degraded("syncing"))
        health.failed("pods", message: "connection refused", retry: .seconds(1), now: start)
        #expect(health.health(now: start) == .degraded("pods: connection refused"))
        health.failed("pods", message: "connection refused", retry: .seconds(2), now: start + .seconds(1))
        health.failed("pods", message: "connection refused", retry: .seconds(4), now: start + .seconds(3))
        #expect(health.health(now: start + .seconds(3)) == .unreachable("pods: connection refused"))
        // The last retry was due at 7 s; with no failure by 7 s + grace, it held.
        #expect(health.health(now: start + .seconds(9)) == .unreachable("pods: connection refused"))
        #expect(health.health(now: start + .seconds(10) + .milliseconds(1)) == .ok)
        // A failure long after the others starts counting again from one.
        health.failed("pods", message: "HTTP 500", retry: .seconds(1), now: start + .seconds(20))
        #expect(health.health(now: start + .seconds(20)) == .degraded("pods: HTTP 500"))
    }

    @Test("the informer's logger reports failed watches even when the base logger shows only errors")
    func healthLogger() {
        let health = WatchHealth()
        let calls = Atomic<Int>(0)
        var base = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        base.logLevel = .error
        let logger = health.logger(for: "nodes", base: base) { calls.add(1, ordering: .relaxed) }
        logger.warning("nodes watch failed, retrying in 5 seconds", metadata: ["error": "connection refused"])
        logger.info("resourceVersion too old, relisting")
        #expect(calls.load(ordering: .relaxed) >= 1)
        #expect(health.health() == .degraded("nodes: connection refused"))
    }

    // MARK: Against a real API server

    @Test("a burst of 300 new pairs gives a few snapshots, not 300; a quiet cluster gives none; a dead server shows")
    func coalescing() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tenops-console-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let server = try await LocalAPIServer.start(.init(stateDirectory: directory))
        do {
            try await burstAndSilence(server: server, directory: directory)
        } catch {
            await server.stop()
            throw error
        }
    }

    private func burstAndSilence(server: LocalAPIServer, directory: String) async throws {
        let client = KubeClient(config: try ClusterConfig.load(kubeconfig: "\(directory)/kubeconfig"))
        try await ClusterSetup.install(client: client, sample: false, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })

        let source = ConsoleModelSource(
            client: client, configuration: .init(context: "test", namespace: nil, engineRequested: "observe"),
            logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        let delivered = Mutex<[ConsoleSnapshot]>([])
        let running = Task { await source.run { snapshot in delivered.withLock { $0.append(snapshot) } } }
        defer { running.cancel() }
        let synced = await eventually { source.hasSynced }
        #expect(synced)

        let burstStart = ContinuousClock.now
        let count = 300
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<6 {
                group.addTask {
                    for index in stride(from: worker, to: count, by: 6) {
                        var pair = TimesTenClassic(name: "p\(index)", namespace: "default")
                        pair.json["spec"] = ["ttspec": ["image": "tenops:latest"]]
                        _ = try await client.create(pair)
                    }
                }
            }
            try await group.waitForAll()
        }
        let complete = await eventually { delivered.withLock { $0.last?.pairs.count } == count }
        #expect(complete)
        let burst = burstStart.duration(to: .now)
        let snapshots = delivered.withLock { $0.count }
        // At most one per 50 ms, plus the first at sync: far fewer than one per change.
        let bound = Int(burst / .milliseconds(50)) + 3
        #expect(snapshots <= bound, "\(snapshots) snapshots in \(burst)")
        #expect(snapshots < count / 3)
        #expect(delivered.withLock { $0.last?.api } == .ok)

        // Nothing changes: nothing is delivered (no polling, no redraw).
        let quiet = delivered.withLock { $0.count }
        try await Task.sleep(for: .seconds(2))
        #expect(delivered.withLock { $0.count } == quiet)

        // The server goes away: the header says so within seconds.
        await server.stop()
        let noticed = await eventually(timeout: .seconds(15)) {
            delivered.withLock { snapshots in snapshots.last.map { $0.api != .ok } ?? false }
        }
        #expect(noticed)
    }
}

/// The API server's log source for `LogFollowerTests`: a pod whose daemonlog writes `count`
/// numbered lines at once, then stays open as a followed container does. Written here because
/// no container can be made to write that fast on cue; the follower, the client and the API
/// server's log endpoint are the real ones.
final class BurstLogSource: PodLogSource {
    let count: Int
    init(count: Int) { self.count = count }

    /// A pod in `default` with the two containers of a pair's pod, whose daemonlog this source writes.
    static func pod(named name: String) -> Pod {
        Pod(json: [
            "apiVersion": "v1", "kind": "Pod", "metadata": ["name": .string(name), "namespace": "default"],
            "spec": ["nodeName": "node-a", "containers": [["name": "tt", "image": "x"], ["name": "daemonlog", "image": "x"]]],
        ])
    }

    func logs(pod: JSONObject, node: JSONObject?, options: PodLogOptions) async throws -> AsyncThrowingStream<Data, any Error> {
        let (stream, continuation) = AsyncThrowingStream<Data, any Error>.makeStream()
        var text = ""
        for index in 0..<count { text += "line \(index)\n" }
        continuation.yield(Data(text.utf8))
        if !options.follow { continuation.finish() }
        return stream
    }
}

@Suite("Log follower: batches, bounds", .timeLimit(.minutes(5)))
struct LogFollowerTests {
    @Test("20,000 lines at once arrive in a few moves, the oldest beyond the ring's capacity counted as dropped")
    func burst() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tenops-console-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let server = try await LocalAPIServer.start(.init(stateDirectory: directory, logSource: BurstLogSource(count: 20_000)))
        do {
            let client = KubeClient(config: try ClusterConfig.load(kubeconfig: "\(directory)/kubeconfig"))
            _ = try await client.create(BurstLogSource.pod(named: "sample-0"))
            // What the console would show, with room for every line; and the lines each word brought.
            let received = Mutex((ring: LogRing(capacity: 20_000, byteCapacity: 1 << 20), streams: Set<Int>(), moves: [Int]()))
            let follower = LogFollower(client: client, capacity: 5_000)
            let following = Task {
                await follower.follow(namespace: "default", pod: "sample-0", stream: 7) { ready in
                    received.withLock { received in
                        received.streams.insert(ready.stream)
                        let before = received.ring.count
                        if ready.moveLines(into: &received.ring) > 0 { received.moves.append(received.ring.count - before) }
                    }
                }
            }
            let complete = await eventually { received.withLock { $0.ring.appended } >= 20_000 }
            following.cancel()
            await following.value
            await server.stop()
            #expect(complete)
            let (ring, streams, moves) = received.withLock { $0 }
            #expect(streams == [7])
            #expect(moves.allSatisfy { $0 <= 5_000 }, "no move brings more than the follower keeps: \(moves)")
            #expect(moves.count < 50, "\(moves.count) moves for 20,000 lines")
            #expect(ring.appended == 20_000, "each line arrived once, kept or counted as dropped")
            let lines = (0..<ring.count).map { ring[$0] }
            #expect(lines.last == "line 19999")
            // What was kept is in order and ends with the newest.
            let numbers = lines.compactMap { Int($0.dropFirst(5)) }
            #expect(numbers.count == lines.count && numbers == numbers.sorted())
        } catch {
            await server.stop()
            throw error
        }
    }
}

@Suite("Log follower: streams that end or cannot open", .timeLimit(.minutes(5)))
struct LogFollowerEndTests {
    @Test("a stream that ends keeps its last unended line, says so, and is followed again with a short tail; a pod that is not there is said so")
    func endsAndFails() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tenops-console-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let source = EndingLogSource()
        let server = try await LocalAPIServer.start(.init(stateDirectory: directory, logSource: source))
        do {
            let client = KubeClient(config: try ClusterConfig.load(kubeconfig: "\(directory)/kubeconfig"))
            _ = try await client.create(BurstLogSource.pod(named: "sample-0"))
            let follower = LogFollower(client: client, capacity: 100, reconnectDelay: .milliseconds(100))
            let received = ReceivedLines()
            let follow = { @Sendable (pod: String) in
                Task { await follower.follow(namespace: "default", pod: pod, stream: 1) { ready in received.take(ready) } }
            }
            let lines = { @Sendable in received.lines }

            let following = follow("sample-0")
            let twice = await eventually { lines().count >= 8 }
            following.cancel()
            await following.value
            let ended = "[tenops console: the log stream of sample-0 ended; following again]"
            #expect(twice)
            #expect(Array(lines().prefix(8)) == ["connection 1", "second line", "partial", ended, "connection 2", "second line", "partial", ended])
            #expect(Array(source.tails.prefix(2)) == [1000, 100], "the first open asks for 1,000 lines, the next for 100")

            received.removeAll()
            let missing = follow("missing-0")
            let refused = await eventually { lines().contains { $0.hasPrefix("[tenops console: cannot follow missing-0/daemonlog: ") } }
            missing.cancel()
            await missing.value
            #expect(refused, "\(lines())")
            await server.stop()
        } catch {
            await server.stop()
            throw error
        }
    }
}

/// What the console's log pane would hold: the lines each word brought, moved into a ring.
final class ReceivedLines: Sendable {
    private let ring = Mutex(LogRing(capacity: 100, byteCapacity: 1 << 16))

    func take(_ ready: LogLinesReady) { ring.withLock { _ = ready.moveLines(into: &$0) } }
    func removeAll() { ring.withLock { $0.removeAll() } }
    var lines: [String] { ring.withLock { ring in (0..<ring.count).map { ring[$0] } } }
}

/// The API server's log source for `LogFollowerEndTests`: every stream writes two lines and a
/// third without its newline, then ends, as a container's log does when it restarts. Written
/// here because a real container cannot be restarted on cue between two reads; the follower,
/// the client and the API server's log endpoint are the real ones.
final class EndingLogSource: PodLogSource {
    private let opened = Mutex([Int]())

    /// The `tailLines` of each stream opened, in order.
    var tails: [Int] { opened.withLock { $0 } }

    func logs(pod: JSONObject, node: JSONObject?, options: PodLogOptions) async throws -> AsyncThrowingStream<Data, any Error> {
        let number = opened.withLock {
            $0.append(options.tailLines ?? -1)
            return $0.count
        }
        let (stream, continuation) = AsyncThrowingStream<Data, any Error>.makeStream()
        continuation.yield(Data("connection \(number)\nsecond line\npartial".utf8))
        continuation.finish()
        return stream
    }
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes.
func eventually(timeout: Duration = .seconds(20), _ condition: @Sendable () async -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return await condition()
}
