import Foundation
import Testing
@testable import KubeAPI

@Suite("Paths, queries, line splitting and Status decoding", .timeLimit(.minutes(5)))
struct PathAndStreamTests {
    @Test("storage sizes are powers of two, the minimum at least", arguments: [
        (0, 64, 64), (1, 64, 64), (64, 64, 64), (65, 64, 128), (1000, 64, 1024), (1024, 64, 1024), (1025, 64, 2048),
        (50_000, 64, 65_536), (1, 1024, 1024), (16_384, 1024, 16_384), (16_385, 1024, 32_768),
    ])
    func storageSizes(count: Int, minimum: Int, size: Int) {
        #expect(StorageSize.powerOfTwo(atLeast: count, minimum: minimum) == size)
    }

    @Test("resource paths", arguments: [
        (ResourceType.pods, "ns", "p", "/api/v1/namespaces/ns/pods/p"),
        (ResourceType.nodes, "ignored", "n1", "/api/v1/nodes/n1"),
        (ResourceType.statefulSets, "ns", "s", "/apis/apps/v1/namespaces/ns/statefulsets/s"),
        (ResourceType.leases, "kube-node-lease", "node-a", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node-a"),
        (ResourceType.pods, "ns", "../../secrets/x", "/api/v1/namespaces/ns/pods/..%2F..%2Fsecrets%2Fx"),
        (ResourceType.pods, "ns", "..", "/api/v1/namespaces/ns/pods/%2E%2E"),
        (ResourceType.pods, "a b", "p?x=1", "/api/v1/namespaces/a%20b/pods/p%3Fx%3D1"),
    ])
    func paths(resource: ResourceType, namespace: String, name: String, expected: String) {
        #expect(resource.objectPath(namespace: namespace, name: name) == expected)
    }

    @Test("collection paths across namespaces and status subresource")
    func collections() {
        #expect(ResourceType.pods.collectionPath(namespace: nil) == "/api/v1/pods")
        #expect(ResourceType.pods.objectPath(namespace: "ns", name: "p", subresource: "status") == "/api/v1/namespaces/ns/pods/p/status")
    }

    @Test("query values are percent-encoded")
    func query() {
        let encoded = Query.encode([("labelSelector", "app in (a,b),!x"), ("fieldSelector", "spec.nodeName=n1")])
        #expect(encoded == "labelSelector=app%20in%20%28a%2Cb%29%2C%21x&fieldSelector=spec.nodeName%3Dn1")
    }

    @Test("line splitter handles lines split across chunks, CRLF and blank lines")
    func lineSplitter() throws {
        var splitter = LineSplitter()
        var lines: [String] = []
        for chunk in ["{\"a\":", "1}\n{\"b\"", ":2}\r\n\n", "{\"c\":3}\n{\"d\""] {
            try splitter.append(Data(chunk.utf8)) { line throws(KubeAPIError) in lines.append(String(decoding: line, as: UTF8.self)) }
        }
        #expect(lines == ["{\"a\":1}", "{\"b\":2}", "{\"c\":3}"])
        #expect(splitter.hasPartialLine)
        #expect(splitter.remainder.map { String(decoding: $0, as: UTF8.self) } == "{\"d\"")
    }

    @Test("watch events decode, and an ERROR event becomes a typed error")
    func watchEvents() throws {
        func decode(_ text: String) throws -> WatchEvent<UnstructuredObject> {
            let bytes = Array(text.utf8)
            return try bytes.withUnsafeBytes { raw in try WatchEventDecoder.decode(line: raw, label: "test") }
        }
        let added = try decode(#"{"type":"ADDED","object":{"kind":"Pod","metadata":{"name":"p","resourceVersion":"7"}}}"#)
        #expect(added.type == .added)
        #expect(added.object.metadata.resourceVersion == "7")
        let bookmark = try decode(#"{"type":"BOOKMARK","object":{"kind":"Pod","metadata":{"resourceVersion":"9"}}}"#)
        #expect(bookmark.type == .bookmark)
        #expect(throws: KubeAPIError.gone(StatusFailure(code: 410, reason: "Expired", message: "too old resource version: 1 (5)"))) {
            try decode(#"{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired","message":"too old resource version: 1 (5)"}}"#)
        }
        for bad in [#"{"type":"ADDED"}"#, #"{"type":"WHATEVER","object":{}}"#, #"{"type":"ADDED","object":{"kind":"Po"#, "not json"] {
            #expect(throws: KubeAPIError.self) { try decode(bad) }
        }
    }

    @Test("Status bodies become typed errors; other bodies keep the HTTP code and an excerpt", arguments: [
        (409, #"{"kind":"Status","code":409,"reason":"Conflict","message":"the object has been modified"}"#, "conflict"),
        (409, #"{"kind":"Status","code":409,"reason":"AlreadyExists","message":"exists"}"#, "alreadyExists"),
        (404, #"{"kind":"Status","code":404,"reason":"NotFound","message":"pods \"x\" not found"}"#, "notFound"),
        (410, #"{"kind":"Status","code":410,"reason":"Expired","message":"old"}"#, "gone"),
        (422, #"{"kind":"Status","code":422,"reason":"Invalid","message":"bad"}"#, "invalid"),
        (401, "", "unauthorized"),
        (500, "<html><body>proxy error</body></html>", "status"),
        (503, #"{"kind":"Status","code":503,"reas"#, "status"),
    ])
    func statusDecoding(code: Int, body: String, expected: String) {
        let error = KubeAPIError.from(StatusFailure.decode(code: code, body: Data(body.utf8), retryAfter: nil))
        let name: String
        switch error {
        case .conflict: name = "conflict"
        case .alreadyExists: name = "alreadyExists"
        case .notFound: name = "notFound"
        case .gone: name = "gone"
        case .invalid: name = "invalid"
        case .unauthorized: name = "unauthorized"
        case .status: name = "status"
        default: name = "other"
        }
        #expect(name == expected)
        #expect(error.code == code)
        #expect(!error.description.isEmpty)
    }

    @Test("retry rules: 429 always, 5xx except for POST, nothing else")
    func retryRules() {
        #expect(KubeClient.isRetryable(status: 429, method: "POST"))
        #expect(KubeClient.isRetryable(status: 503, method: "GET"))
        #expect(KubeClient.isRetryable(status: 500, method: "PUT"))
        #expect(!KubeClient.isRetryable(status: 503, method: "POST"))
        #expect(!KubeClient.isRetryable(status: 409, method: "PUT"))
        #expect(!KubeClient.isRetryable(status: 404, method: "GET"))
    }

    @Test("server-name routing: URL host swapped for the name, CONNECT_TO to the real host", arguments: [
        ("https://10.0.0.5:8443/v1/status", "sample.ns.svc", "https://sample.ns.svc:8443/v1/status", "sample.ns.svc:8443:10.0.0.5:8443"),
        ("https://10.0.0.5/api", "api.local", "https://api.local/api", "api.local:443:10.0.0.5:443"),
        ("https://[::1]:6443/api?watch=true", "api.local", "https://api.local:6443/api?watch=true", "api.local:6443:[::1]:6443"),
    ])
    func serverNameRouting(url: String, name: String, rewritten: String, connectTo: String) {
        let routing = ServerNameRouting(url: url, serverName: name)
        #expect(routing?.url == rewritten)
        #expect(routing?.connectTo == connectTo)
    }

    @Test("no routing without a name, for the same host, for plain http, or for a name with separators",
          arguments: [("https://api.local:6443/", nil), ("https://api.local:6443/", "API.local"), ("http://10.0.0.1/", "a.b"),
                      ("https://10.0.0.1/", "a:b"), ("https://10.0.0.1/", "")] as [(String, String?)])
    func noServerNameRouting(url: String, name: String?) {
        #expect(ServerNameRouting(url: url, serverName: name) == nil)
    }

    @Test("a duration in whole nanoseconds and in seconds", arguments: [
        (Duration.zero, Int64(0), 0.0),
        (.nanoseconds(1), 1, 1e-9),
        (.milliseconds(50), 50_000_000, 0.05),
        (.seconds(3) + .microseconds(7), 3_000_007_000, 3.000007),
        (.milliseconds(-1500), -1_500_000_000, -1.5),
    ])
    func durationUnits(duration: Duration, nanoseconds: Int64, seconds: Double) {
        #expect(duration.inNanoseconds == nanoseconds)
        #expect(abs(duration.inSeconds - seconds) < 1e-12)
    }
}
