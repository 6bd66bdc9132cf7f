import Foundation
import OperatorEngine

/// The selected pair: its state, its two pods side by side (the selected pod marked), and the
/// last manual action with a bar while a copy runs.
enum PairDetailView {
    static let labelWidth = 9

    static func draw(into grid: inout CellGrid, rect: Rect, pair: PairRow?, context: RenderContext) {
        guard rect.width > 0, rect.height > 0 else { return }
        let glyphs = context.glyphs, state = context.state
        let focused = state.focus == .detail && state.overlay == nil
        guard let pair else {
            grid.titleLine("Detail", rect: Rect(x: rect.x, y: rect.y, width: rect.width, height: 1), focused: focused, glyphs: glyphs)
            if rect.height > 1 {
                grid.write("No pair selected.", x: rect.x + 1, y: rect.y + 1, width: rect.width - 1, role: .muted)
            }
            return
        }
        grid.titleLine(title(pair, now: context.now), rect: Rect(x: rect.x, y: rect.y, width: rect.width, height: 1),
                       focused: focused, glyphs: glyphs)
        // The pair's last action takes the last line when there is room for the pods above it.
        let actionLine = rect.height >= 4 ? rect.maxY - 1 : nil
        let podsArea = Rect(x: rect.x, y: rect.y + 1, width: rect.width, height: rect.height - 1 - (actionLine == nil ? 0 : 1))
        let names = podNames(pair)
        if rect.width >= 50 {
            let half = (rect.width - 1) / 2
            let left = Rect(x: podsArea.x, y: podsArea.y, width: half, height: podsArea.height)
            let right = Rect(x: podsArea.x + half + 1, y: podsArea.y, width: podsArea.width - half - 1, height: podsArea.height)
            drawPod(names[0], pair: pair, index: 0, into: &grid, rect: left, context: context)
            for row in podsArea.y..<podsArea.maxY { grid[podsArea.x + half, row] = Cell(glyphs.vertical, role: .border) }
            drawPod(names[1], pair: pair, index: 1, into: &grid, rect: right, context: context)
        } else {
            let index = min(max(0, state.selectedPod), 1)
            drawPod(names[index], pair: pair, index: index, into: &grid, rect: podsArea, context: context)
        }
        if let actionLine { drawAction(pair, into: &grid, x: rect.x, y: actionLine, width: rect.width, context: context) }
    }

    /// "default/sample  Normal for 5m (was ActiveTakeover)".
    static func title(_ pair: PairRow, now: Date) -> String {
        guard let state = pair.state else { return "\(pair.key)  not reconciled yet" }
        var text = "\(pair.key)  \(state)"
        if let since = pair.stateSince { text += " for \(PairStatusReport.age(now.timeIntervalSince(since)))" }
        if let previous = pair.previousState { text += " (was \(previous))" }
        return text
    }

    /// `NAME-0` and `NAME-1`, whatever the pods list holds.
    static func podNames(_ pair: PairRow) -> [String] {
        (0..<2).map { index in index < pair.pods.count ? pair.pods[index].name : "\(pair.key.name)-\(index)" }
    }

    static func drawPod(_ name: String, pair: PairRow, index: Int, into grid: inout CellGrid, rect: Rect, context: RenderContext) {
        guard rect.width > 0, rect.height > 0 else { return }
        let glyphs = context.glyphs
        let selected = context.state.selectedPod == index
        Lines.writing(into: &grid, rect: rect, ellipsis: glyphs.ellipsis) { lines in
            drawPodLines(name, pair: pair, selected: selected, lines: &lines, context: context)
        }
    }

