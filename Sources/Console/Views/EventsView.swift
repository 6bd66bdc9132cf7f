import Foundation
import OperatorEngine

/// The selected pair's events, newest first (the snapshot keeps them in that order), Warning
/// rows in the warning role.
enum EventsView {
    static func draw(into grid: inout CellGrid, rect: Rect, pair: PairRow?, context: RenderContext) {
        guard rect.width > 0, rect.height > 0 else { return }
        let glyphs = context.glyphs, state = context.state
        let events = pair.flatMap { context.snapshot.events[$0.key] } ?? []
        let offset = min(max(0, state.eventsOffset), max(0, events.count - 1))
        let title = pair.map { "Events \($0.key) (newest first)" } ?? "Events"
        let right = events.isEmpty ? "" : "\(offset + 1)-\(min(events.count, offset + max(0, rect.height - 2))) of \(events.count)"
        grid.titleLine(title, rect: Rect(x: rect.x, y: rect.y, width: rect.width, height: 1),
                       focused: state.focus == .events && state.overlay == nil, glyphs: glyphs, right: right)
        guard rect.height > 1 else { return }
        let ageWidth = 5, typeWidth = 8, reasonWidth = min(18, max(6, rect.width / 6))
        let messageX = rect.x + 1 + ageWidth + 1 + typeWidth + 1 + reasonWidth + 1
        guard !events.isEmpty else {
            grid.write(pair == nil ? "No pair selected." : "No events.", x: rect.x + 1, y: rect.y + 1, width: rect.width - 1, role: .muted)
            return
        }
        func row(_ y: Int, _ values: [String], role: Role, bold: Bool = false) {
            var x = rect.x + 1
            for (value, width) in zip(values, [ageWidth, typeWidth, reasonWidth]) {
                grid.write(value, x: x, y: y, width: width, role: role, bold: bold, ellipsis: glyphs.ellipsis)
                x += width + 1
            }
            if messageX < rect.maxX {
                grid.write(values[3], x: messageX, y: y, width: rect.maxX - messageX, role: role, bold: bold, ellipsis: glyphs.ellipsis)
            }
        }
        row(rect.y + 1, ["AGE", "TYPE", "REASON", "MESSAGE"], role: .muted, bold: true)
        for (line, event) in events.dropFirst(offset).prefix(max(0, rect.height - 2)).enumerated() {
            let age = event.lastSeen.map { PairStatusReport.age(context.now.timeIntervalSince($0)) } ?? "?"
            let message = event.count > 1 ? "(x\(event.count)) \(event.message)" : event.message
            let role: Role = event.type == "Warning" ? .warning : .text
            row(rect.y + 2 + line, [age, event.type, event.reason, message], role: role)
            if role != .text { grid.paint(Rect(x: rect.x, y: rect.y + 2 + line, width: rect.width, height: 1), role: role) }
        }
    }
}

/// The selected pod's daemonlog: the tail of the ring (or a scrolled window of it), search
/// matches highlighted, and "[follow]" while it follows the tail.
enum LogView {
    static func draw(into grid: inout CellGrid, rect: Rect, logs: LogRing?, context: RenderContext) {
        guard rect.width > 0, rect.height > 0 else { return }
        let glyphs = context.glyphs, state = context.state, pane = state.logs
        let focused = state.focus == .logs && state.overlay == nil
        let count = logs?.count ?? 0
        let rows = max(0, rect.height - 1)
        let window = window(count: count, rows: rows, pane: pane)
        // Drawn at every frame of a streaming log, so no text is made for it while following.
        let marker = pane.follow ? "[follow]" : "[paused, \(count - window.upperBound) below]"
        // The dropped count only where it fits beside the title; the marker always.
        let dropped = logs.map(\.dropped) ?? 0
        let showsDropped = dropped > 0 && TextMeasure.columns(pane.title) + marker.count + 20 + 8 < rect.width
        let right = !showsDropped ? marker : pane.follow ? " dropped  [follow]" : " dropped  " + marker
        grid.titleLine(pane.title, rect: Rect(x: rect.x, y: rect.y, width: rect.width, height: 1), focused: focused, glyphs: glyphs,
                       right: right, rightCount: showsDropped ? dropped : nil)
        guard rows > 0 else { return }
        guard pane.podName != nil else {
            grid.write("Press l on a pair to stream its pod's log.", x: rect.x + 1, y: rect.y + 1, width: rect.width - 1, role: .muted)
            return
        }
        guard let logs, count > 0 else {
            grid.write("Waiting for log lines" + String(glyphs.ellipsis), x: rect.x + 1, y: rect.y + 1, width: rect.width - 1, role: .muted)
            return
        }
        let needle = TextMeasure.lowercasedBytes(pane.search)
        let textWidth = rect.width - 1
        for (line, index) in window.enumerated() {
            let y = rect.y + 1 + line
            // An ASCII line (most are) is drawn and searched from the ring's bytes.
            let asciiMatches = logs.withLine(index) { bytes -> [Int]? in
                guard TextMeasure.isASCII(bytes) else { return nil }
                grid.writeASCII(bytes, x: rect.x + 1, y: y, width: textWidth, role: .text, ellipsis: glyphs.ellipsis)
                return TextMeasure.matches(inASCII: bytes, lowercasedNeedle: needle)
            }
            let matches: [Int]
            if let asciiMatches {
                matches = asciiMatches
            } else {
                let text = logs[index]
                grid.write(text, x: rect.x + 1, y: y, width: textWidth, role: .text, ellipsis: glyphs.ellipsis)
                matches = TextMeasure.matches(in: text, lowercasedNeedle: needle)
            }
            for start in matches where start < textWidth {
                grid.paint(Rect(x: rect.x + 1 + start, y: y, width: min(needle.count, textWidth - start), height: 1), role: .selection)
            }
        }
    }

    /// The ring indexes shown: the last `rows` lines, or, when not following, the `rows` lines
    /// ending `offset` lines above the tail.
    static func window(count: Int, rows: Int, pane: LogPaneState) -> Range<Int> {
        let below = pane.follow ? 0 : min(max(0, pane.offset), max(0, count - rows))
        let end = count - below
        return max(0, end - rows)..<end
    }
}
