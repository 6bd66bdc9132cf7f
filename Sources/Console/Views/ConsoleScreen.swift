import Foundation
import OperatorEngine

/// The whole screen as a pure function of the snapshot and the UI state: the runtime calls it
/// after every change and writes the cells that differ; tests call it and read the grid.
public enum ConsoleScreen {
    /// - Parameters:
    ///   - logs: the lines of the log pane's pod, when it streams one.
    ///   - timeZone: for the header's clock (the runtime passes the local zone; tests pin one).
    public static func render(
        _ snapshot: ConsoleSnapshot, _ state: ConsoleState, logs: LogRing?, width: Int, height: Int, glyphs: Glyphs,
        timeZone: TimeZone = .current
    ) -> CellGrid {
        var grid = CellGrid(width: width, height: height)
        draw(snapshot, state, logs: logs, into: &grid, glyphs: glyphs, timeZone: timeZone)
        return grid
    }

    /// `render` into a grid the caller keeps from frame to frame, cleared first: a grid of the
    /// size it already has is drawn over in place, with nothing allocated for it.
    public static func render(
        _ snapshot: ConsoleSnapshot, _ state: ConsoleState, logs: LogRing?, into grid: inout CellGrid, width: Int, height: Int,
        glyphs: Glyphs, timeZone: TimeZone = .current
    ) {
        grid.clear(width: width, height: height)
        draw(snapshot, state, logs: logs, into: &grid, glyphs: glyphs, timeZone: timeZone)
    }

    /// Every view, drawn onto a blank grid.
    private static func draw(
        _ snapshot: ConsoleSnapshot, _ state: ConsoleState, logs: LogRing?, into grid: inout CellGrid, glyphs: Glyphs, timeZone: TimeZone
    ) {
        guard grid.width > 0, grid.height > 0 else { return }
        let list = PairList(snapshot: snapshot, state: state)
        let context = RenderContext(snapshot: snapshot, state: state, glyphs: glyphs, list: list)
        let layout = ConsoleLayout(width: grid.width, height: grid.height, state: state, list: list)
        drawBase(into: &grid, layout: layout, context: context, timeZone: timeZone)
        drawTop(into: &grid, layout: layout, context: context, logs: logs)
    }

    /// Every view but the log pane and the overlay: what the log lines do not change. Drawn onto
    /// a blank grid, it leaves the log pane's rectangle blank.
    static func drawBase(into grid: inout CellGrid, layout: ConsoleLayout, context: RenderContext, timeZone: TimeZone) {
        guard grid.width > 0, grid.height > 0 else { return }
        let selected = context.list.selectedPair(in: context.snapshot)
        HeaderView.draw(into: &grid, rect: layout.header, context: context, timeZone: timeZone)
        PairTableView.draw(into: &grid, rect: layout.table, context: context)
        PairDetailView.draw(into: &grid, rect: layout.detail, pair: selected, context: context)
        EventsView.draw(into: &grid, rect: layout.events, pair: selected, context: context)
        if layout.logs.width > 0, layout.events.width > 0, layout.logs.x > layout.events.maxX {
            // The rule between events and logs on wide screens.
            for row in layout.logs.y..<layout.logs.maxY { grid[layout.events.maxX, row] = Cell(context.glyphs.vertical, role: .border) }
        }
        FooterView.draw(into: &grid, layout: layout, context: context)
    }

    /// The log pane, in its own rectangle, then the overlay over everything.
    static func drawTop(into grid: inout CellGrid, layout: ConsoleLayout, context: RenderContext, logs: LogRing?) {
        guard grid.width > 0, grid.height > 0 else { return }
        LogView.draw(into: &grid, rect: layout.logs, logs: logs, context: context)
        OverlayView.draw(into: &grid, context: context)
    }
}

/// What every view reads while drawing one screen.
struct RenderContext {
    let snapshot: ConsoleSnapshot
    let state: ConsoleState
    let glyphs: Glyphs
    let list: PairList

    var now: Date { snapshot.now }

