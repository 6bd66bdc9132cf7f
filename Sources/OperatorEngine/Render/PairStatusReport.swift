import Foundation
import KubeAPI

/// What `tenops status NAME` prints: the pair, its two pods (roles, states, replication, lag,
/// nodes), the last manual action and the pair's last events. Pure: no I/O, the clock is a
/// parameter, so a table test can pin every line.
public enum PairStatusReport {
    /// How many events the report shows.
    public static let eventLimit = 10

    /// One Event about the pair, as the report needs it. `init(_:)` reads a core/v1 Event.
    public struct EventRow: Sendable, Equatable {
        /// Normal or Warning.
        public var type: String
        public var reason: String
        public var message: String
        /// When it last happened; nil when the Event carries no time.
        public var lastSeen: Date?
        /// When it first happened (for "x3 over 2m").
        public var firstSeen: Date?
        public var count: Int

        public init(type: String, reason: String, message: String, lastSeen: Date?, firstSeen: Date? = nil, count: Int = 1) {
            self.type = type
            self.reason = reason
            self.message = message
            self.lastSeen = lastSeen
            self.firstSeen = firstSeen
            self.count = count
        }

        /// lastTimestamp, else eventTime (events written through events.k8s.io), else
        /// firstTimestamp, else the object's creationTimestamp: what kubectl falls back to.
        public init(_ event: CoreEvent) {
            let eventTime = event.json["eventTime"]?.stringValue.flatMap(KubeTime.parse)
            let first = event.firstTimestamp ?? eventTime ?? event.metadata.creationTimestamp
            self.init(
                type: event.type ?? "", reason: event.reason ?? "", message: event.message ?? "",
                lastSeen: event.lastTimestamp ?? eventTime ?? first, firstSeen: first, count: event.count)
        }
    }

    /// The report for `pair`, with its events (any order: the newest `eventLimit` are shown, newest
    /// first). `color` adds ANSI colors. Messages are cut so that their lines fit in `width`
    /// columns; `width <= 0` cuts nothing (output to a pipe or file). `eventsError` says why the
    /// events could not be read, and is printed in their place.
    public static func render(
        pair: TimesTenClassic, events: [CoreEvent], now: Date, color: Bool, width: Int, eventsError: String? = nil
    ) -> String {
        render(pair: pair, events: events.map(EventRow.init), now: now, color: color, width: width, eventsError: eventsError)
    }

