import Foundation
import Synchronization
import Testing
@testable import KubeAPI

/// Collects informer events for assertions.
final class EventLog: Sendable {
    private let entries = Mutex<[String]>([])
    func record(_ event: InformerEvent<ConfigMap>) {
        let line: String
        switch event {
        case .added(let o): line = "added \(o.name)"
        case .updated(_, let o): line = "updated \(o.name)"
        case .deleted(let o): line = "deleted \(o.name)"
        }
        entries.withLock { $0.append(line) }
    }
    var all: [String] { entries.withLock { $0 } }
}

final class Leaders: Sendable {
    private let names = Mutex<[String]>([])
    func append(_ name: String) { names.withLock { $0.append(name) } }
    var all: [String] { names.withLock { $0 } }
}

@Suite("Informer and leader election against the HTTPS test double", .timeLimit(.minutes(5)))
struct InformerTests {
    @Test("a watch dropped mid-stream resumes from its resourceVersion: no event lost, none repeated")
    func dropAndResume() async throws {
        try await TestCluster.with { cluster in
            let client = cluster.client()
            _ = try await client.create(configMap("before"))
            cluster.double.dropWatches(afterEvents: 3)
            let informer = Informer<ConfigMap>(client: client, namespace: "default")
            let log = EventLog()
            informer.addHandler(log.record)
            let running = Task { await informer.run() }
            await informer.waitForSync()
            #expect(log.all == ["added before"])
            for index in 0..<30 {
                _ = try await client.create(configMap("cm-\(index)"))
                if index % 4 == 0 { try await Task.sleep(for: .milliseconds(30)) }  // some land while disconnected
            }
            _ = try await client.patch(ConfigMap.self, name: "cm-7", namespace: "default", patchType: .merge, patch: ["data": ["x": "y"]])
            try await client.delete(ConfigMap.self, name: "cm-8", namespace: "default")
            #expect(await eventually { log.all.count == 33 })
            running.cancel()
            await running.value

            let events = log.all
            let added = events.filter { $0.hasPrefix("added cm-") }
            #expect(added.count == 30)
            #expect(Set(added).count == 30)
            #expect(events.filter { $0 == "updated cm-7" }.count == 1)
            #expect(events.filter { $0 == "deleted cm-8" }.count == 1)
            #expect(informer.store.count == 30)
            #expect(informer.store.get(namespace: "default", name: "cm-7")?.data == ["x": "y"])
            let counts = informer.requestCounts
            #expect(counts.lists == 1)  // resumed every time, never relisted
            #expect(counts.watches >= 10)
            #expect(informer.lastResourceVersion == String(cluster.double.currentResourceVersion))
        }
    }

    @Test("a short first watch: the server ends it, the informer resumes without a relist, and later watches take the regular length")
    func shortFirstWatch() async throws {
        try await TestCluster.with { cluster in
            let client = cluster.client()
            _ = try await client.create(configMap("before"))
            let informer = Informer<ConfigMap>(client: client, namespace: "default", watchTimeoutSeconds: 300, firstWatchTimeoutSeconds: 1)
            let log = EventLog()
            informer.addHandler(log.record)
            let running = Task { await informer.run() }
            await informer.waitForSync()
            #expect(await eventually { informer.requestCounts.watches == 2 })
            _ = try await client.create(configMap("after"))
            #expect(await eventually { log.all == ["added before", "added after"] })
            running.cancel()
            await running.value

            let counts = informer.requestCounts
            #expect(counts.lists == 1 && counts.watches == 2, "\(counts)")
            let timeouts = cluster.double.requests.filter { $0.queryParameters["watch"] == "true" }.map { $0.queryParameters["timeoutSeconds"].flatMap { Int($0) } }
            #expect(timeouts.count == 2, "\(timeouts)")
            #expect(timeouts.first.flatMap { $0 }.map { (1...2).contains($0) } == true, "\(timeouts)")
            #expect(timeouts.last.flatMap { $0 }.map { (300...600).contains($0) } == true, "\(timeouts)")
        }
    }

