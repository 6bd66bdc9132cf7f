import OperatorEngine

/// What an action will do, in words, for its confirmation dialog: the person reads exactly
/// which pod is fenced, promoted or copied before saying yes.
public enum ActionText {
    public struct Explanation: Sendable, Equatable {
        public var title: String
        public var text: String
        /// Why the engine will likely refuse, or what else to know; shown in the warning role.
        public var warnings: [String]
    }

    public static func explain(_ action: ConsoleAction, pair key: PairKey, snapshot: ConsoleSnapshot) -> Explanation {
        let pair = snapshot.pair(key)
        let active = nonEmpty(pair?.active) ?? "the active"
        let standby = nonEmpty(pair?.standby) ?? "the standby"
        let state = pair?.state
        var warnings: [String] = []
        switch action {
        case .switchover:
            if let state, state != PairState.normal.rawValue {
                warnings.append("The pair is \(state): the engine refuses a switchover unless the pair is Normal with both pods Healthy.")
            } else if state == nil {
                warnings.append("The pair has no status yet: the engine refuses a switchover until it is Normal.")
            }
            return Explanation(
                title: "Switchover \(key)",
                text: "Switch the active of \(key) from \(active) to \(standby): fence \(active), wait for \(standby) to replay, "
                    + "promote \(standby), re-attach \(active) as standby. No acknowledged commit is lost.",
                warnings: warnings)
        case .failover:
            let twosafe = pair?.repReturnServiceAttribute?.uppercased().contains("TWOSAFE") == true
            let loss = twosafe
                ? "With RETURN TWOSAFE no acknowledged commit is lost."
                : "Commits \(active) acknowledged that \(standby) had not received yet are lost."
            if pair?.standby == nil || pair?.standby == "" { warnings.append("There is no standby to promote: the engine will refuse.") }
            return Explanation(
                title: "Failover \(key)",
                text: "Fail over \(key) now: promote \(standby) at once, without waiting for it to replay; fence \(active) "
                    + "if it can be reached, then re-attach it as standby. \(loss)",
                warnings: warnings)
        case .reduplicate(let pod):
            if pod == pair?.active {
                warnings.append("\(pod) is the active: the engine refuses; only the standby can be copied again.")
            }
            return Explanation(
                title: "Reduplicate \(pod)",
                text: "Throw away the database of \(pod) and copy it again, whole, from the active \(active). "
                    + "\(pod) is no standby until the copy ends; \(active) keeps serving.",
                warnings: warnings)
        case .reexamine:
            return Explanation(
                title: "Reexamine \(key)",
                text: "Set spec.ttspec.reexamine of \(key) to a new value: the engine looks at both pods again from scratch "
                    + "and chooses the pair's state anew. Use it after repairing a pair by hand.",
                warnings: warnings)
        case .stopManaging:
            return Explanation(
                title: "Stop managing \(key)",
                text: "Set spec.ttspec.stopManaging of \(key) to a new value: the engine stops repairing the pair and it goes "
                    + "to ManualInterventionRequired. Change reexamine (E) to hand it back.",
                warnings: warnings)
        case .nodeDown(let node, let mode):
            let pods = podsOn(node, snapshot: snapshot)
            let what = mode == "partition"
                ? "Cut node \(node) off the network: its heartbeats stop and its processes keep running, so it turns NotReady."
                : "Power off node \(node): every process on it is killed and its heartbeats stop, so it turns NotReady."
            var text = what + (pods.isEmpty ? "" : " Pods on it: \(pods).")
            if let limit = pair?.deleteDbOnNotReadyNode {
                text += " deleteDbOnNotReadyNode is \(limit)s: once the node has been NotReady that long, the pod on it is deleted "
                    + "and comes back with a new copy on a node that works."
            }
            return Explanation(title: mode == "partition" ? "Partition \(node)" : "Power off \(node)", text: text, warnings: warnings)
        case .nodeUp(let node):
            return Explanation(
                title: "Bring up \(node)",
                text: "End the simulated failure of node \(node): it starts sending heartbeats again and turns Ready.",
                warnings: warnings)
        }
    }

    /// "sample-0 (ACTIVE), other-1 (STANDBY)".
    static func podsOn(_ node: String, snapshot: ConsoleSnapshot) -> String {
        var names: [String] = []
        for pair in snapshot.pairs {
            for pod in pair.pods where pod.node == node {
                names.append(pod.role == .none ? pod.name : "\(pod.name) (\(pod.role.rawValue))")
                if names.count == 6 { return names.joined(separator: ", ") + ", ..." }
            }
        }
        return names.joined(separator: ", ")
    }

    static func nonEmpty(_ text: String?) -> String? { text.flatMap { $0.isEmpty ? nil : $0 } }

    /// Words wrapped to lines of at most `width` columns; a word longer than a line is cut.
    public static func wrap(_ text: String, width: Int) -> [String] {
        guard width > 0 else { return [] }
        var lines: [String] = []
        var line = ""
        for word in text.split(separator: " ", omittingEmptySubsequences: true) {
            var word = String(word)
            while word.count > width {
                if !line.isEmpty {
                    lines.append(line)
                    line = ""
                }
                lines.append(String(word.prefix(width)))
                word = String(word.dropFirst(width))
            }
            if line.isEmpty {
                line = word
            } else if line.count + 1 + word.count <= width {
                line += " " + word
            } else {
                lines.append(line)
                line = word
            }
        }
        if !line.isEmpty { lines.append(line) }
        return lines
    }
}