    /// Help texts are written with Unicode arrows; on an ASCII terminal they become the glyphs.
    func plain(_ text: String) -> String {
        guard !glyphs.isUnicode, text.unicodeScalars.contains(where: { $0.value >= 0x80 }) else { return text }
        return String(text.map { character -> Character in
            switch character {
            case "↑": glyphs.arrowUp
            case "↓": glyphs.arrowDown
            case "←": glyphs.arrowLeft
            case "→": glyphs.arrowRight
            case "…": glyphs.ellipsis
            default: character
            }
        })
    }
}

/// The top line: who and where (context, namespace), the engine's mode and the Lease holder,
/// the API server's health, and the clock of the snapshot.
enum HeaderView {
    static func draw(into grid: inout CellGrid, rect: Rect, context: RenderContext, timeZone: TimeZone) {
        guard rect.width > 0, rect.height > 0 else { return }
        let snapshot = context.snapshot
        grid.fill(rect, with: Cell(" ", role: .header))
        let clock = Self.clock(snapshot.now, timeZone: timeZone)
        var parts: [(String, Role)] = [
            ("tenops", .header),
            ("ctx: \(snapshot.context)", .header),
            ("ns: \(snapshot.namespace ?? "all")", .header),
            (engineText(snapshot.engine), .header),
        ]
        switch snapshot.api {
        case .ok: parts.append(("API ok", .header))
        case .degraded(let why): parts.append(("API degraded: \(why)", .warning))
        case .unreachable(let why): parts.append(("API unreachable: \(why)", .error))
        }
        var column = rect.x + 1
        let clockWidth = clock.count + 2
        let room = rect.maxX - column
        let leftLimit = room >= 40 ? rect.maxX - clockWidth : rect.maxX
        for (index, part) in parts.enumerated() {
            guard column < leftLimit else { break }
            if index > 0 { column += 2 }
            guard column < leftLimit else { break }
            column = grid.write(part.0, x: column, y: rect.y, width: leftLimit - column, role: part.1, bold: index == 0,
                                ellipsis: context.glyphs.ellipsis)
        }
        if room >= 40, column + 2 <= rect.maxX - clockWidth {
            grid.write(clock, x: rect.maxX - clock.count - 1, y: rect.y, width: clock.count, role: .header)
        }
    }

    /// "engine: embedded", "engine: embedded (auto)", "engine: observe (lease: HOLDER)".
    static func engineText(_ engine: EngineInfo) -> String {
        switch engine.mode {
        case .embedded:
            return engine.requested == "auto" ? "engine: embedded (auto)" : "engine: embedded"
        case .observe:
            let holder = engine.leaseHolder.map { "lease: \($0)" } ?? "no lease holder"
            return "engine: observe (\(holder))"
        }
    }

    /// HH:MM:SS in `timeZone`, by arithmetic: no formatter per frame.
    static func clock(_ date: Date, timeZone: TimeZone) -> String {
        let seconds = Int(date.timeIntervalSince1970.rounded(.down)) + timeZone.secondsFromGMT(for: date)
        let day = ((seconds % 86_400) + 86_400) % 86_400
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(two(day / 3600)):\(two(day / 60 % 60)):\(two(day % 60))"
    }
}

/// The pair table: NAME NAMESPACE STATE ACTIVE STANDBY REPL LAG AGE, one row per pair, the
/// whole row in its state's role, the selected row in the selection role.
enum PairTableView {
    struct Column {
        var title: String
        var sort: ConsoleState.SortColumn
        var minimum: Int
        var maximum: Int
        var width = 0
    }

    static func columns() -> [Column] {
        [
            Column(title: "NAME", sort: .name, minimum: 8, maximum: 40),
            Column(title: "NAMESPACE", sort: .namespace, minimum: 6, maximum: 24),
            Column(title: "STATE", sort: .state, minimum: 8, maximum: 26),
            Column(title: "ACTIVE", sort: .active, minimum: 6, maximum: 32),
            Column(title: "STANDBY", sort: .standby, minimum: 6, maximum: 32),
            Column(title: "REPL LAG", sort: .lag, minimum: 8, maximum: 10),
            Column(title: "AGE", sort: .age, minimum: 3, maximum: 6),
        ]
    }

