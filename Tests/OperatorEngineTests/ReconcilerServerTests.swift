import Foundation
import KubeAPI
import LocalCluster
import Logging
@testable import OperatorEngine
import Testing

/// `PairReconciler` against a real local API server, observed through the real kubectl.
@Suite("Reconciler on a local API server", .serialized, .timeLimit(.minutes(5)))
struct ReconcilerServerTests {
    typealias Kubectl = @Sendable ([String]) async throws -> ProcessOutput

    /// A local API server with the CRD installed; the body gets kubectl and a client. The server is
    /// stopped whatever the body does.
    func withCluster(_ body: (Kubectl, KubeClient) async throws -> Void) async throws {
        try await withScratchDirectory { directory in
            let state = "\(directory)/state"
            let server = try await LocalAPIServer.start(.init(stateDirectory: state))
            let kubeconfig = "\(state)/kubeconfig"
            let kubectl: Kubectl = { arguments in
                var environment = ProcessInfo.processInfo.environment
                environment["KUBECONFIG"] = nil
                environment["HOME"] = directory
                environment["KUBECACHEDIR"] = "\(directory)/kubectl-cache"
                return try await ChildProcess.run("/usr/bin/kubectl", ["--kubeconfig", kubeconfig] + arguments, environment: environment)
            }
            do {
                let client = KubeClient(config: try ClusterConfig.load(kubeconfig: kubeconfig))
                _ = try await client.create(try TimesTenClassicCRD.object())
                try await body(kubectl, client)
                await server.stop()
            } catch {
                await server.stop()
                throw error
            }
        }
    }

