import Foundation
import KubeTestDouble
import PKI
import Testing

/// The Kubernetes API test double, driven by the real `curl` over mutual TLS. These tests live
/// here because this target already has the PKI and the double; they check the double's own
/// answers so that client tests built on it can trust them.
@Suite("KubeTestDouble: a test double of the Kubernetes API, over real TLS", .timeLimit(.minutes(5)))
struct KubeTestDoubleTests {
    /// One running double with a curl client set up for it.
    struct Harness {
        let dir: TemporaryDirectory
        let files: TLSFiles
        let double: KubeTestDouble
        let token: String?

        struct Reply {
            var status: Int
            var body: String
            var headers: String
            var json: [String: Any] {
                (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
            }
        }

        var baseArguments: [String] {
            files.clientArguments + (token.map { ["-H", "Authorization: Bearer \($0)"] } ?? [])
        }

        func call(_ method: String, _ path: String, body: String? = nil, contentType: String = "application/json", extra: [String] = []) async throws -> Reply {
            let headersFile = dir.file(".headers-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(atPath: headersFile) }
            var arguments = baseArguments + ["-X", method, "-D", headersFile, "-w", "\n%{http_code}"] + extra
            if let body { arguments += ["-H", "Content-Type: \(contentType)", "--data-binary", body] }
            arguments.append(double.baseURL + path)
            let result = try await curl(arguments, in: dir)
            guard result.succeeded, let newline = result.stdout.lastIndex(of: "\n"), let status = Int(result.stdout[result.stdout.index(after: newline)...]) else {
                throw HarnessError(description: "curl \(method) \(path) failed: \(result)")
            }
            let headers = (try? String(contentsOfFile: headersFile, encoding: .utf8)) ?? ""
            return Reply(status: status, body: String(result.stdout[..<newline]), headers: headers)
        }
    }

    struct HarnessError: Error, CustomStringConvertible { var description: String }

    static func withHarness(token: String? = nil, historyWindow: Int = 1000, _ body: (Harness) async throws -> Void) async throws {
        try await withTemporaryDirectory("double") { dir in
            let files = try TLSFiles(in: dir)
            let options = try files.options(bearerTokens: token.map { [$0] } ?? [], historyWindow: historyWindow)
            try await withDouble(options) { double in
                try await body(Harness(dir: dir, files: files, double: double, token: token))
            }
        }
    }

    static func pod(_ name: String, labels: [String: String] = [:], extra: String = "") -> String {
        let labelText = labels.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\"\($0.value)\"" }.joined(separator: ",")
        return #"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"\#(name)","labels":{\#(labelText)}},"spec":{"containers":[{"name":"tt","image":"tenops"}]}\#(extra)}"#
    }

    static func metadata(_ object: [String: Any]) -> [String: Any] { object["metadata"] as? [String: Any] ?? [:] }
    static func names(_ list: [String: Any]) -> [String] {
        (list["items"] as? [[String: Any]] ?? []).compactMap { metadata($0)["name"] as? String }
    }

    /// A streaming curl (watch, log follow) writing to a file, polled by the test.
    final class Stream {
        let process = Process()
        let outPath: String
        let errPath: String
        let exit: AsyncStream<Int32>

        init(_ arguments: [String], dir: TemporaryDirectory) throws {
            outPath = dir.file(".stream-\(UUID().uuidString)")
            errPath = outPath + ".err"
            _ = FileManager.default.createFile(atPath: outPath, contents: nil)
            _ = FileManager.default.createFile(atPath: errPath, contents: nil)
            process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
            process.arguments = ["-sS", "-N", "--max-time", "30"] + arguments
            process.standardOutput = FileHandle(forWritingAtPath: outPath)
            process.standardError = FileHandle(forWritingAtPath: errPath)
            process.standardInput = FileHandle.nullDevice
            let (exit, continuation) = AsyncStream<Int32>.makeStream()
            self.exit = exit
            process.terminationHandler = { continuation.yield($0.terminationStatus); continuation.finish() }
            try process.run()
        }

        var output: String { (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "" }
        var errors: String { (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "" }
        var lines: [String] { output.split(separator: "\n").map(String.init) }
        var events: [[String: Any]] {
            lines.compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
        }
        var eventSummary: [String] {
            events.map { event in
                let object = event["object"] as? [String: Any] ?? [:]
                return "\(event["type"] ?? "?") \(metadata(object)["name"] as? String ?? metadata(object)["resourceVersion"] as? String ?? "")"
            }
        }

        /// Waits until `condition` holds for the output, up to `seconds`.
        func waitFor(_ seconds: Double = 10, _ condition: (Stream) -> Bool) async throws -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if condition(self) { return true }
                try await Task.sleep(for: .milliseconds(20))
            }
            return condition(self)
        }

