import Foundation
import KubeAPI
import OperatorEngine

@testable import Console

/// Snapshots for the view and key-map tests: a pair `default/sample` (pods sample-0 and
/// sample-1 on node-a and node-b) in any state, with neighbours when a test needs a list.
enum Fixtures {
    /// 2024-05-06 07:08:09 UTC.
    static let now = Date(timeIntervalSince1970: 1_714_979_289)
    static let utc = TimeZone(identifier: "UTC")!
    static let key = PairKey(namespace: "default", name: "sample")

    /// Every `highLevelState`, and nil for a pair the engine has not reconciled yet.
    static let states: [String?] = [
        "Initializing", "Normal", "ActiveDown", "StandbyDown", "ActiveTakeover", "BothDown", "WaitingForActive",
        "ConfiguringActive", "ManualInterventionRequired", "Reexamine", "Failed", nil,
    ]

    /// The role the table draws a state's row in.
    static func expectedRole(_ state: String?) -> Role {
        switch state {
        case nil: .muted
        case "Normal": .ok
        case "BothDown", "Failed", "ManualInterventionRequired": .error
        default: .warning
        }
    }

    static func pod(
        _ index: Int, role: PodRow.Role, podState: String? = "Healthy", phase: String? = "Running", nodeReady: Bool? = true,
        notReadySince: Date? = nil
    ) -> PodRow {
        PodRow(
            name: "sample-\(index)", role: role, phase: phase, ready: phase == "Running", restarts: 0, agent: podState == "Down" ? "Down" : "Up",
            podState: podState, database: "Loaded", updatable: role == .active, repState: role == .none ? nil : role.rawValue,
            repPeerState: role == .active ? "STANDBY" : role == .standby ? "ACTIVE" : nil, lagBytes: role == .standby ? 1536 : nil,
            node: index == 0 ? "node-a" : "node-b", nodeReady: nodeReady, nodeNotReadySince: notReadySince,
            pvc: "tt-persistent-sample-\(index)", pvcPhase: "Bound")
    }

    /// The pair in `state`, with pods as that state usually finds them.
    static func pair(state: String?, name: String = "sample", namespace: String = "default") -> PairRow {
        var pods: [PodRow]
        var active: String? = "\(name)-0", standby: String? = "\(name)-1"
        switch state {
        case nil:
            pods = [pod(0, role: .none, podState: nil, phase: "Pending"), pod(1, role: .none, podState: nil, phase: nil)]
            active = nil
            standby = nil
        case "Initializing", "ConfiguringActive", "WaitingForActive":
            pods = [pod(0, role: .active, podState: "Unknown"), pod(1, role: .standby, podState: "Unknown")]
        case "ActiveDown":
            pods = [pod(0, role: .active, podState: "Down"), pod(1, role: .standby)]
        case "StandbyDown":
            pods = [pod(0, role: .active), pod(1, role: .standby, podState: "Down")]
        case "ActiveTakeover":
            pods = [pod(0, role: .standby, podState: "Down"), pod(1, role: .active)]
            active = "\(name)-1"
            standby = "\(name)-0"
        case "BothDown", "Failed", "ManualInterventionRequired":
            pods = [pod(0, role: .active, podState: "Down"), pod(1, role: .standby, podState: "Terminal")]
        default:
            pods = [pod(0, role: .active), pod(1, role: .standby)]
        }
        let object: JSONObject = [
            "apiVersion": "tenops.io/v1", "kind": "TimesTenClassic",
            "metadata": ["name": .string(name), "namespace": .string(namespace), "managedFields": [["manager": "x"]]],
            "spec": ["ttspec": ["storageSize": "1Gi", "deleteDbOnNotReadyNode": 60, "stopManaging": "1"]],
            "status": state.map { ["highLevelState": .string($0)] } ?? [:],
        ]
        return PairRow(
            key: PairKey(namespace: namespace, name: name), state: state, previousState: state == nil ? nil : "Normal",
            stateSince: state == nil ? nil : now.addingTimeInterval(-300), active: active, standby: standby,
            lagBytes: state == nil ? nil : 1536, created: now.addingTimeInterval(-7200), deleteDbOnNotReadyNode: 60,
            repReturnServiceAttribute: "RETURN TWOSAFE", pods: pods.map { pod in
                var pod = pod
                pod.name = pod.name.replacingOccurrences(of: "sample", with: name)
                pod.pvc = pod.pvc?.replacingOccurrences(of: "sample", with: name)
                return pod
            }, object: object)
    }

