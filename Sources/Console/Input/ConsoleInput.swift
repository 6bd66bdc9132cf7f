import Foundation

/// A key (or mouse click) as the runtime reads it from the terminal.
public enum Key: Sendable, Equatable {
    case char(Character)
    case up, down, left, right
    case pageUp, pageDown, home, end
    case tab, backTab, enter, escape, backspace
    /// The terminal changed size.
    case resize(width: Int, height: Int)
    /// A mouse click at column `x`, row `y` of a screen `width` x `height`: with the size, the
    /// click maps to a row through the same layout the views draw.
    case click(x: Int, y: Int, width: Int, height: Int)
}

/// The key map: a pure function from a key and the screen's state to the new state and the
/// effects the runtime must carry out (stream a log, submit an action, switch namespace, quit).
public enum ConsoleInput {
    /// - Parameter logs: the log pane's lines, for `n` (next match) and scrolling limits.
    public static func handle(key: Key, state: inout ConsoleState, snapshot: ConsoleSnapshot, logs: LogRing? = nil) -> [ConsoleEffect] {
        if case .resize(let width, let height) = key {
            state.screenWidth = max(0, width)
            state.screenHeight = max(0, height)
            keepSelectionVisible(&state, snapshot: snapshot)
            return []
        }
        if case .click(_, _, let width, let height) = key {
            state.screenWidth = max(0, width)
            state.screenHeight = max(0, height)
        }
        // A message lasts until the next key.
        state.flash = nil
        if let overlay = state.overlay { return handleOverlay(overlay, key: key, state: &state, snapshot: snapshot) }
        if let prompt = state.prompt { return handlePrompt(prompt, key: key, state: &state, snapshot: snapshot) }
        return handleMain(key: key, state: &state, snapshot: snapshot, logs: logs)
    }

    // MARK: Overlays

    static func handleOverlay(_ overlay: ConsoleState.Overlay, key: Key, state: inout ConsoleState, snapshot: ConsoleSnapshot)
        -> [ConsoleEffect]
    {
        switch overlay {
        case .help:
            switch key {
            case .escape, .enter, .char("q"), .char("?"), .click: state.overlay = nil
            default: break
            }
            return []
        case .describe(let title, let yaml, let offset):
            let rows = DescribeScroll.rows(screenHeight: state.screenHeight)
            let lines = yaml.reduce(0) { $1 == "\n" ? $0 + 1 : $0 } + (yaml.hasSuffix("\n") || yaml.isEmpty ? 0 : 1)
            var next = offset
            switch key {
            case .escape, .char("q"), .char("d"):
                state.overlay = nil
                return []
            case .up, .char("k"): next -= 1
            case .down, .char("j"): next += 1
            case .pageUp: next -= rows
            case .pageDown, .char(" "): next += rows
            case .home, .char("g"): next = 0
            case .end, .char("G"): next = lines
            default: return []
            }
            state.overlay = .describe(title: title, yaml: yaml, offset: DescribeScroll.clamp(next, lines: lines, rows: rows))
            return []
        case .dialog(var dialog):
            return handleDialog(&dialog, key: key, state: &state)
        }
    }

    static func handleDialog(_ dialog: inout ActionDialog, key: Key, state: inout ConsoleState) -> [ConsoleEffect] {
        switch dialog.phase {
        case .submitted:
            if key == .escape || key == .char("q") { state.overlay = nil }
            return []
        case .finished:
            if key == .escape || key == .enter || key == .char("q") { state.overlay = nil }
            return []
        case .confirming:
            break
        }
        if dialog.requested {
            if key == .escape { state.overlay = nil }
            return []
        }
        switch key {
        case .escape:
            state.overlay = nil
            return []
        case .enter:
            if dialog.action.isDestructive && dialog.typed != dialog.pair.name {
                state.flash = Flash("Type \(dialog.pair.name) exactly to confirm, or Esc to cancel.", isError: true)
                return []
            }
            dialog.requested = true
            state.overlay = .dialog(dialog)
            return [.submit(dialog.action, pair: dialog.pair)]
        case .backspace:
            if dialog.action.isDestructive, !dialog.typed.isEmpty {
                dialog.typed.removeLast()
                state.overlay = .dialog(dialog)
            }
            return []
        case .char(let character):
            if dialog.action.isDestructive {
                if isTypable(character), dialog.typed.count < 253 {
                    dialog.typed.append(character)
                    state.overlay = .dialog(dialog)
                }
            } else if character == "q" || character == "n" {
                state.overlay = nil
            }
            return []
        default:
            return []
        }
    }

