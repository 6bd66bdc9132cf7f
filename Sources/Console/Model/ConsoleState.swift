import Foundation
import OperatorEngine

/// What the person has done to the screen: focus, selection, sort, filter, open dialogs. Pure
/// data: `ConsoleInput.handle` (the key map) changes it and asks for `ConsoleEffect`s; the views
/// draw it with a `ConsoleSnapshot`.
public struct ConsoleState: Sendable, Equatable {
    public enum Pane: String, Sendable, Equatable, CaseIterable { case pairs, detail, events, logs }

    public enum SortColumn: String, Sendable, Equatable, CaseIterable {
        case name, namespace, state, active, standby, lag, age
    }

    /// A line being typed at the bottom of the screen.
    public enum Prompt: Sendable, Equatable {
        /// `/` filter of the pair table (or, in the log pane, a search).
        case filter(String)
        /// `:` command line: `ns NAME`, `ctx NAME`, `theme NAME`, `q`.
        case command(String)
    }

    /// A window drawn above the panes; keys go to it first.
    public enum Overlay: Sendable, Equatable {
        case help
        /// `d`: the selected object as YAML, scrolled by `offset` lines.
        case describe(title: String, yaml: String, offset: Int)
        case dialog(ActionDialog)
    }

    public var focus: Pane = .pairs
    public var selected: PairKey?
    /// 0 or 1: which pod of the selected pair the pod keys (`l`, reduplicate) act on.
    public var selectedPod = 0
    public var sort: SortColumn = .name
    public var ascending = true
    public var filter = ""
    public var prompt: Prompt?
    public var overlay: Overlay?
    public var logs = LogPaneState()
    public var eventsOffset = 0
    public var themeName = "default"
    /// A one-line message in the footer (`namespace switched`, an error), until the next key.
    public var flash: Flash?
    public var quitting = false
    /// The pair table's scroll position (first row shown); the views move it only as far as
    /// needed to keep the selected row on screen.
    public var tableOffset = 0
    /// The screen's size as the last `.resize` key said, for paging and mouse clicks.
    public var screenWidth = 80
    public var screenHeight = 24

    public init() {}
}

/// A footer message.
public struct Flash: Sendable, Equatable {
    public var text: String
    public var isError: Bool

    public init(_ text: String, isError: Bool = false) {
        self.text = text
        self.isError = isError
    }
}

/// The log pane: which pod's `daemonlog` it streams, and how it is scrolled.
public struct LogPaneState: Sendable, Equatable {
    public var pod: PairKey?
    public var podName: String? { didSet { title = Self.title(podName: podName, search: search) } }
    /// Follow the tail; scrolling up turns it off, `f` toggles it.
    public var follow = true
    /// Lines up from the tail when not following.
    public var offset = 0
    /// A search in the log (`/` in the log pane); matches are highlighted, `n` goes to the next.
    public var search = "" { didSet { title = Self.title(podName: podName, search: search) } }
    /// The pane's title, made when the pod or the search changes rather than at every frame.
    public private(set) var title = "Logs"

    static func title(podName: String?, search: String) -> String {
        let title = podName.map { "Logs \($0) daemonlog" } ?? "Logs"
        return search.isEmpty ? title : "\(title)  /\(search)"
    }

    public init() {}
}

/// Something a person asks of a pair or a node; every one of them goes through a confirmation.
public enum ConsoleAction: Sendable, Equatable {
    case switchover
    case failover
    case reduplicate(pod: String)
    case reexamine
    /// Sets `stopManaging` to a new value (Oracle's edge trigger).
    case stopManaging
    case nodeDown(node: String, mode: String)
    case nodeUp(node: String)

    /// Destructive actions need the pair's name typed in the dialog.
    public var isDestructive: Bool {
        switch self {
        case .failover, .reduplicate, .nodeDown: true
        case .switchover, .reexamine, .stopManaging, .nodeUp: false
        }
    }
}

/// The confirmation dialog of an action, then its progress and result.
public struct ActionDialog: Sendable, Equatable {
    public enum Phase: Sendable, Equatable {
        case confirming
        /// Submitted as the annotation with this id; progress comes from `status.lastAction`.
        case submitted(id: String)
        /// Done (succeeded, failed or refused), with what `status.lastAction` said; or an error
        /// from the API server when the request could not be submitted.
        case finished(succeeded: Bool, message: String)
    }

    public var action: ConsoleAction
    public var pair: PairKey
    /// What is typed so far, for a destructive action.
    public var typed = ""
    public var phase: Phase = .confirming
    /// Enter was accepted and `.submit` emitted; the runtime has not set `.submitted` yet.
    /// A second Enter must not submit the action twice.
    public var requested = false

    public init(action: ConsoleAction, pair: PairKey) {
        self.action = action
        self.pair = pair
    }
}

/// What a key asks the runtime to do beyond changing `ConsoleState`.
public enum ConsoleEffect: Sendable, Equatable {
    /// Patch the action annotation (or the spec's edge triggers, or a node's simulation).
    case submit(ConsoleAction, pair: PairKey)
    /// Start (or switch) the log stream of a pod's `daemonlog` container.
    case streamLogs(PairKey, pod: String)
    case stopLogs
    case switchNamespace(String?)
    case switchContext(String)
    case switchTheme(String)
    /// Read the selected object fresh for describe (the cache may be older).
    case describe(PairKey)
    case quit
}
