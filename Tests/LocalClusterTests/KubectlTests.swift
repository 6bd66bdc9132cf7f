import Foundation
import KubeAPI
import Testing
@testable import LocalCluster

let sampleCRD = """
    apiVersion: apiextensions.k8s.io/v1
    kind: CustomResourceDefinition
    metadata:
      name: widgets.example.tenops.io
    spec:
      group: example.tenops.io
      scope: Namespaced
      names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wdg], categories: [all]}
      versions:
      - name: v1
        served: true
        storage: true
        subresources: {status: {}}
        additionalPrinterColumns:
        - {name: State, type: string, jsonPath: .status.state}
        - {name: Size, type: integer, jsonPath: .spec.size}
        - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
        schema:
          openAPIV3Schema:
            type: object
            required: [spec]
            properties:
              spec:
                type: object
                required: [image]
                properties:
                  image: {type: string, minLength: 1}
                  size: {type: integer, minimum: 1, maximum: 10}
                  mode: {type: string, enum: [Best, Manual]}
                  storage: {type: string, pattern: '^[0-9]+(Mi|Gi)$'}
              status:
                type: object
                properties:
                  state: {type: string}
    """

@Suite("The local API server, driven by the real kubectl", .serialized, .timeLimit(.minutes(5)))
struct KubectlTests {
    @Test("version, api-resources, namespaces, and discovery of a CRD with its printer columns")
    func basics() async throws {
        try await LocalServer.with { local in
            let version = try await local.kubectl(["version", "-o", "json"])
            #expect(version.status == 0, "\(version.err)")
            #expect(version.out.contains("v1.32.0-tenops"))

            let resources = try await local.kubectl(["api-resources"])
            #expect(resources.status == 0, "\(resources.err)")
            for expected in ["pods", "statefulsets", "leases", "customresourcedefinitions", "clusterroles", "events"] {
                #expect(resources.out.contains(expected))
            }

            let created = try await local.kubectl(["create", "ns", "team"])
            #expect(created.status == 0, "\(created.err)")
            #expect(created.out.contains("namespace/team created"))
            let namespaces = try await local.kubectl(["get", "ns"])
            #expect(namespaces.out.contains("team") && namespaces.out.contains("Active"))

            let crd = try await local.kubectl(["apply", "-f", "-"], input: sampleCRD)
            #expect(crd.status == 0, "\(crd.err)")
            let listed = try await local.kubectl(["api-resources", "--api-group", "example.tenops.io"])
            #expect(listed.out.contains("widgets") && listed.out.contains("wdg"), "\(listed.out)\(listed.err)")
            let widget = try await local.kubectl(["apply", "-n", "team", "-f", "-"], input: """
                apiVersion: example.tenops.io/v1
                kind: Widget
                metadata: {name: w1}
                spec: {image: tenops, size: 3}
                """)
            #expect(widget.status == 0, "\(widget.err)")
            let table = try await local.kubectl(["get", "wdg", "-n", "team"])
            #expect(table.status == 0, "\(table.err)")
            let lines = table.out.split(separator: "\n")
            #expect(lines.first.map { $0.contains("NAME") && $0.contains("STATE") && $0.contains("SIZE") && $0.contains("AGE") } == true, "\(table.out)")
            #expect(lines.count == 2 && lines[1].hasPrefix("w1") && lines[1].contains("3"), "\(table.out)")
        }
    }

