import Foundation
import Testing
@testable import KubeAPI

@Suite("Work queue, rate limiter and object store", .timeLimit(.minutes(5)))
struct QueueAndStoreTests {
    @Test("keys sort by namespace, cluster-scoped first, then by name")
    func keyOrder() {
        let keys = [
            ObjectKey(namespace: "b", name: "a"), ObjectKey(namespace: "a", name: "z"), ObjectKey(namespace: nil, name: "m"),
            ObjectKey(namespace: "a", name: "b"), ObjectKey(namespace: "a-x", name: "a"), ObjectKey(namespace: nil, name: "c"),
        ]
        #expect(keys.sorted().map(\.description) == ["c", "m", "a/b", "a/z", "a-x/a", "b/a"])
        #expect(!(ObjectKey(namespace: "a", name: "b") < ObjectKey(namespace: "a", name: "b")))
    }

    @Test("per-item backoff doubles from 5 ms and is capped", arguments: [
        (1, Duration.milliseconds(5)), (2, .milliseconds(10)), (3, .milliseconds(20)), (11, .milliseconds(5120)), (40, .seconds(1000)),
    ])
    func itemBackoff(failures: Int, expected: Duration) {
        #expect(RateLimiter().itemDelay(failures: failures) == expected)
    }

    @Test("a key added many times is processed once")
    func deduplicates() async {
        let queue = WorkQueue<String>()
        for _ in 0..<5 { await queue.add("a") }
        await queue.add("b")
        #expect(await queue.count == 2)
        #expect(await queue.get() == "a")
        #expect(await queue.get() == "b")
        #expect(await queue.count == 0)
    }

    @Test("a key added while processing is not handed out again until done")
    func noConcurrentProcessing() async {
        let queue = WorkQueue<String>()
        await queue.add("a")
        let first = await queue.get()
        #expect(first == "a")
        await queue.add("a")
        #expect(await queue.count == 0)  // held back while "a" is processing
        await queue.add("b")
        #expect(await queue.get() == "b")
        await queue.done("a")
        #expect(await queue.count == 1)
        #expect(await queue.get() == "a")
    }

    @Test("a waiting worker receives a key added later; shutdown wakes idle workers with nil")
    func waitersAndShutdown() async {
        let queue = WorkQueue<Int>()
        async let waiting = queue.get()
        try? await Task.sleep(for: .milliseconds(20))
        await queue.add(7)
        #expect(await waiting == 7)
        async let idle = queue.get()
        try? await Task.sleep(for: .milliseconds(20))
        await queue.shutDown()
        #expect(await idle == nil)
        await queue.add(8)
        #expect(await queue.count == 0)
    }

    @Test("rate-limited requeue backs off per key and forget resets it")
    func rateLimited() async {
        let queue = WorkQueue<String>(rateLimiter: RateLimiter(baseDelay: .milliseconds(10), maxDelay: .seconds(1)))
        #expect(await queue.when("k") == .milliseconds(10))
        #expect(await queue.when("k") == .milliseconds(20))
        #expect(await queue.numRequeues("k") == 2)
        await queue.forget("k")
        #expect(await queue.numRequeues("k") == 0)
        let start = ContinuousClock.now
        await queue.addRateLimited("k")
        #expect(await queue.count == 0)
        #expect(await queue.get() == "k")
        #expect(start.duration(to: .now) >= .milliseconds(10))
    }

    @Test("the token bucket limits overall throughput after the burst")
    func bucket() async {
        let queue = WorkQueue<Int>(rateLimiter: RateLimiter(baseDelay: .nanoseconds(1), maxDelay: .seconds(1), bucketQPS: 10, bucketBurst: 3))
        var delays: [Duration] = []
        for key in 0..<5 { delays.append(await queue.when(key)) }
        #expect(delays[0..<3].allSatisfy { $0 < .milliseconds(1) })
        #expect(delays[3] > .milliseconds(80) && delays[3] <= .milliseconds(100))
        #expect(delays[4] > .milliseconds(180) && delays[4] <= .milliseconds(200))
    }

