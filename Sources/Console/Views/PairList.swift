import Foundation
import OperatorEngine

/// The pair table's rows in screen order: the snapshot's pairs filtered by `state.filter` and
/// sorted by `state.sort`. The views draw it and the key map moves through it, so both agree on
/// which row is where.
public struct PairList: Sendable, Equatable {
    /// Indexes into `snapshot.pairs`, in screen order.
    public let indices: [Int]
    /// Position in `indices` of the selected pair: `state.selected` when it is shown, else the
    /// first row; nil when no row is shown.
    public let selectedPosition: Int?

    public init(snapshot: ConsoleSnapshot, state: ConsoleState) {
        self.init(rows: Self.rows(snapshot: snapshot, state: state), snapshot: snapshot, selected: state.selected)
    }

    /// The list of rows already filtered and sorted (`rows(snapshot:state:)`), with `selected`
    /// found among them.
    init(rows indices: [Int], snapshot: ConsoleSnapshot, selected: PairKey?) {
        self.indices = indices
        if indices.isEmpty {
            selectedPosition = nil
        } else if let selected, let position = indices.firstIndex(where: { snapshot.pairs[$0].key == selected }) {
            selectedPosition = position
        } else {
            selectedPosition = 0
        }
    }

    /// The indexes of the pairs that `state.filter` keeps, in the order of `state.sort`.
    static func rows(snapshot: ConsoleSnapshot, state: ConsoleState) -> [Int] {
        let pairs = snapshot.pairs
        var indices: [Int]
        if state.filter.isEmpty {
            indices = Array(pairs.indices)
        } else {
            let needle = TextMeasure.lowercasedBytes(state.filter)
            indices = pairs.indices.filter { Self.matches(pairs[$0], needle) }
        }
        Self.sort(&indices, pairs: pairs, by: state.sort, ascending: state.ascending, now: snapshot.now)
        return indices
    }

    public var count: Int { indices.count }
    public var isEmpty: Bool { indices.isEmpty }

    /// The selected pair, if any row is shown.
    public func selectedPair(in snapshot: ConsoleSnapshot) -> PairRow? {
        selectedPosition.map { snapshot.pairs[indices[$0]] }
    }

    /// The filter matches name, namespace, state, active or standby, ignoring ASCII case.
    static func matches(_ pair: PairRow, _ needle: [UInt8]) -> Bool {
        TextMeasure.contains(pair.key.name, lowercasedNeedle: needle)
            || TextMeasure.contains(pair.key.namespace, lowercasedNeedle: needle)
            || TextMeasure.contains(pair.state ?? "", lowercasedNeedle: needle)
            || TextMeasure.contains(pair.active ?? "", lowercasedNeedle: needle)
            || TextMeasure.contains(pair.standby ?? "", lowercasedNeedle: needle)
    }

    /// Sorts by the column, then by namespace/name so that equal rows never swap between renders.
    static func sort(_ indices: inout [Int], pairs: [PairRow], by column: ConsoleState.SortColumn, ascending: Bool, now: Date) {
        func ordered<T: Comparable>(_ value: (PairRow) -> T) {
            let keyed = indices.map { (value(pairs[$0]), pairs[$0].key, $0) }
            let sorted = keyed.sorted { a, b in
                if a.0 != b.0 { return ascending ? a.0 < b.0 : a.0 > b.0 }
                return ascending ? a.1 < b.1 : a.1 > b.1
            }
            indices = sorted.map(\.2)
        }
        switch column {
        case .name:
            let keyed = indices.map { (pairs[$0].key.name, pairs[$0].key.namespace, $0) }
            indices = keyed.sorted { a, b in
                if a.0 != b.0 { return ascending ? a.0 < b.0 : a.0 > b.0 }
                return ascending ? a.1 < b.1 : a.1 > b.1
            }.map(\.2)
        case .namespace: ordered { $0.key.namespace }
        case .state: ordered { $0.state ?? "" }
        case .active: ordered { $0.active ?? "" }
        case .standby: ordered { $0.standby ?? "" }
        case .lag: ordered { $0.lagBytes ?? -1 }
        // Ascending age: the youngest first. A pair with no creation time counts as new.
        case .age: ordered { -($0.created ?? now).timeIntervalSinceReferenceDate }
        }
    }
}

/// The table's rows, filtered and sorted again only when what that depends on changes: the
/// pairs, the filter, the sort and, for the age sort only, the clock. A console streaming a log
/// redraws twenty times a second with none of these changed, and a key that moves the selection
/// changes none of them either; sorting 1,000 pairs anew for each frame cost buffers of 8 to
/// 40 KB a frame, made and freed again.
public struct PairListMemo: Sendable {
    struct Inputs: Equatable {
        var filter: String
        var sort: ConsoleState.SortColumn
        var ascending: Bool
        /// Only the age sort reads the clock (a pair with no creation time counts as new).
        var now: Date?
        /// Last: the cheap fields compare first.
        var pairs: [PairRow]

        init(snapshot: ConsoleSnapshot, state: ConsoleState) {
            filter = state.filter
            sort = state.sort
            ascending = state.ascending
            now = state.sort == .age ? snapshot.now : nil
            pairs = snapshot.pairs
        }
    }

    private var inputs: Inputs?
    private var rows: [Int] = []
    /// How many times it has filtered and sorted: once per change of its inputs.
    public private(set) var builds = 0

    public init() {}

    /// `PairList(snapshot:state:)`, filtered and sorted again only when its inputs changed; the
    /// selection is found among the rows kept. The pairs compare at no cost while they are the
    /// array of the last call (a clock tick, a batch of log lines): an equal array in a new
    /// snapshot is compared once, then kept in its place.
    public mutating func list(snapshot: ConsoleSnapshot, state: ConsoleState) -> PairList {
        let current = Inputs(snapshot: snapshot, state: state)
        if current != inputs {
            rows = PairList.rows(snapshot: snapshot, state: state)
            builds += 1
        }
        inputs = current
        return PairList(rows: rows, snapshot: snapshot, selected: state.selected)
    }
}

/// Which role a pair state is drawn in: Normal is calm, a pair that is repairing itself is a
/// warning, a pair that needs a person is an error.
enum StateRoles {
    static func role(ofPairState state: String?) -> Role {
        guard let state else { return .muted }
        switch PairState(rawValue: state) {
        case .normal: return .ok
        case .failed, .manualInterventionRequired, .bothDown: return .error
        case .none: return .text
        default: return .warning
        }
    }

    static func role(ofPodState state: String?) -> Role {
        guard let state else { return .muted }
        switch PodState(rawValue: state) {
        case .healthy, .healthyActive, .healthyStandby: return .ok
        case .down, .terminal: return .error
        case .none: return .text
        default: return .warning
        }
    }
}
