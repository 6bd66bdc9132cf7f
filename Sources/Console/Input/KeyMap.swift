/// One key and what it does, as the footer and the help screen show it.
public struct KeyHelp: Sendable, Equatable {
    public var keys: String
    public var action: String

    public init(_ keys: String, _ action: String) {
        self.keys = keys
        self.action = action
    }
}

/// The keys, written down once: `ConsoleInput` implements them, the footer shows those that
/// apply to the focused pane, and `?` lists them all.
///
/// Action keys are capitals, so that no slip of a lower-case navigation key starts one, and
/// every action opens a confirmation first:
/// `S` switchover, `F` failover, `R` reduplicate the selected pod, `E` reexamine,
/// `M` stopManaging; on the local cluster `P` powers the selected pod's node off, `X`
/// partitions it, `U` brings it back. Sorting follows k9s: `N` by name, `A` by age (again:
/// reverse), `<`/`>` the previous/next column, `I` inverts.
public enum KeyMap {
    /// Every key, for `?`. Descriptions stay within 23 columns so that two columns of help fit
    /// on an 80-column screen.
    public static let sections: [(title: String, keys: [KeyHelp])] = [
        ("Navigation", [
            KeyHelp("↑↓ j k", "select / scroll"),
            KeyHelp("PgUp PgDn", "page"),
            KeyHelp("Home End g G", "first / last"),
            KeyHelp("Tab S-Tab", "next / previous pane"),
            KeyHelp("Enter", "detail of the pair"),
            KeyHelp("0 1 ← →", "choose the pod"),
            KeyHelp("click", "select row, pane, pod"),
            KeyHelp("q Esc", "back; q on table quits"),
        ]),
        ("Views", [
            KeyHelp("/", "filter (Esc clears)"),
            KeyHelp("d", "describe as YAML"),
            KeyHelp("l", "the pod's daemonlog"),
            KeyHelp("f", "logs: follow on/off"),
            KeyHelp("/ n", "logs: search, next"),
            KeyHelp("N A", "sort by name / age"),
            KeyHelp("< >", "sort by other column"),
            KeyHelp("I", "invert the sort"),
            KeyHelp("?", "this help"),
        ]),
        ("Actions (each asks first)", [
            KeyHelp("S", "switchover"),
            KeyHelp("F", "failover"),
            KeyHelp("R", "reduplicate the pod"),
            KeyHelp("E", "reexamine"),
            KeyHelp("M", "stopManaging"),
        ]),
        ("Local nodes", [
            KeyHelp("P", "power off pod's node"),
            KeyHelp("X", "partition pod's node"),
            KeyHelp("U", "bring the node up"),
        ]),
        ("Commands", [
            KeyHelp(":ns NAME", "namespace (:ns all)"),
            KeyHelp(":ctx NAME", "switch context"),
            KeyHelp(":theme NAME", "switch theme"),
            KeyHelp(":q", "quit"),
        ]),
    ]

    /// The keys that apply now, most useful first; the footer shows as many as fit.
    public static func footer(state: ConsoleState, snapshot: ConsoleSnapshot) -> [KeyHelp] {
        if let overlay = state.overlay {
            switch overlay {
            case .help: return [KeyHelp("Esc", "close")]
            case .describe: return [KeyHelp("↑↓", "scroll"), KeyHelp("PgUp PgDn", "page"), KeyHelp("Esc", "close")]
            case .dialog(let dialog):
                if dialog.requested, dialog.phase == .confirming { return [KeyHelp("Esc", "close")] }
                switch dialog.phase {
                case .confirming:
                    return dialog.action.isDestructive
                        ? [KeyHelp("type", dialog.pair.name), KeyHelp("Enter", "confirm"), KeyHelp("Esc", "cancel")]
                        : [KeyHelp("Enter", "confirm"), KeyHelp("Esc", "cancel")]
                case .submitted: return [KeyHelp("Esc", "close (the action goes on)")]
                case .finished: return [KeyHelp("Enter Esc", "close")]
                }
            }
        }
        switch state.prompt {
        case .filter: return [KeyHelp("Enter", "keep"), KeyHelp("Esc", "clear"), KeyHelp("Backspace", "erase")]
        case .command:
            return [KeyHelp("Enter", "run"), KeyHelp("Esc", "cancel"), KeyHelp("ns", "NAME|all"), KeyHelp("ctx", "NAME"),
                    KeyHelp("theme", "NAME"), KeyHelp("q", "quit")]
        case nil: break
        }
        let nodes = snapshot.isLocalCluster
            ? [KeyHelp("P", "poweroff"), KeyHelp("X", "partition"), KeyHelp("U", "node up")] : []
        switch state.focus {
        case .pairs:
            return [KeyHelp("?", "help"), KeyHelp("jk", "select"), KeyHelp("/", "filter"), KeyHelp("l", "logs"),
                    KeyHelp("d", "describe"), KeyHelp("S", "switchover"), KeyHelp("F", "failover"),
                    KeyHelp("R", "redup"), KeyHelp("E", "reexamine"), KeyHelp("M", "stop"), KeyHelp("<>", "sort"),
                    KeyHelp("Tab", "pane"), KeyHelp(":", "cmd")] + nodes + [KeyHelp("q", "quit")]
        case .detail:
            return [KeyHelp("?", "help"), KeyHelp("0 1", "pod"), KeyHelp("l", "logs"), KeyHelp("R", "redup pod"),
                    KeyHelp("S", "switchover"), KeyHelp("F", "failover"), KeyHelp("d", "describe")] + nodes
                + [KeyHelp("Tab", "pane"), KeyHelp("q", "back")]
        case .events:
            return [KeyHelp("?", "help"), KeyHelp("jk", "scroll"), KeyHelp("Tab", "pane"), KeyHelp("q", "back")]
        case .logs:
            return [KeyHelp("?", "help"), KeyHelp("f", "follow"), KeyHelp("/", "search"), KeyHelp("n", "next"),
                    KeyHelp("jk", "scroll"), KeyHelp("End", "tail"), KeyHelp("0 1", "pod"), KeyHelp("Tab", "pane"),
                    KeyHelp("q", "close")]
        }
    }
}
