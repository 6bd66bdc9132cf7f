import AgentTestSupport
import Foundation
import KubeAPI
@testable import OperatorEngine
import Testing

/// Pairs and events for the report's table tests. Times are relative to `now`.
enum StatusFixture {
    static let now = Date(timeIntervalSince1970: 1_764_000_000)

    static func ago(_ seconds: TimeInterval) -> Date { now.addingTimeInterval(-seconds) }

    static func pair(ttspec: JSONObject = ["image": "tenops:latest", "repReturnServiceAttribute": "RETURN TWOSAFE"],
                     _ edit: (inout TimesTenClassicStatus) -> Void = { _ in }) -> TimesTenClassic {
        var object = TimesTenClassic(name: "sample", namespace: "default")
        object.json["spec"] = ["ttspec": .object(ttspec)]
        var status = TimesTenClassicStatus()
        edit(&status)
        object.status = status
        return object
    }

    /// A healthy pod entry with the given role, on node-a (sample-1) or node-b (sample-0).
    static func pod(_ name: String, role: String, state: String = "Healthy", agent: String = "Up", lag: Int? = nil) -> PairPodStatus {
        var entry = PairPodStatus(name: name)
        let ordinal = name.hasSuffix("0") ? 0 : 1
        entry.intendedState = role
        entry.highLevelState = state
        entry.ready = role == "Active"
        entry.active = role == "Active"
        entry.podStatus.podPhase = "Running"
        entry.podStatus.podIP = ordinal == 0 ? "127.2.0.2" : "127.1.0.2"
        entry.podStatus.agent = agent
        entry.dbStatus.db = "Loaded"
        entry.dbStatus.dbUpdatable = role == "Active"
        entry.replicationStatus.repAgent = "Running"
        entry.replicationStatus.repState = role == "Active" ? "ACTIVE" : "STANDBY"
        entry.replicationStatus.repPeerPState = "streaming"
        entry.replicationStatus.lagBytes = lag
        entry.node.name = ordinal == 0 ? "node-b" : "node-a"
        entry.node.ready = "True"
        return entry
    }

    /// A Normal pair: sample-1 active, sample-0 standby, since 2m, after StandbyDown.
    static func normal(_ edit: (inout TimesTenClassicStatus) -> Void = { _ in }) -> TimesTenClassic {
        pair { status in
            status.highLevelState = "Normal"
            status.prevHighLevelState = "StandbyDown"
            status.lastHighLevelStateSwitch = ago(150)
            status.activePods = "sample-1"
            status[pod: "sample-0"] = pod("sample-0", role: "Standby", lag: 0)
            status[pod: "sample-1"] = pod("sample-1", role: "Active")
            status.setCondition(Condition(type: PairPlanner.validCondition, status: "True", reason: "SpecValid", message: "ok"))
            status.setCondition(Condition(type: PairMetadata.condition, status: "True", reason: "Present"))
            edit(&status)
        }
    }

    static let normalEvents: [PairStatusReport.EventRow] = [
        .init(type: "Normal", reason: "StateChange", message: "TimesTenClassic was Normal, now StandbyDown", lastSeen: ago(200)),
        .init(type: "Normal", reason: "StateChange", message: "TimesTenClassic was StandbyDown, now Normal", lastSeen: ago(12)),
    ]

    /// Mid-failover: sample-0 (the old active) is Down with its agent Unknown; sample-1 takes over.
    static func midFailover() -> TimesTenClassic {
        pair { status in
            status.highLevelState = "ActiveTakeover"
            status.prevHighLevelState = "ActiveDown"
            status.lastHighLevelStateSwitch = ago(3)
            status.activePods = "sample-1"
            var old = pod("sample-0", role: "Standby", state: "Down", agent: "Unknown")
            old.podStatus.podPhase = "Running"
            old.dbStatus.db = nil
            old.replicationStatus.repState = "FAILED"
            old.replicationStatus.repPeerPState = nil
            status[pod: "sample-0"] = old
            var new = pod("sample-1", role: "Active", state: "Unknown")
            new.replicationStatus.repPeerPState = "none"
            new.replicationStatus.repState = "IDLE"
            status[pod: "sample-1"] = new
        }
    }