    static func cells(_ pair: PairRow, now: Date) -> [String] {
        [
            pair.key.name,
            pair.key.namespace,
            pair.state ?? "-",
            pair.active.flatMap { $0.isEmpty ? nil : $0 } ?? "-",
            pair.standby.flatMap { $0.isEmpty ? nil : $0 } ?? "-",
            pair.lagBytes.map(PairStatusReport.bytes) ?? "-",
            pair.created.map { PairStatusReport.age(now.timeIntervalSince($0)) } ?? "-",
        ]
    }

    static func draw(into grid: inout CellGrid, rect: Rect, context: RenderContext) {
        guard rect.width > 0, rect.height > 0 else { return }
        let snapshot = context.snapshot, state = context.state, list = context.list, glyphs = context.glyphs
        let layoutBody = ConsoleLayout.tableBodyRect(rect)
        // Title line.
        if rect.height >= 3 {
            var title = "Pairs (\(snapshot.namespace ?? "all")) [\(list.count)"
            if list.count != snapshot.pairs.count { title += " of \(snapshot.pairs.count)" }
            title += "]"
            if !state.filter.isEmpty { title += " /\(state.filter)" }
            let arrow = state.ascending ? glyphs.arrowUp : glyphs.arrowDown
            grid.titleLine(title, rect: Rect(x: rect.x, y: rect.y, width: rect.width, height: 1),
                           focused: state.focus == .pairs && state.overlay == nil, glyphs: glyphs,
                           right: "sort: \(state.sort.rawValue) \(arrow)")
        }
        // The rows on screen.
        let offset = ConsoleLayout.tableOffset(stored: state.tableOffset, selected: list.selectedPosition,
                                               rows: layoutBody.height, count: list.count)
        let visible = list.indices.dropFirst(offset).prefix(layoutBody.height)
        let rows = visible.map { cells(snapshot.pairs[$0], now: context.now) }
        // Column widths: what the shown rows need, then fitted to the screen.
        var columns = columns()
        for index in columns.indices {
            var needed = columns[index].title.count + (columns[index].sort == state.sort ? 1 : 0)
            for row in rows { needed = max(needed, TextMeasure.columns(row[index])) }
            columns[index].width = min(columns[index].maximum, needed)
        }
        let shown = fit(&columns, width: rect.width - 2)
        // Headings.
        if rect.height >= 2 {
            let y = rect.y + (rect.height >= 3 ? 1 : 0)
            var x = rect.x + 2
            for index in shown {
                var title = columns[index].title
                if columns[index].sort == state.sort { title.append(state.ascending ? glyphs.arrowUp : glyphs.arrowDown) }
                grid.write(title, x: x, y: y, width: columns[index].width, role: .muted, bold: true, ellipsis: glyphs.ellipsis)
                x += columns[index].width + 2
            }
        }
        if list.isEmpty {
            let why = snapshot.pairs.isEmpty
                ? "No pairs in \(snapshot.namespace.map { "namespace \($0)" } ?? "any namespace")"
                : "No pair matches /\(state.filter) (Esc clears the filter)"
            grid.write(why, x: rect.x + 2, y: layoutBody.y, width: rect.width - 2, role: .muted, ellipsis: glyphs.ellipsis)
            return
        }
        for (line, (row, pairIndex)) in zip(rows, visible).enumerated() {
            let y = layoutBody.y + line
            let pair = snapshot.pairs[pairIndex]
            let isSelected = offset + line == list.selectedPosition
            let role = StateRoles.role(ofPairState: pair.state)
            var x = rect.x + 2
            for index in shown {
                grid.write(row[index], x: x, y: y, width: columns[index].width, role: role, ellipsis: glyphs.ellipsis)
                x += columns[index].width + 2
            }
            if isSelected {
                grid[rect.x, y] = Cell(glyphs.pointer, role: role, bold: true)
                grid.paint(Rect(x: rect.x, y: y, width: rect.width, height: 1), role: .selection)
            }
        }
    }

