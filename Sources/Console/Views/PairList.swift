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
        let pairs = snapshot.pairs
        var indices: [Int]
        if state.filter.isEmpty {
            indices = Array(pairs.indices)
        } else {
            let needle = TextMeasure.lowercasedBytes(state.filter)
            indices = pairs.indices.filter { Self.matches(pairs[$0], needle) }
        }
        Self.sort(&indices, pairs: pairs, by: state.sort, ascending: state.ascending, now: snapshot.now)
        self.indices = indices
        if indices.isEmpty {
            selectedPosition = nil
        } else if let selected = state.selected, let position = indices.firstIndex(where: { pairs[$0].key == selected }) {
            selectedPosition = position
        } else {
            selectedPosition = 0
        }
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

/// The last `PairList` made, kept while what it depends on stays the same: the pairs, the
/// filter, the sort, the selection and, for the age sort only, the clock. A console streaming a
/// log redraws twenty times a second with none of these changed; sorting 1,000 pairs anew for
/// each frame cost buffers of 8 to 40 KB a frame, made and freed again.
public struct PairListMemo: Sendable {
    struct Inputs: Equatable {
        var pairs: [PairRow]
        var filter: String
        var sort: ConsoleState.SortColumn
        var ascending: Bool
        var selected: PairKey?
        /// Only the age sort reads the clock (a pair with no creation time counts as new).
        var now: Date?

        init(snapshot: ConsoleSnapshot, state: ConsoleState) {
            pairs = snapshot.pairs
            filter = state.filter
            sort = state.sort
            ascending = state.ascending
            selected = state.selected
            now = state.sort == .age ? snapshot.now : nil
        }
    }

    private var inputs: Inputs?
    private var memo: PairList?
    /// How many lists it has made: one per change of its inputs.
    public private(set) var builds = 0

    public init() {}

    /// `PairList(snapshot:state:)`, made again only when its inputs changed. The pairs compare
    /// at no cost while they are the array of the last call (a clock tick, a batch of log lines).
    public mutating func list(snapshot: ConsoleSnapshot, state: ConsoleState) -> PairList {
        let current = Inputs(snapshot: snapshot, state: state)
        if let memo, current == inputs { return memo }
        let list = PairList(snapshot: snapshot, state: state)
        builds += 1
        inputs = current
        memo = list
        return list
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