    /// sample-0's node has been NotReady for 42 s.
    static func notReadyNode(deleteAfter: Int?) -> TimesTenClassic {
        var ttspec: JSONObject = ["image": "tenops:latest"]
        if let deleteAfter { ttspec["deleteDbOnNotReadyNode"] = .int(Int64(deleteAfter)) }
        return pair(ttspec: ttspec) { status in
            status.highLevelState = "StandbyDown"
            status.prevHighLevelState = "Normal"
            status.lastHighLevelStateSwitch = ago(40)
            status.activePods = "sample-1"
            var standby = pod("sample-0", role: "Standby", state: "Unknown", agent: "Unknown")
            standby.node.ready = "Unknown"
            standby.node.notReadySince = ago(42)
            status[pod: "sample-0"] = standby
            status[pod: "sample-1"] = pod("sample-1", role: "Active")
        }
    }
}

/// One case of the renderer's table: what must appear and what must not.
struct ReportCase: Sendable, CustomTestStringConvertible {
    let name: String
    let pair: TimesTenClassic
    var events: [PairStatusReport.EventRow] = []
    var color = false
    var width = 0
    /// Whole lines that must appear.
    var lines: [String] = []
    /// Table rows, as their cells (split on runs of two or more blanks), found by the first cell.
    var rows: [[String]] = []
    /// Substrings that must appear.
    var contains: [String] = []
    /// Substrings that must not appear.
    var absent: [String] = []
    var testDescription: String { name }
}

@Suite("tenops status: the report", .timeLimit(.minutes(5)))
struct StatusReportTests {
    static let red = "\u{1B}[31m", green = "\u{1B}[32m", yellow = "\u{1B}[33m", reset = "\u{1B}[0m"

    static let longMessage = "Pod sample-0 on node-b: the agent did not answer for 30s; its database counts as down and will be duplicated again from sample-1 once the node is back"