    public static func render(
        pair: TimesTenClassic, events: [EventRow], now: Date, color: Bool, width: Int, eventsError: String? = nil
    ) -> String {
        let paint = Painter(enabled: color)
        let status = pair.status
        let reconciled = status.highLevelState != nil
        var lines: [String] = []

        // The header block.
        let namespace = pair.metadata.namespace ?? "default"
        var header: [(String, String)] = [("Pair", "\(namespace)/\(pair.metadata.name ?? "")")]
        if let state = status.highLevelState {
            var details: [String] = []
            if let since = status.lastHighLevelStateSwitch { details.append("since \(age(now.timeIntervalSince(since)))") }
            if let previous = status.prevHighLevelState { details.append("was \(previous)") }
            let painted = paint(state, tone: tone(ofPairState: state))
            header.append(("State", details.isEmpty ? painted : "\(painted) (\(details.joined(separator: ", ")))"))
        } else {
            header.append(("State", "(not reconciled yet)"))
        }
        if reconciled {
            let active = status.activePods.flatMap { $0.isEmpty ? nil : $0 } ?? "none"
            header.append(("Active", active))
        }
        header.append(("Replication", pair.ttspec.repReturnServiceAttribute.rawValue))
        if let spec = specSummary(status, paint: paint) { header.append(("Spec", spec)) }
        if let generation = pair.metadata.generation, let observed = status.observedGeneration, observed < generation {
            header.append(("Generation", paint("\(generation), engine has seen \(observed)", tone: .warn)))
        }
        let labelWidth = 12
        for (label, value) in header {
            lines.append(cut(label.padding(toLength: labelWidth, withPad: " ", startingAt: 0) + value, width: width, paint: paint))
        }

        // The pods.
        lines.append("")
        let pods = status.podStatus
        if pods.isEmpty {
            lines.append(reconciled ? "No pod status yet." : "No pod status yet: the operator has not reconciled this pair.")
        } else {
            let headings = ["POD", "ROLE", "STATE", "PHASE", "AGENT", "DB", "REPSTATE", "PEER", "LAG", "NODE", "IP"]
            let rows = pods.map { podRow($0, ttspec: pair.ttspec, now: now) }
            lines += table(headings: headings, rows: rows, paint: paint)
        }

        // The last manual action.
        if let action = status.lastAction {
            lines.append("")
            lines.append(cut("Last action  " + actionSummary(action, now: now, paint: paint), width: width, paint: paint))
        }

        // The events, newest first.
        lines.append("")
        let recent = newestFirst(events).prefix(eventLimit)
        if let eventsError {
            lines.append(cut("Events  cannot be listed: " + oneLine(eventsError), width: width, paint: paint))
        } else if recent.isEmpty {
            lines.append("Events  <none>")
        } else {
            lines.append("Events (newest first)")
            let rows: [[Cell]] = recent.map { event in
                var when = event.lastSeen.map { age(now.timeIntervalSince($0)) } ?? "<unknown>"
                if event.count > 1 {
                    let over = event.firstSeen.map { " over \(age(now.timeIntervalSince($0)))" } ?? ""
                    when += " (x\(event.count)\(over))"
                }
                let type = Cell(event.type, tone: event.type == "Warning" ? .bad : .plain)
                return [Cell(when), type, Cell(event.reason), Cell(oneLine(event.message))]
            }
            lines += table(headings: ["AGE", "TYPE", "REASON", "MESSAGE"], rows: rows, paint: paint, cutLastTo: width)
        }
        return lines.joined(separator: "\n") + "\n"
    }

    // MARK: - Formats

    /// kubectl's short age: 5s, 2m, 3h, 4d, 2y (`ShortHumanDuration`).
    public static func age(_ interval: TimeInterval) -> String {
        let seconds = Int(interval.rounded(.down))
        if seconds < -1 { return "<invalid>" }
        if seconds < 0 { return "0s" }
        if seconds < 60 { return "\(seconds)s" }
        if seconds < 3600 { return "\(seconds / 60)m" }
        let hours = seconds / 3600
        if hours < 24 { return "\(hours)h" }
        if hours < 24 * 365 { return "\(hours / 24)d" }
        return "\(hours / 24 / 365)y"
    }

    /// Bytes in binary units: 0 B, 512 B, 1.5 KiB, 12 KiB, 3.2 MiB, 1 GiB.
    public static func bytes(_ count: Int) -> String {
        if count < 1024 { return "\(count) B" }
        let units = ["KiB", "MiB", "GiB", "TiB", "PiB"]
        var value = Double(count) / 1024
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        if value < 10 {
            let tenths = (value * 10).rounded(.down) / 10
            let text = tenths == tenths.rounded(.down) ? String(Int(tenths)) : String(format: "%.1f", tenths)
            return "\(text) \(units[unit])"
        }
        return "\(Int(value.rounded(.down))) \(units[unit])"
    }

    // MARK: - Parts

    static func podRow(_ entry: PairPodStatus, ttspec: TTSpec, now: Date) -> [Cell] {
        let pod = entry.podStatus, db = entry.dbStatus, replication = entry.replicationStatus
        func text(_ value: String?) -> String { value.flatMap { $0.isEmpty ? nil : $0 } ?? "-" }
        let state = entry.highLevelState
        let agent = pod.agent
        return [
            Cell(entry.name),
            Cell(text(entry.intendedState)),
            Cell(text(state), tone: state.map(tone(ofPodState:)) ?? .plain),
            Cell(text(pod.podPhase), tone: pod.podPhase == "Failed" ? .bad : .plain),
            Cell(text(agent), tone: agent == "Up" ? .good : agent == "Down" ? .bad : agent == nil ? .plain : .warn),
            Cell(text(db.db)),
            Cell(text(replication.repState), tone: replication.repState == "FAILED" ? .bad : .plain),
            Cell(text(replication.repPeerPState)),
            Cell(replication.lagBytes.map(bytes) ?? "-"),
            nodeCell(entry.node, ttspec: ttspec, now: now),
            Cell(text(pod.podIP)),
        ]
    }

