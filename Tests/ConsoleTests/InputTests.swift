import Foundation
import OperatorEngine
import Testing

@testable import Console

@Suite("Console key map", .timeLimit(.minutes(5)))
struct InputTests {
    /// Presses `keys` in order, returning every effect.
    @discardableResult
    static func press(_ keys: [Key], _ state: inout ConsoleState, _ snapshot: ConsoleSnapshot, logs: LogRing? = nil) -> [ConsoleEffect] {
        keys.flatMap { ConsoleInput.handle(key: $0, state: &state, snapshot: snapshot, logs: logs) }
    }

    static func type(_ text: String) -> [Key] { text.map { .char($0) } }

    static let snapshot = Fixtures.listSnapshot()
    static let local = Fixtures.listSnapshot(local: true)

    /// Names in table order: billing, orders, sample, zeta.
    static func selectedName(_ state: ConsoleState, _ snapshot: ConsoleSnapshot = snapshot) -> String? {
        PairList(snapshot: snapshot, state: state).selectedPair(in: snapshot)?.key.name
    }

    @Test("moving through the table", arguments: [
        ([Key.down], "orders"), ([.char("j"), .char("j")], "sample"), ([.up], "billing"), ([.down, .down, .down, .down, .down], "zeta"),
        ([.end], "zeta"), ([.char("G"), .char("k")], "sample"), ([.end, .home], "billing"), ([.end, .char("g")], "billing"),
        ([.pageDown], "zeta"), ([.end, .pageUp], "billing"),
    ])
    func move(keys: [Key], expected: String) {
        var state = ConsoleState()
        let effects = Self.press(keys, &state, Self.snapshot)
        #expect(effects.isEmpty)
        #expect(Self.selectedName(state) == expected)
        #expect(state.selected?.name == expected)
    }

    @Test("the selection scrolls the table just enough to stay on screen")
    func scrolling() {
        let pairs = (0..<50).map { Fixtures.pair(state: "Normal", name: String(format: "p%02d", $0)) }
        let snapshot = Fixtures.snapshot(pairs: pairs)
        var state = ConsoleState()
        let rows = ConsoleLayout(width: 80, height: 24, rowCount: 50, logsVisible: false).tableBody.height
        Self.press(Array(repeating: .down, count: rows), &state, snapshot)
        #expect(state.selected?.name == String(format: "p%02d", rows))
        #expect(state.tableOffset == 1)
        let grid = Fixtures.render(snapshot, state)
        let body = ConsoleLayout(width: 80, height: 24, rowCount: 50, logsVisible: false).tableBody
        #expect(grid.lines[body.maxY - 1].contains(String(format: "p%02d", rows)))
        #expect(grid.first("p00 ") == nil)
        Self.press([.up], &state, snapshot)
        #expect(state.tableOffset == 1)
        Self.press(Array(repeating: .up, count: rows), &state, snapshot)
        #expect(state.tableOffset == 0 && state.selected?.name == "p00")
    }

    @Test("Tab and back-Tab go round the panes; the log pane joins while open", arguments: [
        ([Key.tab], ConsoleState.Pane.detail), ([.tab, .tab], .events), ([.tab, .tab, .tab], .pairs), ([.backTab], .events),
        ([.char("l"), .tab], .pairs), ([.char("l"), .backTab], .events), ([.enter], .detail),
    ])
    func panes(keys: [Key], expected: ConsoleState.Pane) {
        var state = ConsoleState()
        Self.press(keys, &state, Self.snapshot)
        #expect(state.focus == expected)
    }