    static func isTypable(_ character: Character) -> Bool {
        guard let ascii = character.asciiValue else { return character.unicodeScalars.allSatisfy { $0.value >= 0xA0 } }
        return ascii >= 0x20 && ascii < 0x7F
    }

    // MARK: Prompt

    static func handlePrompt(_ prompt: ConsoleState.Prompt, key: Key, state: inout ConsoleState, snapshot: ConsoleSnapshot)
        -> [ConsoleEffect]
    {
        let inLogs = state.focus == .logs
        switch prompt {
        case .filter(var text):
            switch key {
            case .enter:
                state.prompt = nil
            case .escape:
                state.prompt = nil
                text = ""
                applyFilter(text, inLogs: inLogs, state: &state, snapshot: snapshot)
            case .backspace:
                if text.isEmpty {
                    state.prompt = nil
                } else {
                    text.removeLast()
                    state.prompt = .filter(text)
                    applyFilter(text, inLogs: inLogs, state: &state, snapshot: snapshot)
                }
            case .char(let character) where isTypable(character):
                text.append(character)
                state.prompt = .filter(text)
                applyFilter(text, inLogs: inLogs, state: &state, snapshot: snapshot)
            default:
                break
            }
            return []
        case .command(var text):
            switch key {
            case .enter:
                state.prompt = nil
                return runCommand(text, state: &state)
            case .escape:
                state.prompt = nil
            case .backspace:
                if text.isEmpty {
                    state.prompt = nil
                } else {
                    text.removeLast()
                    state.prompt = .command(text)
                }
            case .char(let character) where isTypable(character):
                text.append(character)
                state.prompt = .command(text)
            default:
                break
            }
            return []
        }
    }

    /// The table filter applies as it is typed (as in k9s); in the log pane it is the search.
    static func applyFilter(_ text: String, inLogs: Bool, state: inout ConsoleState, snapshot: ConsoleSnapshot) {
        if inLogs {
            state.logs.search = text
        } else {
            state.filter = text
            state.tableOffset = 0
            keepSelectionVisible(&state, snapshot: snapshot)
        }
    }

    /// `:` commands. A command that is not understood changes nothing and says why.
    public static func runCommand(_ text: String, state: inout ConsoleState) -> [ConsoleEffect] {
        let words = text.split(separator: " ").map(String.init)
        guard let verb = words.first?.lowercased() else { return [] }
        let argument = words.dropFirst().first
        func usage(_ message: String) -> [ConsoleEffect] {
            state.flash = Flash(message, isError: true)
            return []
        }
        guard words.count <= 2 else { return usage(":\(verb) takes one argument") }
        switch verb {
        case "q", "q!", "quit", "exit":
            guard argument == nil else { return usage(":q takes no argument") }
            state.quitting = true
            return [.quit]
        case "ns", "namespace":
            switch argument {
            case nil, "all", "-A", "*":
                state.flash = Flash("namespace: all")
                return [.switchNamespace(nil)]
            case let name?:
                guard isDNSLabel(name) else { return usage("\(name) is not a namespace name") }
                state.flash = Flash("namespace: \(name)")
                return [.switchNamespace(name)]
            }
        case "ctx", "context":
            guard let name = argument else { return usage("usage: :ctx NAME") }
            state.flash = Flash("context: \(name)")
            return [.switchContext(name)]
        case "theme":
            guard let name = argument else {
                return usage("usage: :theme NAME (built in: \(Theme.builtInNames.joined(separator: ", ")))")
            }
            guard !name.contains("/"), !name.hasPrefix(".") else { return usage("\(name) is not a theme name") }
            return [.switchTheme(name)]
        case "help", "?":
            state.overlay = .help
            return []
        default:
            return usage("unknown command :\(verb) (try :ns NAME, :ctx NAME, :theme NAME, :q)")
        }
    }

    /// A Kubernetes namespace name: a DNS label.
    static func isDNSLabel(_ name: String) -> Bool {
        guard !name.isEmpty, name.count <= 63, let first = name.first, let last = name.last else { return false }
        let allowed = name.allSatisfy { ($0.isASCII && ($0.isLowercase || $0.isNumber)) || $0 == "-" }
        return allowed && first != "-" && last != "-"
    }

    // MARK: Panes