        /// Waits for the exit status (after `seconds`, the process is terminated first).
        func exitStatus(within seconds: Double = 10) async -> Int32 {
            let deadline = Date().addingTimeInterval(seconds)
            while process.isRunning, Date() < deadline { try? await Task.sleep(for: .milliseconds(20)) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            var iterator = exit.makeAsyncIterator()
            return await iterator.next() ?? -1
        }

        func stop() async {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            _ = await exitStatus(within: 5)
            try? FileManager.default.removeItem(atPath: outPath)
            try? FileManager.default.removeItem(atPath: errPath)
        }
    }

    static func withStream(_ h: Harness, _ path: String, _ body: (Stream) async throws -> Void) async throws {
        let stream = try Stream(h.baseArguments + [h.double.baseURL + path], dir: h.dir)
        do {
            try await body(stream)
            await stream.stop()
        } catch {
            await stream.stop()
            throw error
        }
    }

    // MARK: CRUD

    @Test("create, get, already exists, not found: real bodies and codes")
    func createAndGet() async throws {
        try await Self.withHarness { h in
            let created = try await h.call("POST", "/api/v1/namespaces/ns/pods", body: Self.pod("p1"))
            #expect(created.status == 201, "\(created.body)")
            let meta = Self.metadata(created.json)
            #expect(meta["namespace"] as? String == "ns")
            #expect(meta["generation"] as? Int == 1)
            #expect(UUID(uuidString: meta["uid"] as? String ?? "") != nil)
            let rv1 = Int(meta["resourceVersion"] as? String ?? "") ?? 0
            #expect(rv1 > 0)
            let stamp = meta["creationTimestamp"] as? String ?? ""
            #expect(stamp.count == 20 && stamp.hasSuffix("Z"), "\(stamp)")

            let got = try await h.call("GET", "/api/v1/namespaces/ns/pods/p1")
            #expect(got.status == 200)
            #expect(got.json["kind"] as? String == "Pod")
            #expect(Self.metadata(got.json)["uid"] as? String == meta["uid"] as? String)

            let again = try await h.call("POST", "/api/v1/namespaces/ns/pods", body: Self.pod("p1"))
            #expect(again.status == 409)
            #expect(again.json["kind"] as? String == "Status")
            #expect(again.json["apiVersion"] as? String == "v1")
            #expect(again.json["status"] as? String == "Failure")
            #expect(again.json["reason"] as? String == "AlreadyExists")
            #expect(again.json["message"] as? String == "pods \"p1\" already exists")
            #expect(again.json["code"] as? Int == 409)
            #expect((again.json["details"] as? [String: Any])?["name"] as? String == "p1")
            #expect((again.json["details"] as? [String: Any])?["kind"] as? String == "pods")

            let missing = try await h.call("GET", "/api/v1/namespaces/ns/pods/nope")
            #expect(missing.status == 404)
            #expect(missing.json["reason"] as? String == "NotFound")
            #expect(missing.json["message"] as? String == "pods \"nope\" not found")
            #expect(missing.headers.lowercased().contains("content-type: application/json"))

            // generateName, and resourceVersions keep increasing.
            let generated = try await h.call("POST", "/api/v1/namespaces/ns/pods", body: #"{"metadata":{"generateName":"web-"},"spec":{}}"#)
            #expect(generated.status == 201)
            let generatedName = Self.metadata(generated.json)["name"] as? String ?? ""
            #expect(generatedName.hasPrefix("web-") && generatedName.count == 9)
            #expect(Int(Self.metadata(generated.json)["resourceVersion"] as? String ?? "") ?? 0 > rv1)
            #expect(generated.json["kind"] as? String == "Pod")
            #expect(generated.json["apiVersion"] as? String == "v1")

            // Bad bodies.
            let notJSON = try await h.call("POST", "/api/v1/namespaces/ns/pods", body: "{not json")
            #expect(notJSON.status == 400 && notJSON.json["reason"] as? String == "BadRequest")
            let array = try await h.call("POST", "/api/v1/namespaces/ns/pods", body: "[1,2]")
            #expect(array.status == 400)
            let nameless = try await h.call("POST", "/api/v1/namespaces/ns/pods", body: #"{"metadata":{}}"#)
            #expect(nameless.status == 422 && nameless.json["reason"] as? String == "Invalid")
            let badName = try await h.call("POST", "/api/v1/namespaces/ns/pods", body: #"{"metadata":{"name":"Bad_Name"}}"#)
            #expect(badName.status == 422)
            let otherNamespace = try await h.call("POST", "/api/v1/namespaces/ns/pods", body: #"{"metadata":{"name":"x","namespace":"other"}}"#)
            #expect(otherNamespace.status == 400)

            // Cluster-scoped objects and custom resources.
            let namespace = try await h.call("POST", "/api/v1/namespaces", body: #"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"ns"}}"#)
            #expect(namespace.status == 201)
            #expect(try await h.call("GET", "/api/v1/namespaces/ns").status == 200)
            let custom = try await h.call("POST", "/apis/tenops.io/v1/namespaces/ns/timestenclassics",
                                          body: #"{"apiVersion":"tenops.io/v1","kind":"TimesTenClassic","metadata":{"name":"sample"},"spec":{"ttspec":{}}}"#)
            #expect(custom.status == 201)
            let customMissing = try await h.call("GET", "/apis/tenops.io/v1/namespaces/ns/timestenclassics/none")
            #expect(customMissing.json["message"] as? String == "timestenclassics.tenops.io \"none\" not found")
            #expect((customMissing.json["details"] as? [String: Any])?["group"] as? String == "tenops.io")

            let version = try await h.call("GET", "/version")
            #expect(version.json["major"] as? String == "1")
            let unknown = try await h.call("GET", "/nothing/here")
            #expect(unknown.status == 404 && unknown.json["kind"] as? String == "Status")
        }
    }

    @Test("update: conflicts on a stale resourceVersion, generation follows spec, status is separate")
    func updates() async throws {
        try await Self.withHarness { h in
            let created = try await h.call("POST", "/api/v1/namespaces/ns/pods", body: Self.pod("p", extra: #","status":{"phase":"Pending"}"#))
            let rv = Self.metadata(created.json)["resourceVersion"] as? String ?? ""

            // Stale resourceVersion.
            let stale = try await h.call("PUT", "/api/v1/namespaces/ns/pods/p",
                                         body: #"{"metadata":{"name":"p","resourceVersion":"1\#(rv)"},"spec":{"x":1}}"#)
            #expect(stale.status == 409)
            #expect(stale.json["reason"] as? String == "Conflict")
            #expect(stale.json["message"] as? String == "Operation cannot be fulfilled on pods \"p\": the object has been modified; please apply your changes to the latest version and try again")

            // Labels only: no new generation; the status survives a PUT to the main resource.
            let labels = try await h.call("PUT", "/api/v1/namespaces/ns/pods/p", body: Self.pod("p", labels: ["a": "b"], extra: #","status":{"phase":"Lost"}"#))
            #expect(labels.status == 200)
            #expect(Self.metadata(labels.json)["generation"] as? Int == 1)
            #expect((labels.json["status"] as? [String: Any])?["phase"] as? String == "Pending")
            let rv2 = Self.metadata(labels.json)["resourceVersion"] as? String ?? ""
            #expect(Int(rv2) ?? 0 > Int(rv) ?? 0)

            // Spec change with the current resourceVersion: generation 2.
            let spec = try await h.call("PUT", "/api/v1/namespaces/ns/pods/p",
                                        body: #"{"metadata":{"name":"p","resourceVersion":"\#(rv2)","labels":{"a":"b"}},"spec":{"containers":[]}}"#)
            #expect(spec.status == 200, "\(spec.body)")
            #expect(Self.metadata(spec.json)["generation"] as? Int == 2)

            // A no-op write keeps the resourceVersion.
            let same = try await h.call("PUT", "/api/v1/namespaces/ns/pods/p", body: #"{"metadata":{"name":"p","labels":{"a":"b"}},"spec":{"containers":[]}}"#)
            #expect(Self.metadata(same.json)["resourceVersion"] as? String == Self.metadata(spec.json)["resourceVersion"] as? String)

            // The status subresource changes only the status.
            let status = try await h.call("PUT", "/api/v1/namespaces/ns/pods/p/status",
                                          body: #"{"metadata":{"name":"p","labels":{"ignored":"yes"}},"spec":{"ignored":true},"status":{"phase":"Running"}}"#)
            #expect(status.status == 200)
            #expect((status.json["status"] as? [String: Any])?["phase"] as? String == "Running")
            #expect((Self.metadata(status.json)["labels"] as? [String: String]) == ["a": "b"])
            #expect(Self.metadata(status.json)["generation"] as? Int == 2)
            let patchedStatus = try await h.call("PATCH", "/api/v1/namespaces/ns/pods/p/status", body: #"{"status":{"podIP":"127.0.0.2"},"spec":{"x":1}}"#,
                                                 contentType: "application/merge-patch+json")
            #expect((patchedStatus.json["status"] as? [String: Any])?["podIP"] as? String == "127.0.0.2")
            #expect((patchedStatus.json["spec"] as? [String: Any])?["x"] == nil)

            let missing = try await h.call("PUT", "/api/v1/namespaces/ns/pods/none", body: Self.pod("none"))
            #expect(missing.status == 404)
            let wrongName = try await h.call("PUT", "/api/v1/namespaces/ns/pods/p", body: Self.pod("q"))
            #expect(wrongName.status == 400)
        }
    }

    @Test("patch: merge, JSON patch, strategic merge; failed test is 422; unknown type is 415")
    func patches() async throws {
        try await Self.withHarness { h in
            _ = try await h.call("POST", "/api/v1/namespaces/ns/configmaps", body: #"{"metadata":{"name":"c","labels":{"a":"1","b":"2"}},"data":{"k":"v"}}"#)
            let merged = try await h.call("PATCH", "/api/v1/namespaces/ns/configmaps/c", body: #"{"metadata":{"labels":{"a":null,"c":"3"}},"data":{"k2":"v2"}}"#,
                                          contentType: "application/merge-patch+json")
            #expect(merged.status == 200, "\(merged.body)")
            #expect(Self.metadata(merged.json)["labels"] as? [String: String] == ["b": "2", "c": "3"])
            #expect(merged.json["data"] as? [String: String] == ["k": "v", "k2": "v2"])

            let jsonPatch = try await h.call("PATCH", "/api/v1/namespaces/ns/configmaps/c", body: #"""
                [{"op":"test","path":"/data/k","value":"v"},
                 {"op":"add","path":"/data/new~1key","value":"x"},
                 {"op":"remove","path":"/data/k2"},
                 {"op":"replace","path":"/data/k","value":"w"},
                 {"op":"copy","from":"/data/k","path":"/data/copied"},
                 {"op":"move","from":"/data/copied","path":"/data/moved"},
                 {"op":"add","path":"/list","value":[1]},
                 {"op":"add","path":"/list/-","value":2},
                 {"op":"add","path":"/list/0","value":0}]
                """#, contentType: "application/json-patch+json")
            #expect(jsonPatch.status == 200, "\(jsonPatch.body)")
            #expect(jsonPatch.json["data"] as? [String: String] == ["k": "w", "new/key": "x", "moved": "w"])
            #expect(jsonPatch.json["list"] as? [Int] == [0, 1, 2])

            let failedTest = try await h.call("PATCH", "/api/v1/namespaces/ns/configmaps/c", body: #"[{"op":"test","path":"/data/k","value":"other"},{"op":"remove","path":"/data"}]"#,
                                              contentType: "application/json-patch+json")
            #expect(failedTest.status == 422)
            #expect(failedTest.json["reason"] as? String == "Invalid")
            let unchanged = try await h.call("GET", "/api/v1/namespaces/ns/configmaps/c")
            #expect((unchanged.json["data"] as? [String: String])?["k"] == "w")

            let removeMissing = try await h.call("PATCH", "/api/v1/namespaces/ns/configmaps/c", body: #"[{"op":"remove","path":"/nothing"}]"#,
                                                 contentType: "application/json-patch+json")
            #expect(removeMissing.status == 422)

            let strategic = try await h.call("PATCH", "/api/v1/namespaces/ns/configmaps/c", body: #"{"data":{"s":"1"}}"#,
                                             contentType: "application/strategic-merge-patch+json")
            #expect(strategic.status == 200)
            #expect((strategic.json["data"] as? [String: String])?["s"] == "1")

            let unsupported = try await h.call("PATCH", "/api/v1/namespaces/ns/configmaps/c", body: #"{"data":{}}"#, contentType: "text/plain")
            #expect(unsupported.status == 415)
            #expect(unsupported.json["reason"] as? String == "UnsupportedMediaType")

            // A patch that carries a stale resourceVersion conflicts.
            let stale = try await h.call("PATCH", "/api/v1/namespaces/ns/configmaps/c", body: #"{"metadata":{"resourceVersion":"1"}}"#,
                                         contentType: "application/merge-patch+json")
            #expect(stale.status == 409)
            let missing = try await h.call("PATCH", "/api/v1/namespaces/ns/configmaps/none", body: "{}", contentType: "application/merge-patch+json")
            #expect(missing.status == 404)
        }
    }

    @Test("delete: preconditions, finalizers, propagationPolicy recorded")
    func deletes() async throws {
        try await Self.withHarness { h in
            let created = try await h.call("POST", "/api/v1/namespaces/ns/pods", body: #"{"metadata":{"name":"f","finalizers":["tenops.io/cleanup"]}}"#)
            let uid = Self.metadata(created.json)["uid"] as? String ?? ""

            let wrongUID = try await h.call("DELETE", "/api/v1/namespaces/ns/pods/f", body: #"{"kind":"DeleteOptions","apiVersion":"v1","preconditions":{"uid":"other"}}"#)
            #expect(wrongUID.status == 409)
            #expect(wrongUID.json["reason"] as? String == "Conflict")
            let wrongRV = try await h.call("DELETE", "/api/v1/namespaces/ns/pods/f", body: #"{"preconditions":{"resourceVersion":"999999"}}"#)
            #expect(wrongRV.status == 409)

            let marked = try await h.call("DELETE", "/api/v1/namespaces/ns/pods/f?propagationPolicy=Foreground",
                                          body: #"{"preconditions":{"uid":"\#(uid)"}}"#)
            #expect(marked.status == 200)
            #expect(Self.metadata(marked.json)["deletionTimestamp"] is String)
            #expect(h.double.requests.last?.propagationPolicy == "Foreground")
            #expect(try await h.call("GET", "/api/v1/namespaces/ns/pods/f").status == 200)

            // Removing the last finalizer completes the deletion.
            let released = try await h.call("PATCH", "/api/v1/namespaces/ns/pods/f", body: #"{"metadata":{"finalizers":null}}"#, contentType: "application/merge-patch+json")
            #expect(released.status == 200)
            #expect(try await h.call("GET", "/api/v1/namespaces/ns/pods/f").status == 404)

            _ = try await h.call("POST", "/api/v1/namespaces/ns/pods", body: Self.pod("plain"))
            let deleted = try await h.call("DELETE", "/api/v1/namespaces/ns/pods/plain", body: #"{"propagationPolicy":"Background"}"#)
            #expect(deleted.status == 200)
            #expect(Self.metadata(deleted.json)["name"] as? String == "plain")
            #expect(h.double.requests.last?.propagationPolicy == "Background")
            #expect(try await h.call("DELETE", "/api/v1/namespaces/ns/pods/plain").status == 404)
        }
    }

    // MARK: LIST

    @Test("list: sorted, label and field selectors, pagination, expired continue")
    func lists() async throws {
        try await Self.withHarness { h in
            for (namespace, name, tier) in [("b", "x", "db"), ("a", "z", "web"), ("a", "y", "db"), ("a", "w", "cache")] {
                let reply = try await h.call("POST", "/api/v1/namespaces/\(namespace)/pods", body: Self.pod(name, labels: ["tier": tier, "app": "tt"]))
                #expect(reply.status == 201)
            }
            _ = try await h.call("POST", "/api/v1/namespaces/a/pods", body: Self.pod("nolabel"))

            let all = try await h.call("GET", "/api/v1/pods")
            #expect(all.json["kind"] as? String == "PodList")
            #expect(all.json["apiVersion"] as? String == "v1")
            #expect(Self.metadata(all.json)["resourceVersion"] as? String == String(h.double.currentResourceVersion))
            #expect(Self.names(all.json) == ["nolabel", "w", "y", "z", "x"])
            #expect(Self.names(try await h.call("GET", "/api/v1/namespaces/a/pods").json) == ["nolabel", "w", "y", "z"])

            func select(_ selector: String) async throws -> [String] {
                let encoded = selector.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? selector
                let reply = try await h.call("GET", "/api/v1/pods?labelSelector=\(encoded)")
                #expect(reply.status == 200, "\(selector): \(reply.body)")
                return Self.names(reply.json)
            }
            #expect(try await select("tier=db") == ["y", "x"])
            #expect(try await select("tier==db,app=tt") == ["y", "x"])
            #expect(try await select("tier!=db") == ["nolabel", "w", "z"])
            #expect(try await select("tier in (web, cache)") == ["w", "z"])
            #expect(try await select("tier notin (web,cache)") == ["nolabel", "y", "x"])
            #expect(try await select("tier") == ["w", "y", "z", "x"])
            #expect(try await select("!tier") == ["nolabel"])
            let badSelector = try await h.call("GET", "/api/v1/pods?labelSelector=tier%20in%20web")
            #expect(badSelector.status == 400)

            let byName = try await h.call("GET", "/api/v1/pods?fieldSelector=metadata.name%3Dx")
            #expect(Self.names(byName.json) == ["x"])
            let notA = try await h.call("GET", "/api/v1/pods?fieldSelector=metadata.namespace!%3Da")
            #expect(Self.names(notA.json) == ["x"])

            // Pages of two, following continue tokens.
            var names: [String] = []
            var token: String?
            var pages = 0
            repeat {
                let query = "limit=2" + (token.map { "&continue=\($0.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)" } ?? "")
                let page = try await h.call("GET", "/api/v1/pods?\(query)")
                #expect(page.status == 200)
                names += Self.names(page.json)
                token = Self.metadata(page.json)["continue"] as? String
                if token != nil { #expect(Self.metadata(page.json)["remainingItemCount"] as? Int == 5 - names.count) }
                pages += 1
            } while token != nil && pages < 10
            #expect(names == ["nolabel", "w", "y", "z", "x"])
            #expect(pages == 3)

            let bogus = try await h.call("GET", "/api/v1/pods?limit=2&continue=bogus")
            #expect(bogus.status == 410)
            #expect(bogus.json["reason"] as? String == "Expired")
            let first = try await h.call("GET", "/api/v1/pods?limit=2")
            let issued = Self.metadata(first.json)["continue"] as? String ?? ""
            _ = try await h.call("POST", "/api/v1/namespaces/c/pods", body: Self.pod("later"))
            h.double.compact()
            let compacted = try await h.call("GET", "/api/v1/pods?limit=2&continue=\(issued.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)")
            #expect(compacted.status == 410)
        }
    }

    // MARK: WATCH

    @Test("watch: initial ADDED, live events, replay from a resourceVersion, selectors")
    func watches() async throws {
        try await Self.withHarness { h in
            let created = try await h.call("POST", "/api/v1/namespaces/ns/pods", body: Self.pod("a", labels: ["app": "tt"]))
            let rvA = Self.metadata(created.json)["resourceVersion"] as? String ?? ""

            try await Self.withStream(h, "/api/v1/namespaces/ns/pods?watch=true") { stream in
                let reached1 = try await stream.waitFor { $0.events.count == 1 }
                #expect(reached1)
                #expect(h.double.openWatchCount == 1)
                _ = try await h.call("POST", "/api/v1/namespaces/ns/pods", body: Self.pod("b"))
                _ = try await h.call("PATCH", "/api/v1/namespaces/ns/pods/b", body: #"{"metadata":{"labels":{"app":"tt"}}}"#, contentType: "application/merge-patch+json")
                _ = try await h.call("POST", "/api/v1/namespaces/other/pods", body: Self.pod("elsewhere"))
                _ = try await h.call("DELETE", "/api/v1/namespaces/ns/pods/b")
                let reached2 = try await stream.waitFor { $0.events.count == 4 }
                #expect(reached2)
                #expect(stream.eventSummary == ["ADDED a", "ADDED b", "MODIFIED b", "DELETED b"])
                // The DELETED object carries the deletion's resourceVersion.
                let deletedRV = Int(Self.metadata(stream.events[3]["object"] as? [String: Any] ?? [:])["resourceVersion"] as? String ?? "")
                #expect(deletedRV == h.double.currentResourceVersion)
            }

            // Replay from a resourceVersion, with a label selector: b shows up only once it matches.
            try await Self.withStream(h, "/api/v1/pods?watch=1&resourceVersion=\(rvA)&labelSelector=app%3Dtt") { stream in
                let reached3 = try await stream.waitFor { $0.events.count == 2 }
                #expect(reached3)
                try await Task.sleep(for: .milliseconds(200))
                #expect(stream.eventSummary == ["ADDED b", "DELETED b"])
            }

            // Field selector on one name through the old /watch/ path.
            try await Self.withStream(h, "/api/v1/watch/namespaces/ns/pods/a") { stream in
                let reached4 = try await stream.waitFor { $0.events.count == 1 }
                #expect(reached4)
                _ = try await h.call("PATCH", "/api/v1/namespaces/ns/pods/a", body: #"{"metadata":{"labels":{"x":"y"}}}"#, contentType: "application/merge-patch+json")
                _ = try await h.call("POST", "/api/v1/namespaces/ns/pods", body: Self.pod("c"))
                let reached5 = try await stream.waitFor { $0.events.count == 2 }
                #expect(reached5)
                try await Task.sleep(for: .milliseconds(200))
                #expect(stream.eventSummary == ["ADDED a", "MODIFIED a"])
            }
        }
    }

    @Test("watch: too old resourceVersion gives one ERROR 410 event and ends")
    func watchExpired() async throws {
        try await Self.withHarness(historyWindow: 3) { h in
            for index in 0..<6 { _ = try await h.call("POST", "/api/v1/namespaces/ns/configmaps", body: #"{"metadata":{"name":"c\#(index)"}}"#) }
            try await Self.withStream(h, "/api/v1/namespaces/ns/configmaps?watch=true&resourceVersion=1") { stream in
                let status = await stream.exitStatus()
                #expect(status == 0, "\(stream.errors)")
                #expect(stream.events.count == 1)
                let event = stream.events.first ?? [:]
                #expect(event["type"] as? String == "ERROR")
                let object = event["object"] as? [String: Any] ?? [:]
                #expect(object["kind"] as? String == "Status")
                #expect(object["code"] as? Int == 410)
                #expect(object["reason"] as? String == "Expired")
            }
            // Within the window: replay works.
            try await Self.withStream(h, "/api/v1/namespaces/ns/configmaps?watch=true&resourceVersion=4&timeoutSeconds=1") { stream in
                #expect(await stream.exitStatus() == 0)
                #expect(stream.eventSummary == ["ADDED c4", "ADDED c5"])
            }
            h.double.compact()
            try await Self.withStream(h, "/api/v1/namespaces/ns/configmaps?watch=true&resourceVersion=5") { stream in
                #expect(await stream.exitStatus() == 0)
                #expect(stream.events.first?["type"] as? String == "ERROR")
            }
        }
    }

    @Test("watch: timeoutSeconds ends cleanly, dropped watches end without the last chunk, bookmarks")
    func watchFaults() async throws {
        try await Self.withHarness { h in
            _ = try await h.call("POST", "/api/v1/namespaces/ns/configmaps", body: #"{"metadata":{"name":"one"}}"#)
            _ = try await h.call("POST", "/api/v1/namespaces/ns/configmaps", body: #"{"metadata":{"name":"two"}}"#)

            try await Self.withStream(h, "/api/v1/namespaces/ns/configmaps?watch=true&timeoutSeconds=1") { stream in
                let status = await stream.exitStatus()
                #expect(status == 0, "\(stream.errors)")
                #expect(stream.events.count == 2)
            }

            h.double.dropWatches(afterEvents: 1)
            try await Self.withStream(h, "/api/v1/namespaces/ns/configmaps?watch=true") { stream in
                let status = await stream.exitStatus()
                #expect(status == 18, "\(stream.errors)")  // curl: transfer closed with outstanding read data
                #expect(stream.events.count == 1)
            }
            h.double.dropWatches(afterEvents: 0)
            try await Self.withStream(h, "/api/v1/namespaces/ns/configmaps?watch=true") { stream in
                let status = await stream.exitStatus()
                #expect(status == 18, "\(stream.errors)")
                #expect(stream.output.isEmpty)
            }
            h.double.stopDroppingWatches()

            try await Self.withStream(h, "/api/v1/namespaces/ns/configmaps?watch=true&allowWatchBookmarks=true&resourceVersion=\(h.double.currentResourceVersion)") { stream in
                let reached6 = try await stream.waitFor { _ in h.double.openWatchCount == 1 }
                #expect(reached6)
                h.double.sendBookmark()
                let reached7 = try await stream.waitFor { $0.events.count == 1 }
                #expect(reached7)
                let event = stream.events.first ?? [:]
                #expect(event["type"] as? String == "BOOKMARK")
                let object = event["object"] as? [String: Any] ?? [:]
                #expect(object["kind"] as? String == "ConfigMap")
                #expect(object["apiVersion"] as? String == "v1")
                #expect(Self.metadata(object)["resourceVersion"] as? String == String(h.double.currentResourceVersion))
            }
            let allClosed = try await Self.withTimeout { h.double.openWatchCount == 0 }
            #expect(allClosed)
        }
    }

    static func withTimeout(_ seconds: Double = 5, _ condition: () -> Bool) async throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while !condition(), Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
        return condition()
    }

    @Test("stop() cuts open watches off")
    func stopClosesWatches() async throws {
        try await withTemporaryDirectory("double") { dir in
            let files = try TLSFiles(in: dir)
            let double = try await KubeTestDouble.start(try files.options())
            let harness = Harness(dir: dir, files: files, double: double, token: nil)
            let stream = try Stream(harness.baseArguments + [double.baseURL + "/api/v1/pods?watch=true"], dir: dir)
            _ = try await stream.waitFor { _ in double.openWatchCount == 1 }
            await double.stop()
            let status = await stream.exitStatus(within: 5)
            #expect(status == 18 || status == 56, "\(status) \(stream.errors)")
            await stream.stop()
            // Nothing listens any more.
            let after = try await curl(files.clientArguments + [double.baseURL + "/version"], in: dir)
            #expect(!after.succeeded)
        }
    }

    // MARK: Faults and authentication

    @Test("injected failures, raw responses, bearer tokens, recorded requests")
    func faults() async throws {
        try await Self.withHarness(token: "s3cret") { h in
            h.double.failNextRequests(2, status: 429, retryAfterSeconds: 3)
            let first = try await h.call("GET", "/api/v1/pods")
            #expect(first.status == 429)
            #expect(first.json["reason"] as? String == "TooManyRequests")
            #expect(first.headers.lowercased().contains("retry-after: 3"))
            #expect(try await h.call("GET", "/api/v1/pods").status == 429)
            #expect(try await h.call("GET", "/api/v1/pods").status == 200)

            h.double.failNextRequests(1, status: 503, retryAfterSeconds: nil)
            let unavailable = try await h.call("GET", "/version")
            #expect(unavailable.status == 503 && unavailable.json["reason"] as? String == "ServiceUnavailable")

            h.double.respondNextWith(status: 200, contentType: "application/json", body: #"{"kind":"PodList","items":[{"#)
            let truncated = try await h.call("GET", "/api/v1/pods")
            #expect(truncated.status == 200 && truncated.body == #"{"kind":"PodList","items":[{"#)

            // Without the token.
            let anonymous = try await curl(h.files.clientArguments + ["-w", "\n%{http_code}", h.double.baseURL + "/api/v1/pods"], in: h.dir)
            #expect(anonymous.stdout.hasSuffix("\n401"))
            #expect(anonymous.stdout.contains(#""reason":"Unauthorized""#))
            let wrongToken = try await curl(h.files.clientArguments + ["-H", "Authorization: Bearer nope", "-w", "\n%{http_code}", h.double.baseURL + "/version"], in: h.dir)
            #expect(wrongToken.stdout.hasSuffix("\n401"))

            let recorded = h.double.requests
            #expect(recorded.count == 7)
            #expect(recorded.first?.method == "GET" && recorded.first?.path == "/api/v1/pods")
            #expect(recorded.filter(\.hasAuthorization).count == 6)
            #expect(!recorded.contains { $0.description.contains("s3cret") || $0.body.contains("s3cret") })
            h.double.resetRequests()
            #expect(h.double.requests.isEmpty)
            _ = try await h.call("GET", "/api/v1/namespaces/ns/pods?labelSelector=a%3Db&limit=5")
            #expect(h.double.requests.first?.query == "labelSelector=a%3Db&limit=5")
            #expect(h.double.requests.first?.queryParameters == ["labelSelector": "a=b", "limit": "5"])
        }
    }

    @Test("perform() changes state behind the client's back; deleting a Namespace deletes its contents")
    func directAccess() async throws {
        try await Self.withHarness { h in
            let created = h.double.perform("POST", "/api/v1/namespaces", body: #"{"metadata":{"name":"gone"}}"#)
            #expect(created.status == 201)
            #expect(h.double.perform("POST", "/api/v1/namespaces/gone/pods", body: Self.pod("p")).status == 201)
            #expect(h.double.perform("POST", "/apis/tenops.io/v1/namespaces/gone/timestenclassics", body: #"{"metadata":{"name":"t"}}"#).status == 201)
            #expect(h.double.perform("POST", "/api/v1/namespaces/kept/pods", body: Self.pod("p")).status == 201)
            #expect(h.double.requests.isEmpty)

            try await Self.withStream(h, "/api/v1/pods?watch=true&resourceVersion=\(h.double.currentResourceVersion)") { stream in
                let opened = try await stream.waitFor { _ in h.double.openWatchCount == 1 }
                #expect(opened)
                let deleted = try await h.call("DELETE", "/api/v1/namespaces/gone")
                #expect(deleted.status == 200)
                let reached = try await stream.waitFor { $0.events.count == 1 }
                #expect(reached)
                #expect(stream.eventSummary == ["DELETED p"])
            }
            #expect(h.double.perform("GET", "/api/v1/namespaces/gone/pods/p").status == 404)
            #expect(h.double.perform("GET", "/apis/tenops.io/v1/namespaces/gone/timestenclassics/t").status == 404)
            #expect(h.double.perform("GET", "/api/v1/namespaces/kept/pods/p").status == 200)
            let list = h.double.perform("GET", "/api/v1/pods?labelSelector=none")
            #expect(list.status == 200 && list.body.contains(#""kind":"PodList""#))
        }
    }

    // MARK: Pod logs

    @Test("pod logs: tailLines, container choice, follow streams appended lines")
    func podLogs() async throws {
        try await Self.withHarness { h in
            _ = try await h.call("POST", "/api/v1/namespaces/ns/pods",
                                 body: #"{"metadata":{"name":"sample-0"},"spec":{"containers":[{"name":"tt"},{"name":"daemonlog"}]}}"#)
            h.double.appendPodLog(namespace: "ns", pod: "sample-0", container: "tt", lines: ["one", "two", "three"])
            h.double.appendPodLog(namespace: "ns", pod: "sample-0", container: "daemonlog", lines: ["daemon started"])

            let all = try await h.call("GET", "/api/v1/namespaces/ns/pods/sample-0/log?container=tt")
            #expect(all.status == 200 && all.body == "one\ntwo\nthree\n")
            #expect(all.headers.lowercased().contains("content-type: text/plain"))
            let tail = try await h.call("GET", "/api/v1/namespaces/ns/pods/sample-0/log?container=tt&tailLines=2")
            #expect(tail.body == "two\nthree\n")
            let ambiguous = try await h.call("GET", "/api/v1/namespaces/ns/pods/sample-0/log")
            #expect(ambiguous.status == 400)
            #expect((ambiguous.json["message"] as? String ?? "").contains("a container name must be specified"))
            let missing = try await h.call("GET", "/api/v1/namespaces/ns/pods/none/log")
            #expect(missing.status == 404)

            try await Self.withStream(h, "/api/v1/namespaces/ns/pods/sample-0/log?container=tt&follow=true&tailLines=1") { stream in
                let reached8 = try await stream.waitFor { $0.output == "three\n" }
                #expect(reached8)
                h.double.appendPodLog(namespace: "ns", pod: "sample-0", container: "tt", lines: ["four", "five"])
                h.double.appendPodLog(namespace: "ns", pod: "sample-0", container: "daemonlog", lines: ["not this"])
                let reached9 = try await stream.waitFor { $0.output == "three\nfour\nfive\n" }
                #expect(reached9, "\(stream.output)")
            }
        }
    }
}
