import Foundation
import KubeAPI
@testable import LocalCluster
@testable import OperatorEngine
import Testing

@Suite("TimesTenClassic model", .timeLimit(.minutes(5)))
struct ModelTests {
    // MARK: Defaults

    @Test("an empty ttspec reads as Oracle's defaults (repPort: 5432)")
    func defaults() {
        let spec = TTSpec()
        #expect(spec.image == "")
        #expect(spec.imagePullPolicy == .ifNotPresent)
        #expect(spec.imagePullSecret == nil)
        #expect(spec.storageClassName == nil)
        #expect(spec.storageSize == "50Gi")
        #expect(spec.logStorageSize == nil)
        #expect(spec.logStorageClassName == nil)
        #expect(spec.pollingInterval == 5)
        #expect(spec.unreachableTimeout == 30)
        #expect(spec.repStateTimeout == 30)
        #expect(spec.deleteDbOnNotReadyNode == nil)
        #expect(spec.bothDownBehavior == .best)
        #expect(spec.repReturnServiceAttribute == .noReturn)
        #expect(spec.repPort == 5432)
        #expect(spec.dbConfigMap.isEmpty && spec.dbSecret.isEmpty)
        #expect(spec.stopManaging == nil && spec.reexamine == nil)
        #expect(spec.agentGetTimeout == 60)
        #expect(spec.agentPostTimeout == 600)
        #expect(spec.agentAsyncTimeout == 600)
        #expect(spec.daemonLogSidecar == true)
        #expect(spec.replicationTopology == .activeStandbyPair)
    }

    @Test("set fields read back, unknown fields survive, and nil removes a field")
    func typedAccess() {
        var object = sampleObject(ttspec: [
            "image": "img:1", "imagePullPolicy": "Always", "storageSize": "1Gi", "pollingInterval": 2,
            "bothDownBehavior": "Manual", "repReturnServiceAttribute": "RETURN TWOSAFE", "repPort": 6000,
            "dbSecret": ["a", "b"], "stopManaging": 7, "reexamine": "x", "daemonLogSidecar": false, "futureField": "kept",
        ])
        #expect(object.ttspec.image == "img:1")
        #expect(object.ttspec.imagePullPolicy == .always)
        #expect(object.ttspec.storageSize == "1Gi")
        #expect(object.ttspec.pollingInterval == 2)
        #expect(object.ttspec.bothDownBehavior == .manual)
        #expect(object.ttspec.repReturnServiceAttribute == .returnTwosafe)
        #expect(object.ttspec.repPort == 6000)
        #expect(object.ttspec.dbSecret == ["a", "b"])
        #expect(object.ttspec.stopManaging == "7", "an integer edge trigger reads as its text")
        #expect(object.ttspec.reexamine == "x")
        #expect(object.ttspec.daemonLogSidecar == false)

        object.ttspec.deleteDbOnNotReadyNode = 60
        object.ttspec.dbSecret = []
        object.ttspec.stopManaging = nil
        #expect(object.json.value(at: ["spec", "ttspec", "deleteDbOnNotReadyNode"]) == 60)
        #expect(object.json.value(at: ["spec", "ttspec", "dbSecret"]).isNull)
        #expect(object.json.value(at: ["spec", "ttspec", "stopManaging"]).isNull)
        #expect(object.json.value(at: ["spec", "ttspec", "futureField"]) == "kept")
        #expect(object.apiVersion == "tenops.io/v1" && object.kind == "TimesTenClassic")
    }

    // MARK: Validation

    struct BadSpec: Sendable, CustomStringConvertible {
        var label: String
        var ttspec: JSONObject
        var field: String
        var message: String
        var description: String { label }
    }

    /// `ttspec` is a valid one with `key` set to `value`; the problem is expected at `key`'s path.
    static func bad(_ label: String, _ key: String, _ value: JSONValue, _ message: String, at item: String = "") -> BadSpec {
        var ttspec: JSONObject = ["image": "i"]
        ttspec[key] = value
        return BadSpec(label: label, ttspec: ttspec, field: "spec.ttspec.\(key)\(item)", message: message)
    }