    static func handleMain(key: Key, state: inout ConsoleState, snapshot: ConsoleSnapshot, logs: LogRing?) -> [ConsoleEffect] {
        let list = PairList(snapshot: snapshot, state: state)
        let selected = list.selectedPair(in: snapshot)
        switch key {
        case .char("?"):
            state.overlay = .help
            return []
        case .char(":"):
            state.prompt = .command("")
            return []
        case .char("/"):
            state.prompt = .filter(state.focus == .logs ? state.logs.search : state.filter)
            return []
        case .char("q"):
            return back(state: &state, quitAtTop: true)
        case .escape:
            if state.focus == .pairs && !state.filter.isEmpty {
                state.filter = ""
                keepSelectionVisible(&state, snapshot: snapshot)
                return []
            }
            return back(state: &state, quitAtTop: false)
        case .tab:
            state.focus = nextPane(after: state.focus, forward: true, state: state)
            return []
        case .backTab:
            state.focus = nextPane(after: state.focus, forward: false, state: state)
            return []
        case .click(let x, let y, let width, let height):
            return click(x: x, y: y, width: width, height: height, state: &state, snapshot: snapshot, list: list)
        default:
            break
        }
        if state.focus == .logs, let effects = handleLogs(key: key, state: &state, logs: logs) { return effects }
        if state.focus == .events, let effects = handleEvents(key: key, state: &state, snapshot: snapshot, pair: selected) {
            return effects
        }
        switch key {
        case .up, .char("k"): move(by: -1, state: &state, snapshot: snapshot, list: list)
        case .down, .char("j"): move(by: 1, state: &state, snapshot: snapshot, list: list)
        case .pageUp: move(by: -pageRows(state: state, list: list), state: &state, snapshot: snapshot, list: list)
        case .pageDown: move(by: pageRows(state: state, list: list), state: &state, snapshot: snapshot, list: list)
        case .home, .char("g"): move(by: -list.count, state: &state, snapshot: snapshot, list: list)
        case .end, .char("G"): move(by: list.count, state: &state, snapshot: snapshot, list: list)
        case .enter:
            if selected != nil { state.focus = .detail }
        case .left, .char("0"): choosePod(0, state: &state)
        case .right, .char("1"): choosePod(1, state: &state)
        case .char("d"):
            guard let pair = selected else { return noPair(&state) }
            state.overlay = .describe(title: "TimesTenClassic \(pair.key)", yaml: DescribeText.yaml(pair.object), offset: 0)
            return [.describe(pair.key)]
        case .char("l"):
            guard let pair = selected else { return noPair(&state) }
            return openLogs(pair: pair, state: &state)
        case .char("N"): sortBy(.name, state: &state, snapshot: snapshot)
        case .char("A"): sortBy(.age, state: &state, snapshot: snapshot)
        case .char("<"), .char(">"):
            let all = ConsoleState.SortColumn.allCases
            let index = all.firstIndex(of: state.sort) ?? 0
            let step = key == .char(">") ? 1 : all.count - 1
            state.sort = all[(index + step) % all.count]
            state.ascending = true
            keepSelectionVisible(&state, snapshot: snapshot)
        case .char("I"):
            state.ascending.toggle()
            keepSelectionVisible(&state, snapshot: snapshot)
        case .char(let character) where "SFREMPXU".contains(character):
            return openAction(character, pair: selected, state: &state, snapshot: snapshot)
        default:
            break
        }
        return []
    }

    /// `q` and Esc: close the log pane, else return to the table; `q` on the table quits.
    static func back(state: inout ConsoleState, quitAtTop: Bool) -> [ConsoleEffect] {
        switch state.focus {
        case .logs:
            state.focus = .pairs
            if state.logs.pod != nil {
                state.logs = LogPaneState()
                return [.stopLogs]
            }
            return []
        case .detail, .events:
            state.focus = .pairs
            return []
        case .pairs:
            guard quitAtTop else { return [] }
            state.quitting = true
            return [.quit]
        }
    }

    static func nextPane(after pane: ConsoleState.Pane, forward: Bool, state: ConsoleState) -> ConsoleState.Pane {
        var panes: [ConsoleState.Pane] = [.pairs, .detail, .events]
        if ConsoleLayout.logsVisible(state) { panes.append(.logs) }
        let index = panes.firstIndex(of: pane) ?? 0
        return panes[(index + (forward ? 1 : panes.count - 1)) % panes.count]
    }

    static func noPair(_ state: inout ConsoleState) -> [ConsoleEffect] {
        state.flash = Flash("No pair selected.", isError: true)
        return []
    }

    // MARK: Selection