    static func snapshot(
        pairs: [PairRow], events: [PairKey: [PairStatusReport.EventRow]] = [:], nodes: [NodeRow] = [], local: Bool = false,
        namespace: String? = "default", engine: EngineInfo = EngineInfo(requested: "embedded", mode: .embedded)
    ) -> ConsoleSnapshot {
        ConsoleSnapshot(
            context: "tenops-local", namespace: namespace, engine: engine, pairs: pairs,
            nodes: nodes.isEmpty ? [NodeRow(name: "node-a", ready: true), NodeRow(name: "node-b", ready: true)] : nodes,
            events: events, isLocalCluster: local, now: now)
    }

    /// `sample` among a few others, names in no particular order.
    static func listSnapshot(local: Bool = false) -> ConsoleSnapshot {
        var pairs = [pair(state: "Normal", name: "sample")]
        pairs.append(pair(state: "ActiveDown", name: "billing"))
        pairs.append(pair(state: "Failed", name: "orders", namespace: "shop"))
        pairs.append(pair(state: "Normal", name: "zeta"))
        pairs[1].created = now.addingTimeInterval(-60)
        pairs[2].created = now.addingTimeInterval(-86_400)
        return snapshot(pairs: pairs, local: local)
    }

    static func events() -> [PairStatusReport.EventRow] {
        [
            PairStatusReport.EventRow(type: "Warning", reason: "StateChange", message: "ActiveDown: sample-0 is Down",
                                      lastSeen: now.addingTimeInterval(-5)),
            PairStatusReport.EventRow(type: "Normal", reason: "StateChange", message: "Normal: sample-1 is the standby",
                                      lastSeen: now.addingTimeInterval(-120)),
            PairStatusReport.EventRow(type: "Normal", reason: "Create", message: "created the StatefulSet sample",
                                      lastSeen: now.addingTimeInterval(-600), count: 3),
        ]
    }

    static func render(
        _ snapshot: ConsoleSnapshot, _ state: ConsoleState = ConsoleState(), logs: LogRing? = nil, width: Int = 80, height: Int = 24,
        glyphs: Glyphs = .unicode
    ) -> CellGrid {
        ConsoleScreen.render(snapshot, state, logs: logs, width: width, height: height, glyphs: glyphs, timeZone: utc)
    }
}

/// Reading a rendered grid.
extension CellGrid {
    /// Every (x, y) where `text` starts.
    func find(_ text: String) -> [(x: Int, y: Int)] {
        var found: [(x: Int, y: Int)] = []
        for (y, line) in lines.enumerated() {
            let characters = Array(line)
            let wanted = Array(text)
            guard characters.count >= wanted.count else { continue }
            for x in 0...(characters.count - wanted.count) where Array(characters[x..<(x + wanted.count)]) == wanted {
                found.append((x, y))
            }
        }
        return found
    }

    func first(_ text: String) -> (x: Int, y: Int)? { find(text).first }

    /// The line (row) holding `text` first.
    func line(containing text: String) -> String? { first(text).map { lines[$0.y] } }

    func roles(at x: Int, y: Int, count: Int) -> Set<Role> { Set((x..<(x + count)).map { self[$0, y].role }) }

    /// Whether every cell holds a character the views may write: one column wide.
    var allOneColumn: Bool {
        cells.allSatisfy { cell in
            guard let scalar = cell.character.unicodeScalars.first, cell.character.unicodeScalars.count == 1 else { return false }
            return (0x20..<0x7F).contains(scalar.value) || (0xA0...0x24F).contains(scalar.value) || (0x2010...0x2027).contains(scalar.value)
                || (0x2190...0x21FF).contains(scalar.value) || (0x2500...0x259F).contains(scalar.value) || scalar.value == 0x203A
        }
    }
}