    static let badSpecs: [BadSpec] = [
        BadSpec(label: "missing image", ttspec: [:], field: "spec.ttspec.image", message: "Required value"),
        bad("empty image", "image", "", "must not be empty"),
        bad("image of the wrong type", "image", 3, "must be of type string"),
        bad("negative pollingInterval", "pollingInterval", -1, "-1: must be greater than or equal to 1"),
        bad("zero unreachableTimeout", "unreachableTimeout", 0, "greater than or equal to 1"),
        bad("zero repStateTimeout", "repStateTimeout", 0, "greater than or equal to 1"),
        bad("negative deleteDbOnNotReadyNode", "deleteDbOnNotReadyNode", -5, "greater than or equal to 0"),
        bad("zero agentGetTimeout", "agentGetTimeout", 0, "greater than or equal to 1"),
        bad("zero agentPostTimeout", "agentPostTimeout", 0, "greater than or equal to 1"),
        bad("zero agentAsyncTimeout", "agentAsyncTimeout", 0, "greater than or equal to 1"),
        bad("pollingInterval as text", "pollingInterval", "5", "\"5\": must be of type integer"),
        bad("bad storageSize", "storageSize", "lots", "must be a quantity"),
        bad("zero storageSize", "storageSize", "0Gi", "must be greater than zero"),
        bad("bad logStorageSize", "logStorageSize", "1GB", "must be a quantity"),
        bad("unknown bothDownBehavior", "bothDownBehavior", "Worst", "Unsupported value: \"Worst\": supported values: \"Best\", \"Manual\""),
        bad("unknown repReturnServiceAttribute", "repReturnServiceAttribute", "RETURN RECEIPT", "\"NO RETURN\", \"RETURN TWOSAFE\""),
        bad("unknown imagePullPolicy", "imagePullPolicy", "Sometimes", "Unsupported value"),
        bad("unknown replicationTopology", "replicationTopology", "none", "Unsupported value"),
        bad("repPort out of range", "repPort", 70000, "between 1 and 65535"),
        bad("repPort on the agent's port", "repPort", 8443, "is the agent's port"),
        bad("dbSecret not a DNS name", "dbSecret", ["ok", "Not_OK"], "RFC 1123 subdomain", at: "[1]"),
        bad("dbConfigMap listed twice", "dbConfigMap", ["a", "a"], "Duplicate value", at: "[1]"),
        bad("dbSecret item not a string", "dbSecret", [1], "must be of type string", at: "[0]"),
        bad("dbSecret not a list", "dbSecret", "one", "must be of type array"),
        bad("bad storageClassName", "storageClassName", "Fast!", "RFC 1123 subdomain"),
        bad("bad imagePullSecret", "imagePullSecret", "-x", "RFC 1123 subdomain"),
        bad("daemonLogSidecar as text", "daemonLogSidecar", "yes", "must be of type boolean"),
        bad("stopManaging as a list", "stopManaging", ["x"], "must be of type integer or string"),
    ]

    @Test("each bad field gives one problem naming its path", arguments: badSpecs)
    func validationProblems(_ bad: BadSpec) {
        let problems = SpecValidation.problems(in: sampleObject(ttspec: bad.ttspec))
        #expect(problems.count == 1, "\(problems)")
        #expect(problems.first?.field == bad.field, "\(problems)")
        #expect(problems.first?.message.contains(bad.message) == true, "\(problems)")
    }