    static func drawPodLines(_ name: String, pair: PairRow, selected: Bool, lines: inout Lines, context: RenderContext) {
        let glyphs = context.glyphs, rect = lines.rect
        let pod = pair.pods.first { $0.name == name }

        // Name and role.
        let role = pod?.role ?? roleFromPair(pair, name)
        var x = lines.put(selected ? String(glyphs.pointer) : " ", at: rect.x, role: .title, bold: true)
        // The name gives way to the role: the role must show whatever the width.
        let nameWidth = max(1, rect.maxX - x - 2 - role.rawValue.count)
        x = lines.put(TextMeasure.fit(name, nameWidth, ellipsis: glyphs.ellipsis) + "  ", at: x, role: selected ? .title : .text,
                      bold: selected)
        lines.put(role.rawValue, at: x, role: role == .active ? .active : role == .standby ? .standby : .muted, bold: role != .none)
        lines.next()
        guard let pod else {
            lines.field("Pod", "no pod yet", role: .muted)
            return
        }
        // Pod phase and readiness.
        var phase = pod.phase ?? "no pod"
        if let ready = pod.ready { phase += ready ? ", ready" : ", not ready" }
        if let restarts = pod.restarts, restarts > 0 { phase += ", \(restarts) restart\(restarts == 1 ? "" : "s")" }
        let phaseRole: Role = switch pod.phase {
        case "Running": pod.ready == false ? .warning : .ok
        case "Failed": .error
        case nil: .muted
        default: .warning
        }
        lines.field("Pod", phase, role: phaseRole)
        // Agent and the pod's state as the engine judged it.
        x = lines.label("Agent")
        x = lines.put(pod.agent ?? "-", at: x, role: pod.agent == "Up" ? .ok : pod.agent == "Down" ? .error : .muted)
        if let podState = pod.podState {
            x = lines.put("  state ", at: x, role: .muted)
            lines.put(podState, at: x, role: StateRoles.role(ofPodState: podState))
        }
        lines.next()
        var database = pod.database ?? "-"
        if let updatable = pod.updatable { database += updatable ? ", updatable" : ", read-only" }
        lines.field("Database", database, role: pod.database == nil ? .muted : .text)
        var replication = pod.repState ?? "-"
        if let peer = pod.repPeerState { replication += ", peer \(peer)" }
        lines.field("Repl", replication, role: pod.repState == "FAILED" ? .error : pod.repState == nil ? .muted : .text)
        lines.field("Lag", pod.lagBytes.map(PairStatusReport.bytes) ?? "-", role: pod.lagBytes == nil ? .muted : .text)
        // The node, and the NotReady timer.
        let node = pod.node.flatMap { nodeName in context.snapshot.nodes.first { $0.name == nodeName } }
        let nodeReady = pod.nodeReady ?? node?.ready
        x = lines.label("Node")
        if let nodeName = pod.node {
            x = lines.put(nodeName, at: x, role: .text)
            switch nodeReady {
            case true?: lines.put(" Ready", at: x, role: .ok)
            case false?: lines.put(" NotReady", at: x, role: .error, bold: true)
            case nil: lines.put(" ?", at: x, role: .muted)
            }
            if let simulation = node?.simulation { lines.put(" (\(simulation))", at: lines.column, role: .warning) }
        } else {
            lines.put("-", at: x, role: .muted)
        }
        lines.next()
        if nodeReady == false {
            let since = pod.nodeNotReadySince ?? node?.notReadySince
            drawTimer(since: since, limit: pair.deleteDbOnNotReadyNode, lines: &lines, context: context)
        }
        lines.next()
        var claim = pod.pvc ?? "-"
        if let phase = pod.pvcPhase { claim += " \(phase)" }
        lines.field("PVC", claim, role: pod.pvc == nil ? .muted : pod.pvcPhase == nil || pod.pvcPhase == "Bound" ? .text : .warning)
    }

    /// "NotReady 42s, deletes at 60s" under the node's name, and in the label column before it a
    /// bar of the time gone: the bar fits at every width.
    static func drawTimer(since: Date?, limit: Int?, lines: inout Lines, context: RenderContext) {
        let x = lines.label("")
        guard let since else {
            lines.put(limit.map { "NotReady, deletes at \($0)s" } ?? "NotReady", at: x, role: .error)
            return
        }
        let elapsed = max(0, Int(context.now.timeIntervalSince(since).rounded(.down)))
        let seconds = elapsed < 1000 ? "\(elapsed)s" : PairStatusReport.age(TimeInterval(elapsed))
        guard let limit else {
            lines.put("NotReady \(seconds)", at: x, role: .error)
            return
        }
        let text = elapsed < limit ? "NotReady \(seconds), deletes at \(limit)s" : "NotReady \(seconds), limit \(limit)s"
        let barWidth = min(labelWidth - 1, x - lines.rect.x - 2)
        if barWidth >= 3, !lines.isFull {
            lines.grid.bar(x: lines.rect.x + 1, y: lines.y, width: barWidth, fraction: Double(elapsed) / Double(max(1, limit)),
                           glyphs: context.glyphs)
        }
        lines.put(text, at: x, role: .error, bold: true)
    }

    /// The role the pair's status gives a pod it has no row for.
    static func roleFromPair(_ pair: PairRow, _ name: String) -> PodRow.Role {
        pair.active == name ? .active : pair.standby == name ? .standby : .none
    }

