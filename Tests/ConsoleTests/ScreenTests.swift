import Foundation
import OperatorEngine
import Testing

@testable import Console

@Suite("Console views on the cell grid", .timeLimit(.minutes(5)))
struct ScreenTests {
    static let screenSizes = [(80, 24), (200, 60)]

    /// Every state at both sizes.
    static let cases: [(String?, Int, Int)] = Fixtures.states.flatMap { state in screenSizes.map { (state, $0.0, $0.1) } }

    @Test("the table row of the pair shows its state in its role, and the header says where and which engine", arguments: cases)
    func tableRow(state: String?, width: Int, height: Int) throws {
        let snapshot = Fixtures.snapshot(pairs: [Fixtures.pair(state: state)])
        var ui = ConsoleState()
        ui.focus = .detail
        let grid = Fixtures.render(snapshot, ui, width: width, height: height)
        #expect(grid.width == width && grid.height == height && grid.lines.allSatisfy { $0.count == width })
        #expect(grid.allOneColumn)
        // Header: context, namespace, engine, API, clock.
        let header = grid.lines[0]
        #expect(header.contains("ctx: tenops-local"))
        #expect(header.contains("ns: default"))
        #expect(header.contains("engine: embedded"))
        #expect(header.contains("API ok"))
        #expect(header.contains("07:08:09"))
        // The row: NAME NAMESPACE STATE ACTIVE STANDBY REPL LAG AGE.
        let headings = try #require(grid.first("NAME"))
        let headingLine = grid.lines[headings.y]
        for title in ["NAMES", "STATE", "ACTIVE", "STANDBY", "REPL LAG", "AGE"] { #expect(headingLine.contains(title)) }
        let row = try #require(grid.lines.firstIndex { $0.contains(" sample ") && $0.contains("default") })
        #expect(row == headings.y + 1)
        let text = grid.lines[row]
        let shown = state ?? "-"
        let stateX = try #require(grid.find(shown).first { $0.y == row }?.x)
        #expect(stateX == headingLine.distance(from: headingLine.startIndex, to: headingLine.range(of: "STATE")!.lowerBound))
        if state != nil {
            #expect(text.contains("sample-0") || text.contains("sample-1"))
            #expect(text.contains("1.5 KiB"))
        }
        #expect(text.contains("2h"))
        // The selected row is drawn in the selection role; its pointer marks it.
        #expect(grid[0, row].character == Glyphs.unicode.pointer)
        #expect(grid.roles(at: 1, y: row, count: width - 1) == [.selection])
        // Another, unselected row keeps the state's role.
        var two = snapshot
        two.pairs.append(Fixtures.pair(state: state, name: "zz-other"))
        let second = Fixtures.render(two, ui, width: width, height: height)
        let other = try #require(second.first("zz-other"))
        #expect(second[other.x, other.y].role == Fixtures.expectedRole(state))
        let secondHeadings = second.lines[try #require(second.first("NAME")).y]
        let secondStateX = secondHeadings.distance(from: secondHeadings.startIndex, to: secondHeadings.range(of: "STATE")!.lowerBound)
        #expect(second.roles(at: secondStateX, y: other.y, count: shown.count) == [Fixtures.expectedRole(state)])
    }

    @Test("the detail shows the two pods side by side with their roles, phases, agent, database, node and PVC", arguments: cases)
    func detail(state: String?, width: Int, height: Int) throws {
        let pair = Fixtures.pair(state: state)
        let grid = Fixtures.render(Fixtures.snapshot(pairs: [pair]), width: width, height: height)
        let title = try #require(grid.first("default/sample  "))
        #expect(grid.lines[title.y].contains(state.map { "\($0) for 5m (was Normal)" } ?? "not reconciled yet"))
        let names = try #require(grid.find("sample-0  ").first { $0.y == title.y + 1 })
        let right = try #require(grid.find("sample-1  ").first { $0.y == title.y + 1 })
        // Side by side: sample-0 in the left half, sample-1 in the right half, on the same line.
        #expect(names.x < width / 2 && right.x > width / 2 - 1)
        #expect(grid[(width - 1) / 2, title.y + 2].character == "│")
        for (index, origin) in [(0, names), (1, right)] {
            let pod = pair.pods[index]
            let roleX = origin.x + "sample-0  ".count
            let roleText = pod.role.rawValue
            #expect(grid.lines[origin.y].dropFirst(roleX).hasPrefix(roleText))
            let expectedRole: Role = pod.role == .active ? .active : pod.role == .standby ? .standby : .muted
            #expect(grid.roles(at: roleX, y: origin.y, count: roleText.count) == [expectedRole])
            func value(_ line: Int) -> String {
                let text = Array(grid.lines[origin.y + line])
                let start = origin.x - 1 + 1 + PairDetailView.labelWidth
                let end = index == 0 ? (width - 1) / 2 : width
                return String(text[start..<end]).trimmingCharacters(in: .whitespaces)
            }
            #expect(value(1).hasPrefix(pod.phase ?? "no pod"))
            #expect(value(2).hasPrefix(pod.agent ?? "-"))
            if let podState = pod.podState { #expect(value(2).hasSuffix("state \(podState)")) }
            #expect(value(3) == "Loaded, " + (pod.updatable == true ? "updatable" : "read-only"))
            #expect(value(4).hasPrefix(pod.repState ?? "-"))
            #expect(value(5) == (pod.lagBytes == nil ? "-" : "1.5 KiB"))
            #expect(value(6) == "\(pod.node!) Ready")
            #expect(value(7) == "")
            #expect(value(8) == "tt-persistent-sample-\(index) Bound")
            // Labels on the left of each column.
            #expect(grid.lines[origin.y + 1].contains("Pod"))
            #expect(grid.lines[origin.y + 8].contains("PVC"))
        }
        #expect(grid.line(containing: "Action")?.contains("none") == true)
    }

    @Test("every state: the events pane and the switchover dialog render, the dialog warning unless Normal", arguments: cases)
    func eventsAndDialogPerState(state: String?, width: Int, height: Int) throws {
        let snapshot = Fixtures.snapshot(pairs: [Fixtures.pair(state: state)], events: [Fixtures.key: Fixtures.events()])
        var ui = ConsoleState()
        let grid = Fixtures.render(snapshot, ui, width: width, height: height)
        #expect(grid.first("Events default/sample (newest first)") != nil)
        #expect(grid.first("ActiveDown: sample-0 is Down") != nil)
        ui.overlay = .dialog(ActionDialog(action: .switchover, pair: Fixtures.key))
        let dialog = Fixtures.render(snapshot, ui, width: width, height: height)
        let text = try #require(OverlayTests.boxText(dialog))
        #expect(text.contains("Switch the active of default/sample from"))
        #expect(text.contains("the engine refuses a switchover") == (state != "Normal"))
        #expect(dialog.allOneColumn)
    }

    @Test("a NotReady node shows a live timer and a bar when deleteDbOnNotReadyNode is set", arguments: screenSizes)
    func notReadyTimer(width: Int, height: Int) throws {
        var pair = Fixtures.pair(state: "StandbyDown")
        pair.pods[1].nodeReady = false
        pair.pods[1].nodeNotReadySince = Fixtures.now.addingTimeInterval(-42)
        let grid = Fixtures.render(Fixtures.snapshot(pairs: [pair]), width: width, height: height)
        let timer = try #require(grid.first("NotReady 42s, deletes at 60s"))
        #expect(timer.x > width / 2)
        #expect(grid.first("node-b NotReady")?.y == timer.y - 1)
        // 42 of 60 seconds: 5 of the 8 cells before the text are full.
        let barX = timer.x - 9
        let bar = String(Array(grid.lines[timer.y])[barX..<(barX + 8)])
        #expect(bar == "█████░░░")
        #expect(grid.roles(at: timer.x, y: timer.y, count: 8) == [.error])
        #expect(grid[barX, timer.y].role == .bar && grid[barX + 7, timer.y].role == .barEmpty)

        // Past the limit, and without the setting.
        pair.pods[1].nodeNotReadySince = Fixtures.now.addingTimeInterval(-75)
        #expect(Fixtures.render(Fixtures.snapshot(pairs: [pair]), width: width, height: height).first("NotReady 75s, limit 60s") != nil)
        pair.deleteDbOnNotReadyNode = nil
        let plain = Fixtures.render(Fixtures.snapshot(pairs: [pair]), width: width, height: height)
        #expect(plain.first("NotReady 75s") != nil)
        #expect(plain.first("deletes at") == nil)
    }

    @Test("a running action shows a progress bar in the detail; a finished one its result", arguments: screenSizes)
    func actionInDetail(width: Int, height: Int) throws {
        var pair = Fixtures.pair(state: "StandbyDown")
        var record = ActionRecord(id: "c3d4")
        record.verb = "reduplicate"
        record.pod = "sample-1"
        record.state = ActionState.running
        record.phase = "copying"
        record.startTime = Fixtures.now.addingTimeInterval(-5)
        record.bytesDone = 4 * 1024 * 1024
        record.bytesTotal = 10 * 1024 * 1024
        pair.lastAction = record
        let grid = Fixtures.render(Fixtures.snapshot(pairs: [pair]), width: width, height: height)
        let line = try #require(grid.line(containing: "Action"))
        #expect(line.contains("reduplicate sample-1 c3d4 Running (copying) █"))
        #expect(line.hasSuffix("░ 40% 4 MiB / 10 MiB" + String(repeating: " ", count: line.count - line.distance(from: line.startIndex, to: line.range(of: "MiB / 10 MiB")!.upperBound))))
        // 40%: 8 of 20 cells where there is room (7 cells at 80 columns: 2 full).
        #expect(line.contains(width >= 200 ? "████████░░░░░░░░░░░░ 40%" : "██░░░░░ 40%"))
        let state = try #require(grid.first("Running (copying)"))
        #expect(grid.roles(at: state.x, y: state.y, count: 7) == [.warning])

        record.state = ActionState.succeeded
        record.endTime = Fixtures.now.addingTimeInterval(-120)
        record.message = "sample-1 was copied again"
        pair.lastAction = record
        let done = Fixtures.render(Fixtures.snapshot(pairs: [pair]), width: width, height: height)
        #expect(done.line(containing: "Action")?.contains("reduplicate sample-1 c3d4 Succeeded 2m ago: sample-1 was copied again") == true)
    }

    @Test("events: newest first, warnings in the warning role", arguments: screenSizes)
    func events(width: Int, height: Int) throws {
        let pair = Fixtures.pair(state: "ActiveDown")
        let snapshot = Fixtures.snapshot(pairs: [pair], events: [Fixtures.key: Fixtures.events()])
        let grid = Fixtures.render(snapshot, width: width, height: height)
        let title = try #require(grid.first("Events default/sample (newest first)"))
        let warning = try #require(grid.first("ActiveDown: sample-0 is Down"))
        #expect(warning.y == title.y + 2)
        #expect(grid.line(containing: "ActiveDown: sample-0")?.contains("5s") == true)
        #expect(grid.roles(at: 1, y: warning.y, count: 10) == [.warning])
        let normal = try #require(grid.first("Normal: sample-1 is the standby"))
        #expect(normal.y == warning.y + 1)
        #expect(grid[normal.x, normal.y].role == .text)
        let counted = try #require(grid.first("(x3) created the StatefulSet sample"))
        #expect(counted.y == normal.y + 1)
    }

    @Test("the log pane shows the tail, [follow], and search matches highlighted", arguments: screenSizes)
    func logPane(width: Int, height: Int) throws {
        var ring = LogRing(capacity: 100)
        for index in 0..<150 { ring.append("line \(index) " + (index % 10 == 0 ? "checkpoint complete" : "ok")) }
        var ui = ConsoleState()
        ui.focus = .logs
        ui.logs.pod = Fixtures.key
        ui.logs.podName = "sample-0"
        ui.logs.search = "checkpoint"
        let snapshot = Fixtures.snapshot(pairs: [Fixtures.pair(state: "Normal")])
        let grid = Fixtures.render(snapshot, ui, logs: ring, width: width, height: height)
        let title = try #require(grid.first("Logs sample-0 daemonlog"))
        #expect(grid.lines[title.y].contains("[follow]"))
        #expect(grid.lines[title.y].contains("50 dropped"))
        let last = try #require(grid.first("line 149 ok"))
        #expect(last.y == ConsoleLayout(width: width, height: height, rowCount: 1, logsVisible: true).logs.maxY - 1)
        let match = try #require(grid.first("line 140 checkpoint complete"))
        let word = match.x + "line 140 ".count
        #expect(grid.roles(at: word, y: match.y, count: "checkpoint".count) == [.selection])
        #expect(grid[word - 1, match.y].role == .text)
        // Scrolled up 20 lines: paused, the tail out of view.
        ui.logs.follow = false
        ui.logs.offset = 20
        let paused = Fixtures.render(snapshot, ui, logs: ring, width: width, height: height)
        #expect(paused.first("line 129 ok") != nil)
        #expect(paused.first("line 149 ok") == nil)
        #expect(paused.line(containing: "Logs sample-0")?.contains("[paused, 20 below]") == true)
        #expect(paused.first("[follow]") == nil)
    }

    @Test("a frame drawn over the grid of an earlier one, of any size, equals a frame drawn on a fresh grid")
    func renderIntoReusedGrid() {
        var ring = LogRing(capacity: 10)
        ring.append("a log line long enough to leave cells behind if a frame did not clear them first")
        var busy = ConsoleState()
        busy.focus = .logs
        busy.logs.pod = Fixtures.key
        busy.logs.podName = "sample-0"
        busy.overlay = .help
        let quiet = ConsoleState()
        let full = Fixtures.snapshot(pairs: [Fixtures.pair(state: "Normal")] + (1..<30).map { Fixtures.pair(state: "Failed", name: "pair-\($0)") })
        let empty = Fixtures.snapshot(pairs: [])
        var grid = CellGrid(width: 1, height: 1)
        let frames: [(ConsoleSnapshot, ConsoleState, LogRing?, Int, Int)] = [
            (full, busy, ring, 200, 60), (empty, quiet, nil, 200, 60), (full, busy, ring, 80, 24), (empty, quiet, nil, 80, 24),
            (full, quiet, nil, 200, 60),
        ]
        for (snapshot, state, logs, width, height) in frames {
            ConsoleScreen.render(snapshot, state, logs: logs, into: &grid, width: width, height: height, glyphs: .unicode, timeZone: Fixtures.utc)
            #expect(grid == Fixtures.render(snapshot, state, logs: logs, width: width, height: height))
        }
    }

    /// Lines as the ring holds them, and as the pane must show them: an ASCII line is drawn from
    /// the ring's bytes, any other through a `String`, and both must come out alike.
    static let logLines: [(line: String, shown: String, match: Int?)] = [
        ("plain checkpoint line", "plain checkpoint line", 6),
        ("tab\there CHECKPOINT\u{7}bell", "tab here CHECKPOINT bell", 9),
        ("naïve — checkpoint", "naïve — checkpoint", 8),
        ("wide 日本 checkpoint", "wide ?? checkpoint", 8),
        ("no match here", "no match here", nil),
        (String(repeating: "x", count: 200) + " checkpoint", String(repeating: "x", count: 200) + " checkpoint", 201),
        (String(repeating: "é", count: 200) + " checkpoint", String(repeating: "é", count: 200) + " checkpoint", 201),
    ]

    @Test("log lines in ASCII or not are drawn alike: controls as spaces, wide characters as ?, cut with an ellipsis, matches highlighted",
          arguments: logLines)
    func logLineDrawing(line: String, shown: String, match: Int?) throws {
        var ring = LogRing(capacity: 10)
        ring.append(line)
        var ui = ConsoleState()
        ui.focus = .logs
        ui.logs.pod = Fixtures.key
        ui.logs.podName = "sample-0"
        ui.logs.search = "checkpoint"
        let grid = Fixtures.render(Fixtures.snapshot(pairs: [Fixtures.pair(state: "Normal")]), ui, logs: ring, width: 80, height: 24)
        let pane = ConsoleLayout(width: 80, height: 24, rowCount: 1, logsVisible: true).logs
        let row = pane.y + 1  // the first line under the title
        let textWidth = pane.width - 1
        let drawn = String(grid.lines[row].dropFirst(pane.x + 1).prefix(textWidth))
        let expected = shown.count > textWidth ? String(shown.prefix(textWidth - 1)) + "…" : shown
        #expect(drawn.trimmingCharacters(in: .whitespaces) == expected)
        let highlighted = (pane.x + 1..<pane.maxX).filter { grid[$0, row].role == .selection }.map { $0 - pane.x - 1 }
        let expectedMatch = match.flatMap { $0 < textWidth ? Array($0..<($0 + "checkpoint".count)) : nil } ?? []
        #expect(highlighted == expectedMatch)
    }

    @Test("the footer lists the keys of the focused pane; local-only keys only on the local cluster")
    func footer() throws {
        let snapshot = Fixtures.listSnapshot()
        var ui = ConsoleState()
        let pairs = Fixtures.render(snapshot, ui, width: 200, height: 60)
        let footer = pairs.lines[58]
        for key in ["? help", "/ filter", "l logs", "S switchover", "F failover", "R redup", "E reexamine", "M stop", "q quit"] {
            #expect(footer.contains(key), "\(key) missing from \(footer)")
        }
        #expect(!footer.contains("P poweroff"))
        let local = Fixtures.render(Fixtures.listSnapshot(local: true), ui, width: 200, height: 60)
        #expect(local.lines[58].contains("P poweroff") && local.lines[58].contains("X partition") && local.lines[58].contains("U node up"))
        ui.focus = .logs
        let logs = Fixtures.render(snapshot, ui, width: 200, height: 60)
        #expect(logs.lines[58].contains("f follow") && logs.lines[58].contains("n next") && logs.lines[58].contains("q close"))
        let key = try #require(pairs.find("? help").first { $0.y == 58 })
        #expect(pairs[key.x, key.y].role == .key)
        #expect(pairs[key.x + 2, key.y].role == .muted)
        // 80 columns: the keys that fit, none cut in half.
        let narrow = Fixtures.render(snapshot, ConsoleState()).lines[22]
        #expect(narrow.hasPrefix("? help  jk select  / filter"))
        #expect(!narrow.hasSuffix("swi"))
    }

    @Test("the prompt line shows the filter or command being typed, or the message")
    func promptLine() {
        var ui = ConsoleState()
        ui.prompt = .filter("sam")
        ui.filter = "sam"
        let grid = Fixtures.render(Fixtures.listSnapshot(), ui)
        #expect(grid.lines[23].hasPrefix("/sam_"))
        #expect(grid.first("Pairs (default) [1 of 4] /sam") != nil)
        ui.prompt = .command("ns kube")
        #expect(Fixtures.render(Fixtures.listSnapshot(), ui).lines[23].hasPrefix(":ns kube_"))
        ui.prompt = nil
        ui.flash = Flash("unknown command :x", isError: true)
        let flash = Fixtures.render(Fixtures.listSnapshot(), ui)
        #expect(flash.lines[23].hasPrefix("unknown command :x"))
        #expect(flash[0, 23].role == .error)
    }

    @Test("the table sorts and filters as the state says, and marks the sort column", arguments: [
        (ConsoleState.SortColumn.name, true, ["billing", "orders", "sample", "zeta"]),
        (.name, false, ["zeta", "sample", "orders", "billing"]),
        (.state, true, ["billing", "orders", "sample", "zeta"]),
        (.namespace, false, ["orders", "zeta", "sample", "billing"]),
        (.age, true, ["billing", "sample", "zeta", "orders"]),
    ])
    func sorting(column: ConsoleState.SortColumn, ascending: Bool, expected: [String]) throws {
        var ui = ConsoleState()
        ui.sort = column
        ui.ascending = ascending
        let snapshot = Fixtures.listSnapshot()
        let list = PairList(snapshot: snapshot, state: ui)
        #expect(list.indices.map { snapshot.pairs[$0].key.name } == expected)
        let grid = Fixtures.render(snapshot, ui)
        let rows = expected.map { name in grid.find(" \(name) ").first?.y ?? -1 }
        #expect(rows == rows.sorted() && !rows.contains(-1))
        let marker = column.rawValue.uppercased().replacingOccurrences(of: "LAG", with: "REPL LAG") + (ascending ? "↑" : "↓")
        #expect(grid.first(marker) != nil)
    }

    @Test("the filter matches name, namespace, state and pods, ignoring case", arguments: [
        ("SAM", ["sample"]), ("shop", ["orders"]), ("activedown", ["billing"]), ("normal", ["sample", "zeta"]),
        ("zeta-1", ["zeta"]), ("nothing", []),
    ])
    func filter(text: String, expected: [String]) {
        var ui = ConsoleState()
        ui.filter = text
        let snapshot = Fixtures.listSnapshot()
        #expect(PairList(snapshot: snapshot, state: ui).indices.map { snapshot.pairs[$0].key.name }.sorted() == expected)
        let grid = Fixtures.render(snapshot, ui)
        if expected.isEmpty { #expect(grid.first("No pair matches /nothing (Esc clears the filter)") != nil) }
    }

    /// Each step changes one input of the table's rows (or none); the memo must hand out what a
    /// fresh `PairList` gives, and filter and sort again only when an input they depend on changed.
    @Test("the memo of the table's rows sorts again only when the pairs, filter, sort or (age sort) clock change")
    func pairListMemo() {
        typealias Step = (String, (inout ConsoleSnapshot, inout ConsoleState) -> Void, Int)
        let steps: [Step] = [
            ("first frame", { _, _ in }, 1),
            ("the same again", { _, _ in }, 1),
            ("a clock tick under the name sort", { snapshot, _ in snapshot.now += 1 }, 1),
            ("log lines only (the state's log pane)", { _, state in state.logs.follow.toggle() }, 1),
            ("the filter: billing only", { _, state in state.filter = "ing" }, 2),
            ("a selection that the filter hides", { snapshot, state in state.selected = snapshot.pairs[2].key }, 2),
            ("a selection shown", { snapshot, state in state.selected = snapshot.pairs[1].key }, 2),
            ("the sort order", { _, state in state.ascending = false }, 3),
            ("the sort column: age", { _, state in state.sort = .age }, 4),
            ("a clock tick under the age sort", { snapshot, _ in snapshot.now += 1 }, 5),
            ("a pair's state", { snapshot, _ in snapshot.pairs[0].state = "ActiveDown" }, 6),
            ("a pair gone", { snapshot, _ in snapshot.pairs.removeLast() }, 7),
            ("the same pairs again, in new storage", { snapshot, _ in snapshot.pairs = snapshot.pairs.map { $0 } }, 7),
            ("a pair's row changed, same keys", { snapshot, _ in snapshot.pairs[1].active = "billing-9" }, 8),
        ]
        var memo = PairListMemo()
        var snapshot = Fixtures.listSnapshot()
        var state = ConsoleState()
        for (what, change, builds) in steps {
            change(&snapshot, &state)
            let list = memo.list(snapshot: snapshot, state: state)
            #expect(list == PairList(snapshot: snapshot, state: state), "\(what)")
            #expect(memo.builds == builds, "\(what)")
        }
    }

    /// Each step changes one input of the frame (or only the log lines); the memo must draw
    /// exactly what a fresh render draws, and draw the base again only when the base's inputs
    /// changed, never for log lines alone.
    @Test("the screen memo draws all but the log pane again only when the snapshot, state, size or glyphs change")
    func screenMemo() {
        typealias Step = (String, (inout ConsoleSnapshot, inout ConsoleState, inout LogRing, inout (Int, Int), inout Glyphs) -> Void, Int)
        let steps: [Step] = [
            ("first frame, a log streaming", { _, _, _, _, _ in }, 1),
            ("the same again", { _, _, _, _, _ in }, 1),
            ("a log line", { _, _, ring, _, _ in ring.append("checkpoint 1 written") }, 1),
            ("many log lines, wrapping the ring", { _, _, ring, _, _ in (0..<50).forEach { ring.append("line \($0)") } }, 1),
            ("a clock tick", { snapshot, _, _, _, _ in snapshot.now += 1 }, 2),
            ("a log line after the tick", { _, _, ring, _, _ in ring.append("after the tick") }, 2),
            ("the log pane paused (its state)", { _, state, _, _, _ in state.logs.follow = false }, 3),
            ("a log line while paused", { _, _, ring, _, _ in ring.append("while paused") }, 3),
            ("the selection moves", { snapshot, state, _, _, _ in state.selected = snapshot.pairs[1].key }, 4),
            ("the same pairs in new storage: equal, so nothing to draw", { snapshot, _, _, _, _ in snapshot.pairs = snapshot.pairs.map { $0 } }, 4),
            ("a log line after that", { _, _, ring, _, _ in ring.append("after new storage") }, 4),
            ("a pair's state", { snapshot, _, _, _, _ in snapshot.pairs[0].state = "ActiveDown" }, 5),
            ("the help overlay, over the log pane", { _, state, _, _, _ in state.overlay = .help }, 6),
            ("a log line under the overlay", { _, _, ring, _, _ in ring.append("under the overlay") }, 6),
            ("the overlay closed", { _, state, _, _, _ in state.overlay = nil }, 7),
            ("a narrow screen", { _, _, _, size, _ in size = (80, 24) }, 8),
            ("a log line on the narrow screen", { _, _, ring, _, _ in ring.append("narrow") }, 8),
            ("ASCII glyphs", { _, _, _, _, glyphs in glyphs = .ascii }, 9),
            ("the wide screen again", { _, _, _, size, _ in size = (200, 60) }, 10),
        ]
        var memo = ConsoleScreenMemo()
        var snapshot = Fixtures.listSnapshot()
        snapshot.events = [Fixtures.key: Fixtures.events()]
        var state = ConsoleState()
        state.logs.pod = Fixtures.key
        state.logs.podName = "sample-0"
        var ring = LogRing(capacity: 20)
        ring.append("first line")
        var size = (200, 60)
        var glyphs = Glyphs.unicode
        var grid = CellGrid(width: 1, height: 1)
        for (what, change, draws) in steps {
            change(&snapshot, &state, &ring, &size, &glyphs)
            memo.render(snapshot, state, logs: ring, into: &grid, width: size.0, height: size.1, glyphs: glyphs, timeZone: Fixtures.utc)
            let fresh = Fixtures.render(snapshot, state, logs: ring, width: size.0, height: size.1, glyphs: glyphs)
            let same = grid == fresh
            #expect(same, "\(what): the frame differs from a fresh render")
            #expect(memo.baseDraws == draws, "\(what)")
        }
        #expect(grid.first("narrow") != nil, "the last log lines are on the screen")
    }

    @Test("the header: engine in observe mode with the lease holder, all namespaces, API trouble")
    func header() {
        var snapshot = Fixtures.snapshot(pairs: [Fixtures.pair(state: "Normal")], namespace: nil,
                                         engine: EngineInfo(requested: "auto", mode: .observe, leaseHolder: "tenops-operator-7f9c"))
        snapshot.api = .unreachable("connection refused")
        let grid = Fixtures.render(snapshot, width: 200, height: 60)
        #expect(grid.lines[0].contains("ns: all"))
        #expect(grid.lines[0].contains("engine: observe (lease: tenops-operator-7f9c)"))
        let api = grid.first("API unreachable: connection refused")!
        #expect(grid[api.x, 0].role == .error)
        #expect(grid.first("Pairs (all) [1]") != nil)
        let embedded = Fixtures.render(Fixtures.snapshot(pairs: [], engine: EngineInfo(requested: "auto", mode: .embedded)))
        #expect(embedded.lines[0].contains("engine: embedded (auto)"))
        #expect(embedded.first("No pairs in namespace default") != nil)
        #expect(HeaderView.clock(Fixtures.now, timeZone: TimeZone(secondsFromGMT: 3600 * 2)!) == "09:08:09")
    }

    @Test("layouts hold at every size: nothing overlaps, nothing overflows, tiny screens degrade", arguments: [
        (80, 24), (200, 60), (120, 40), (100, 30), (60, 20), (40, 12), (20, 5), (10, 3), (5, 1), (1, 1), (0, 0), (300, 100), (79, 9),
    ])
    func sizes(width: Int, height: Int) {
        var ui = ConsoleState()
        var ring = LogRing(capacity: 10)
        ring.append("a log line that is long enough to be cut on small screens, and then some more words")
        let snapshot = Fixtures.listSnapshot(local: true)
        for focus in ConsoleState.Pane.allCases {
            ui.focus = focus
            if focus == .logs {
                ui.logs.pod = Fixtures.key
                ui.logs.podName = "sample-0"
            }
            let grid = Fixtures.render(snapshot, ui, logs: ring, width: width, height: height)
            #expect(grid.width == width && grid.height == height)
            #expect(grid.cells.count == width * height)
            #expect(grid.allOneColumn)
            let layout = ConsoleLayout(width: width, height: height, rowCount: 4, logsVisible: focus == .logs)
            let rects = [layout.header, layout.table, layout.detail, layout.events, layout.logs, layout.footer, layout.status].filter { !$0.isEmpty }
            for (index, a) in rects.enumerated() {
                #expect(a.x >= 0 && a.y >= 0 && a.maxX <= width && a.maxY <= height, "\(a) outside \(width)x\(height)")
                for b in rects[(index + 1)...] {
                    let overlap = a.x < b.maxX && b.x < a.maxX && a.y < b.maxY && b.y < a.maxY
                    #expect(!overlap, "\(a) overlaps \(b) at \(width)x\(height)")
                }
            }
            if height >= 1 && width >= 8 { #expect(grid.lines[0].hasPrefix(" tenops")) }
        }
        if width >= 20 && height >= 5 {
            ui.focus = .pairs
            let grid = Fixtures.render(snapshot, ui, width: width, height: height)
            #expect(grid.first("billing") != nil)
        }
    }

    @Test("an ASCII terminal gets ASCII only")
    func asciiOnly() {
        var ui = ConsoleState()
        ui.selected = Fixtures.key
        var pair = Fixtures.pair(state: "StandbyDown")
        pair.pods[1].nodeReady = false
        pair.pods[1].nodeNotReadySince = Fixtures.now.addingTimeInterval(-42)
        let snapshot = Fixtures.snapshot(pairs: [pair, Fixtures.pair(state: "Normal", name: "b-\u{4E2D}\u{6587}-pair-with-a-very-long-name-that-does-not-fit")], local: true)
        for overlay in [nil, ConsoleState.Overlay.help, .dialog(ActionDialog(action: .failover, pair: Fixtures.key))] {
            ui.overlay = overlay
            let grid = Fixtures.render(snapshot, ui, width: 80, height: 24, glyphs: .ascii)
            let nonASCII = grid.cells.filter { !$0.character.isASCII && $0.character != "?" }
            #expect(nonASCII.isEmpty, "\(Set(nonASCII.map(\.character)))")
        }
        ui.overlay = nil
        let grid = Fixtures.render(snapshot, ui, width: 80, height: 24, glyphs: .ascii)
        #expect(grid.first("#####... NotReady 42s, deletes at 60s") != nil)
        // Wide characters from the cluster become '?', one column each.
        #expect(grid.first("b-??-pair") != nil)
    }

    @Test("render time of 1,000 pairs at 200x60 (printed, not asserted)")
    func renderFigure() {
        var pairs: [PairRow] = []
        for index in 0..<1000 {
            let state = Fixtures.states[index % Fixtures.states.count]
            pairs.append(Fixtures.pair(state: state, name: "pair-\(String(format: "%04d", (index * 7919) % 1000))", namespace: "ns-\(index % 7)"))
        }
        var ui = ConsoleState()
        ui.sort = .state
        ui.selected = pairs[500].key
        let snapshot = Fixtures.snapshot(pairs: pairs, events: [pairs[500].key: Fixtures.events()], namespace: nil)
        let clock = ContinuousClock()
        var grid = Fixtures.render(snapshot, ui, width: 200, height: 60)
        let rounds = 50
        let elapsed = clock.measure {
            for _ in 0..<rounds { grid = Fixtures.render(snapshot, ui, width: 200, height: 60) }
        }
        print("ConsoleScreen.render 200x60, 1000 pairs: \(elapsed / rounds) per frame (debug build)")
        #expect(grid.first(pairs[500].key.name) != nil)
    }
}