    static func layout(_ state: ConsoleState, list: PairList) -> ConsoleLayout {
        ConsoleLayout(width: state.screenWidth, height: state.screenHeight, rowCount: list.count, logsVisible: ConsoleLayout.logsVisible(state))
    }

    static func pageRows(state: ConsoleState, list: PairList) -> Int { max(1, layout(state, list: list).tableBody.height) }

    /// Moves the selection `delta` rows, within the list, and scrolls just enough to show it.
    static func move(by delta: Int, state: inout ConsoleState, snapshot: ConsoleSnapshot, list: PairList) {
        guard !list.isEmpty else { return }
        let current = list.selectedPosition ?? 0
        let next = min(max(0, current + delta), list.count - 1)
        select(position: next, state: &state, snapshot: snapshot, list: list)
    }

    static func select(position: Int, state: inout ConsoleState, snapshot: ConsoleSnapshot, list: PairList) {
        let key = snapshot.pairs[list.indices[position]].key
        if key != state.selected {
            state.eventsOffset = 0
        }
        state.selected = key
        let rows = layout(state, list: list).tableBody.height
        state.tableOffset = ConsoleLayout.tableOffset(stored: state.tableOffset, selected: position, rows: rows, count: list.count)
    }

    /// After the list changed (filter, sort, size): the selection stays the same pair when it is
    /// still shown, and on screen.
    static func keepSelectionVisible(_ state: inout ConsoleState, snapshot: ConsoleSnapshot) {
        let list = PairList(snapshot: snapshot, state: state)
        let rows = layout(state, list: list).tableBody.height
        state.tableOffset = ConsoleLayout.tableOffset(stored: state.tableOffset, selected: list.selectedPosition, rows: rows, count: list.count)
    }

    static func sortBy(_ column: ConsoleState.SortColumn, state: inout ConsoleState, snapshot: ConsoleSnapshot) {
        if state.sort == column {
            state.ascending.toggle()
        } else {
            state.sort = column
            state.ascending = true
        }
        keepSelectionVisible(&state, snapshot: snapshot)
    }

    static func choosePod(_ index: Int, state: inout ConsoleState) {
        state.selectedPod = index
    }

    // MARK: Mouse

    static func click(x: Int, y: Int, width: Int, height: Int, state: inout ConsoleState, snapshot: ConsoleSnapshot, list: PairList)
        -> [ConsoleEffect]
    {
        let layout = ConsoleLayout(width: width, height: height, rowCount: list.count, logsVisible: ConsoleLayout.logsVisible(state))
        guard let pane = layout.pane(atX: x, y: y) else { return [] }
        state.focus = pane
        switch pane {
        case .pairs:
            let body = layout.tableBody
            guard y >= body.y, y < body.maxY, !list.isEmpty else { return [] }
            let offset = ConsoleLayout.tableOffset(stored: state.tableOffset, selected: list.selectedPosition, rows: body.height, count: list.count)
            let position = offset + (y - body.y)
            guard position < list.count else { return [] }
            select(position: position, state: &state, snapshot: snapshot, list: list)
        case .detail:
            if layout.detail.width >= 50 {
                let half = (layout.detail.width - 1) / 2
                if x < layout.detail.x + half { state.selectedPod = 0 } else if x > layout.detail.x + half { state.selectedPod = 1 }
            }
        case .events, .logs:
            break
        }
        return []
    }

    // MARK: Events and logs

    static func handleEvents(key: Key, state: inout ConsoleState, snapshot: ConsoleSnapshot, pair: PairRow?) -> [ConsoleEffect]? {
        let count = pair.flatMap { snapshot.events[$0.key]?.count } ?? 0
        let list = PairList(snapshot: snapshot, state: state)
        let rows = max(1, layout(state, list: list).eventsBody.height)
        var offset = state.eventsOffset
        switch key {
        case .up, .char("k"): offset -= 1
        case .down, .char("j"): offset += 1
        case .pageUp: offset -= rows
        case .pageDown: offset += rows
        case .home, .char("g"): offset = 0
        case .end, .char("G"): offset = count
        default: return nil
        }
        state.eventsOffset = max(0, min(offset, count - rows))
        return []
    }

    static func openLogs(pair: PairRow, state: inout ConsoleState) -> [ConsoleEffect] {
        let names = PairDetailView.podNames(pair)
        let pod = names[min(max(0, state.selectedPod), 1)]
        state.focus = .logs
        if state.logs.pod == pair.key && state.logs.podName == pod { return [] }
        state.logs = LogPaneState()
        state.logs.pod = pair.key
        state.logs.podName = pod
        return [.streamLogs(pair.key, pod: pod)]
    }

