/// Where each pane goes on a screen of a given size. The views draw into these rectangles and
/// the key map reads them to turn a mouse click into a row, so the two cannot disagree.
///
/// From the top: the header line; the pair table (a title line, the column headings, the rows);
/// the detail of the selected pair; then the events, or the log pane when it is open (beside the
/// events on wide screens, in their place on narrow ones); the footer of keys; the status line
/// (prompt or message). Small screens drop panes from the bottom up, never overlap them.
public struct ConsoleLayout: Sendable, Equatable {
    public var width: Int
    public var height: Int
    public var header = Rect(x: 0, y: 0, width: 0, height: 0)
    public var table = Rect(x: 0, y: 0, width: 0, height: 0)
    public var detail = Rect(x: 0, y: 0, width: 0, height: 0)
    public var events = Rect(x: 0, y: 0, width: 0, height: 0)
    public var logs = Rect(x: 0, y: 0, width: 0, height: 0)
    /// The keys of the focused pane; empty on short screens, where the status line shows them.
    public var footer = Rect(x: 0, y: 0, width: 0, height: 0)
    /// The prompt, a message, or (on short screens) the keys.
    public var status = Rect(x: 0, y: 0, width: 0, height: 0)

    /// Lines the detail pane wants: title, the pods' names, nine lines of facts.
    public static let detailHeight = 11
    /// From this width, the log pane opens beside the events instead of in their place.
    public static let wideWidth = 150

    public init(width: Int, height: Int, rowCount: Int, logsVisible: Bool) {
        self.width = max(0, width)
        self.height = max(0, height)
        let w = self.width, h = self.height
        guard w > 0, h > 0 else { return }
        header = Rect(x: 0, y: 0, width: w, height: 1)
        guard h > 1 else { return }
        var bottom = h
        if h >= 10 {
            footer = Rect(x: 0, y: h - 2, width: w, height: 1)
            status = Rect(x: 0, y: h - 1, width: w, height: 1)
            bottom = h - 2
        } else {
            status = Rect(x: 0, y: h - 1, width: w, height: 1)
            bottom = h - 1
        }
        let bodyHeight = bottom - 1
        guard bodyHeight > 0 else { return }
        if bodyHeight < 12 {
            table = Rect(x: 0, y: 1, width: w, height: bodyHeight)
            return
        }
        let tableMax = bodyHeight >= 40 ? bodyHeight * 2 / 5 : (logsVisible ? max(4, bodyHeight / 4) : bodyHeight / 3)
        let tableHeight = min(max(rowCount, 1) + 2, max(3, tableMax))
        table = Rect(x: 0, y: 1, width: w, height: tableHeight)
        let restY = 1 + tableHeight
        let rest = bottom - restY
        let wide = w >= Self.wideWidth
        if logsVisible && !wide && rest < 24 {
            logs = Rect(x: 0, y: restY, width: w, height: rest)
            return
        }
        var detailHeight = min(Self.detailHeight, rest)
        var remaining = rest - detailHeight
        if remaining < 3 {
            // Too little for another pane: the detail keeps the lines.
            detailHeight = rest
            remaining = 0
        }
        detail = Rect(x: 0, y: restY, width: w, height: detailHeight)
        guard remaining > 0 else { return }
        let lowerY = restY + detailHeight
        if !logsVisible {
            events = Rect(x: 0, y: lowerY, width: w, height: remaining)
        } else if wide {
            let eventsWidth = w * 2 / 5
            events = Rect(x: 0, y: lowerY, width: eventsWidth, height: remaining)
            logs = Rect(x: eventsWidth + 1, y: lowerY, width: w - eventsWidth - 1, height: remaining)
        } else {
            logs = Rect(x: 0, y: lowerY, width: w, height: remaining)
        }
    }

    /// The layout for the screen `state` describes, with the table's rows from `list`.
    public init(width: Int, height: Int, state: ConsoleState, list: PairList) {
        self.init(width: width, height: height, rowCount: list.count, logsVisible: Self.logsVisible(state))
    }

    /// The log pane shows while it has the focus or streams a pod.
    public static func logsVisible(_ state: ConsoleState) -> Bool { state.focus == .logs || state.logs.pod != nil }

    /// The rows of the pair table that hold pairs (below its title and headings).
    public var tableBody: Rect {
        let skip = table.height >= 3 ? 2 : table.height == 2 ? 1 : 0
        return Rect(x: table.x, y: table.y + skip, width: table.width, height: table.height - skip)
    }

    /// The first row of pairs shown, so that the selected one is on screen: `stored` (the last
    /// scroll position) moved just enough.
    public static func tableOffset(stored: Int, selected: Int?, rows: Int, count: Int) -> Int {
        guard rows > 0, count > rows else { return 0 }
        var offset = min(max(0, stored), count - rows)
        if let selected {
            if selected < offset { offset = selected }
            if selected >= offset + rows { offset = selected - rows + 1 }
        }
        return offset
    }

    /// Lines of the log pane that hold log lines (below its title).
    public var logBody: Rect { Rect(x: logs.x, y: logs.y + 1, width: logs.width, height: logs.height - 1) }

    /// Lines of the events pane that hold events (below its title and headings).
    public var eventsBody: Rect { Rect(x: events.x, y: events.y + 2, width: events.width, height: events.height - 2) }

    /// The pane under a click, if any.
    public func pane(atX x: Int, y: Int) -> ConsoleState.Pane? {
        func inside(_ rect: Rect) -> Bool { x >= rect.x && x < rect.maxX && y >= rect.y && y < rect.maxY }
        if inside(table) { return .pairs }
        if inside(detail) { return .detail }
        if inside(events) { return .events }
        if inside(logs) { return .logs }
        return nil
    }
}