    @Test("a full valid spec and the minimal one have no problems")
    func validSpecs() {
        #expect(SpecValidation.problems(in: sampleObject()).isEmpty)
        let full = sampleObject(ttspec: [
            "image": "tenops:latest", "imagePullPolicy": "Never", "imagePullSecret": "registry", "storageClassName": "fast.example.com",
            "storageSize": "1.5Gi", "logStorageSize": "512Mi", "logStorageClassName": "slow", "pollingInterval": 1,
            "unreachableTimeout": 10, "repStateTimeout": 10, "deleteDbOnNotReadyNode": 0, "bothDownBehavior": "Manual",
            "repReturnServiceAttribute": "RETURN TWOSAFE", "repPort": 65535, "dbConfigMap": ["c1", "c2"], "dbSecret": ["s1"],
            "stopManaging": "a", "reexamine": 3, "agentGetTimeout": 1, "agentPostTimeout": 1, "agentAsyncTimeout": 1,
            "daemonLogSidecar": false, "replicationTopology": "activeStandbyPair",
        ])
        #expect(SpecValidation.problems(in: full).isEmpty, "\(SpecValidation.problems(in: full))")
    }

    @Test("every problem is reported at once, sorted by field")
    func manyProblems() {
        let problems = SpecValidation.problems(in: sampleObject(ttspec: ["pollingInterval": 0, "storageSize": "x", "repPort": 0]))
        #expect(problems.map(\.field) == ["spec.ttspec.image", "spec.ttspec.pollingInterval", "spec.ttspec.repPort", "spec.ttspec.storageSize"])
    }

    @Test("the object's name must make pod, Service and database names", arguments: [
        ("", "Required value"), ("1abc", "start with a letter"), ("a.b", "lower case alphanumeric"), ("Sample", "lower case alphanumeric"),
        ("a_b", "lower case alphanumeric"), ("abc-", "end with an alphanumeric"), (String(repeating: "a", count: 53), "no more than 52"),
    ])
    func nameProblems(_ name: String, _ message: String) {
        var object = sampleObject()
        object.metadata.name = name
        let problems = SpecValidation.problems(in: object)
        #expect(problems.count == 1 && problems[0].field == "metadata.name" && problems[0].message.contains(message), "\(problems)")
    }

    @Test("a missing spec or ttspec is reported, not crashed on")
    func missingSpec() {
        var object = sampleObject()
        object.json["spec"] = nil
        #expect(SpecValidation.problems(in: object) == [SpecProblem(field: "spec", message: "Required value")])
        object.json["spec"] = "text"
        #expect(SpecValidation.problems(in: object) == [SpecProblem(field: "spec", message: "must be an object")])
        object.json["spec"] = [:]
        #expect(SpecValidation.problems(in: object) == [SpecProblem(field: "spec.ttspec", message: "Required value")])
        object.json["spec"] = ["ttspec": 1]
        #expect(SpecValidation.problems(in: object) == [SpecProblem(field: "spec.ttspec", message: "must be an object")])
    }

    @Test("quantities", arguments: [
        ("50Gi", Int64(50) << 30), ("1.5Gi", Int64(3) << 29), ("512Mi", Int64(512) << 20), ("1G", 1_000_000_000), ("10", 10),
        ("2k", 2000), ("1Ei", Int64(1) << 60),
    ])
    func quantities(_ text: String, _ bytes: Int64) {
        #expect(Quantity.bytes(text) == bytes)
    }

    @Test("not quantities", arguments: ["", "Gi", "1GB", "-1Gi", "1.Gi", ".5Gi", "1e3", "1 Gi", "16Ei", "1..2"])
    func notQuantities(_ text: String) {
        #expect(Quantity.bytes(text) == nil)
    }

    // MARK: Edge triggers

    struct EdgeCase: Sendable, CustomStringConvertible {
        var label: String
        var specStop: String?
        var specReexamine: String?
        var recorded: Bool
        var prevStop: String?
        var prevReexamine: String?
        var stopChanged: Bool
        var reexamineChanged: Bool
        var description: String { label }
    }

