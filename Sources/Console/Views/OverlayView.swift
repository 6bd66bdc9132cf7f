import OperatorEngine

/// Windows over the panes: help, describe, and an action's dialog.
enum OverlayView {
    static func draw(into grid: inout CellGrid, context: RenderContext) {
        guard let overlay = context.state.overlay, grid.width > 0, grid.height > 0 else { return }
        switch overlay {
        case .help: drawHelp(into: &grid, context: context)
        case .describe(let title, let yaml, let offset): drawDescribe(title: title, yaml: yaml, offset: offset, into: &grid, context: context)
        case .dialog(let dialog): drawDialog(dialog, into: &grid, context: context)
        }
    }

    /// A box of `width` x `height` centred on the screen, clipped to it, leaving the header and
    /// the status line visible where it can.
    static func centred(width: Int, height: Int, in grid: CellGrid) -> Rect {
        let w = min(width, grid.width)
        let h = min(height, grid.height)
        return Rect(x: (grid.width - w) / 2, y: max(0, (grid.height - h) / 2), width: w, height: h)
    }

    // MARK: Help

    static func drawHelp(into grid: inout CellGrid, context: RenderContext) {
        var entries: [(KeyHelp, isTitle: Bool)] = []
        for section in KeyMap.sections {
            if section.title.hasPrefix("Local") {
                entries.append((KeyHelp(section.title, "(local cluster only)"), true))
            } else {
                entries.append((KeyHelp(section.title, ""), true))
            }
            entries += section.keys.map { ($0, false) }
        }
        let keyWidth = 12
        let wantedColumnWidth = keyWidth + 25
        let inner = max(0, min(grid.width - 4, 2 * wantedColumnWidth + 3))
        let twoColumns = inner >= 2 * wantedColumnWidth + 3 || (inner >= 60 && entries.count > grid.height - 4)
        let columnWidth = twoColumns ? (inner - 3) / 2 : inner
        let perColumn = twoColumns ? (entries.count + 1) / 2 : entries.count
        let rect = centred(width: inner + 4, height: perColumn + 4, in: grid)
        grid.box(rect, title: "Help (Esc closes)", glyphs: context.glyphs)
        let body = rect.inset(by: 1)
        guard body.width > 2, body.height > 0 else { return }
        for (index, entry) in entries.enumerated() {
            let column = twoColumns ? index / perColumn : 0
            let row = twoColumns ? index % perColumn : index
            let y = body.y + 1 + row
            guard y < body.maxY - 0 else { continue }
            let x = body.x + 1 + column * (columnWidth + 3)
            let width = min(columnWidth, body.maxX - x)
            guard width > 0 else { continue }
            if entry.isTitle {
                grid.write(context.plain(entry.0.keys + (entry.0.action.isEmpty ? "" : " " + entry.0.action)), x: x, y: y,
                           width: width, role: .title, bold: true, ellipsis: context.glyphs.ellipsis)
            } else {
                grid.write(context.plain(entry.0.keys), x: x, y: y, width: min(keyWidth, width), role: .key, bold: true,
                           ellipsis: context.glyphs.ellipsis)
                if width > keyWidth + 1 {
                    grid.write(context.plain(entry.0.action), x: x + keyWidth + 1, y: y, width: width - keyWidth - 1, role: .text,
                               ellipsis: context.glyphs.ellipsis)
                }
            }
        }
    }

    // MARK: Describe

    static func drawDescribe(title: String, yaml: String, offset: Int, into grid: inout CellGrid, context: RenderContext) {
        let rect = Rect(x: 1, y: 1, width: grid.width - 2, height: grid.height - 2)
        guard rect.width >= 4, rect.height >= 3 else {
            grid.write(title, x: 0, y: 0, width: grid.width, role: .title)
            return
        }
        grid.box(rect, title: title, glyphs: context.glyphs)
        let body = rect.inset(by: 1)
        let lines = yaml.split(separator: "\n", omittingEmptySubsequences: false)
        let count = lines.last?.isEmpty == true ? lines.count - 1 : lines.count
        let first = DescribeScroll.clamp(offset, lines: count, rows: body.height)
        for row in 0..<body.height where first + row < count {
            grid.write(String(lines[first + row]), x: body.x + 1, y: body.y + row, width: body.width - 1, role: .text,
                       ellipsis: context.glyphs.ellipsis)
        }
        let position = count == 0 ? "empty" : "\(first + 1)-\(min(count, first + body.height)) of \(count)"
        if rect.width > position.count + 6 {
            grid.write(" \(position) ", x: rect.maxX - position.count - 4, y: rect.maxY - 1, width: position.count + 2, role: .muted)
        }
    }