    @Test("apply of several kinds, then apply again with changes: the three-way merge")
    func applyTwice() async throws {
        try await LocalServer.with { local in
            let first = """
                apiVersion: v1
                kind: ConfigMap
                metadata: {name: settings, labels: {app: demo}}
                data: {a: "1", b: "2"}
                ---
                apiVersion: v1
                kind: Secret
                metadata: {name: creds}
                stringData: {user: admin}
                ---
                apiVersion: v1
                kind: Service
                metadata: {name: db}
                spec:
                  clusterIP: None
                  selector: {app: demo}
                  ports: [{name: pg, port: 5432}]
                ---
                apiVersion: apps/v1
                kind: StatefulSet
                metadata: {name: db}
                spec:
                  replicas: 2
                  serviceName: db
                  selector: {matchLabels: {app: demo}}
                  template:
                    metadata: {labels: {app: demo}}
                    spec:
                      containers:
                      - name: tt
                        image: tenops:1
                        env: [{name: A, value: "1"}, {name: B, value: "2"}]
                      - name: daemonlog
                        image: tenops:1
                """
            let applied = try await local.kubectl(["apply", "-f", "-"], input: first)
            #expect(applied.status == 0, "\(applied.err)")
            #expect(applied.out.contains("configmap/settings created") && applied.out.contains("statefulset.apps/db created"), "\(applied.out)")

            // Someone else adds a label; the second apply must keep it (three-way merge) while
            // removing what the manifest dropped and changing what it changed.
            #expect(try await local.kubectl(["label", "configmap", "settings", "owner=ops"]).status == 0)
            let second = first
                .replacingOccurrences(of: "data: {a: \"1\", b: \"2\"}", with: "data: {a: \"10\"}")
                .replacingOccurrences(of: "image: tenops:1\n        env", with: "image: tenops:2\n        env")
                .replacingOccurrences(of: "[{name: A, value: \"1\"}, {name: B, value: \"2\"}]", with: "[{name: A, value: \"1\"}]")
            let reapplied = try await local.kubectl(["apply", "-f", "-"], input: second)
            #expect(reapplied.status == 0, "\(reapplied.err)")
            #expect(reapplied.out.contains("configmap/settings configured"), "\(reapplied.out)")
            // A Secret applied with stringData is reported "configured" on every apply, as on a
            // real cluster (the live object holds data, not stringData); its data stays the same.
            #expect(reapplied.out.contains("secret/creds"), "\(reapplied.out)")

            let client = try local.client()
            let creds = try await client.get(Secret.self, name: "creds", namespace: "default")
            #expect(creds.data == ["user": Data("admin".utf8)] && creds.json["stringData"] == nil)
            let settings = try await client.get(ConfigMap.self, name: "settings", namespace: "default")
            #expect(settings.data == ["a": "10"])
            #expect(settings.metadata.labels == ["app": "demo", "owner": "ops"])
            let set = try await client.get(StatefulSet.self, name: "db", namespace: "default")
            let containers = set.template["spec"]?["containers"].arrayValue ?? []
            #expect(containers.map { $0["name"].stringValue ?? "" } == ["tt", "daemonlog"])
            #expect(containers.first?["image"] == "tenops:2")
            #expect(containers.last?["image"] == "tenops:1")
            #expect(containers.first?["env"].arrayValue?.count == 1)
            #expect(set.metadata.generation == 2)

            // kubectl scale goes through the scale subresource; a negative count changes nothing.
            let scaled = try await local.kubectl(["scale", "statefulset", "db", "--replicas=3"])
            #expect(scaled.status == 0 && scaled.out.contains("statefulset.apps/db scaled"), "\(scaled.out)\(scaled.err)")
            let scale = try await local.kubectl(["get", "--raw", "/apis/apps/v1/namespaces/default/statefulsets/db/scale"])
            #expect(scale.out.contains("\"kind\":\"Scale\"") && scale.out.contains("\"replicas\":3") && scale.out.contains("app=demo"), "\(scale.out)")
            let refused = try await local.kubectl(["patch", "statefulset", "db", "--subresource=scale", "--type=merge", "-p", "{\"spec\":{\"replicas\":-1}}"])
            #expect(refused.status != 0 && refused.err.contains("spec.replicas"), "\(refused.err)")
            let rescaled = try await client.get(StatefulSet.self, name: "db", namespace: "default")
            #expect(rescaled.replicas == 3 && rescaled.metadata.generation == 3)
        }
    }