    static let edgeCases: [EdgeCase] = [
        EdgeCase(label: "never reconciled: nothing counts", specStop: "1", specReexamine: "1", recorded: false,
                 stopChanged: false, reexamineChanged: false),
        EdgeCase(label: "unchanged", specStop: "1", specReexamine: "a", recorded: true, prevStop: "1", prevReexamine: "a",
                 stopChanged: false, reexamineChanged: false),
        EdgeCase(label: "stopManaging set for the first time", specStop: "x", recorded: true, stopChanged: true, reexamineChanged: false),
        EdgeCase(label: "stopManaging changed", specStop: "2", recorded: true, prevStop: "1", stopChanged: true, reexamineChanged: false),
        EdgeCase(label: "stopManaging removed", recorded: true, prevStop: "1", stopChanged: true, reexamineChanged: false),
        EdgeCase(label: "reexamine changed", specStop: "1", specReexamine: "b", recorded: true, prevStop: "1", prevReexamine: "a",
                 stopChanged: false, reexamineChanged: true),
        EdgeCase(label: "both changed", specStop: "3", specReexamine: "c", recorded: true, prevStop: "1", prevReexamine: "a",
                 stopChanged: true, reexamineChanged: true),
        EdgeCase(label: "empty equals unset", specStop: "", recorded: true, stopChanged: false, reexamineChanged: false),
    ]

    @Test("edge triggers count any change of value since the last record", arguments: edgeCases)
    func edgeTriggers(_ edge: EdgeCase) {
        var object = sampleObject()
        object.ttspec.stopManaging = edge.specStop
        object.ttspec.reexamine = edge.specReexamine
        if edge.recorded { object.status.highLevelState = "Normal" }
        object.status.prevStopManaging = edge.prevStop
        object.status.prevReexamine = edge.prevReexamine
        #expect(object.edgeTriggers == EdgeTriggers(stopManagingChanged: edge.stopChanged, reexamineChanged: edge.reexamineChanged))
        #expect(object.edgeTriggers.any == (edge.stopChanged || edge.reexamineChanged))
        object.status.recordEdgeTriggers(of: object.ttspec)
        #expect(!object.edgeTriggers.any, "after recording, the same values no longer count")
    }

    // MARK: Status

    static func fullStatus() -> TimesTenClassicStatus {
        let time = Date(timeIntervalSince1970: 1_764_000_000.25)
        var status = TimesTenClassicStatus()
        status.switchState(to: "Initializing", at: time)
        status.switchState(to: "Normal", at: time.addingTimeInterval(3))
        status.activePods = "sample-0"
        status.observedGeneration = 4
        status.lastReconcile = time
        status.prevStopManaging = "1"
        status.prevReexamine = "2"
        for ordinal in [1, 0] {
            var entry = PairPodStatus(name: "sample-\(ordinal)")
            entry.intendedState = ordinal == 0 ? "Active" : "Standby"
            entry.highLevelState = "Healthy"
            entry.ready = ordinal == 0
            entry.active = ordinal == 0
            entry.podStatus.podPhase = "Running"
            entry.podStatus.podIP = "127.0.1.\(ordinal + 1)"
            entry.podStatus.agent = "Up"
            entry.podStatus.lastTimeReachable = time
            entry.dbStatus.db = "Loaded"
            entry.dbStatus.dbUpdatable = ordinal == 0
            entry.replicationStatus.repAgent = "Running"
            entry.replicationStatus.repState = ordinal == 0 ? "ACTIVE" : "STANDBY"
            entry.replicationStatus.repPeerPState = "start"
            entry.replicationStatus.lastTimeRepStateChanged = time
            entry.replicationStatus.lagBytes = 128
            entry.node.name = "node-\(ordinal)"
            entry.node.ready = ordinal == 0 ? "True" : "False"
            entry.node.notReadySince = ordinal == 0 ? nil : time
            status[pod: entry.name] = entry
        }
        var action = ActionRecord()
        action.id = "a1"
        action.verb = "switchover"
        action.pod = "sample-1"
        action.state = "Succeeded"
        action.message = "done"
        action.startTime = time
        action.endTime = time.addingTimeInterval(1)
        status.lastAction = action
        status.setCondition(Condition(type: "SpecValid", status: "True", reason: "Valid", lastTransitionTime: time))
        return status
    }

