import Foundation
import KubeAPI
import Testing
@testable import LocalCluster

@Suite("API server pure logic: paths, selectors, patches, schemas, printing, protobuf, the log", .timeLimit(.minutes(5)))
struct PureLogicTests {
    @Test("paths", arguments: [
        ("/api", APIPath.coreVersions),
        ("/apis", .groups),
        ("/apis/apps", .group("apps")),
        ("/api/v1", .resources(group: "", version: "v1")),
        ("/apis/apps/v1/", .resources(group: "apps", version: "v1")),
        ("/api/v1/namespaces", .resource(.init(group: "", version: "v1", plural: "namespaces"))),
        ("/api/v1/namespaces/team", .resource(.init(group: "", version: "v1", plural: "namespaces", name: "team"))),
        ("/api/v1/namespaces/team/status", .resource(.init(group: "", version: "v1", plural: "namespaces", name: "team", subresource: "status"))),
        ("/api/v1/namespaces/ns/pods", .resource(.init(group: "", version: "v1", plural: "pods", namespace: "ns"))),
        ("/api/v1/namespaces/ns/pods/p/log", .resource(.init(group: "", version: "v1", plural: "pods", namespace: "ns", name: "p", subresource: "log"))),
        ("/apis/tenops.io/v1/timestenclassics", .resource(.init(group: "tenops.io", version: "v1", plural: "timestenclassics"))),
        ("/openapi/v3/apis/apps/v1", .openAPIv3(group: "apps", version: "v1")),
        ("/version", .version),
    ] as [(String, APIPath)])
    func paths(path: String, expected: APIPath) {
        #expect(APIPath.parse(path) == expected)
    }

    @Test("paths the API does not serve", arguments: ["/", "/foo", "/api/v1/namespaces/ns/pods/p/log/extra", "/api/v1/namespaces/../secrets", "/api//v1", "/version/x"])
    func unknownPaths(path: String) {
        #expect(APIPath.parse(path) == nil)
    }

    @Test("label selectors", arguments: [
        ("app=db", ["app": "db"], true), ("app==db", ["app": "db"], true), ("app!=db", ["app": "web"], true),
        ("app!=db", [:], true), ("app in (db, web)", ["app": "web"], true), ("app notin (db)", ["app": "db"], false),
        ("app", ["app": ""], true), ("!app", ["app": "x"], false), ("app=db,tier=1", ["app": "db"], false),
        ("app=db,tier in (1,2)", ["app": "db", "tier": "2"], true),
    ] as [(String, [String: String], Bool)])
    func labelSelectors(text: String, labels: [String: String], matches: Bool) throws {
        #expect(try LabelSelector(parsing: text).matches(labels) == matches)
    }

    @Test("malformed selectors are a 400", arguments: ["app in db", "=x", "a b c=d", "app in (x"])
    func badSelectors(text: String) {
        #expect(throws: APIError.self) { try LabelSelector(parsing: text) }
    }

    @Test("field selectors over supported fields only")
    func fieldSelectors() throws {
        let event: JSONObject = ["involvedObject": ["kind": "Pod", "name": "p"], "metadata": ["name": "e", "namespace": "ns"]]
        #expect(try FieldSelector(parsing: "involvedObject.name=p,involvedObject.kind=Pod").matches(event))
        #expect(try !FieldSelector(parsing: "involvedObject.name!=p").matches(event))
        #expect(try FieldSelector(parsing: "metadata.namespace==ns").matches(event))
        #expect(throws: APIError.self) { try FieldSelector(parsing: "spec.secret=x") }
        #expect(throws: APIError.self) { try FieldSelector(parsing: "metadata.name") }
    }

    @Test("merge patch (RFC 7386)")
    func mergePatch() {
        let target: JSONValue = ["a": "b", "c": ["d": "e", "f": "g"], "list": [1, 2]]
        let patch: JSONValue = ["a": "z", "c": ["f": nil], "list": [3], "new": true]
        #expect(Patches.merge(target, patch) == ["a": "z", "c": ["d": "e"], "list": [3], "new": true])
    }

    @Test("JSON patch (RFC 6902): every operation, and errors")
    func jsonPatch() throws {
        let document: JSONValue = ["a": ["b": [1, 2, 3]], "x": "y"]
        let patched = try Patches.jsonPatch(document, [
            ["op": "add", "path": "/a/b/1", "value": 9],
            ["op": "remove", "path": "/a/b/0"],
            ["op": "replace", "path": "/x", "value": "z"],
            ["op": "copy", "from": "/x", "path": "/copy"],
            ["op": "move", "from": "/copy", "path": "/moved"],
            ["op": "add", "path": "/a/b/-", "value": 4],
            ["op": "test", "path": "/moved", "value": "z"],
            ["op": "add", "path": "/esc~1aped", "value": 1],
        ])
        #expect(patched == ["a": ["b": [9, 2, 3, 4]], "x": "z", "moved": "z", "esc/aped": 1])
        for bad: JSONValue in [
            [["op": "remove", "path": "/missing"]], [["op": "test", "path": "/x", "value": "no"]], [["op": "add", "path": "/a/b/9", "value": 1]],
            [["op": "jump", "path": "/x"]], ["op": "add"], [["op": "replace", "path": "/nope", "value": 1]],
        ] {
            #expect(throws: Patches.PatchError.self) { try Patches.jsonPatch(document, bad) }
        }
    }

