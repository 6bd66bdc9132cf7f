import Foundation
import TestSupport
import KubeTestDouble
import PKI
import Synchronization
import Testing
@testable import KubeAPI

@Suite("KubeClient against the HTTPS test double", .timeLimit(.minutes(5)))
struct ClientServerTests {
    @Test("client certificates over real TLS: the right one is accepted, others are refused")
    func mutualTLS() async throws {
        try await TestCluster.with(.clientCertificate) { cluster in
            let version = try await cluster.client().send(method: "GET", path: "/version")
            #expect(try JSONParser.parseObject(version)["gitVersion"]?.stringValue?.hasPrefix("v1.") == true)

            let anonymous = KubeClient(config: cluster.config(credentials: .init()), retryPolicy: .none)
            await #expect(throws: KubeAPIError.self) { _ = try await anonymous.send(method: "GET", path: "/version") }

            let stranger = try CertificateAuthority.create(commonName: "other-ca").issueClient(commonName: "intruder")
            let foreign = KubeClient(config: cluster.config(credentials: .init(
                clientCertificatePEM: Data(try stranger.certificatePEM.utf8), clientKeyPEM: Data(try stranger.privateKeyPEM.utf8))),
                retryPolicy: .none)
            await #expect(throws: KubeAPIError.self) { _ = try await foreign.send(method: "GET", path: "/version") }

            var untrusting = cluster.config()
            untrusting.tls.certificateAuthorityPEM = Data(try CertificateAuthority.create(commonName: "x").certificate.pem.utf8)
            await #expect(throws: KubeAPIError.self) {
                _ = try await KubeClient(config: untrusting, retryPolicy: .none).send(method: "GET", path: "/version")
            }
        }
    }

    @Test("tls-server-name: the certificate is checked against the server name, the connection goes to the URL's host")
    func serverNameRouting() async throws {
        try await TestCluster.with(.clientCertificate) { cluster in
            // The server's certificate names localhost and 127.0.0.1; the URL says 127.0.0.1.
            var named = cluster.config()
            named.tls.serverName = "localhost"
            let version = try await KubeClient(config: named, retryPolicy: .none).send(method: "GET", path: "/version")
            #expect(try JSONParser.parseObject(version)["gitVersion"]?.stringValue?.hasPrefix("v1.") == true)

            var wrong = cluster.config()
            wrong.tls.serverName = "someone-else.example"
            await #expect(throws: KubeAPIError.self) {
                _ = try await KubeClient(config: wrong, retryPolicy: .none).send(method: "GET", path: "/version")
            }
        }
    }

    @Test("bearer tokens: accepted, and a wrong or missing one is a typed 401")
    func bearerToken() async throws {
        try await TestCluster.with(.token(["good-token"])) { cluster in
            let created = try await cluster.client(token: "good-token").create(configMap("a", data: ["k": "v"]))
            #expect(created.data == ["k": "v"])
            await #expect {
                _ = try await cluster.client(token: "bad-token").get(ConfigMap.self, name: "a", namespace: "default")
            } throws: { error in
                guard case KubeAPIError.unauthorized(let status) = error else { return false }
                return status.code == 401
            }
            await #expect(throws: KubeAPIError.self) {
                _ = try await cluster.client(token: nil).get(ConfigMap.self, name: "a", namespace: "default")
            }
            #expect(cluster.double.requests.allSatisfy { !$0.description.contains("good-token") })
        }
    }

    @Test("a kubeconfig file with certificate files drives the client, and the real tenops binary")
    func kubeconfigFile() async throws {
        try await TestCluster.with(.clientCertificate) { cluster in
            let path = try cluster.writeKubeconfig(namespace: "team")
            let config = try ClusterConfig.load(kubeconfig: path)
            #expect(config.namespace == "team")
            let client = KubeClient(config: config)
            _ = try await client.create(configMap("from-file", namespace: "team"))
            #expect(try await client.get(ConfigMap.self, name: "from-file", namespace: "team").name == "from-file")

            let output = try await runTenops(["version", "--server", "--kubeconfig", path])
            #expect(output.status == 0)
            #expect(output.stdout.contains("Server Version: v1."))
            let broken = try cluster.directory.write("broken", "current-context: nope\n")
            let failure = try await runTenops(["version", "--server", "--kubeconfig", broken])
            #expect(failure.status != 0)
            #expect(failure.stderr.contains(broken) && failure.stderr.contains("context \"nope\" not found"))
        }
    }

    @Test("exec credential plugin: run with KUBERNETES_EXEC_INFO, cached, and run again after a 401")
    func execPlugin() async throws {
        try await TestCluster.with(.token(["second-token"])) { cluster in
            let dir = cluster.directory
            let counter = "\(dir.path)/runs"
            // The plugin hands out "first-token" on its first run and "second-token" after that.
            let script = try dir.write("plugin.sh", """
                #!/bin/sh
                echo run >> "\(counter)"
                runs=$(wc -l < "\(counter)")
                echo "$KUBERNETES_EXEC_INFO" > "\(dir.path)/exec-info"
                [ "$1" = "--flag" ] || { echo "missing argument" >&2; exit 3; }
                [ "$PLUGIN_ENV" = "yes" ] || { echo "missing env" >&2; exit 4; }
                if [ "$runs" -eq 1 ]; then token=first-token; else token=second-token; fi
                printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s","expirationTimestamp":"2099-01-01T00:00:00Z"}}' "$token"
                """, mode: 0o755)
            let exec = Kubeconfig.ExecConfig(
                apiVersion: "client.authentication.k8s.io/v1", command: script, args: ["--flag"], env: [("PLUGIN_ENV", "yes")],
                provideClusterInfo: true, installHint: nil, source: "\(dir.path)/kubeconfig")
            let client = KubeClient(config: cluster.config(credentials: .init(exec: exec)))
            _ = try await client.create(configMap("x"))
            func runs() throws -> Int { try String(contentsOfFile: counter, encoding: .utf8).split(separator: "\n").count }
            #expect(try runs() == 2)  // first token refused with 401, plugin run again
            _ = try await client.get(ConfigMap.self, name: "x", namespace: "default")
            #expect(try runs() == 2)  // cached until its expiration
            let info = try JSONParser.parseObject(Data(contentsOf: URL(fileURLWithPath: "\(dir.path)/exec-info")))
            #expect(info["kind"] == "ExecCredential")
            #expect(info["spec"]?["interactive"] == false)
            #expect(info["spec"]?["cluster"]["server"].stringValue == cluster.double.baseURL)

            let failing = Kubeconfig.ExecConfig(
                apiVersion: "client.authentication.k8s.io/v1", command: script, args: [], env: [], provideClusterInfo: false,
                installHint: "install the plugin", source: "\(dir.path)/kubeconfig")
            await #expect {
                _ = try await KubeClient(config: cluster.config(credentials: .init(exec: failing))).get(ConfigMap.self, name: "x", namespace: "default")
            } throws: { error in
                "\(error)".contains("missing argument")
            }
        }
    }

    @Test("CRUD: create, AlreadyExists, get, update with 409 on a stale version, patches, status, delete")
    func crud() async throws {
        try await TestCluster.with { cluster in
            let client = cluster.client()
            var pod = Pod(name: "p", namespace: "ns")
            pod.spec.containers = [Container(name: "tt", image: "tenops", command: ["tenops", "agent"])]
            pod[field: "futureField"] = ["kept": true]
            let created = try await client.create(pod)
            #expect(created.uid != nil && created.resourceVersion != nil)
            await #expect {
                _ = try await client.create(pod)
            } throws: { error in
                if case KubeAPIError.alreadyExists(let status) = error { return status.code == 409 }
                return false
            }

            var first = try await client.get(Pod.self, name: "p", namespace: "ns")
            var second = first
            first.metadata.labels = ["edit": "first"]
            let updated = try await client.update(first)
            #expect(updated.metadata.labels == ["edit": "first"])
            #expect(updated[field: "futureField"] == ["kept": true])  // unknown field survived the round trip
            second.metadata.labels = ["edit": "second"]
            await #expect {
                _ = try await client.update(second)
            } throws: { error in
                guard case KubeAPIError.conflict(let status) = error else { return false }
                return status.code == 409
            }

            let merged = try await client.patch(Pod.self, name: "p", namespace: "ns", patchType: .merge,
                                                patch: ["metadata": ["annotations": ["a": "1"]]])
            #expect(merged.metadata.annotations == ["a": "1"])
            let jsonPatched = try await client.patch(Pod.self, name: "p", namespace: "ns", patchType: .json,
                                                     patch: [["op": "replace", "path": "/metadata/labels/edit", "value": "json"]])
            #expect(jsonPatched.metadata.labels["edit"] == "json")

            var withStatus = jsonPatched
            withStatus.status.phase = "Running"
            withStatus.spec.nodeName = "ignored-by-status-write"
            let statusWritten = try await client.updateStatus(withStatus)
            #expect(statusWritten.status.phase == "Running")
            #expect(statusWritten.spec.nodeName == nil)

            let modified = try await client.modify(Pod.self, name: "p", namespace: "ns") { $0.metadata.labels["retry"] = "ok" }
            #expect(modified.metadata.labels["retry"] == "ok")

            await #expect {
                try await client.delete(Pod.self, name: "p", namespace: "ns", options: DeleteOptions(preconditionUID: "not-the-uid"))
            } throws: { error in
                if case KubeAPIError.conflict = error { return true }
                return false
            }
            try await client.delete(Pod.self, name: "p", namespace: "ns",
                                    options: DeleteOptions(propagationPolicy: .foreground, preconditionUID: created.uid))
            #expect(cluster.double.requests.last?.propagationPolicy == "Foreground")
            await #expect {
                _ = try await client.get(Pod.self, name: "p", namespace: "ns")
            } throws: { error in
                if case KubeAPIError.notFound(let status) = error { return status.code == 404 }
                return false
            }
        }
    }

    @Test("list with label and field selectors, and limit/continue paging")
    func listing() async throws {
        try await TestCluster.with { cluster in
            let client = cluster.client()
            for index in 0..<7 {
                _ = try await client.create(configMap("cm-\(index)", labels: ["parity": index % 2 == 0 ? "even" : "odd", "app": "t"]))
            }
            _ = try await client.create(configMap("elsewhere", namespace: "other", labels: ["app": "t"]))
            let even = try await client.list(ConfigMap.self, namespace: "default", options: ListOptions(labelSelector: "parity=even,app"))
            #expect(even.items.map(\.name) == ["cm-0", "cm-2", "cm-4", "cm-6"])
            let notOdd = try await client.list(ConfigMap.self, namespace: "default", options: ListOptions(labelSelector: "parity notin (odd)"))
            #expect(notOdd.items.count == 4)
            let byName = try await client.list(ConfigMap.self, options: ListOptions(fieldSelector: "metadata.name=elsewhere"))
            #expect(byName.items.map(\.namespace) == ["other"])
            #expect(byName.items.first?.kind == "ConfigMap")  // restored on list items

            let firstPage = try await client.list(ConfigMap.self, namespace: "default", options: ListOptions(limit: 3))
            #expect(firstPage.items.count == 3)
            #expect(firstPage.continueToken != nil)
            let all = try await client.listAll(ConfigMap.resourceType, namespace: "default", pageSize: 3)
            #expect(all.items.map(\.name) == (0..<7).map { "cm-\($0)" })
            #expect(!all.resourceVersion.isEmpty)
        }
    }

    @Test("429 with Retry-After is retried after the advertised delay; 503 on POST is not retried")
    func retries() async throws {
        try await TestCluster.with { cluster in
            let client = cluster.client()
            _ = try await client.create(configMap("r"))
            cluster.double.resetRequests()
            cluster.double.failNextRequests(2, status: 429, retryAfterSeconds: 1)
            let start = ContinuousClock.now
            let fetched = try await client.get(ConfigMap.self, name: "r", namespace: "default")
            let elapsed = start.duration(to: .now)
            #expect(fetched.name == "r")
            #expect(elapsed >= .seconds(2))
            #expect(cluster.double.requests.count == 3)

            cluster.double.resetRequests()
            cluster.double.failNextRequests(1, status: 503, retryAfterSeconds: nil)
            await #expect {
                _ = try await client.create(configMap("s"))
            } throws: { error in
                (error as? KubeAPIError)?.code == 503
            }
            #expect(cluster.double.requests.count == 1)

            cluster.double.failNextRequests(1, status: 503, retryAfterSeconds: nil)
            #expect(try await client.get(ConfigMap.self, name: "r", namespace: "default").name == "r")
        }
    }

    @Test("truncated and malformed bodies give clean errors, never a crash", arguments: [
        (200, "application/json", #"{"kind":"ConfigMap","metadata":{"na"#, "malformed"),
        (200, "application/json", "", "malformed"),
        (200, "application/json", "[1,2,3]", "malformed"),
        (200, "text/html", "<html>hello</html>", "malformed"),
        (500, "text/html", "<html>proxy exploded</html>", "500"),
        (404, "application/json", #"{"kind":"Status","code":4"#, "404"),
    ])
    func malformedBodies(status: Int, contentType: String, body: String, expected: String) async throws {
        try await TestCluster.with { cluster in
            let client = cluster.client(retry: .none)
            cluster.double.respondNextWith(status: status, contentType: contentType, body: body)
            await #expect {
                _ = try await client.get(ConfigMap.self, name: "x", namespace: "default")
            } throws: { error in
                guard let error = error as? KubeAPIError else { return false }
                if expected == "malformed" {
                    if case .malformedResponse = error { return true }
                    return false
                }
                return error.code == Int(expected)
            }
            // The client is still fine afterwards.
            _ = try await client.create(configMap("after"))
        }
    }

    @Test("a list answer without items is malformed")
    func malformedList() async throws {
        try await TestCluster.with { cluster in
            cluster.double.respondNextWith(status: 200, contentType: "application/json", body: #"{"kind":"ConfigMapList","metadata":{}}"#)
            await #expect(throws: KubeAPIError.self) { _ = try await cluster.client(retry: .none).list(ConfigMap.self) }
        }
    }

    @Test("a watch whose stream carries garbage or ends mid-event fails cleanly")
    func malformedWatch() async throws {
        try await TestCluster.with { cluster in
            let client = cluster.client(retry: .none)
            let good = #"{"type":"ADDED","object":{"kind":"ConfigMap","metadata":{"name":"a","resourceVersion":"5"}}}"#
            for (body, fragment) in [("\(good)\nnot json\n", "invalid JSON"), ("\(good)\n{\"type\":\"ADDED\",\"obj", "inside an event")] {
                cluster.double.respondNextWith(status: 200, contentType: "application/json", body: body)
                let stream = try await client.watch(ConfigMap.self, namespace: "default")
                var received: [String] = []
                do {
                    for try await event in stream { received.append(event.object.name) }
                    Issue.record("the stream should have failed")
                } catch {
                    #expect("\(error)".contains(fragment))
                }
                #expect(received == ["a"])
            }
        }
    }

    @Test("watch streams events from a resourceVersion; an expired one is a typed 410")
    func watchAndExpiry() async throws {
        try await TestCluster.with { cluster in
            let client = cluster.client()
            let first = try await client.create(configMap("w1"))
            let stream = try await client.watch(ConfigMap.self, namespace: "default", options: WatchOptions(resourceVersion: first.resourceVersion))
            let consumer = Task {
                var names: [String] = []
                for try await event in stream where event.type != .bookmark {
                    names.append("\(event.type.rawValue) \(event.object.name)")
                    if names.count == 3 { break }
                }
                return names
            }
            _ = try await client.create(configMap("w2"))
            _ = try await client.patch(ConfigMap.self, name: "w2", namespace: "default", patchType: .merge, patch: ["data": ["k": "v"]])
            try await client.delete(ConfigMap.self, name: "w1", namespace: "default")
            #expect(try await consumer.value == ["ADDED w2", "MODIFIED w2", "DELETED w1"])

            cluster.double.compact()
            let expired = try await client.watch(ConfigMap.self, namespace: "default", options: WatchOptions(resourceVersion: first.resourceVersion))
            await #expect {
                for try await _ in expired {}
            } throws: { error in
                if case KubeAPIError.gone(let status) = error { return status.code == 410 }
                return false
            }
        }
    }

    @Test("cancelling the consuming Task aborts the watch transfer")
    func cancellation() async throws {
        try await TestCluster.with { cluster in
            let client = cluster.client()
            let watcher = Task {
                let stream = try await client.watch(ConfigMap.self, namespace: "default")
                for try await _ in stream {}
            }
            #expect(await eventually { cluster.double.openWatchCount == 1 })
            let start = ContinuousClock.now
            watcher.cancel()
            _ = await watcher.result
            #expect(start.duration(to: .now) < .seconds(2))
            // The server notices a vanished watcher when it next writes to it, as a real one does.
            _ = try await client.create(configMap("poke"))
            #expect(await eventually { cluster.double.openWatchCount == 0 })
        }
    }

    @Test("a curl handle is reused, and carries nothing over from its last request: method, body, timeout")
    func reusedHandles() async throws {
        try await TestCluster.with { cluster in
            let transport = CurlTransport(idleHandles: 1)
            let pool = transport.handles
            let client = KubeClient(config: cluster.config(), transport: transport, retryPolicy: RetryPolicy(maxAttempts: 1))
            // A POST with a body, then a GET on the handle it leaves: a GET that kept the method
            // or the body would create again, and fail with AlreadyExists.
            _ = try await client.create(configMap("reused", data: ["k": "v"]))
            #expect(await eventually { pool.idleAddresses.count == 1 })
            let handle = pool.idleAddresses
            #expect(try await client.get(ConfigMap.self, name: "reused", namespace: "default").data == ["k": "v"])
            #expect(await eventually { pool.idleAddresses == handle })

            // A request with a 300 ms limit, then a watch on the same handle: one that kept the
            // limit would end within 300 ms and miss the change made a second later.
            let hurried = KubeClient(config: cluster.config(), transport: transport, requestTimeout: .milliseconds(300))
            _ = try await hurried.list(ConfigMap.self, namespace: "default")
            #expect(await eventually { pool.idleAddresses == handle })
            let stream = try await client.watch(ConfigMap.self, namespace: "default", options: WatchOptions(resourceVersion: "0"))
            #expect(pool.idleAddresses.isEmpty)
            let consumer = Task {
                for try await event in stream where event.type == .modified { return event.object.name }
                return "the watch ended"
            }
            try await Task.sleep(for: .seconds(1))
            _ = try await client.patch(ConfigMap.self, name: "reused", namespace: "default", patchType: .merge, patch: ["data": ["k": "w"]])
            #expect(try await consumer.value == "reused")
            #expect(await eventually { pool.idleAddresses.count == 1 })
        }
    }

    /// curl sends requests out of a 16 KiB upload buffer (`Transfer.uploadBufferBytes`), so a
    /// larger body goes in pieces: each must arrive, in order, over TLS, for a create and a replace.
    @Test("a body many times larger than curl's upload buffer arrives whole, in order")
    func bodyLargerThanUploadBuffer() async throws {
        try await TestCluster.with { cluster in
            let client = KubeClient(config: cluster.config(), retryPolicy: RetryPolicy(maxAttempts: 1))
            func text(_ seed: Int) -> String {
                // 300 KiB of numbered lines: a piece lost, repeated or reordered changes it.
                (0..<20_000).map { String(format: "%05d:%09d", $0, ($0 &* 2_654_435_761 &+ seed) % 1_000_000_000) }.joined(separator: "\n")
            }
            let first = text(1)
            #expect(first.utf8.count > 16 * (16 << 10))
            _ = try await client.create(configMap("big", data: ["k": first]))
            #expect(try await client.get(ConfigMap.self, name: "big", namespace: "default").data["k"] == first)
            var stored = try await client.get(ConfigMap.self, name: "big", namespace: "default")
            let second = text(2)
            stored.data = ["k": second]
            _ = try await client.update(stored)
            #expect(try await client.get(ConfigMap.self, name: "big", namespace: "default").data["k"] == second)
        }
    }

    @Test("idle handles beyond the pool's capacity are cleaned up, not kept")
    func handlePoolCapacity() async throws {
        try await TestCluster.with { cluster in
            let transport = CurlTransport(idleHandles: 2)
            let pool = transport.handles
            let client = KubeClient(config: cluster.config(), transport: transport)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<5 {
                    group.addTask {
                        let stream = try await client.watch(ConfigMap.self, namespace: "default", options: WatchOptions(timeoutSeconds: 2))
                        for try await _ in stream {}
                    }
                }
                #expect(await eventually { cluster.double.openWatchCount == 5 })
                #expect(pool.idleAddresses.isEmpty)
                try await group.waitForAll()
            }
            #expect(await eventually { pool.idleAddresses.count == 2 })
            try await Task.sleep(for: .milliseconds(200))
            #expect(pool.idleAddresses.count == 2)
            #expect(try await client.list(ConfigMap.self, namespace: "default").items.isEmpty)
            #expect(await eventually { pool.idleAddresses.count == 2 })
        }
    }

    @Test("pod logs: tail, and follow streams lines appended later")
    func podLogs() async throws {
        try await TestCluster.with { cluster in
            let client = cluster.client()
            _ = try await client.create(Pod(name: "db-0", namespace: "default"))
            cluster.double.appendPodLog(namespace: "default", pod: "db-0", container: "daemonlog", lines: ["one", "two", "three"])
            var tail: [String] = []
            for try await line in try await client.logs(pod: "db-0", namespace: "default", options: LogOptions(container: "daemonlog", tailLines: 2)) {
                tail.append(line)
            }
            #expect(tail == ["two", "three"])

            let follow = try await client.logs(pod: "db-0", namespace: "default", options: LogOptions(container: "daemonlog", follow: true))
            let reader = Task {
                var lines: [String] = []
                for try await line in follow {
                    lines.append(line)
                    if lines.count == 5 { break }
                }
                return lines
            }
            try await Task.sleep(for: .milliseconds(100))
            cluster.double.appendPodLog(namespace: "default", pod: "db-0", container: "daemonlog", lines: ["four", "five"])
            #expect(try await reader.value == ["one", "two", "three", "four", "five"])
        }
    }

    @Test("followLog hands the body over as it arrives and returns at its end; a refused one is a typed error with nothing handed over")
    func followLog() async throws {
        try await TestCluster.with { cluster in
            let client = cluster.client()
            _ = try await client.create(Pod(name: "db-0", namespace: "default"))
            cluster.double.appendPodLog(namespace: "default", pod: "db-0", container: "daemonlog", lines: ["one", "two", "three"])
            let received = Mutex(Data())
            try await client.followLog(pod: "db-0", namespace: "default", options: LogOptions(container: "daemonlog", tailLines: 2)) { bytes in
                received.withLock { $0.append(contentsOf: bytes) }
            }
            #expect(String(decoding: received.withLock { $0 }, as: UTF8.self) == "two\nthree\n")

            // Followed: lines appended later arrive; cancelling the caller ends the transfer.
            let followed = Mutex(Data())
            let following = Task {
                try await client.followLog(pod: "db-0", namespace: "default", options: LogOptions(container: "daemonlog", follow: true)) { bytes in
                    followed.withLock { $0.append(contentsOf: bytes) }
                }
            }
            #expect(await eventually { followed.withLock { $0.count } == 14 })
            cluster.double.appendPodLog(namespace: "default", pod: "db-0", container: "daemonlog", lines: ["four", "five"])
            #expect(await eventually { String(decoding: followed.withLock { $0 }, as: UTF8.self) == "one\ntwo\nthree\nfour\nfive\n" })
            following.cancel()
            await #expect(throws: KubeAPIError.self) { try await following.value }

            // A pod that does not exist: the server's 404, and its body is not handed over as log.
            let refused = Mutex(0)
            await #expect {
                try await client.followLog(pod: "db-9", namespace: "default", options: LogOptions(container: "daemonlog")) { bytes in
                    refused.withLock { $0 += bytes.count }
                }
            } throws: { error in
                guard case KubeAPIError.notFound = error else { return false }
                return true
            }
            #expect(refused.withLock { $0 } == 0)
        }
    }

    @Test("the event recorder aggregates repeats by count, as client-go does")
    func eventRecorder() async throws {
        try await TestCluster.with { cluster in
            let client = cluster.client()
            let owner = try await client.create(configMap("pair"))
            let recorder = EventRecorder(client: client, component: "tenops-test")
            let first = await recorder.record(owner, type: .normal, reason: "StateChange", message: "Initializing -> Normal")
            let second = await recorder.record(owner, type: .normal, reason: "StateChange", message: "Initializing -> Normal")
            let other = await recorder.record(owner, type: .warning, reason: "Error", message: "agent unreachable")
            #expect(first?.name == second?.name)
            #expect(second?.count == 2)
            #expect(other?.name != first?.name)
            let events = try await client.list(CoreEvent.self, namespace: "default").items
            #expect(events.count == 2)
            let stateChange = try #require(events.first { $0.reason == "StateChange" })
            #expect(stateChange.count == 2)
            #expect(stateChange.involvedObject.name == "pair")
            #expect(stateChange.involvedObject.uid == owner.uid)
            #expect(stateChange.sourceComponent == "tenops-test")

            // Each part of what makes events the same counts: another object, type, reason or message is a new Event.
            let sibling = try await client.create(configMap("pair-2"))
            let variants = [
                await recorder.record(sibling, type: .normal, reason: "StateChange", message: "Initializing -> Normal"),
                await recorder.record(owner, type: .warning, reason: "StateChange", message: "Initializing -> Normal"),
                await recorder.record(owner, type: .normal, reason: "Other", message: "Initializing -> Normal"),
                await recorder.record(owner, type: .normal, reason: "StateChange", message: "Initializing -> Failed"),
            ]
            #expect(variants.allSatisfy { $0?.count == 1 })
            #expect(Set(variants.compactMap { $0?.name }).count == 4)
            #expect(try await client.list(CoreEvent.self, namespace: "default").items.count == 6)
        }
    }
}

/// Runs the built `tenops` binary: a real process.
func runTenops(_ arguments: [String]) async throws -> (status: Int32, stdout: String, stderr: String) {
    let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let candidates = [
        Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("tenops").path,
        packageRoot.appendingPathComponent(".build/debug/tenops").path,
    ]
    guard let binary = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
        throw KubeAPIError.configuration("the tenops binary is not built (looked in \(candidates))")
    }
    let result = try await ChildProcess.run(binary, arguments)
    return (result.status, result.out, result.err)
}