    /// Polls `check` until it returns a value, for up to `seconds`.
    func eventually<T>(_ what: String, seconds: Double = 30, _ check: () async throws -> T?) async throws -> T {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            if let value = try await check() { return value }
            if Date() > deadline { throw TestFailure(message: "timed out waiting for \(what)") }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    struct TestFailure: Error, CustomStringConvertible { var message: String; var description: String { message } }

    func json(_ kubectl: Kubectl, _ arguments: [String]) async throws -> JSONObject? {
        let output = try await kubectl(arguments + ["-o", "json"])
        guard output.status == 0 else { return nil }
        return try JSONParser.parseObject(Data(output.out.utf8))
    }

    func resourceVersions(_ kubectl: Kubectl) async throws -> [String: String] {
        var versions: [String: String] = [:]
        for name in ["statefulset/sample", "service/sample", "secret/sample-ca", "secret/sample-agent-tls", "ttc/sample"] {
            let object = try await json(kubectl, ["get", name, "-n", "default"])
            versions[name] = object?.value(at: ["metadata", "resourceVersion"]).stringValue ?? "missing"
        }
        return versions
    }

    func events(_ kubectl: Kubectl) async throws -> [CoreEvent] {
        let list = try await json(kubectl, ["get", "events", "-n", "default"]) ?? [:]
        return (list["items"]?.arrayValue ?? []).compactMap { $0.objectValue.map(CoreEvent.init(json:)) }
    }

    static let sample = #"""
    apiVersion: v1
    kind: Secret
    metadata: {name: sample-db, namespace: default}
    type: Opaque
    data: {adminUser: YWRtaW4vQ0hBTkdFLU1F}
    ---
    apiVersion: tenops.io/v1
    kind: TimesTenClassic
    metadata: {name: sample, namespace: default}
    spec:
      ttspec:
        image: tenops:latest
        storageSize: 1Gi
        dbSecret: [sample-db]
        repReturnServiceAttribute: RETURN TWOSAFE
        deleteDbOnNotReadyNode: 60
        pollingInterval: 1
    """#

    @Test("builds the pair's objects, owned by the ttc; Initializing; idempotent; recreates a deleted StatefulSet; refuses an invalid update")
    func reconcileOnServer() async throws {
        try await withCluster { kubectl, client in
            var logger = Logger(label: "test.reconciler")
            logger.logLevel = .warning
            let reconciler = PairReconciler(client: client, namespace: nil, logger: logger)
            let running = Task { await reconciler.run() }
            defer { running.cancel() }

            let apply = try await kubectlApply(kubectl, Self.sample)
            #expect(apply.status == 0, "\(apply)")

            // Everything exists and is owned by the ttc.
            let ttc = try await eventually("the ttc") { try await json(kubectl, ["get", "ttc", "sample", "-n", "default"]) }
            let uid = try #require(ttc.value(at: ["metadata", "uid"]).stringValue)
            for name in ["statefulset/sample", "service/sample", "secret/sample-ca", "secret/sample-agent-tls"] {
                let object = try await eventually(name) { try await json(kubectl, ["get", name, "-n", "default"]) }
                let reference = ObjectMeta(json: object["metadata"]?.objectValue ?? [:]).controllerReference
                #expect(reference?.json["uid"]?.stringValue == uid && reference?.json["kind"] == "TimesTenClassic", "\(name)")
            }
            let table = try await eventually("STATE Initializing") { () -> String? in
                let output = try await kubectl(["get", "ttc", "sample", "-n", "default"])
                return output.out.contains("Initializing") ? output.out : nil
            }
            #expect(table.split(separator: "\n").first?.contains("STATE") == true, "\(table)")
            let created = try await eventually("Create events") { () -> [CoreEvent]? in
                let found = try await events(kubectl).filter { $0.json["reason"] == "Create" }
                return found.count >= 4 ? found : nil
            }
            #expect(created.count == 4, "\(created.map(\.json))")
            #expect(try await events(kubectl).contains { $0.json["reason"] == "StateChange" })

            // Idempotent: with pollingInterval 1, a few more reconciles change nothing.
            let settledVersions = try await resourceVersions(kubectl)
            #expect(!settledVersions.values.contains("missing"), "\(settledVersions)")
            try await Task.sleep(for: .seconds(3))
            #expect(await reconciler.reconcile(ObjectKey(namespace: "default", name: "sample")) == .done)
            #expect(try await resourceVersions(kubectl) == settledVersions)

            // A deleted StatefulSet comes back.
            let deleted = try await kubectl(["delete", "statefulset", "sample", "-n", "default", "--wait=false"])
            #expect(deleted.status == 0, "\(deleted)")
            let recreated = try await eventually("the StatefulSet again") { () -> String? in
                let version = try await json(kubectl, ["get", "statefulset", "sample", "-n", "default"])?
                    .value(at: ["metadata", "resourceVersion"]).stringValue
                return version != nil && version != settledVersions["statefulset/sample"] ? version : nil
            }

            // A spec the schema takes but SpecValidation refuses: a Warning, Valid=False, the StatefulSet untouched.
            let patched = try await kubectl(["patch", "ttc", "sample", "-n", "default", "--type=merge", "-p",
                                             #"{"spec":{"ttspec":{"repPort":8443,"image":"other:2"}}}"#])
            #expect(patched.status == 0, "\(patched)")
            let warning = try await eventually("the Warning event") {
                try await events(kubectl).first { $0.json["type"] == "Warning" && $0.json["reason"] == "Error" }
            }
            #expect(warning.json["message"]?.stringValue?.contains("spec.ttspec.repPort") == true, "\(warning.json)")
            let refused = try await eventually("Valid=False") { () -> TimesTenClassicStatus? in
                let status = TimesTenClassic(json: try await json(kubectl, ["get", "ttc", "sample", "-n", "default"]) ?? [:]).status
                return status.conditions[type: "Valid"]?.status == "False" ? status : nil
            }
            #expect(refused.highLevelState == "Initializing")
            try await Task.sleep(for: .seconds(2))
            let after = try await json(kubectl, ["get", "statefulset", "sample", "-n", "default"])
            #expect(after?.value(at: ["metadata", "resourceVersion"]).stringValue == recreated)

            running.cancel()
            await running.value
        }
    }

    @Test("a Secret of the pair's CA name that TenOps did not make: an Error event, and nothing is built")
    func foreignSecret() async throws {
        try await withCluster { kubectl, client in
            var logger = Logger(label: "test.reconciler")
            logger.logLevel = .critical
            let reconciler = PairReconciler(client: client, namespace: "default", logger: logger)
            let running = Task { await reconciler.run() }
            defer { running.cancel() }
            let yaml = """
            apiVersion: v1
            kind: Secret
            metadata: {name: foreign-ca, namespace: default}
            data: {ca.crt: anVuaw==}
            ---
            apiVersion: tenops.io/v1
            kind: TimesTenClassic
            metadata: {name: foreign, namespace: default}
            spec: {ttspec: {image: "tenops:latest", storageSize: 1Gi}}
            """
            let apply = try await kubectlApply(kubectl, yaml)
            #expect(apply.status == 0, "\(apply)")
            let error = try await eventually("the Error event") {
                try await events(kubectl).first { $0.json["reason"] == "Error" }
            }
            #expect(error.json["message"]?.stringValue?.contains("Secret foreign-ca exists without the labels") == true, "\(error.json)")
            #expect(try await json(kubectl, ["get", "statefulset", "foreign", "-n", "default"]) == nil)
            let secret = try await json(kubectl, ["get", "secret", "foreign-ca", "-n", "default"])
            #expect(secret?.value(at: ["data", "ca.crt"]).stringValue == "anVuaw==")
            running.cancel()
            await running.value
        }
    }

    func kubectlApply(_ kubectl: Kubectl, _ yaml: String) async throws -> ProcessOutput {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("tenops-sample-\(UUID().uuidString).yaml").path
        try yaml.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        return try await kubectl(["apply", "-f", file])
    }
}
