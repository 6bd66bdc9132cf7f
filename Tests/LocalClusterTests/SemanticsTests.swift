import Foundation
import KubeAPI
import PKI
import Testing
@testable import LocalCluster

@Suite("API semantics of the local API server", .serialized, .timeLimit(.minutes(5)))
struct SemanticsTests {
    static let widgets = ResourceType(group: "example.tenops.io", version: "v1", kind: "Widget", plural: "widgets", namespaced: true)

    @Test("an unauthenticated request gets 401; a client certificate from another CA is refused; a bearer token works")
    func authentication() async throws {
        try await LocalServer.with { local in
            let url = "\(local.server.url)/api/v1/namespaces"
            let ca = "\(local.directory.path)/state/pki/ca.crt"
            let anonymous = try await curl(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", ca, url])
            #expect(anonymous == "401")
            let stranger = try CertificateAuthority.create(commonName: "stranger").issueClient(commonName: "mallory", organizations: ["system:masters"])
            try local.directory.write("s.crt", try stranger.certificatePEM)
            try local.directory.write("s.key", try stranger.privateKeyPEM)
            let foreign = try await curl(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", ca, "--cert", "\(local.directory.path)/s.crt",
                                    "--key", "\(local.directory.path)/s.key", url])
            #expect(foreign != "200")
            let token = try local.server.credentials.issueToken(for: "system:serviceaccount:tenops:operator", groups: ["system:serviceaccounts"])
            let caPEM = Data(try local.server.credentials.ca.certificate.pem.utf8)
            let operatorClient = KubeClient(config: ClusterConfig(server: local.server.url, tls: TLSSettings(certificateAuthorityPEM: caPEM),
                                                                  credentials: .init(token: token)), retryPolicy: .none)
            #expect(try await operatorClient.list(Namespace.self).items.map(\.name).contains("default"))
            let client = KubeClient(config: ClusterConfig(server: local.server.url, tls: TLSSettings(certificateAuthorityPEM: Data(try local.server.credentials.ca.certificate.pem.utf8)),
                                                          credentials: .init(token: "not-a-token")), retryPolicy: .none)
            await #expect(throws: KubeAPIError.self) { _ = try await client.list(Namespace.self) }
        }
    }

    @Test("uid, creationTimestamp and a growing resourceVersion; generation moves on spec changes only")
    func metadataRules() async throws {
        try await LocalServer.with { local in
            let client = try local.client()
            #expect(try await local.kubectl(["apply", "-f", "-"], input: sampleCRD).status == 0)
            var widget = UnstructuredObject(json: ["apiVersion": "example.tenops.io/v1", "kind": "Widget",
                                                   "metadata": ["name": "w", "namespace": "default"], "spec": ["image": "a", "size": 1]])
            let created = UnstructuredObject(json: try await client.create(Self.widgets, namespace: "default", object: widget.json))
            #expect(created.metadata.uid?.count == 36)
            #expect(created.metadata.creationTimestamp != nil)
            #expect(created.metadata.generation == 1)
            widget = created
            widget.metadata.labels = ["only": "metadata"]
            let relabelled = UnstructuredObject(json: try await client.update(Self.widgets, namespace: "default", object: widget.json))
            #expect(relabelled.metadata.generation == 1)
            #expect(Int(relabelled.resourceVersion ?? "")! > Int(created.resourceVersion ?? "")!)
            var resized = relabelled
            resized[field: "spec"] = ["image": "a", "size": 2]
            let bumped = UnstructuredObject(json: try await client.update(Self.widgets, namespace: "default", object: resized.json))
            #expect(bumped.metadata.generation == 2)
        }
    }

    @Test("the status subresource: /status writes only status; the main resource ignores status")
    func statusSubresource() async throws {
        try await LocalServer.with { local in
            let client = try local.client()
            #expect(try await local.kubectl(["apply", "-f", "-"], input: sampleCRD).status == 0)
            let created = try await client.create(Self.widgets, namespace: "default", object: [
                "apiVersion": "example.tenops.io/v1", "kind": "Widget", "metadata": ["name": "s"],
                "spec": ["image": "a"], "status": ["state": "ignored on create"],
            ])
            #expect(created["status"] == nil)
            var withStatus = created
            withStatus["status"] = ["state": "Normal"]
            withStatus["spec"] = ["image": "changed-through-status"]
            let statusWritten = try await client.update(Self.widgets, namespace: "default", object: withStatus, subresource: "status")
            #expect(statusWritten["status"]?["state"] == "Normal")
            #expect(statusWritten["spec"]?["image"] == "a")
            var mainWrite = statusWritten
            mainWrite["status"] = ["state": "ignored"]
            mainWrite["spec"] = ["image": "b"]
            let mainWritten = try await client.update(Self.widgets, namespace: "default", object: mainWrite)
            #expect(mainWritten["status"]?["state"] == "Normal")
            #expect(mainWritten["spec"]?["image"] == "b")
            let table = try await local.kubectl(["get", "widgets", "s"])
            #expect(table.out.contains("Normal"), "\(table.out)")
        }
    }

    @Test("finalizers hold a deleted object with a deletionTimestamp until the last one is removed")
    func finalizers() async throws {
        try await LocalServer.with { local in
            let client = try local.client()
            var map = ConfigMap(name: "held", namespace: "default")
            map.metadata.finalizers = ["tenops.io/cleanup"]
            _ = try await client.create(map)
            try await client.delete(ConfigMap.self, name: "held", namespace: "default")
            let held = try await client.get(ConfigMap.self, name: "held", namespace: "default")
            #expect(held.metadata.deletionTimestamp != nil)
            _ = try await client.patch(ConfigMap.self, name: "held", namespace: "default", patchType: .merge, patch: ["metadata": ["finalizers": nil]])
            await #expect(throws: KubeAPIError.self) { _ = try await client.get(ConfigMap.self, name: "held", namespace: "default") }
        }
    }