    static let cases: [ReportCase] = [
        ReportCase(
            name: "Normal pair", pair: StatusFixture.normal(), events: StatusFixture.normalEvents,
            lines: ["State       Normal (since 2m, was StandbyDown)", "Active      sample-1", "Replication RETURN TWOSAFE",
                    "Spec        Valid; metadata present"],
            rows: [["sample-0", "Standby", "Healthy", "Running", "Up", "Loaded", "STANDBY", "streaming", "0 B", "node-b Ready", "127.2.0.2"],
                   ["sample-1", "Active", "Healthy", "Running", "Up", "Loaded", "ACTIVE", "streaming", "-", "node-a Ready", "127.1.0.2"],
                   ["12s", "Normal", "StateChange", "TimesTenClassic was StandbyDown, now Normal"],
                   ["3m", "Normal", "StateChange", "TimesTenClassic was Normal, now StandbyDown"]],
            absent: ["Last action", "\u{1B}", "…"]),
        ReportCase(
            name: "mid-failover: ActiveTakeover, old active Down with its agent Unknown", pair: StatusFixture.midFailover(),
            events: [.init(type: "Warning", reason: "StateChange", message: "TimesTenClassic was Normal, now ActiveDown", lastSeen: StatusFixture.ago(5)),
                     .init(type: "Normal", reason: "StateChange", message: "TimesTenClassic was ActiveDown, now ActiveTakeover", lastSeen: StatusFixture.ago(3))],
            lines: ["State       ActiveTakeover (since 3s, was ActiveDown)", "Active      sample-1"],
            rows: [["sample-0", "Standby", "Down", "Running", "Unknown", "-", "FAILED", "-", "-", "node-b Ready", "127.2.0.2"],
                   ["sample-1", "Active", "Unknown", "Running", "Up", "Loaded", "IDLE", "none", "-", "node-a Ready", "127.1.0.2"],
                   ["3s", "Normal", "StateChange", "TimesTenClassic was ActiveDown, now ActiveTakeover"],
                   ["5s", "Warning", "StateChange", "TimesTenClassic was Normal, now ActiveDown"]],
            absent: ["Spec "]),
        ReportCase(
            name: "NotReady node with deleteDbOnNotReadyNode", pair: StatusFixture.notReadyNode(deleteAfter: 60),
            rows: [["sample-0", "Standby", "Unknown", "Running", "Unknown", "Loaded", "STANDBY", "streaming", "-",
                    "node-b NotReady 42s (deletes at 60s)", "127.2.0.2"]],
            contains: ["node-a Ready"], absent: ["Replication RETURN"]),
        ReportCase(
            name: "NotReady node without deleteDbOnNotReadyNode", pair: StatusFixture.notReadyNode(deleteAfter: nil),
            lines: ["Replication NO RETURN"],
            rows: [["sample-0", "Standby", "Unknown", "Running", "Unknown", "Loaded", "STANDBY", "streaming", "-", "node-b NotReady 42s", "127.2.0.2"]],
            absent: ["deletes at"]),
        ReportCase(
            name: "no status yet", pair: StatusFixture.pair(),
            lines: ["Pair        default/sample", "State       (not reconciled yet)", "Replication RETURN TWOSAFE",
                    "No pod status yet: the operator has not reconciled this pair.", "Events  <none>"],
            absent: ["Active", "POD", "Last action", "Spec"]),
        ReportCase(
            name: "a lastAction that succeeded",
            pair: StatusFixture.normal { status in
                var action = ActionRecord(id: "a1b2")
                action.verb = "switchover"
                action.pod = "sample-1"
                action.state = ActionState.succeeded
                action.message = "sample-1 is active\nsample-0 is standby"
                action.startTime = StatusFixture.ago(130)
                action.endTime = StatusFixture.ago(125)
                status.lastAction = action
            },
            lines: ["Last action  switchover sample-1 (a1b2) Succeeded 2m ago: sample-1 is active sample-0 is standby"]),
        ReportCase(
            name: "a lastAction still running, with progress",
            pair: StatusFixture.normal { status in
                var action = ActionRecord(id: "c3")
                action.verb = "reduplicate"
                action.pod = "sample-0"
                action.state = ActionState.running
                action.startTime = StatusFixture.ago(7)
                action.phase = "copying"
                action.method = "basebackup"
                action.bytesDone = 1536 * 1024
                action.bytesTotal = 12 * 1024 * 1024
                status.lastAction = action
            },
            lines: ["Last action  reduplicate sample-0 (c3) Running since 7s, copying by basebackup 1.5 MiB of 12 MiB"]),
        ReportCase(
            name: "color on", pair: StatusFixture.midFailover(), events: [
                .init(type: "Warning", reason: "TaskFailed", message: "agent unreachable", lastSeen: StatusFixture.ago(4)),
                .init(type: "Normal", reason: "Info", message: "fine", lastSeen: StatusFixture.ago(9)),
            ], color: true,
            contains: ["State       \(yellow)ActiveTakeover\(reset) (since 3s", "\(red)Down\(reset)", "\(yellow)Unknown\(reset)",
                       "\(red)FAILED\(reset)", "\(green)Up\(reset)", "\(green)node-a Ready\(reset)", "\(red)Warning\(reset)"],
            absent: ["\(green)Normal", "\(red)Normal"]),
        ReportCase(
            name: "color on: Normal, NotReady node, Failed action",
            pair: {
                var object = StatusFixture.notReadyNode(deleteAfter: 60)
                object.status.highLevelState = "Normal"
                var action = ActionRecord(id: "x")
                action.verb = "failover"
                action.state = ActionState.failed
                action.endTime = StatusFixture.ago(1)
                object.status.lastAction = action
                return object
            }(),
            color: true,
            contains: ["\(green)Normal\(reset)", "\(red)node-b NotReady 42s (deletes at 60s)\(reset)", "\(red)Failed\(reset) 1s ago"]),
        ReportCase(
            name: "color on: ManualInterventionRequired and an invalid spec",
            pair: StatusFixture.pair { status in
                status.highLevelState = "ManualInterventionRequired"
                status.setCondition(Condition(type: PairPlanner.validCondition, status: "False", reason: "InvalidSpec",
                                              message: "spec.ttspec.image: required"))
            },
            color: true,
            contains: ["\(red)ManualInterventionRequired\(reset)", "Spec        \(red)Invalid\(reset): spec.ttspec.image: required"]),
        ReportCase(
            name: "color off", pair: StatusFixture.midFailover(), events: StatusFixture.normalEvents, color: false,
            lines: ["State       ActiveTakeover (since 3s, was ActiveDown)"], absent: ["\u{1B}"]),
        ReportCase(
            name: "narrow width cuts messages, not the pod table", pair: StatusFixture.normal { status in
                status.setCondition(Condition(type: PairMetadata.condition, status: "False", reason: "Missing",
                                              message: "dbSecret sample-db does not exist in namespace default: the database cannot be created until it does"))
                var action = ActionRecord(id: "a1")
                action.verb = "switchover"
                action.state = ActionState.failed
                action.message = longMessage
                action.endTime = StatusFixture.ago(30)
                status.lastAction = action
            },
            events: [.init(type: "Warning", reason: "Error", message: longMessage, lastSeen: StatusFixture.ago(30))],
            width: 60,
            lines: ["30s  Warning  Error   \(String(longMessage.prefix(37)))…",
                    "Last action  switchover (a1) Failed 30s ago: Pod sample-0 o…",
                    "Spec        Valid; metadata missing: dbSecret sample-db doe…"],
            rows: [["sample-0", "Standby", "Healthy", "Running", "Up", "Loaded", "STANDBY", "streaming", "0 B", "node-b Ready", "127.2.0.2"]]),
        ReportCase(
            name: "wide width keeps messages whole", pair: StatusFixture.normal(),
            events: [.init(type: "Warning", reason: "Error", message: longMessage, lastSeen: StatusFixture.ago(30))],
            width: 400, rows: [["30s", "Warning", "Error", longMessage]], absent: ["…"]),
        ReportCase(
            name: "only the last 10 events, newest first; repeats show their count", pair: StatusFixture.normal(),
            events: (1...14).map { .init(type: "Normal", reason: "Info", message: "event \($0)", lastSeen: StatusFixture.ago(Double($0) * 60)) }
                + [.init(type: "Warning", reason: "Error", message: "repeated", lastSeen: StatusFixture.ago(30),
                         firstSeen: StatusFixture.ago(600), count: 3),
                   .init(type: "Normal", reason: "Info", message: "timeless", lastSeen: nil)],
            rows: [["30s (x3 over 10m)", "Warning", "Error", "repeated"], ["1m", "Normal", "Info", "event 1"], ["9m", "Normal", "Info", "event 9"]],
            absent: ["event 10", "event 14", "timeless"]),
    ]