    /// "node-b Ready", "node-b NotReady 42s (deletes at 60s)", "-".
    static func nodeCell(_ node: PairPodStatus.NodeBlock, ttspec: TTSpec, now: Date) -> Cell {
        guard !node.name.isEmpty else { return Cell("-") }
        switch node.ready {
        case "True":
            return Cell("\(node.name) Ready", tone: .good)
        case nil where node.notReadySince == nil:
            return Cell(node.name)
        default:
            var text = "\(node.name) NotReady"
            if let since = node.notReadySince { text += " \(age(now.timeIntervalSince(since)))" }
            if let limit = ttspec.deleteDbOnNotReadyNode { text += " (deletes at \(limit)s)" }
            return Cell(text, tone: .bad)
        }
    }

    /// The `Valid` and `MetadataAvailable` conditions in one line; nil before the first check.
    static func specSummary(_ status: TimesTenClassicStatus, paint: Painter) -> String? {
        let valid = status.conditions[type: PairPlanner.validCondition]
        let metadata = status.conditions[type: PairMetadata.condition]
        if valid == nil, metadata == nil { return nil }
        var parts: [String] = []
        if let valid {
            if valid.isTrue {
                parts.append(paint("Valid", tone: .good))
            } else {
                let why = valid.message.flatMap { $0.isEmpty ? nil : ": " + oneLine($0) } ?? ""
                parts.append(paint("Invalid", tone: .bad) + why)
            }
        }
        if let metadata {
            if metadata.isTrue {
                parts.append("metadata present")
            } else {
                let why = metadata.message.flatMap { $0.isEmpty ? nil : ": " + oneLine($0) } ?? ""
                parts.append(paint("metadata missing", tone: .bad) + why)
            }
        }
        return parts.joined(separator: "; ")
    }

    /// "switchover sample-1 (a1b2) Succeeded 2m ago: done";
    /// "reduplicate sample-1 (c3) Running since 5s, copying by basebackup 1.5 MiB of 12 MiB".
    static func actionSummary(_ action: ActionRecord, now: Date, paint: Painter) -> String {
        var words = [action.verb ?? "action"]
        if let pod = action.pod, !pod.isEmpty { words.append(pod) }
        if !action.id.isEmpty { words.append("(\(action.id))") }
        let state = action.state ?? "Unknown"
        let tone: Tone = state == ActionState.succeeded ? .good : state == ActionState.failed ? .bad : .warn
        words.append(paint(state, tone: tone))
        if let end = action.endTime {
            words.append("\(age(now.timeIntervalSince(end))) ago")
        } else if let start = action.startTime {
            words.append("since \(age(now.timeIntervalSince(start)))")
        }
        var text = words.joined(separator: " ")
        if action.isRunning {
            var step: [String] = []
            if let phase = action.phase, !phase.isEmpty { step.append(phase) }
            if let method = action.method, !method.isEmpty { step.append("by \(method)") }
            if let done = action.bytesDone {
                step.append(bytes(done) + (action.bytesTotal.map { " of \(bytes($0))" } ?? ""))
            }
            if !step.isEmpty { text += ", " + step.joined(separator: " ") }
        }
        if let message = action.message, !message.isEmpty { text += ": " + oneLine(message) }
        return text
    }

    /// Newest first; events without a time last. Event times have whole seconds, so several
    /// events often share one: among those, the later in the list comes first, because the API
    /// lists events by name and recorders name them by the time they were created.
    static func newestFirst(_ events: [EventRow]) -> [EventRow] {
        events.enumerated().sorted { a, b in
            switch (a.element.lastSeen, b.element.lastSeen) {
            case let (x?, y?) where x != y: return x > y
            case (.some, nil): return true
            case (nil, .some): return false
            default: return a.offset > b.offset
            }
        }.map(\.element)
    }