    @Test("strategic merge patch: lists merge by key, directives apply")
    func strategicMerge() throws {
        let pod: JSONValue = ["spec": ["containers": [
            ["name": "tt", "image": "a", "env": [["name": "A", "value": "1"], ["name": "B", "value": "2"]], "ports": [["containerPort": 8443]]],
            ["name": "daemonlog", "image": "a"],
        ], "finalizers": ["x"]]]
        let patch: JSONValue = ["spec": [
            "containers": [
                ["name": "tt", "image": "b", "env": [["name": "B", "$patch": "delete"], ["name": "C", "value": "3"]]],
                ["name": "sidecar", "image": "s"],
            ],
            "$setElementOrder/containers": [["name": "sidecar"], ["name": "tt"], ["name": "daemonlog"]],
        ]]
        let result = try Patches.strategicMerge(pod, patch)
        let containers = result["spec"]["containers"].arrayValue ?? []
        #expect(containers.map { $0["name"].stringValue ?? "" } == ["sidecar", "tt", "daemonlog"])
        #expect(containers[1]["image"] == "b")
        #expect(containers[1]["env"] == [["name": "A", "value": "1"], ["name": "C", "value": "3"]])
        #expect(containers[1]["ports"] == [["containerPort": 8443]])
        #expect(containers[2]["image"] == "a")
        let replaced = try Patches.strategicMerge(pod, ["spec": ["$patch": "replace", "containers": []]])
        #expect(replaced == ["spec": ["containers": []]])
        let retained = try Patches.strategicMerge(["spec": ["a": 1, "b": 2]], ["spec": ["$retainKeys": ["a"], "a": 3]])
        #expect(retained == ["spec": ["a": 3]])
        #expect(throws: Patches.PatchError.self) { try Patches.strategicMerge(pod, ["spec": ["$patch": "explode"]]) }
    }

    static let schema: JSONObject = try! JSONParser.parseObject(Data("""
        {"type":"object","required":["spec"],"properties":{"spec":{"type":"object","required":["image"],"properties":{
          "image":{"type":"string","minLength":1},"size":{"type":"integer","minimum":1,"maximum":10},
          "mode":{"type":"string","enum":["Best","Manual"]},"storage":{"type":"string","pattern":"^[0-9]+(Mi|Gi)$"},
          "port":{"x-kubernetes-int-or-string":true},"tags":{"type":"array","maxItems":2,"items":{"type":"string"}},
          "free":{"type":"object","x-kubernetes-preserve-unknown-fields":true}}}}}
        """.utf8))