    static func handleLogs(key: Key, state: inout ConsoleState, logs: LogRing?) -> [ConsoleEffect]? {
        let count = logs?.count ?? 0
        let rows = max(1, ConsoleLayout(width: state.screenWidth, height: state.screenHeight, rowCount: 1, logsVisible: true).logBody.height)
        let maximum = max(0, count - rows)
        func scroll(_ delta: Int) {
            let current = state.logs.follow ? 0 : state.logs.offset
            state.logs.offset = min(max(0, current + delta), maximum)
            state.logs.follow = false
        }
        switch key {
        case .up, .char("k"): scroll(1)
        case .down, .char("j"): scroll(-1)
        case .pageUp: scroll(rows)
        case .pageDown: scroll(-rows)
        case .home, .char("g"): scroll(count)
        case .end, .char("G"):
            state.logs.follow = true
            state.logs.offset = 0
        case .char("f"):
            state.logs.follow.toggle()
            state.logs.offset = 0
        case .char("n"):
            nextMatch(state: &state, logs: logs)
        case .left, .right, .char("0"), .char("1"):
            let index = key == .left || key == .char("0") ? 0 : 1
            state.selectedPod = index
            guard let pair = state.logs.pod else { return [] }
            let name = "\(pair.name)-\(index)"
            guard name != state.logs.podName else { return [] }
            state.logs = LogPaneState()
            state.logs.pod = pair
            state.logs.podName = name
            return [.streamLogs(pair, pod: name)]
        default:
            return nil
        }
        return []
    }

    /// `n`: the next older line holding the search, brought to the bottom of the pane; from the
    /// oldest it wraps around to the newest.
    static func nextMatch(state: inout ConsoleState, logs: LogRing?) {
        guard !state.logs.search.isEmpty else {
            state.flash = Flash("No search: / starts one.", isError: true)
            return
        }
        guard let logs, logs.count > 0 else { return }
        let needle = TextMeasure.lowercasedBytes(state.logs.search)
        // From the line the last `n` found (the pane may show it higher up, near the top of the log).
        let bottom = state.logs.follow ? logs.count - 1 : max(0, logs.count - 1 - state.logs.offset)
        let candidates = Array(stride(from: bottom - 1, through: 0, by: -1)) + Array(stride(from: logs.count - 1, through: bottom, by: -1))
        guard let found = candidates.first(where: { TextMeasure.contains(logs[$0], lowercasedNeedle: needle) }) else {
            state.flash = Flash("No line matches /\(state.logs.search).", isError: true)
            return
        }
        state.logs.follow = false
        state.logs.offset = logs.count - 1 - found
    }

    // MARK: Actions

    static func openAction(_ key: Character, pair: PairRow?, state: inout ConsoleState, snapshot: ConsoleSnapshot) -> [ConsoleEffect] {
        guard let pair else { return noPair(&state) }
        let podNames = PairDetailView.podNames(pair)
        let podName = podNames[min(max(0, state.selectedPod), 1)]
        let action: ConsoleAction
        switch key {
        case "S": action = .switchover
        case "F": action = .failover
        case "R": action = .reduplicate(pod: podName)
        case "E": action = .reexamine
        case "M": action = .stopManaging
        default:
            guard snapshot.isLocalCluster else {
                state.flash = Flash("\(key): node keys work on the local cluster only.", isError: true)
                return []
            }
            let pod = pair.pods.first { $0.name == podName }
            if key == "U" {
                guard let node = nodeToBringUp(pod: pod, snapshot: snapshot) else {
                    state.flash = Flash("No node is down.", isError: true)
                    return []
                }
                action = .nodeUp(node: node)
            } else {
                guard let node = pod?.node, !node.isEmpty else {
                    state.flash = Flash("\(podName) is on no node.", isError: true)
                    return []
                }
                action = .nodeDown(node: node, mode: key == "X" ? "partition" : "poweroff")
            }
        }
        state.overlay = .dialog(ActionDialog(action: action, pair: pair.key))
        return []
    }

    /// The selected pod's node when it is down; else the first node with a simulated failure.
    static func nodeToBringUp(pod: PodRow?, snapshot: ConsoleSnapshot) -> String? {
        if let name = pod?.node, let node = snapshot.nodes.first(where: { $0.name == name }), node.simulation != nil || node.ready == false {
            return name
        }
        return snapshot.nodes.first { $0.simulation != nil }?.name
    }
}