    @Test("get -o yaml|json|wide, describe with events, label, annotate, and the three patch types")
    func getDescribePatch() async throws {
        try await LocalServer.with { local in
            #expect(try await local.kubectl(["create", "configmap", "cm", "--from-literal=k=v"]).status == 0 || true)
            let client = try local.client()
            var map = ConfigMap(name: "cm2", namespace: "default")
            map.data = ["k": "v"]
            let created = try await client.create(map)
            let yaml = try await local.kubectl(["get", "configmap", "cm2", "-o", "yaml"])
            #expect(yaml.out.contains("name: cm2") && yaml.out.contains("k: v"), "\(yaml.out)\(yaml.err)")
            let json = try await local.kubectl(["get", "configmap", "cm2", "-o", "json"])
            #expect(try JSONParser.parseObject(Data(json.out.utf8))["metadata"]?["uid"].stringValue == created.uid)
            let wide = try await local.kubectl(["get", "configmaps", "-o", "wide"])
            #expect(wide.out.contains("cm2"), "\(wide.out)\(wide.err)")

            let recorder = EventRecorder(client: client, component: "tenops-test")
            await recorder.record(created, type: .warning, reason: "TaskFailed", message: "something went wrong")
            let described = try await local.kubectl(["describe", "configmap", "cm2"])
            #expect(described.status == 0, "\(described.err)")
            #expect(described.out.contains("TaskFailed") && described.out.contains("something went wrong"), "\(described.out)")

            #expect(try await local.kubectl(["label", "configmap", "cm2", "tier=db"]).status == 0)
            #expect(try await local.kubectl(["annotate", "configmap", "cm2", "note=hello"]).status == 0)
            #expect(try await local.kubectl(["patch", "configmap", "cm2", "--type", "merge", "-p", #"{"data":{"m":"1"}}"#]).status == 0)
            #expect(try await local.kubectl(["patch", "configmap", "cm2", "--type", "json", "-p", #"[{"op":"add","path":"/data/j","value":"2"}]"#]).status == 0)
            #expect(try await local.kubectl(["patch", "configmap", "cm2", "--type", "strategic", "-p", #"{"data":{"s":"3"}}"#]).status == 0)
            let patched = try await client.get(ConfigMap.self, name: "cm2", namespace: "default")
            #expect(patched.data == ["k": "v", "m": "1", "j": "2", "s": "3"])
            #expect(patched.metadata.labels["tier"] == "db")
            #expect(patched.metadata.annotations["note"] == "hello")
            let failedTest = try await local.kubectl(["patch", "configmap", "cm2", "--type", "json", "-p", #"[{"op":"test","path":"/data/k","value":"nope"}]"#])
            #expect(failedTest.status != 0)
        }
    }

    @Test("get -w sees changes made by another client")
    func watchWithKubectl() async throws {
        try await LocalServer.with { local in
            let client = try local.client()
            _ = try await client.create(ConfigMap(name: "first", namespace: "default"))
            let watcher = try RunningKubectl(["--kubeconfig", local.kubeconfig, "get", "configmaps", "-w"])
            defer { watcher.stop() }
            #expect(await eventually { watcher.text.contains("first") })
            _ = try await client.create(ConfigMap(name: "second", namespace: "default"))
            #expect(await eventually { watcher.text.contains("second") }, "\(watcher.text)")
        }
    }

    @Test("invalid objects are refused with kubectl's usual message, and nothing is stored")
    func invalidObjects() async throws {
        try await LocalServer.with { local in
            #expect(try await local.kubectl(["apply", "-f", "-"], input: sampleCRD).status == 0)
            let bad = try await local.kubectl(["apply", "-f", "-"], input: """
                apiVersion: example.tenops.io/v1
                kind: Widget
                metadata: {name: bad}
                spec: {image: "", size: 11, mode: Sometimes, storage: 5T}
                """)
            #expect(bad.status != 0)
            #expect(bad.err.contains("The Widget \"bad\" is invalid"), "\(bad.err)")
            for fragment in ["spec.size", "less than or equal to 10", "spec.mode", "Unsupported value", "spec.storage", "spec.image"] {
                #expect(bad.err.contains(fragment), "missing \(fragment) in \(bad.err)")
            }
            let missing = try await local.kubectl(["apply", "-f", "-"], input: "apiVersion: example.tenops.io/v1\nkind: Widget\nmetadata: {name: nospec}\n")
            #expect(missing.err.contains("spec: Required value"), "\(missing.err)")
            let badName = try await local.kubectl(["create", "configmap", "Bad_Name"])
            #expect(badName.status != 0)
            #expect(badName.err.contains("RFC 1123"), "\(badName.err)")
            let client = try local.client()
            let widgets = ResourceType(group: "example.tenops.io", version: "v1", kind: "Widget", plural: "widgets", namespaced: true)
            #expect(try await client.list(widgets, namespace: "default").items.isEmpty)
        }
    }

    @Test("delete cascades to dependents through ownerReferences")
    func cascadingDelete() async throws {
        try await LocalServer.with { local in
            let client = try local.client()
            let owner = try await client.create(ConfigMap(name: "owner", namespace: "default"))
            for name in ["child-a", "child-b"] {
                var child = ConfigMap(name: name, namespace: "default")
                child.metadata.ownerReferences = [OwnerReference(owner: owner)]
                _ = try await client.create(child)
            }
            var orphan = ConfigMap(name: "kept", namespace: "default")
            orphan.metadata.ownerReferences = [OwnerReference(owner: owner)]
            _ = try await client.create(orphan)
            #expect(try await local.kubectl(["delete", "configmap", "owner"]).status == 0)
            let remaining = try await client.list(ConfigMap.self, namespace: "default").items.map(\.name)
            #expect(remaining.isEmpty, "\(remaining)")

            let second = try await client.create(ConfigMap(name: "owner2", namespace: "default"))
            var released = ConfigMap(name: "released", namespace: "default")
            released.metadata.ownerReferences = [OwnerReference(owner: second)]
            _ = try await client.create(released)
            #expect(try await local.kubectl(["delete", "configmap", "owner2", "--cascade=orphan"]).status == 0)
            let survivor = try await client.get(ConfigMap.self, name: "released", namespace: "default")
            #expect(survivor.metadata.ownerReferences.isEmpty)
        }
    }

    @Test("a conflicting update is a 409, and dry runs change nothing")
    func conflictsAndDryRun() async throws {
        try await LocalServer.with { local in
            let client = try local.client()
            let created = try await client.create(ConfigMap(name: "c", namespace: "default"))
            var a = created, b = created
            a.data = ["x": "1"]
            _ = try await client.update(a)
            b.data = ["x": "2"]
            await #expect {
                _ = try await client.update(b)
            } throws: { error in
                guard case KubeAPIError.conflict(let status) = error else { return false }
                return status.message.contains("the object has been modified")
            }
            let dry = try await local.kubectl(["create", "configmap", "dry", "--dry-run=server", "-o", "name"])
            #expect(dry.status == 0, "\(dry.err)")
            await #expect(throws: KubeAPIError.self) { _ = try await client.get(ConfigMap.self, name: "dry", namespace: "default") }
            let applyDry = try await local.kubectl(["apply", "--dry-run=server", "-f", "-"], input: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: dry2}\n")
            #expect(applyDry.status == 0, "\(applyDry.err)")
            await #expect(throws: KubeAPIError.self) { _ = try await client.get(ConfigMap.self, name: "dry2", namespace: "default") }
        }
    }

    @Test("after a restart every object is still there, with its resourceVersion, and watchers resume")
    func restart() async throws {
        let directory = try ScratchDirectory()
        let version: String = try await LocalServer.with(directory: directory) { local in
            let client = try local.client()
            for index in 0..<20 { _ = try await client.create(ConfigMap(name: "cm-\(index)", namespace: "default")) }
            let last = try await client.patch(ConfigMap.self, name: "cm-3", namespace: "default", patchType: .merge, patch: ["data": ["v": "1"]])
            return last.resourceVersion ?? ""
        }
        try await LocalServer.with(directory: directory) { local in
            let client = try local.client()
            let all = try await client.list(ConfigMap.self, namespace: "default")
            #expect(all.items.count == 20)
            let kept = try await client.get(ConfigMap.self, name: "cm-3", namespace: "default")
            #expect(kept.resourceVersion == version)
            #expect(kept.data == ["v": "1"])
            // A watcher resumes from a version before the restart and misses nothing after it.
            let stream = try await client.watch(ConfigMap.self, namespace: "default", options: WatchOptions(resourceVersion: version))
            let reader = Task {
                for try await event in stream where event.type == .added { return event.object.name }
                return ""
            }
            _ = try await client.create(ConfigMap(name: "after-restart", namespace: "default"))
            #expect(try await reader.value == "after-restart")
            let get = try await local.kubectl(["get", "cm", "cm-19"])
            #expect(get.status == 0 && get.out.contains("cm-19"))
        }
    }
}