    static func pod(_ name: String, namespace: String = "ns", node: String, rv: String) -> Pod {
        var pod = Pod(name: name, namespace: namespace)
        pod.metadata.resourceVersion = rv
        pod.spec.nodeName = node
        return pod
    }

    @Test("store indexes by namespace and custom functions, and replace reports the difference", arguments: [
        ObjectStore<Pod>.Layout.parsed, .compact,
    ])
    func store(layout: ObjectStore<Pod>.Layout) {
        let store = ObjectStore<Pod>(indexers: ["node": { [$0.spec.nodeName ?? ""] }], layout: layout)
        store.upsert(Self.pod("a", node: "n1", rv: "1"))
        store.upsert(Self.pod("b", node: "n1", rv: "2"))
        store.upsert(Self.pod("c", namespace: "other", node: "n2", rv: "3"))
        #expect(store.byIndex("node", "n1").map(\.name) == ["a", "b"])
        #expect(store.list(namespace: "other").map(\.name) == ["c"])
        store.upsert(Self.pod("b", node: "n2", rv: "4"))  // moves between index values
        #expect(store.byIndex("node", "n1").map(\.name) == ["a"])
        #expect(store.byIndex("node", "n2").map(\.name) == ["b", "c"])

        let events = store.replace(with: [Self.pod("a", node: "n1", rv: "1"), Self.pod("b", node: "n2", rv: "9"), Self.pod("d", node: "n3", rv: "10")])
        let summary = events.map { event -> String in
            switch event {
            case .added(let p): return "+\(p.name)"
            case .updated(let old, let new): return "~\(new.name)@\(old.resourceVersion!)->\(new.resourceVersion!)"
            case .deleted(let p): return "-\(p.name)"
            }
        }.sorted()
        #expect(summary == ["+d", "-c", "~b@4->9"])
        #expect(store.count == 3)
        #expect(store.byIndex("node", "n2").map(\.name) == ["b"])
        #expect(store.get(namespace: "other", name: "c") == nil)
        store.remove(ObjectKey("ns/a"))
        #expect(store.byIndex("node", "n1").isEmpty)
    }

    @Test("a compact store gives back the object it was given, fields it does not model included")
    func compactRoundTrip() throws {
        let store = ObjectStore<Pod>(layout: .compact)
        var pod = Self.pod("a", node: "n1", rv: "1")
        pod[field: "x-unknown"] = ["nested": ["list": [1, 2.5, "three", nil, true]], "text": "quote \" and \\ and \u{00e9}"]
        #expect(store.upsert(pod) == nil)
        #expect(store.get(ObjectKey("ns/a")) == pod)
        var newer = pod
        newer.metadata.resourceVersion = "2"
        #expect(store.upsert(newer) == pod, "upsert hands back the previous object")
        #expect(store.list() == [newer])
        #expect(store.replace(with: [newer]).isEmpty, "an identical relist changes nothing")
        #expect(store.remove(ObjectKey("ns/a")) == newer)
        #expect(store.count == 0)
    }

    @Test("a store with a transform keeps what the transform returns, in either layout, and indexes it", arguments: [
        ObjectStore<Pod>.Layout.parsed, .compact,
    ])
    func transform(layout: ObjectStore<Pod>.Layout) throws {
        let store = ObjectStore<Pod>(indexers: ["node": { [$0.spec.nodeName ?? ""] }], layout: layout) { pod in
            var kept = pod
            kept[field: "bulky"] = nil
            return kept
        }
        var pod = Self.pod("a", node: "n1", rv: "1")
        pod[field: "bulky"] = ["containers": ["one", "two"]]
        store.upsert(pod)
        let cached = try #require(store.get(ObjectKey("ns/a")))
        #expect(cached[field: "bulky"].isNull)
        #expect(cached.spec.nodeName == "n1" && cached.resourceVersion == "1")
        #expect(store.byIndex("node", "n1").map(\.name) == ["a"])
        var relisted = pod
        relisted[field: "bulky"] = ["containers": ["three"]]
        #expect(store.replace(with: [relisted]).isEmpty, "a change only in what the transform drops is no change to the cache")
    }
}