    // MARK: - Colors

    enum Tone {
        case plain, good, warn, bad
    }

    static func tone(ofPairState state: String) -> Tone {
        switch PairState(rawValue: state) {
        case .normal: return .good
        case .failed, .manualInterventionRequired, .bothDown: return .bad
        case .none: return .plain
        default: return .warn
        }
    }

    static func tone(ofPodState state: String) -> Tone {
        switch PodState(rawValue: state) {
        case .healthy, .healthyActive, .healthyStandby: return .good
        case .down, .terminal: return .bad
        case .none: return .plain
        default: return .warn
        }
    }

    struct Painter {
        let enabled: Bool

        func callAsFunction(_ text: String, tone: Tone) -> String {
            guard enabled else { return text }
            switch tone {
            case .plain: return text
            case .good: return "\u{1B}[32m\(text)\u{1B}[0m"
            case .warn: return "\u{1B}[33m\(text)\u{1B}[0m"
            case .bad: return "\u{1B}[31m\(text)\u{1B}[0m"
            }
        }
    }

    // MARK: - Layout

    struct Cell {
        var text: String
        var tone: Tone
        init(_ text: String, tone: Tone = .plain) {
            self.text = text
            self.tone = tone
        }
    }

    /// Columns two spaces apart, sized on the text without colors; no trailing blanks. With
    /// `cutLastTo > 0`, the last column is cut so that each line fits (keeping at least a few
    /// characters of it however narrow the width).
    static func table(headings: [String], rows: [[Cell]], paint: Painter, cutLastTo width: Int = 0) -> [String] {
        let all = [headings.map { Cell($0) }] + rows
        var widths = [Int](repeating: 0, count: headings.count)
        for row in all {
            for (column, cell) in row.enumerated() where column < widths.count - 1 {
                widths[column] = max(widths[column], cell.text.count)
            }
        }
        let lastStart = widths.dropLast().reduce(0) { $0 + $1 + 2 }
        return all.map { row in
            var line = ""
            for (column, cell) in row.enumerated() {
                var text = cell.text
                if column == row.count - 1 {
                    if width > 0 { text = truncate(text, to: max(width - lastStart, 12)) }
                    line += paint(text, tone: cell.tone)
                } else {
                    line += paint(text, tone: cell.tone) + String(repeating: " ", count: widths[column] - text.count + 2)
                }
            }
            return line
        }
    }

    /// Cuts a line of text (which may hold color codes only where `paint` put them) to `width`
    /// visible columns; width <= 0 keeps it whole.
    static func cut(_ line: String, width: Int, paint: Painter) -> String {
        guard width > 0, visibleCount(line) > width else { return line }
        // Walk the characters, skipping escape sequences, until width - 1 visible ones.
        var result = ""
        var visible = 0
        var inEscape = false
        for character in line {
            if character == "\u{1B}" {
                inEscape = true
                result.append(character)
                continue
            }
            if inEscape {
                result.append(character)
                if character.isLetter { inEscape = false }
                continue
            }
            if visible == max(width, 2) - 1 { break }
            result.append(character)
            visible += 1
        }
        result += "…"
        if paint.enabled { result += "\u{1B}[0m" }
        return result
    }

    static func visibleCount(_ line: String) -> Int {
        var count = 0
        var inEscape = false
        for character in line {
            if character == "\u{1B}" { inEscape = true; continue }
            if inEscape {
                if character.isLetter { inEscape = false }
                continue
            }
            count += 1
        }
        return count
    }

    static func truncate(_ text: String, to width: Int) -> String {
        guard text.count > width else { return text }
        return String(text.prefix(max(width - 1, 0))) + "…"
    }

    /// Newlines and tabs become single spaces, so one event stays one line.
    static func oneLine(_ text: String) -> String {
        text.split(whereSeparator: { $0.isNewline || $0 == "\t" }).joined(separator: " ")
            .trimmingCharacters(in: .whitespaces)
    }
}