    @Test("status fields read back what was written")
    func statusRoundTrip() throws {
        let status = Self.fullStatus()
        let time = Date(timeIntervalSince1970: 1_764_000_000.25)
        #expect(status.highLevelState == "Normal" && status.prevHighLevelState == "Initializing")
        #expect(status.lastHighLevelStateSwitch == time.addingTimeInterval(3))
        #expect(status.lastReconcile == time, "microsecond times survive")
        #expect(status.activePods == "sample-0" && status.observedGeneration == 4)
        #expect(status.podStatus.map(\.name) == ["sample-0", "sample-1"], "entries are kept in name order")
        let standby = try #require(status[pod: "sample-1"])
        #expect(standby.intendedState == "Standby" && standby.ready == false && standby.active == false)
        #expect(standby.podStatus.podIP == "127.0.1.2" && standby.podStatus.agent == "Up" && standby.podStatus.lastTimeReachable == time)
        #expect(standby.dbStatus.db == "Loaded" && standby.dbStatus.dbUpdatable == false)
        #expect(standby.replicationStatus.repState == "STANDBY" && standby.replicationStatus.lagBytes == 128)
        #expect(standby.node.name == "node-1" && standby.node.ready == "False" && standby.node.notReadySince == time)
        #expect(status[pod: "sample-0"]?.node.notReadySince == nil)
        #expect(status.lastAction?.id == "a1" && status.lastAction?.endTime == time.addingTimeInterval(1))
        #expect(status.conditions[type: "SpecValid"]?.isTrue == true)

        // The JSON carries Oracle's names.
        #expect(status.json.value(at: ["podStatus"]).arrayValue?.first?["replicationStatus"]["repState"] == "ACTIVE")
        #expect(status.json["activePods"] == "sample-0")
    }

    @Test("switchState keeps the previous state and time only on a real switch; conditions keep their transition time")
    func statusTransitions() {
        var status = TimesTenClassicStatus()
        let t0 = Date(timeIntervalSince1970: 1000), t1 = Date(timeIntervalSince1970: 2000)
        status.switchState(to: "Normal", at: t0)
        status.switchState(to: "Normal", at: t1)
        #expect(status.prevHighLevelState == nil && status.lastHighLevelStateSwitch == t0)
        status.setCondition(Condition(type: "SpecValid", status: "False", reason: "Invalid", lastTransitionTime: t0))
        status.setCondition(Condition(type: "SpecValid", status: "False", reason: "StillInvalid", lastTransitionTime: t1))
        #expect(status.conditions.count == 1 && status.conditions[0].lastTransitionTime == t0 && status.conditions[0].reason == "StillInvalid")
        status.setCondition(Condition(type: "SpecValid", status: "True", lastTransitionTime: t1))
        #expect(status.conditions[0].lastTransitionTime == t1)
        status[pod: "x-0"] = PairPodStatus(name: "x-0")
        status[pod: "x-0"] = nil
        #expect(status.podStatus.isEmpty && status.json["podStatus"] == nil)
    }

    // MARK: The CRD

    @Test("the embedded CRD is deploy/crd.yaml byte for byte")
    func embeddedCRD() throws {
        let file = try Data(contentsOf: URL(fileURLWithPath: "\(packageRoot)/deploy/crd.yaml"))
        #expect(Data(TimesTenClassicCRD.yaml.utf8) == file)
    }