    /// "Action   reduplicate sample-1 c3d4 Running (copying) ████░░░ 40% 4 MiB / 10 MiB".
    static func drawAction(_ pair: PairRow, into grid: inout CellGrid, x: Int, y: Int, width: Int, context: RenderContext) {
        Lines.writing(into: &grid, rect: Rect(x: x, y: y, width: width, height: 1), ellipsis: context.glyphs.ellipsis) { lines in
            let start = lines.label("Action")
            guard let action = pair.lastAction else {
                lines.put("none", at: start, role: .muted)
                return
            }
            ActionLine.draw(action, lines: &lines, x: start, now: context.now, glyphs: context.glyphs)
        }
    }
}

/// A manual action's state in one line, for the detail pane and the dialog.
enum ActionLine {
    static func role(_ action: ActionRecord) -> Role {
        switch action.state {
        case ActionState.succeeded: .ok
        case ActionState.failed: .error
        default: .warning
        }
    }

    /// "switchover a1b2 Running (catchup) since 5s: message"; while a copy reports bytes,
    /// "reduplicate sample-1 c3d4 Running (copying)", a bar and "40% 1.5 MiB / 12 MiB".
    static func draw(_ action: ActionRecord, lines: inout Lines, x: Int, now: Date, glyphs: Glyphs) {
        var words = [action.verb ?? "action"]
        if let pod = action.pod, !pod.isEmpty { words.append(pod) }
        if !action.id.isEmpty { words.append(action.id) }
        var x = lines.put(words.joined(separator: " ") + " ", at: x, role: .text)
        x = lines.put(action.state ?? "Pending", at: x, role: role(action), bold: true)
        var tail = ""
        let copying = action.isRunning && action.bytesDone != nil && (action.bytesTotal ?? 0) > 0
        if action.isRunning, let phase = action.phase, !phase.isEmpty { tail += " (\(phase))" }
        if let end = action.endTime {
            tail += " \(PairStatusReport.age(now.timeIntervalSince(end))) ago"
        } else if !copying, let start = action.startTime {
            tail += " since \(PairStatusReport.age(now.timeIntervalSince(start)))"
        }
        x = lines.put(tail, at: x, role: .muted)
        if action.isRunning, let done = action.bytesDone, let total = action.bytesTotal, total > 0 {
            let fraction = min(1, max(0, Double(done) / Double(total)))
            let figures = " \(Int(fraction * 100))% \(PairStatusReport.bytes(done)) / \(PairStatusReport.bytes(total))"
            let barWidth = min(20, lines.rect.maxX - x - 1 - figures.count)
            if barWidth >= 5 {
                lines.grid.bar(x: x + 1, y: lines.y, width: barWidth, fraction: fraction, glyphs: glyphs)
                x += barWidth + 1
            }
            lines.put(figures, at: x, role: .text)
        } else if let message = action.message, !message.isEmpty {
            lines.put(": " + message, at: x, role: .text)
        }
    }
}

/// Writes label/value lines down a rectangle, clipped to it.
struct Lines {
    var grid: CellGrid
    let rect: Rect
    let ellipsis: Character
    var y: Int
    var column: Int

    /// Runs `body` with the grid moved into a `Lines` (no copy of the cells), then moves it back.
    static func writing(into grid: inout CellGrid, rect: Rect, ellipsis: Character, _ body: (inout Lines) -> Void) {
        var lines = Lines(grid: CellGrid(width: 0, height: 0), rect: rect, ellipsis: ellipsis)
        swap(&lines.grid, &grid)
        body(&lines)
        swap(&lines.grid, &grid)
    }

    init(grid: CellGrid, rect: Rect, ellipsis: Character) {
        self.grid = grid
        self.rect = rect
        self.ellipsis = ellipsis
        self.y = rect.y
        self.column = rect.x
    }

    var isFull: Bool { y >= rect.maxY }

    mutating func next() {
        y += 1
        column = rect.x
    }

    /// Writes `text` at column `x` of the current line, clipped to the rectangle.
    @discardableResult
    mutating func put(_ text: String, at x: Int, role: Role, bold: Bool = false) -> Int {
        guard !isFull, x < rect.maxX else { return x }
        column = grid.write(text, x: x, y: y, width: rect.maxX - x, role: role, bold: bold, ellipsis: ellipsis)
        return column
    }

    /// The label column; returns where the value starts.
    @discardableResult
    mutating func label(_ text: String) -> Int {
        put(text, at: rect.x + 1, role: .muted)
        return min(rect.maxX, rect.x + 1 + PairDetailView.labelWidth)
    }

    mutating func field(_ label: String, _ value: String, role: Role) {
        let x = self.label(label)
        put(value, at: x, role: role)
        next()
    }
}