    /// Shrinks the widest columns toward their minimum, then leaves out the least needed ones
    /// (namespace, standby, age, lag, active) until the table fits. Returns the columns shown.
    static func fit(_ columns: inout [Column], width: Int) -> [Int] {
        var shown = Array(columns.indices)
        func total() -> Int { shown.reduce(0) { $0 + columns[$1].width } + 2 * max(0, shown.count - 1) }
        // The widest column gives a column at a time, so long names and long pod names share the
        // cut; the state gives last, since it is what the table is for.
        var excess = total() - width
        for pass in 0..<2 {
            while excess > 0 {
                guard let widest = columns.indices.filter({ (pass == 1 || $0 != 2) && columns[$0].width > columns[$0].minimum })
                    .max(by: { columns[$0].width < columns[$1].width })
                else { break }
                columns[widest].width -= 1
                excess -= 1
            }
        }
        for index in [1, 4, 6, 5, 3] where total() > width {
            shown.removeAll { $0 == index }
        }
        excess = total() - width
        if excess > 0 { columns[0].width = max(1, columns[0].width - excess) }
        return shown
    }
}

extension ConsoleLayout {
    /// The body of a table rectangle (the same rule as `tableBody`).
    static func tableBodyRect(_ table: Rect) -> Rect {
        let skip = table.height >= 3 ? 2 : table.height == 2 ? 1 : 0
        return Rect(x: table.x, y: table.y + skip, width: table.width, height: table.height - skip)
    }
}

/// The keys of the focused pane, and the status line: the prompt being typed, else the last
/// message, else (on screens with no footer line) the keys.
enum FooterView {
    static func draw(into grid: inout CellGrid, layout: ConsoleLayout, context: RenderContext) {
        let keys = KeyMap.footer(state: context.state, snapshot: context.snapshot)
        if layout.footer.width > 0 { drawKeys(keys, into: &grid, rect: layout.footer, context: context) }
        let status = layout.status
        guard status.width > 0, status.height > 0 else { return }
        let glyphs = context.glyphs
        switch context.state.prompt {
        case .filter(let text):
            let label = context.state.focus == .logs ? "search /" : "/"
            let x = grid.write(label, x: status.x, y: status.y, width: status.width, role: .key, bold: true)
            drawTyped(text, into: &grid, x: x, y: status.y, width: status.maxX - x)
        case .command(let text):
            let x = grid.write(":", x: status.x, y: status.y, width: status.width, role: .key, bold: true)
            drawTyped(text, into: &grid, x: x, y: status.y, width: status.maxX - x)
        case nil:
            if let flash = context.state.flash {
                grid.write(flash.text, x: status.x, y: status.y, width: status.width, role: flash.isError ? .error : .ok,
                           ellipsis: glyphs.ellipsis)
            } else if layout.footer.width == 0 {
                drawKeys(keys, into: &grid, rect: status, context: context)
            }
        }
    }

    /// The text typed so far and a cursor; a long text shows its end.
    static func drawTyped(_ text: String, into grid: inout CellGrid, x: Int, y: Int, width: Int) {
        guard width > 0 else { return }
        let shown = text.count >= width ? String(text.suffix(width - 1)) : text
        let end = grid.write(shown, x: x, y: y, width: width, role: .text, ellipsis: nil)
        if end < x + width { grid[end, y] = Cell("_", role: .key, bold: true) }
    }

    static func drawKeys(_ keys: [KeyHelp], into grid: inout CellGrid, rect: Rect, context: RenderContext) {
        var x = rect.x
        for help in keys {
            let key = context.plain(help.keys), action = context.plain(help.action)
            let needed = TextMeasure.columns(key) + 1 + TextMeasure.columns(action)
            guard x + needed <= rect.maxX else { break }
            x = grid.write(key, x: x, y: rect.y, width: rect.maxX - x, role: .key, bold: true)
            x = grid.write(" " + action, x: x, y: rect.y, width: rect.maxX - x, role: .muted)
            x += 2
        }
    }
}