    @Test("the CRD parses to the names, columns and schema it declares")
    func crdObject() throws {
        let crd = try TimesTenClassicCRD.object()
        #expect(crd.name == TimesTenClassicCRD.name)
        #expect(crd.group == "tenops.io" && crd.plural == "timestenclassics" && crd.kindName == "TimesTenClassic")
        #expect(crd.shortNames == ["ttc"] && crd.scope == "Namespaced" && crd.servedVersions == ["v1"])
        #expect(crd.json.value(at: ["spec", "names", "categories"]) == ["all"])
        let version = try #require(crd.json.value(at: ["spec", "versions"]).arrayValue?.first)
        #expect(version["subresources"]["status"] == .object([:]))
        #expect(version["additionalPrinterColumns"].arrayValue?.compactMap { $0["jsonPath"].stringValue }
            == [".status.highLevelState", ".status.activePods", ".metadata.creationTimestamp"])
        let ttspec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["ttspec"]
        #expect(ttspec["required"] == ["image"])
        #expect(ttspec["properties"]["repReturnServiceAttribute"]["enum"] == ["NO RETURN", "RETURN TWOSAFE"])
        #expect(ttspec["properties"]["storageSize"]["pattern"] == #"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$"#)
        #expect(ttspec["properties"]["repPort"]["maximum"] == 65535)
        #expect(ttspec["properties"]["daemonLogSidecar"]["type"] == "boolean")
        // Every field the model reads is declared, and nothing else.
        let declared = Set(ttspec["properties"].objectValue?.keys.map { $0 } ?? [])
        #expect(declared == Set(Self.declaredFields))
    }

    static let declaredFields = [
        "image", "imagePullPolicy", "imagePullSecret", "storageClassName", "storageSize", "logStorageSize", "logStorageClassName",
        "pollingInterval", "unreachableTimeout", "repStateTimeout", "deleteDbOnNotReadyNode", "bothDownBehavior",
        "repReturnServiceAttribute", "repPort", "dbConfigMap", "dbSecret", "stopManaging", "reexamine", "agentGetTimeout",
        "agentPostTimeout", "agentAsyncTimeout", "daemonLogSidecar", "replicationTopology",
    ]

    /// The local API server's own validator, on the CRD's schema: the schema and SpecValidation
    /// agree, and everything the status model writes is kept (not pruned).
    @Test("the CRD schema, through the local API server's validator, agrees with SpecValidation and keeps a full status")
    func schemaAgreement() throws {
        let crd = try TimesTenClassicCRD.object()
        let schema = try #require(crd.json.value(at: ["spec", "versions"]).arrayValue?.first?["schema"]["openAPIV3Schema"].objectValue)
        for bad in Self.badSpecs where bad.field.hasPrefix("spec.") && !["is the agent's port", "Duplicate value", "must be greater than zero"]
            .contains(where: bad.message.contains) {
            let body: JSONValue = ["spec": ["ttspec": .object(bad.ttspec)]]
            let (_, causes) = SchemaValidator.validate(body, schema: schema, path: "")
            #expect(causes.contains { $0.field == bad.field }, "\(bad.label): \(causes)")
        }
        let status = Self.fullStatus().json
        let (kept, causes) = SchemaValidator.validate(["spec": ["ttspec": ["image": "i"]], "status": .object(status)], schema: schema, path: "")
        #expect(causes.isEmpty, "\(causes)")
        #expect(kept["status"] == .object(status), "nothing of the status is pruned")
        var future = status
        future["somethingNew"] = ["a": 1]
        let (keptFuture, _) = SchemaValidator.validate(["spec": ["ttspec": ["image": "i"]], "status": .object(future)], schema: schema, path: "")
        #expect(keptFuture["status"]["somethingNew"] == ["a": 1], "unknown status fields are preserved")
    }

    // MARK: The YAML subset

    @Test("YAML reads through Yams into JSON: core-schema scalars, flow and block collections")
    func yamlToJSON() throws {
        let text = """
            a: 1
            b: "two: 2" # trailing
            c:
              - x
              - {k: v, n: -3}
              - name: why
                more: [1, 'it''s', "q,r", "1"]
            d: [1.5, ~, true]
            e: {}
            f: []
            g: plain text, with commas
            """
        let expected: JSONValue = [
            "a": 1, "b": "two: 2",
            "c": ["x", ["k": "v", "n": -3], ["name": "why", "more": [1, "it's", "q,r", "1"]]],
            "d": [1.5, nil, true], "e": [:], "f": [], "g": "plain text, with commas",
        ]
        #expect(try JSONValue.parseYAML(text) == expected)
    }

    @Test("text that is not YAML, or YAML that JSON cannot hold, is an error that says where", arguments: [
        "a: [1", "a: b: c", "? [1, 2]\n: x", "a: .inf",
    ])
    func yamlToJSONFailures(_ text: String) {
        #expect(throws: KubeAPIError.self) { try JSONValue.parseYAML(text) }
    }
}