    @Test("410 Gone leads to a relist, and the difference is delivered as events")
    func goneRelists() async throws {
        try await TestCluster.with { cluster in
            let client = cluster.client()
            for name in ["keep", "remove", "change"] { _ = try await client.create(configMap(name)) }
            cluster.double.dropWatches(afterEvents: 1)
            let informer = Informer<ConfigMap>(client: client, namespace: "default")
            let log = EventLog()
            informer.addHandler(log.record)
            let running = Task { await informer.run() }
            await informer.waitForSync()

            // Hold the informer's reconnection off with two 503s while the server changes and
            // forgets its history behind the informer's back.
            cluster.double.failNextRequests(2, status: 503, retryAfterSeconds: nil)
            _ = cluster.double.perform("POST", "/api/v1/namespaces/default/configmaps",
                                       body: #"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"trigger"}}"#)
            _ = cluster.double.perform("DELETE", "/api/v1/namespaces/default/configmaps/remove")
            _ = cluster.double.perform("PATCH", "/api/v1/namespaces/default/configmaps/change", body: #"{"data":{"v":"2"}}"#,
                                       contentType: "application/merge-patch+json")
            _ = cluster.double.perform("POST", "/api/v1/namespaces/default/configmaps",
                                       body: #"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"new"}}"#)
            cluster.double.compact()
            cluster.double.stopDroppingWatches()

            #expect(await eventually { informer.requestCounts.lists == 2 && informer.store.get(namespace: "default", name: "new") != nil })
            running.cancel()
            await running.value
            #expect(informer.store.list().map(\.name) == ["change", "keep", "new", "trigger"])
            #expect(informer.store.get(namespace: "default", name: "change")?.data == ["v": "2"])
            let events = log.all
            #expect(events.contains("deleted remove"))
            #expect(events.contains("updated change"))
            #expect(events.contains("added new"))
            #expect(events.filter { $0 == "added trigger" }.count == 1)
            #expect(!events.contains("updated keep"))  // unchanged objects are not reported
        }
    }

    @Test("an informer with a custom index and a work queue, as a controller wires them")
    func indexedInformerFeedsQueue() async throws {
        try await TestCluster.with { cluster in
            let client = cluster.client()
            let queue = WorkQueue<ObjectKey>()
            let informer = Informer<ConfigMap>(client: client, indexers: ["pair": { [$0.metadata.labels["pair"] ?? ""] }])
            informer.addHandler { event in Task { await queue.add(event.object.key) } }
            let running = Task { await informer.run() }
            await informer.waitForSync()
            _ = try await client.create(configMap("a-0", labels: ["pair": "a"]))
            _ = try await client.create(configMap("a-1", namespace: "other", labels: ["pair": "a"]))
            _ = try await client.create(configMap("b-0", labels: ["pair": "b"]))
            #expect(await eventually { informer.store.byIndex("pair", "a").count == 2 })
            #expect(informer.store.byIndex("pair", "a").map(\.key.description) == ["default/a-0", "other/a-1"])
            var keys: [String] = []
            for _ in 0..<3 {
                guard let key = await queue.get() else { break }
                keys.append(key.description)
                await queue.done(key)
            }
            #expect(keys.sorted() == ["default/a-0", "default/b-0", "other/a-1"])
            running.cancel()
            await running.value
        }
    }

    @Test("leader election: one leader at a time; when the holder is killed the other takes over after the lease")
    func leaderElection() async throws {
        try await TestCluster.with { cluster in
            func elector(_ identity: String, release: Bool) -> LeaderElector {
                LeaderElector(client: cluster.client(), config: LeaderElectionConfig(
                    leaseName: "tenops-operator", namespace: "default", identity: identity, leaseDuration: .seconds(2),
                    renewDeadline: .milliseconds(1500), retryPeriod: .milliseconds(200), releaseOnCancel: release))
            }
            let leading = Leaders()
            let a = elector("replica-a", release: false)
            let b = elector("replica-b", release: true)
            let runA = Task { await a.run { leading.append("a"); try? await Task.sleep(for: .seconds(60)) } }
            #expect(await eventually { a.isLeader })
            let runB = Task { await b.run { leading.append("b"); try? await Task.sleep(for: .seconds(60)) } }
            try await Task.sleep(for: .seconds(1))
            #expect(!b.isLeader)
            #expect(b.observedHolder == "replica-a")

            // "Kill" A: it stops renewing and never releases, as after kill -9.
            runA.cancel()
            await runA.value
            let killedAt = ContinuousClock.now
            #expect(await eventually(timeout: .seconds(6)) { b.isLeader })
            let takeover = killedAt.duration(to: .now)
            #expect(takeover >= .seconds(1))  // the dead holder's lease was honoured ...
            #expect(takeover < .seconds(4))   // ... and no longer than its duration plus a retry
            let lease = try await cluster.client().get(Lease.self, name: "tenops-operator", namespace: "default")
            #expect(lease.spec.holderIdentity == "replica-b")
            #expect(lease.spec.leaseTransitions == 1)
            #expect(leading.all == ["a", "b"])

            // A graceful stop releases the lease: a third replica takes over at once.
            let c = elector("replica-c", release: true)
            let runC = Task { await c.run { @Sendable in _ = try? await Task.sleep(for: .seconds(60)) } }
            try await Task.sleep(for: .milliseconds(500))
            #expect(!c.isLeader)
            runB.cancel()
            await runB.value
            let releasedAt = ContinuousClock.now
            #expect(await eventually(timeout: .seconds(3)) { c.isLeader })
            #expect(releasedAt.duration(to: .now) < .seconds(1))
            runC.cancel()
            await runC.value
            let released = try await cluster.client().get(Lease.self, name: "tenops-operator", namespace: "default")
            #expect(released.spec.holderIdentity == nil)
        }
    }
}