    @Test("the report shows what each case needs", arguments: cases)
    func report(_ example: ReportCase) {
        let text = PairStatusReport.render(
            pair: example.pair, events: example.events, now: StatusFixture.now, color: example.color, width: example.width)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        for line in example.lines {
            #expect(lines.contains(line), "missing line \(line.debugDescription) in\n\(text)")
        }
        for row in example.rows {
            let found = lines.map(Self.cells).first { $0.first == row.first }
            #expect(found == row, "row \(row.first ?? "") in\n\(text)")
        }
        for fragment in example.contains {
            #expect(text.contains(fragment), "missing \(fragment.debugDescription) in\n\(text)")
        }
        for fragment in example.absent {
            #expect(!text.contains(fragment), "unexpected \(fragment.debugDescription) in\n\(text)")
        }
        #expect(text.hasSuffix("\n") && !lines.contains { $0.hasSuffix(" ") }, "no trailing blanks:\n\(text)")
        if example.width > 0 {
            for line in lines where !line.hasPrefix("sample-") && !line.hasPrefix("POD ") {
                #expect(PairStatusReport.visibleCount(line) <= example.width, "too wide: \(line.debugDescription)")
            }
        }
        // With colors, the layout is the same once the codes are taken out.
        if example.color {
            let plain = PairStatusReport.render(
                pair: example.pair, events: example.events, now: StatusFixture.now, color: false, width: example.width)
            #expect(Self.stripANSI(text) == plain)
            #expect(text != plain, "colors were asked for")
        }
    }