    @Test("selectors, paging, event field selectors, and 410 for a watch older than the window")
    func listsAndWatches() async throws {
        let directory = try ScratchDirectory()
        let server = try await LocalAPIServer.start(.init(stateDirectory: "\(directory.path)/state", historyWindow: 5))
        let local = LocalServer(server: server, directory: directory)
        do {
            let client = try local.client()
            let first = try await client.create(ConfigMap(name: "first", namespace: "default"))
            for index in 0..<9 {
                var map = ConfigMap(name: "cm-\(index)", namespace: "default")
                map.metadata.labels = ["parity": index % 2 == 0 ? "even" : "odd"]
                _ = try await client.create(map)
            }
            let even = try await client.list(ConfigMap.self, namespace: "default", options: ListOptions(labelSelector: "parity in (even)"))
            #expect(even.items.map(\.name) == ["cm-0", "cm-2", "cm-4", "cm-6", "cm-8"])
            let paged = try await client.listAll(ConfigMap.resourceType, namespace: "default", pageSize: 3)
            #expect(paged.items.count == 10)
            let recorder = EventRecorder(client: client, component: "test")
            await recorder.record(first, type: .normal, reason: "Info", message: "about first")
            let events = try await client.list(CoreEvent.self, namespace: "default", options: ListOptions(fieldSelector: "involvedObject.name=first,involvedObject.kind=ConfigMap"))
            #expect(events.items.map(\.reason) == ["Info"])
            let none = try await client.list(CoreEvent.self, namespace: "default", options: ListOptions(fieldSelector: "involvedObject.name=other"))
            #expect(none.items.isEmpty)
            await #expect(throws: KubeAPIError.self) {
                _ = try await client.list(ConfigMap.self, options: ListOptions(fieldSelector: "data.secret=x"))
            }
            let expired = try await client.watch(ConfigMap.self, namespace: "default", options: WatchOptions(resourceVersion: first.resourceVersion))
            await #expect {
                for try await _ in expired {}
            } throws: { error in
                if case KubeAPIError.gone(let status) = error { return status.code == 410 }
                return false
            }
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }

    @Test("kinds nothing runs here are stored faithfully, fields and all: a Deployment and RBAC")
    func faithfulStorage() async throws {
        try await LocalServer.with { local in
            let manifest = """
                apiVersion: apps/v1
                kind: Deployment
                metadata: {name: op, namespace: default}
                spec:
                  replicas: 2
                  selector: {matchLabels: {app: op}}
                  template:
                    metadata: {labels: {app: op}}
                    spec: {containers: [{name: operator, image: tenops, args: [operator], futureField: kept}]}
                ---
                apiVersion: rbac.authorization.k8s.io/v1
                kind: Role
                metadata: {name: tenops, namespace: default}
                rules: [{apiGroups: [""], resources: [pods], verbs: [get, list, watch]}]
                """
            let applied = try await local.kubectl(["apply", "-f", "-"], input: manifest)
            #expect(applied.status == 0, "\(applied.err)")
            let deployment = try await local.kubectl(["get", "deployment", "op", "-o", "json"])
            let object = try JSONParser.parseObject(Data(deployment.out.utf8))
            #expect(object.value(at: ["spec", "replicas"]) == 2)
            #expect(object.value(at: ["spec", "template", "spec", "containers"]).arrayValue?.first?["futureField"] == "kept")
            let role = try await local.kubectl(["get", "role", "tenops", "-o", "jsonpath={.rules[0].verbs}"])
            #expect(role.out.contains("watch"), "\(role.out)\(role.err)")
        }
    }

    @Test("kubectl explain reads a CRD's schema from OpenAPI v3; apply -k passes a server dry run")
    func explainAndKustomize() async throws {
        try await LocalServer.with { local in
            #expect(try await local.kubectl(["apply", "-f", "-"], input: sampleCRD).status == 0)
            let explained = try await local.kubectl(["explain", "widgets.spec"])
            #expect(explained.status == 0, "\(explained.err)")
            #expect(explained.out.contains("size") && explained.out.contains("image"), "\(explained.out)")

            let kustomize = try ScratchDirectory()
            try kustomize.write("crd.yaml", sampleCRD.replacingOccurrences(of: "widgets.example", with: "gadgets.example")
                .replacingOccurrences(of: "plural: widgets, singular: widget, kind: Widget, shortNames: [wdg]", with: "plural: gadgets, singular: gadget, kind: Gadget, shortNames: [gdg]"))
            try kustomize.write("rbac.yaml", """
                apiVersion: rbac.authorization.k8s.io/v1
                kind: Role
                metadata: {name: tenops}
                rules: [{apiGroups: [tenops.io], resources: [timestenclassics, timestenclassics/status], verbs: [get, list, watch, update, patch]}]
                ---
                apiVersion: v1
                kind: ServiceAccount
                metadata: {name: tenops}
                """)
            try kustomize.write("kustomization.yaml", "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: default\nresources: [crd.yaml, rbac.yaml]\n")
            let dry = try await local.kubectl(["apply", "-k", kustomize.path, "--dry-run=server"])
            #expect(dry.status == 0, "\(dry.err)")
            #expect(dry.out.contains("(server dry run)"), "\(dry.out)")
            let notStored = try await local.kubectl(["get", "role", "tenops"])
            #expect(notStored.status != 0)
        }
    }
}

func curl(_ arguments: [String]) async throws -> String {
    try await ChildProcess.run("/usr/bin/curl", ["--max-time", "20"] + arguments).out
}