    @Test("q and Esc go back; q on the table with nothing open quits; Esc never quits", arguments: [
        (ConsoleState.Pane.pairs, Key.char("q"), ConsoleState.Pane.pairs, [ConsoleEffect.quit], true),
        (.pairs, .escape, .pairs, [], false),
        (.detail, .char("q"), .pairs, [], false),
        (.events, .escape, .pairs, [], false),
        (.logs, .char("q"), .pairs, [.stopLogs], false),
        (.logs, .escape, .pairs, [.stopLogs], false),
    ])
    func back(focus: ConsoleState.Pane, key: Key, after: ConsoleState.Pane, effects: [ConsoleEffect], quits: Bool) {
        var state = ConsoleState()
        if focus == .logs { Self.press([.char("l")], &state, Self.snapshot) }
        state.focus = focus
        #expect(Self.press([key], &state, Self.snapshot) == effects)
        #expect(state.focus == after)
        #expect(state.quitting == quits)
        if focus == .logs { #expect(state.logs == LogPaneState()) }
    }

    @Test("the filter: typed live, Enter keeps it, Esc clears it, Backspace edits")
    func filter() {
        var state = ConsoleState()
        Self.press([.char("/")] + Self.type("ord"), &state, Self.snapshot)
        #expect(state.prompt == .filter("ord"))
        #expect(state.filter == "ord")
        #expect(Self.selectedName(state) == "orders")
        Self.press([.enter], &state, Self.snapshot)
        #expect(state.prompt == nil && state.filter == "ord")
        // j/k now move in the filtered list; / again edits the kept text.
        Self.press([.char("/"), .backspace, .backspace, .backspace], &state, Self.snapshot)
        #expect(state.prompt == .filter("") && state.filter == "")
        Self.press([.backspace], &state, Self.snapshot)
        #expect(state.prompt == nil)
        Self.press([.char("/")] + Self.type("zeta") + [.escape], &state, Self.snapshot)
        #expect(state.prompt == nil && state.filter == "")
        // Esc on the table clears a kept filter; it does not quit.
        Self.press([.char("/")] + Self.type("bil") + [.enter, .escape], &state, Self.snapshot)
        #expect(state.filter == "" && !state.quitting)
        // Keys typed into the prompt are text, not commands.
        Self.press([.char("/")] + Self.type("qSF?") + [.enter], &state, Self.snapshot)
        #expect(state.filter == "qSF?" && state.overlay == nil && !state.quitting)
    }

    @Test("commands", arguments: [
        ("ns kube-system", [ConsoleEffect.switchNamespace("kube-system")], nil as String?, false),
        ("ns", [.switchNamespace(nil)], nil, false),
        ("ns all", [.switchNamespace(nil)], nil, false),
        ("ns -A", [.switchNamespace(nil)], nil, false),
        ("namespace shop", [.switchNamespace("shop")], nil, false),
        ("ctx prod-eu", [.switchContext("prod-eu")], nil, false),
        ("theme light", [.switchTheme("light")], nil, false),
        ("q", [.quit], nil, false),
        ("quit", [.quit], nil, false),
        ("bogus", [], "unknown command :bogus (try :ns NAME, :ctx NAME, :theme NAME, :q)", true),
        ("ns Bad_Name", [], "Bad_Name is not a namespace name", true),
        ("ns a b", [], ":ns takes one argument", true),
        ("ctx", [], "usage: :ctx NAME", true),
        ("theme", [], "usage: :theme NAME (built in: default, light, high-contrast, monochrome)", true),
        ("theme ../x", [], "../x is not a theme name", true),
        ("q now", [], ":q takes no argument", true),
        ("", [], nil, false),
    ])
    func commands(text: String, effects: [ConsoleEffect], flash: String?, isError: Bool) {
        var state = ConsoleState()
        let got = Self.press([.char(":")] + Self.type(text) + [.enter], &state, Self.snapshot)
        #expect(got == effects)
        #expect(state.prompt == nil)
        if let flash { #expect(state.flash == Flash(flash, isError: isError)) }
        #expect(state.quitting == (effects == [.quit]))
    }

    @Test("a command line edits, cancels with Esc, and the next key clears a message")
    func commandEditing() {
        var state = ConsoleState()
        Self.press([.char(":")] + Self.type("nx") + [.backspace] + Self.type("s shop"), &state, Self.snapshot)
        #expect(state.prompt == .command("ns shop"))
        #expect(Self.press([.escape], &state, Self.snapshot).isEmpty)
        #expect(state.prompt == nil)
        Self.press([.char(":")] + Self.type("nope") + [.enter], &state, Self.snapshot)
        #expect(state.flash?.isError == true)
        Self.press([.down], &state, Self.snapshot)
        #expect(state.flash == nil)
    }

    @Test("? opens help and Esc closes it; keys do nothing else meanwhile")
    func help() {
        var state = ConsoleState()
        Self.press([.char("?")], &state, Self.snapshot)
        #expect(state.overlay == .help)
        #expect(Self.press([.char("S"), .char("d"), .char("q")], &state, Self.snapshot).isEmpty)
        #expect(state.overlay == nil && !state.quitting)
        Self.press([.char("?"), .escape], &state, Self.snapshot)
        #expect(state.overlay == nil)
    }

    @Test("d describes the selected pair as YAML and asks for a fresh copy; the window scrolls and closes")
    func describe() throws {
        var state = ConsoleState()
        let effects = Self.press([.down, .down, .char("d")], &state, Self.snapshot)
        let key = PairKey(namespace: "default", name: "sample")
        #expect(effects == [.describe(key)])
        guard case .describe(let title, let yaml, let offset) = state.overlay else {
            Issue.record("no describe overlay")
            return
        }
        #expect(title == "TimesTenClassic default/sample")
        #expect(yaml == DescribeText.yaml(Self.snapshot.pair(key)!.object))
        #expect(offset == 0)
        state.screenHeight = 8
        Self.press([.down, .down], &state, Self.snapshot)
        guard case .describe(_, _, let scrolled) = state.overlay else { return }
        #expect(scrolled == 2)
        Self.press([.escape], &state, Self.snapshot)
        #expect(state.overlay == nil)
    }

    @Test("l streams the selected pod's log; 0/1 and arrows choose the pod", arguments: [
        ([Key.char("l")], "sample-0"),
        ([.char("1"), .char("l")], "sample-1"),
        ([.right, .char("l")], "sample-1"),
        ([.right, .left, .char("l")], "sample-0"),
        ([.char("l"), .right], "sample-1"),
        ([.char("l"), .char("1"), .char("0")], "sample-0"),
    ])
    func logs(keys: [Key], pod: String) {
        var state = ConsoleState()
        state.selected = Fixtures.key
        let effects = Self.press(keys, &state, Self.snapshot)
        #expect(effects.last == .streamLogs(Fixtures.key, pod: pod))
        #expect(state.focus == .logs)
        #expect(state.logs.podName == pod && state.logs.pod == Fixtures.key)
    }

    @Test("the log pane: scroll pauses follow, f and End resume it, n finds the next older match")
    func logKeys() {
        var ring = LogRing(capacity: 500)
        for index in 0..<300 { ring.append(index % 50 == 7 ? "line \(index) ERROR disk" : "line \(index)") }
        var state = ConsoleState()
        state.selected = Fixtures.key
        Self.press([.char("l")], &state, Self.snapshot, logs: ring)
        #expect(state.logs.follow)
        Self.press([.char("k"), .char("k")], &state, Self.snapshot, logs: ring)
        #expect(!state.logs.follow && state.logs.offset == 2)
        Self.press([.char("j")], &state, Self.snapshot, logs: ring)
        #expect(state.logs.offset == 1)
        Self.press([.end], &state, Self.snapshot, logs: ring)
        #expect(state.logs.follow && state.logs.offset == 0)
        Self.press([.char("f")], &state, Self.snapshot, logs: ring)
        #expect(!state.logs.follow)
        Self.press([.char("f")], &state, Self.snapshot, logs: ring)
        #expect(state.logs.follow)
        // Search: / in the log pane edits the search, not the table filter.
        Self.press([.char("/")] + Self.type("error") + [.enter], &state, Self.snapshot, logs: ring)
        #expect(state.logs.search == "error" && state.filter == "")
        Self.press([.char("n")], &state, Self.snapshot, logs: ring)
        // Newest match: line 257 -> offset 299 - 257.
        #expect(!state.logs.follow && state.logs.offset == 42)
        Self.press([.char("n")], &state, Self.snapshot, logs: ring)
        #expect(state.logs.offset == 92)
        Self.press(Array(repeating: .char("n"), count: 4), &state, Self.snapshot, logs: ring)
        #expect(state.logs.offset == 292)
        // Past the oldest (line 7), round to the newest again.
        Self.press([.char("n")], &state, Self.snapshot, logs: ring)
        #expect(state.logs.offset == 42)
        // Paging stops at the top.
        Self.press([.home], &state, Self.snapshot, logs: ring)
        let rows = ConsoleLayout(width: 80, height: 24, rowCount: 1, logsVisible: true).logBody.height
        #expect(state.logs.offset == 300 - rows)
        Self.press([.pageUp], &state, Self.snapshot, logs: ring)
        #expect(state.logs.offset == 300 - rows)
        // No search: n says so.
        state.logs.search = ""
        Self.press([.char("n")], &state, Self.snapshot, logs: ring)
        #expect(state.flash?.isError == true)
    }

    @Test("action keys open the dialog for the selected pair and pod", arguments: [
        ("S", ConsoleAction.switchover), ("F", .failover), ("R", .reduplicate(pod: "sample-0")), ("E", .reexamine),
        ("M", .stopManaging), ("P", .nodeDown(node: "node-a", mode: "poweroff")), ("X", .nodeDown(node: "node-a", mode: "partition")),
    ])
    func actionKeys(key: String, action: ConsoleAction) {
        var state = ConsoleState()
        state.selected = Fixtures.key
        #expect(Self.press(Self.type(key), &state, Self.local).isEmpty)
        #expect(state.overlay == .dialog(ActionDialog(action: action, pair: Fixtures.key)))
    }

    @Test("R acts on the chosen pod; node keys need the local cluster; U finds the node that is down")
    func podAndNodeKeys() {
        var state = ConsoleState()
        state.selected = Fixtures.key
        Self.press([.char("1"), .char("R")], &state, Self.snapshot)
        #expect(state.overlay == .dialog(ActionDialog(action: .reduplicate(pod: "sample-1"), pair: Fixtures.key)))

        state = ConsoleState()
        state.selected = Fixtures.key
        Self.press([.char("P")], &state, Self.snapshot)
        #expect(state.overlay == nil)
        #expect(state.flash == Flash("P: node keys work on the local cluster only.", isError: true))

        Self.press([.char("U")], &state, Self.local)
        #expect(state.overlay == nil && state.flash == Flash("No node is down.", isError: true))
        var down = Self.local
        down.nodes = [NodeRow(name: "node-a", ready: true), NodeRow(name: "node-b", ready: false, simulation: "poweroff")]
        Self.press([.char("U")], &state, down)
        #expect(state.overlay == .dialog(ActionDialog(action: .nodeUp(node: "node-b"), pair: Fixtures.key)))
        state.overlay = nil
        Self.press([.char("1"), .char("U")], &state, down)
        #expect(state.overlay == .dialog(ActionDialog(action: .nodeUp(node: "node-b"), pair: Fixtures.key)))

        // No pairs: nothing to act on.
        var empty = ConsoleState()
        Self.press([.char("S")], &empty, Fixtures.snapshot(pairs: []))
        #expect(empty.overlay == nil && empty.flash == Flash("No pair selected.", isError: true))
    }

    @Test("a non-destructive action submits on Enter, once")
    func confirmSwitchover() {
        var state = ConsoleState()
        state.selected = Fixtures.key
        Self.press([.char("S")], &state, Self.snapshot)
        #expect(Self.press([.enter], &state, Self.snapshot) == [.submit(.switchover, pair: Fixtures.key)])
        var dialog = ActionDialog(action: .switchover, pair: Fixtures.key)
        dialog.requested = true
        #expect(state.overlay == .dialog(dialog))
        #expect(Self.press([.enter], &state, Self.snapshot).isEmpty)
        // The runtime reports the submission; Esc closes, the action goes on.
        dialog.phase = .submitted(id: "a1")
        state.overlay = .dialog(dialog)
        #expect(Self.press([.enter, .char("x")], &state, Self.snapshot).isEmpty)
        #expect(state.overlay == .dialog(dialog))
        Self.press([.escape], &state, Self.snapshot)
        #expect(state.overlay == nil)
        // A finished dialog closes on Enter.
        dialog.phase = .finished(succeeded: true, message: "done")
        state.overlay = .dialog(dialog)
        Self.press([.enter], &state, Self.snapshot)
        #expect(state.overlay == nil)
    }

    @Test("a destructive action refuses Enter until the pair's name is typed exactly", arguments: [
        ("", false), ("sampl", false), ("sample ", false), ("Sample", false), ("sampel", false), ("sample", true),
    ])
    func confirmFailover(typed: String, accepted: Bool) {
        var state = ConsoleState()
        state.selected = Fixtures.key
        Self.press([.char("F")] + Self.type(typed), &state, Self.snapshot)
        let effects = Self.press([.enter], &state, Self.snapshot)
        if accepted {
            #expect(effects == [.submit(.failover, pair: Fixtures.key)])
            #expect(state.flash == nil)
        } else {
            #expect(effects.isEmpty)
            #expect(state.flash == Flash("Type sample exactly to confirm, or Esc to cancel.", isError: true))
            guard case .dialog(let dialog) = state.overlay else {
                Issue.record("the dialog closed")
                return
            }
            #expect(dialog.typed == typed && !dialog.requested)
        }
    }

    @Test("typing in a destructive dialog: Backspace corrects, q is a letter, Esc cancels")
    func destructiveTyping() {
        var state = ConsoleState()
        state.selected = Fixtures.key
        Self.press([.char("R")] + Self.type("samq") + [.backspace] + Self.type("ple"), &state, Self.snapshot)
        guard case .dialog(let dialog) = state.overlay else {
            Issue.record("no dialog")
            return
        }
        #expect(dialog.typed == "sample" && !state.quitting)
        #expect(Self.press([.enter], &state, Self.snapshot) == [.submit(.reduplicate(pod: "sample-0"), pair: Fixtures.key)])
        state.overlay = nil
        Self.press([.char("F"), .escape], &state, Self.snapshot)
        #expect(state.overlay == nil)
        // A non-destructive dialog: q and n cancel, letters are not typed.
        Self.press([.char("E"), .char("n")], &state, Self.snapshot)
        #expect(state.overlay == nil)
    }

    @Test("sorting keys: N and A choose (again: reverse), < and > step through columns, I inverts", arguments: [
        ([Key.char("N")], ConsoleState.SortColumn.name, false),
        ([.char("A")], .age, true),
        ([.char("A"), .char("A")], .age, false),
        ([.char(">")], .namespace, true),
        ([.char("<")], .age, true),
        ([.char(">"), .char(">"), .char("I")], .state, false),
        ([.char("I"), .char("I")], .name, true),
    ])
    func sorting(keys: [Key], column: ConsoleState.SortColumn, ascending: Bool) {
        var state = ConsoleState()
        Self.press(keys, &state, Self.snapshot)
        #expect(state.sort == column && state.ascending == ascending)
    }

    @Test("mouse clicks select rows, panes and pods through the views' layout")
    func clicks() {
        var state = ConsoleState()
        let layout = ConsoleLayout(width: 80, height: 24, rowCount: 4, logsVisible: false)
        Self.press([.click(x: 10, y: layout.tableBody.y + 2, width: 80, height: 24)], &state, Self.snapshot)
        #expect(state.selected?.name == "sample" && state.focus == .pairs)
        Self.press([.click(x: 60, y: layout.detail.y + 3, width: 80, height: 24)], &state, Self.snapshot)
        #expect(state.focus == .detail && state.selectedPod == 1)
        Self.press([.click(x: 5, y: layout.detail.y + 3, width: 80, height: 24)], &state, Self.snapshot)
        #expect(state.selectedPod == 0)
        Self.press([.click(x: 5, y: layout.events.y + 1, width: 80, height: 24)], &state, Self.snapshot)
        #expect(state.focus == .events)
        // Below the last row of the table, and on the header: nothing is selected anew.
        Self.press([.click(x: 5, y: 0, width: 80, height: 24)], &state, Self.snapshot)
        #expect(state.selected?.name == "sample" && state.focus == .events)
        // A click on the rendered row lands on the pair drawn there.
        let grid = Fixtures.render(Self.snapshot, state)
        let zeta = grid.first(" zeta ")!
        Self.press([.click(x: zeta.x, y: zeta.y, width: 80, height: 24)], &state, Self.snapshot)
        #expect(state.selected?.name == "zeta")
    }

    @Test("events scroll within the list")
    func eventsScroll() {
        let events = (0..<30).map { PairStatusReport.EventRow(type: "Normal", reason: "Info", message: "event \($0)", lastSeen: Fixtures.now) }
        let snapshot = Fixtures.snapshot(pairs: [Fixtures.pair(state: "Normal")], events: [Fixtures.key: events])
        var state = ConsoleState()
        state.focus = .events
        Self.press([.down, .down], &state, snapshot)
        #expect(state.eventsOffset == 2)
        Self.press([.end], &state, snapshot)
        let rows = ConsoleLayout(width: 80, height: 24, rowCount: 1, logsVisible: false).eventsBody.height
        #expect(state.eventsOffset == 30 - rows)
        let grid = Fixtures.render(snapshot, state)
        #expect(grid.first("event 29") != nil && grid.first("event 0 ") == nil)
        Self.press([.home], &state, snapshot)
        #expect(state.eventsOffset == 0)
    }

    @Test("resize records the size, and paging follows it")
    func resize() {
        var state = ConsoleState()
        let pairs = (0..<100).map { Fixtures.pair(state: "Normal", name: String(format: "p%03d", $0)) }
        let snapshot = Fixtures.snapshot(pairs: pairs)
        Self.press([.resize(width: 200, height: 60)], &state, snapshot)
        #expect(state.screenWidth == 200 && state.screenHeight == 60)
        Self.press([.pageDown], &state, snapshot)
        let rows = ConsoleLayout(width: 200, height: 60, rowCount: 100, logsVisible: false).tableBody.height
        #expect(state.selected?.name == String(format: "p%03d", rows))
    }
}