    @Test("a Normal pair, whole")
    func normalWhole() {
        let text = PairStatusReport.render(
            pair: StatusFixture.normal(), events: StatusFixture.normalEvents, now: StatusFixture.now, color: false, width: 120)
        #expect(text == """
            Pair        default/sample
            State       Normal (since 2m, was StandbyDown)
            Active      sample-1
            Replication RETURN TWOSAFE
            Spec        Valid; metadata present

            POD       ROLE     STATE    PHASE    AGENT  DB      REPSTATE  PEER       LAG  NODE          IP
            sample-0  Standby  Healthy  Running  Up     Loaded  STANDBY   streaming  0 B  node-b Ready  127.2.0.2
            sample-1  Active   Healthy  Running  Up     Loaded  ACTIVE    streaming  -    node-a Ready  127.1.0.2

            Events (newest first)
            AGE  TYPE    REASON       MESSAGE
            12s  Normal  StateChange  TimesTenClassic was StandbyDown, now Normal
            3m   Normal  StateChange  TimesTenClassic was Normal, now StandbyDown

            """)
    }

    @Test("events of the same second: the later in the list (the API's name order) is the newer")
    func sameSecond() {
        let second = StatusFixture.ago(12)
        let events: [PairStatusReport.EventRow] = [
            .init(type: "Normal", reason: "StateChange", message: "Normal -> ActiveDown", lastSeen: second),
            .init(type: "Normal", reason: "StateChange", message: "ActiveDown -> ActiveTakeover", lastSeen: second),
            .init(type: "Normal", reason: "Info", message: "older", lastSeen: StatusFixture.ago(20)),
            .init(type: "Normal", reason: "StateChange", message: "ActiveTakeover -> StandbyDown", lastSeen: second),
        ]
        #expect(PairStatusReport.newestFirst(events).map(\.message)
            == ["ActiveTakeover -> StandbyDown", "ActiveDown -> ActiveTakeover", "Normal -> ActiveDown", "older"])
    }

    @Test("events that cannot be listed are said so, in their place")
    func eventsError() {
        let text = PairStatusReport.render(
            pair: StatusFixture.normal(), events: [PairStatusReport.EventRow](), now: StatusFixture.now, color: false, width: 0,
            eventsError: "403 Forbidden: events is forbidden")
        #expect(text.hasSuffix("Events  cannot be listed: 403 Forbidden: events is forbidden\n"), "\(text)")
    }

    @Test("a core/v1 Event reads as a row: lastTimestamp, then eventTime, then firstTimestamp")
    func eventRows() {
        var event = CoreEvent(name: "sample.1", namespace: "default")
        event.type = "Warning"
        event.reason = "TaskFailed"
        event.message = "m"
        event.count = 2
        event.firstTimestamp = StatusFixture.ago(100)
        event.lastTimestamp = StatusFixture.ago(10)
        let row = PairStatusReport.EventRow(event)
        #expect(row == .init(type: "Warning", reason: "TaskFailed", message: "m", lastSeen: StatusFixture.ago(10),
                             firstSeen: StatusFixture.ago(100), count: 2))
        var micro = CoreEvent(name: "sample.2", namespace: "default")
        micro.json["eventTime"] = .string(KubeTime.formatMicro(StatusFixture.ago(7)))
        #expect(PairStatusReport.EventRow(micro).lastSeen == StatusFixture.ago(7) && PairStatusReport.EventRow(micro).count == 1)
        event.lastTimestamp = nil
        #expect(PairStatusReport.EventRow(event).lastSeen == StatusFixture.ago(100))
    }

    @Test("ages as kubectl prints them", arguments: [
        (0.4, "0s"), (-0.5, "0s"), (-5, "<invalid>"), (5, "5s"), (59.9, "59s"), (60, "1m"), (150, "2m"), (3599, "59m"),
        (3600, "1h"), (3 * 3600 + 59, "3h"), (86_399, "23h"), (4 * 86_400 + 100, "4d"), (400 * 86_400, "1y"),
    ] as [(Double, String)])
    func ages(_ seconds: Double, _ expected: String) {
        #expect(PairStatusReport.age(seconds) == expected)
    }

    @Test("bytes in binary units", arguments: [
        (0, "0 B"), (512, "512 B"), (1023, "1023 B"), (1024, "1 KiB"), (1536, "1.5 KiB"), (12 * 1024 + 700, "12 KiB"),
        (3 * 1024 * 1024 + 300 * 1024, "3.2 MiB"), (1 << 30, "1 GiB"),
    ] as [(Int, String)])
    func bytes(_ count: Int, _ expected: String) {
        #expect(PairStatusReport.bytes(count) == expected)
    }

    static func cells(_ line: String) -> [String] {
        stripANSI(line).split(separator: "  ", omittingEmptySubsequences: true)
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    static func stripANSI(_ text: String) -> String {
        var result = ""
        var inEscape = false
        for character in text {
            if character == "\u{1B}" { inEscape = true; continue }
            if inEscape {
                if character.isLetter { inEscape = false }
                continue
            }
            result.append(character)
        }
        return result
    }
}

/// Nested, so that `--filter StatusReportTests` runs it too.
extension StatusReportTests {
    /// The real `tenops status` against a real local API server, through the real kubectl.
    @Suite("tenops status on a local API server", .serialized, .timeLimit(.minutes(5)))
    struct Command {
        @Test("tenops status prints the pair, its pods and its events; a missing pair exits 1")
        func statusCommand() async throws {
            let tenops = try tenopsBinary()
            try await withLocalServer { kubectl in
                func run(_ arguments: [String], input: String? = nil) async throws -> ProcessOutput {
                    let output = try await kubectl(arguments, input)
                    #expect(output.status == 0, "kubectl \(arguments): \(output)")
                    return output
                }
                // tenops gets its own copy of kubectl's kubeconfig (certificates inline).
                let config = try await run(["config", "view", "--raw", "--flatten"])
                let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("tenops-status-\(UUID().uuidString)").path
                try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
                defer { try? FileManager.default.removeItem(atPath: scratch) }
                let kubeconfig = "\(scratch)/kubeconfig"
                try config.out.write(toFile: kubeconfig, atomically: true, encoding: .utf8)
                func status(_ arguments: [String]) async throws -> ProcessOutput {
                    var environment = ProcessInfo.processInfo.environment
                    environment["KUBECONFIG"] = nil
                    environment["COLUMNS"] = nil
                    environment["NO_COLOR"] = nil
                    environment["HOME"] = scratch
                    return try await ChildProcess.run(tenops, ["status"] + arguments + ["--kubeconfig", kubeconfig], environment: environment)
                }
                let namespace = "status-test"
                _ = try await run(["create", "namespace", namespace])

                // Before the CRD exists, the pair is not found either, with a hint.
                let noCRD = try await status(["sample", "-n", namespace])
                #expect(noCRD.status == 1 && noCRD.err.contains("timestenclassic \(namespace)/sample not found"), "\(noCRD)")
                #expect(noCRD.err.contains("is deploy/crd.yaml applied?"), "\(noCRD)")

                _ = try await run(["apply", "-f", "\(packageRoot)/deploy/crd.yaml"])
                let pair = """
                    {"apiVersion":"tenops.io/v1","kind":"TimesTenClassic","metadata":{"name":"sample","namespace":"\(namespace)"},
                     "spec":{"ttspec":{"image":"tenops:latest","repReturnServiceAttribute":"RETURN TWOSAFE","deleteDbOnNotReadyNode":60}}}
                    """
                _ = try await run(["apply", "-f", "-"], input: pair)

                // Not reconciled yet.
                let fresh = try await status(["sample", "-n", namespace])
                #expect(fresh.status == 0, "\(fresh)")
                #expect(fresh.out.contains("Pair        \(namespace)/sample\nState       (not reconciled yet)\n"), "\(fresh)")
                #expect(fresh.out.contains("Events  <none>"), "\(fresh)")

                // The engine's status, as it would write it.
                let now = Date()
                let uid = try #require(try await run(["get", "ttc", "sample", "-n", namespace, "-o", "jsonpath={.metadata.uid}"]).out
                    .nonEmpty)
                let object = StatusFixture.pair { status in
                    status.highLevelState = "Normal"
                    status.prevHighLevelState = "StandbyDown"
                    status.lastHighLevelStateSwitch = now.addingTimeInterval(-150)
                    status.activePods = "sample-1"
                    status[pod: "sample-0"] = StatusFixture.pod("sample-0", role: "Standby", lag: 2048)
                    status[pod: "sample-1"] = StatusFixture.pod("sample-1", role: "Active")
                    var standby = status[pod: "sample-0"]!
                    standby.node.ready = "False"
                    standby.node.notReadySince = now.addingTimeInterval(-300)
                    status[pod: "sample-0"] = standby
                    status.setCondition(Condition(type: PairPlanner.validCondition, status: "True", reason: "SpecValid", message: "ok"))
                    status.setCondition(Condition(type: PairMetadata.condition, status: "True", reason: "Present"))
                    var action = ActionRecord(id: "a1b2")
                    action.verb = "switchover"
                    action.state = ActionState.succeeded
                    action.message = "sample-1 is active"
                    action.endTime = now.addingTimeInterval(-130)
                    status.lastAction = action
                }
                _ = try await run(["patch", "ttc", "sample", "-n", namespace, "--subresource=status", "--type=merge",
                                   "-p", JSONWriter.string(["status": .object(object.status.json)])])

                // Events: two about the pair, one about a pod, one about an earlier pair of the same name.
                func event(_ name: String, kind: String = "TimesTenClassic", object: String = "sample", uid: String?, type: String,
                           reason: String, message: String, secondsAgo: TimeInterval) -> String {
                    var involved: JSONObject = ["kind": .string(kind), "name": .string(object), "namespace": .string(namespace)]
                    if kind == "TimesTenClassic" { involved["apiVersion"] = "tenops.io/v1" }
                    if let uid { involved["uid"] = .string(uid) }
                    let time = KubeTime.format(now.addingTimeInterval(-secondsAgo))
                    let body: JSONObject = [
                        "apiVersion": "v1", "kind": "Event",
                        "metadata": ["name": .string(name), "namespace": .string(namespace)],
                        "involvedObject": .object(involved), "type": .string(type), "reason": .string(reason), "message": .string(message),
                        "firstTimestamp": .string(time), "lastTimestamp": .string(time), "count": 1, "source": ["component": "tenops"],
                    ]
                    return JSONWriter.string(.object(body))
                }
                _ = try await run(["apply", "-f", "-"], input: event(
                    "sample.1", uid: uid, type: "Normal", reason: "StateChange", message: "TimesTenClassic was Normal, now StandbyDown",
                    secondsAgo: 400))
                _ = try await run(["apply", "-f", "-"], input: event(
                    "sample.2", uid: uid, type: "Normal", reason: "StateChange", message: "TimesTenClassic was StandbyDown, now Normal",
                    secondsAgo: 150))
                _ = try await run(["apply", "-f", "-"], input: event(
                    "sample.3", uid: nil, type: "Warning", reason: "TaskFailed", message: "a warning without a uid", secondsAgo: 3 * 3600 + 100))
                _ = try await run(["apply", "-f", "-"], input: event(
                    "sample-0.1", kind: "Pod", object: "sample-0", uid: nil, type: "Warning", reason: "BackOff", message: "about a pod",
                    secondsAgo: 10))
                _ = try await run(["apply", "-f", "-"], input: event(
                    "sample.old", uid: "00000000-0000-4000-8000-000000000000", type: "Warning", reason: "Error",
                    message: "about an earlier sample", secondsAgo: 20))

                let shown = try await status(["sample", "-n", namespace])
                #expect(shown.status == 0, "\(shown)")
                let text = shown.out
                print("tenops status sample -n \(namespace):\n\(text)")
                #expect(!text.contains("\u{1B}"), "no colors into a file")
                let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
                for line in ["Pair        \(namespace)/sample", "State       Normal (since 2m, was StandbyDown)", "Active      sample-1",
                             "Replication RETURN TWOSAFE", "Spec        Valid; metadata present",
                             "Last action  switchover (a1b2) Succeeded 2m ago: sample-1 is active", "Events (newest first)"] {
                    #expect(lines.contains(line), "missing \(line.debugDescription)")
                }
                let rows = lines.map(StatusReportTests.cells)
                #expect(rows.contains(["sample-0", "Standby", "Healthy", "Running", "Up", "Loaded", "STANDBY", "streaming", "2 KiB",
                                       "node-b NotReady 5m (deletes at 60s)", "127.2.0.2"]), "\(text)")
                #expect(rows.contains(["sample-1", "Active", "Healthy", "Running", "Up", "Loaded", "ACTIVE", "streaming", "-",
                                       "node-a Ready", "127.1.0.2"]), "\(text)")
                let events = Array(rows.drop { $0 != ["AGE", "TYPE", "REASON", "MESSAGE"] }.dropFirst().prefix { !$0.isEmpty })
                #expect(events == [["2m", "Normal", "StateChange", "TimesTenClassic was StandbyDown, now Normal"],
                                   ["6m", "Normal", "StateChange", "TimesTenClassic was Normal, now StandbyDown"],
                                   ["3h", "Warning", "TaskFailed", "a warning without a uid"]], "\(text)")
                #expect(!text.contains("about a pod") && !text.contains("about an earlier sample"), "\(text)")

                // The namespace comes from the kubeconfig's context when -n is absent: default has no such pair.
                let elsewhere = try await status(["sample"])
                #expect(elsewhere.status == 1 && elsewhere.err.contains("timestenclassic default/sample not found"), "\(elsewhere)")
                let missing = try await status(["nope", "-n", namespace])
                #expect(missing.status == 1, "\(missing)")
                #expect(missing.err.contains("timestenclassic \(namespace)/nope not found"), "\(missing)")
                #expect(!missing.err.contains("crd.yaml"), "the CRD is installed: no hint: \(missing)")
                #expect(missing.out.isEmpty, "\(missing)")
            }
        }
    }
}

extension String {
    fileprivate var nonEmpty: String? { isEmpty ? nil : self }
}