    @Test("schema validation reports each violation with its field path", arguments: [
        (#"{"spec":{"image":"a"}}"#, [String]()),
        (#"{}"#, ["spec: Required value"]),
        (#"{"spec":{}}"#, ["spec.image: Required value"]),
        (#"{"spec":{"image":""}}"#, ["spec.image", "at least 1 chars"]),
        (#"{"spec":{"image":"a","size":0}}"#, ["spec.size", "greater than or equal to 1"]),
        (#"{"spec":{"image":"a","size":11}}"#, ["spec.size", "less than or equal to 10"]),
        (#"{"spec":{"image":"a","size":"3"}}"#, ["spec.size", "must be of type integer"]),
        (#"{"spec":{"image":"a","mode":"Often"}}"#, ["spec.mode", "Unsupported value: \"Often\"", "\"Best\", \"Manual\""]),
        (#"{"spec":{"image":"a","storage":"5T"}}"#, ["spec.storage", "should match"]),
        (#"{"spec":{"image":"a","port":true}}"#, ["spec.port", "integer or string"]),
        (#"{"spec":{"image":"a","tags":["x","y","z"]}}"#, ["spec.tags", "at most 2"]),
        (#"{"spec":{"image":"a","tags":[1]}}"#, ["spec.tags[0]", "must be of type string"]),
    ])
    func schemaValidation(document: String, fragments: [String]) throws {
        let (_, causes) = SchemaValidator.validate(try JSONParser.parse(document), schema: Self.schema, path: "")
        let text = causes.map { "\($0.field): \($0.message)" }.joined(separator: "; ")
        if fragments.isEmpty {
            #expect(causes.isEmpty, "\(text)")
        } else {
            for fragment in fragments { #expect(text.contains(fragment), "\(text)") }
        }
    }

    @Test("unknown fields are pruned unless the schema preserves them")
    func pruning() throws {
        let (pruned, causes) = SchemaValidator.validate(
            try JSONParser.parse(#"{"spec":{"image":"a","unknown":1,"free":{"anything":[1]}},"extra":2}"#), schema: Self.schema, path: "")
        #expect(causes.isEmpty)
        #expect(pruned == ["spec": ["image": "a", "free": ["anything": [1]]]])
    }

    @Test("human durations, as kubectl prints AGE", arguments: [
        (5.0, "5s"), (119, "119s"), (125, "2m5s"), (600, "10m"), (7200, "120m"), (3 * 3600 + 60, "3h1m"), (20 * 3600, "20h"),
        (3 * 86400 + 7200, "3d2h"), (10 * 86400, "10d"), (800 * 86400, "2y70d"), (-4, "0s"),
    ] as [(Double, String)])
    func durations(seconds: Double, expected: String) {
        #expect(TablePrinter.humanDuration(seconds) == expected)
    }

    @Test("printer-column JSONPath", arguments: [
        (".status.state", JSONValue.string("Normal")), (".status.pods[1].name", .string("b")), (".metadata.labels['app.kubernetes.io/name']", .string("x")),
        (".status.missing", .null), (".status.pods[5].name", .null),
    ])
    func jsonPath(path: String, expected: JSONValue) {
        let object: JSONValue = ["status": ["state": "Normal", "pods": [["name": "a"], ["name": "b"]]], "metadata": ["labels": ["app.kubernetes.io/name": "x"]]]
        #expect(TablePrinter.evaluate(path, in: object) == expected)
    }

    @Test("protobuf bodies: a Namespace and a ConfigMap as kubectl sends them; garbage is refused")
    func protobuf() {
        func field(_ number: Int, _ bytes: [UInt8]) -> [UInt8] { [UInt8(number << 3 | 2), UInt8(bytes.count)] + bytes }
        func text(_ number: Int, _ value: String) -> [UInt8] { field(number, Array(value.utf8)) }
        let metadata = text(1, "team") + field(11, text(1, "env") + text(2, "prod"))
        let namespace = field(1, metadata)
        let envelope = [0x6B, 0x38, 0x73, 0x00] + field(1, text(1, "v1") + text(2, "Namespace")) + field(2, namespace)
        #expect(ProtobufBodies.decode(envelope) == ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": "team", "labels": ["env": "prod"]]])
        let configMap = field(1, text(1, "cm")) + field(2, text(1, "k") + text(2, "v"))
        let cmEnvelope = [0x6B, 0x38, 0x73, 0x00] + field(1, text(1, "v1") + text(2, "ConfigMap")) + field(2, configMap)
        #expect(ProtobufBodies.decode(cmEnvelope) == ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "cm"], "data": ["k": "v"]])
        #expect(ProtobufBodies.decode([0x6B, 0x38, 0x73, 0x00, 0x0A, 0xFF]) == nil)
        #expect(ProtobufBodies.decode(Array("{\"kind\":\"Namespace\"}".utf8)) == nil)
        let pod = [0x6B, 0x38, 0x73, 0x00] + field(1, text(1, "v1") + text(2, "Pod")) + field(2, [])
        #expect(ProtobufBodies.decode(pod) == nil)
    }

    @Test("the write-ahead log: replay restores objects and versions; a torn last line is dropped")
    func writeAheadLog() throws {
        let directory = try ScratchDirectory()
        do {
            let storage = try APIStorage(directory: directory.path)
            for index in 0..<5 {
                try storage.commit(.create, resource: "configmaps", namespace: "ns", name: "cm-\(index)",
                                   object: ["metadata": ["name": .string("cm-\(index)"), "namespace": "ns"]])
            }
            try storage.commit(.delete(expectedResourceVersion: nil), resource: "configmaps", namespace: "ns", name: "cm-0",
                               object: storage.get("configmaps", namespace: "ns", name: "cm-0")!)
        }
        // A crash inside a write leaves half a line behind.
        let log = FileHandle(forWritingAtPath: "\(directory.path)/wal.jsonl")!
        log.seekToEndOfFile()
        log.write(Data(#"{"rv":7,"op":"put","r":"configmaps","ns":"ns","n":"half","o":{"metad"#.utf8))
        try log.close()
        let recovered = try APIStorage(directory: directory.path)
        #expect(recovered.resourceVersion == 6)
        #expect(recovered.list("configmaps", namespace: "ns").objects.compactMap { $0["metadata"]?["name"].stringValue } == ["cm-1", "cm-2", "cm-3", "cm-4"])
        #expect(recovered.get("configmaps", namespace: "ns", name: "cm-4")?["metadata"]?["resourceVersion"] == "5")
        try recovered.commit(.create, resource: "configmaps", namespace: "ns", name: "after", object: ["metadata": ["name": "after"]])
        let again = try APIStorage(directory: directory.path)
        #expect(again.get("configmaps", namespace: "ns", name: "after")?["metadata"]?["resourceVersion"] == "7")

        // A damaged record before the end is not silently skipped.
        var text = try String(contentsOfFile: "\(directory.path)/wal.jsonl", encoding: .utf8)
        text = text.replacingOccurrences(of: #""op":"put""#, with: #""op":"pu"#, options: [], range: text.range(of: #""op":"put""#))
        try text.write(toFile: "\(directory.path)/wal.jsonl", atomically: true, encoding: .utf8)
        #expect(throws: LocalClusterError.self) { _ = try APIStorage(directory: directory.path) }
    }
}