    // MARK: Action dialog

    static func drawDialog(_ dialog: ActionDialog, into grid: inout CellGrid, context: RenderContext) {
        let explanation = ActionText.explain(dialog.action, pair: dialog.pair, snapshot: context.snapshot)
        let width = min(grid.width, 76)
        let textWidth = max(1, width - 4)
        var lines: [(String, Role, Bool)] = []
        func add(_ text: String, _ role: Role = .text, bold: Bool = false) {
            for line in ActionText.wrap(text, width: textWidth) { lines.append((line, role, bold)) }
        }
        func blank() { lines.append(("", .text, false)) }
        var barLine: (fraction: Double, figures: String)?
        switch dialog.phase {
        case .confirming:
            add(explanation.text)
            for warning in explanation.warnings {
                blank()
                add(warning, .warning)
            }
            blank()
            if dialog.requested {
                add("Submitting" + String(context.glyphs.ellipsis), .muted)
            } else if dialog.action.isDestructive {
                let name = dialog.pair.name
                let typed = dialog.typed
                let rest = max(0, name.count - typed.count)
                add("Type the pair name to confirm: " + typed + String(repeating: "_", count: max(1, rest)), .key, bold: true)
                blank()
                add("Enter confirms, Esc cancels.", .muted)
            } else {
                add("Enter confirms, Esc cancels.", .muted)
            }
        case .submitted(let id):
            add("Submitted as action \(id).", .text)
            if let record = context.snapshot.pair(dialog.pair)?.lastAction, record.id == id {
                var words = "\(record.verb ?? "action") \(record.id): \(record.state ?? "Pending")"
                if let phase = record.phase, record.isRunning { words += " (\(phase))" }
                add(words, ActionLine.role(record), bold: true)
                if let message = record.message, !message.isEmpty { add(message) }
                if record.isRunning, let done = record.bytesDone, let total = record.bytesTotal, total > 0 {
                    let fraction = min(1, max(0, Double(done) / Double(total)))
                    barLine = (fraction, " \(Int(fraction * 100))% \(PairStatusReport.bytes(done)) / \(PairStatusReport.bytes(total))")
                    lines.append(("", .text, false))
                }
            } else {
                add("Waiting for the engine to take it up" + String(context.glyphs.ellipsis), .muted)
            }
            blank()
            add("Esc closes this window; the action goes on.", .muted)
        case .finished(let succeeded, let message):
            add(succeeded ? "Succeeded" : "Failed", succeeded ? .ok : .error, bold: true)
            if !message.isEmpty { add(message) }
            blank()
            add("Enter or Esc closes.", .muted)
        }
        let rect = centred(width: width, height: lines.count + 4, in: grid)
        grid.box(rect, title: explanation.title, glyphs: context.glyphs, role: dialog.action.isDestructive ? .warning : .border)
        let body = rect.inset(by: 1)
        guard body.width > 2 else { return }
        for (row, line) in lines.enumerated() {
            let y = body.y + 1 + row
            guard y < body.maxY else { break }
            if let barLine, row == lines.count - 3, line.0.isEmpty {
                let barWidth = min(30, body.width - 2 - barLine.figures.count)
                if barWidth >= 5 {
                    grid.bar(x: body.x + 1, y: y, width: barWidth, fraction: barLine.fraction, glyphs: context.glyphs)
                    grid.write(barLine.figures, x: body.x + 1 + barWidth, y: y, width: body.maxX - body.x - 1 - barWidth, role: .text)
                } else {
                    grid.write(barLine.figures, x: body.x + 1, y: y, width: body.width - 1, role: .text)
                }
                continue
            }
            grid.write(line.0, x: body.x + 1, y: y, width: body.width - 1, role: line.1, bold: line.2, ellipsis: context.glyphs.ellipsis)
        }
    }
}

/// The describe window's scrolling, shared with the key map.
public enum DescribeScroll {
    /// The first line shown: `offset` kept within the text.
    public static func clamp(_ offset: Int, lines: Int, rows: Int) -> Int {
        max(0, min(offset, lines - max(1, rows)))
    }

    /// Rows of text the describe window shows on a screen this tall.
    public static func rows(screenHeight: Int) -> Int { max(1, screenHeight - 4) }
}
