import Testing

@testable import Console

/// A span with its characters, as the tests read the diff.
struct GridRun: Equatable {
    var x: Int
    var y: Int
    /// One per cell (kept apart, so a combining mark alone in a cell never joins its neighbour).
    var characters: [Character]
    var role: Role
    var bold: Bool

    init(x: Int, y: Int, text: String, role: Role, bold: Bool = false) {
        self.init(x: x, y: y, characters: Array(text), role: role, bold: bold)
    }

    init(x: Int, y: Int, characters: [Character], role: Role, bold: Bool = false) {
        self.x = x
        self.y = y
        self.characters = characters
        self.role = role
        self.bold = bold
    }

    var text: String { String(characters) }
}

extension GridDiff {
    /// The spans with the characters they write, read from `new`.
    static func runs(from old: CellGrid?, to new: CellGrid) -> [GridRun] {
        spans(from: old, to: new).map { span in
            let start = span.y * new.width + span.x
            return GridRun(x: span.x, y: span.y, characters: new.cells[start..<start + span.count].map(\.character),
                           role: span.role, bold: span.bold)
        }
    }
}

@Suite("Grid diff: what the backend writes", .timeLimit(.minutes(5)))
struct GridDiffTests {
    static func grid(_ rows: [String], width: Int? = nil) -> CellGrid {
        var grid = CellGrid(width: width ?? rows.map(\.count).max() ?? 0, height: rows.count)
        for (y, row) in rows.enumerated() { grid.put(row, x: 0, y: y) }
        return grid
    }

    @Test("no grid on screen: every cell, one run per row and style")
    func full() {
        var new = Self.grid(["ab ", "cde"])
        new[1, 0] = Cell("b", role: .error)
        let runs = GridDiff.runs(from: nil, to: new)
        #expect(runs == [
            GridRun(x: 0, y: 0, text: "a", role: .text),
            GridRun(x: 1, y: 0, text: "b", role: .error),
            GridRun(x: 2, y: 0, text: " ", role: .text),
            GridRun(x: 0, y: 1, text: "cde", role: .text),
        ])
        #expect(GridDiff.cellCount(GridDiff.spans(from: nil, to: new)) == 6)
    }

    @Test("only what changed, split where the style or an unchanged cell splits it", arguments: [
        // (old rows, new rows, expected runs as (x, y, text))
        (["abc", "def"], ["abc", "def"], [(Int, Int, String)]()),
        (["abc", "def"], ["abX", "def"], [(2, 0, "X")]),
        (["abcdef"], ["XbYZef"], [(0, 0, "X"), (2, 0, "YZ")]),
        (["abc", "def"], ["xyz", "deF"], [(0, 0, "xyz"), (2, 1, "F")]),
    ])
    func partial(old: [String], new: [String], expected: [(Int, Int, String)]) {
        let runs = GridDiff.runs(from: Self.grid(old), to: Self.grid(new))
        #expect(runs.map { "\($0.x),\($0.y),\($0.text)" } == expected.map { "\($0.0),\($0.1),\($0.2)" })
    }

    @Test("a change of role or weight alone is written, and splits runs")
    func styleOnly() {
        let old = Self.grid(["abcd"])
        var new = old
        new.paint(Rect(x: 1, y: 0, width: 2, height: 1), role: .selection)
        new[2, 0].bold = true
        #expect(GridDiff.runs(from: old, to: new) == [
            GridRun(x: 1, y: 0, text: "b", role: .selection),
            GridRun(x: 2, y: 0, text: "c", role: .selection, bold: true),
        ])
    }

    @Test("a grid of another size is written whole", arguments: [(3, 2), (2, 3), (4, 4)])
    func resized(width: Int, height: Int) {
        let old = CellGrid(width: 3, height: 3)
        let new = CellGrid(width: width, height: height)
        #expect(GridDiff.cellCount(GridDiff.spans(from: old, to: new)) == width * height)
    }

    /// The backend's full redraw: curses clears the screen to blanks in the text role, then gets
    /// only the cells that differ from those.
    @Test("after a clear, every cell but the text role's blanks, and nothing when the grid is blank")
    func afterClear() {
        var new = Self.grid(["ab  ", "    ", "  c "])
        new[3, 1] = Cell(" ", role: .selection)
        new[0, 1] = Cell(" ", bold: true)
        let cleared = CellGrid(width: new.width, height: new.height)
        #expect(GridDiff.runs(from: cleared, to: new) == [
            GridRun(x: 0, y: 0, text: "ab", role: .text),
            GridRun(x: 0, y: 1, text: " ", role: .text, bold: true),
            GridRun(x: 3, y: 1, text: " ", role: .selection),
            GridRun(x: 2, y: 2, text: "c", role: .text),
        ])
        #expect(GridDiff.spans(from: cleared, to: cleared).isEmpty)
    }

    @Test("spans written into a kept array are a fresh diff's, with nothing left of the frame before")
    func spansIntoKeptArray() {
        let old = Self.grid(["abcd", "efgh", "ijkl"])
        var new = old
        new[1, 1] = Cell("X", role: .warning)
        var kept: [GridSpan] = []
        GridDiff.spans(from: nil, to: old, into: &kept)
        #expect(GridDiff.cellCount(kept) == 12)
        let capacity = kept.capacity
        GridDiff.spans(from: old, to: new, into: &kept)
        #expect(kept == [GridSpan(x: 1, y: 1, count: 1, role: .warning, bold: false)])
        #expect(kept == GridDiff.spans(from: old, to: new))
        #expect(kept.capacity >= capacity, "the storage is kept")
        GridDiff.spans(from: new, to: new, into: &kept)
        #expect(kept.isEmpty)
    }

    @Test("a combining mark alone in a cell stays in its own cell")
    func combining() {
        var new = CellGrid(width: 3, height: 1)
        new[0, 0] = Cell("e")
        new[1, 0] = Cell("\u{301}")
        let old = CellGrid(width: 3, height: 1, fill: Cell("x"))
        let runs = GridDiff.runs(from: old, to: new)
        #expect(runs.first?.characters.count == 3)
        #expect(GridDiff.cellCount(GridDiff.spans(from: old, to: new)) == 3)
    }
}

@Suite("Frames replaced in the backend's mailbox")
struct FrameCauseTests {
    @Test("the causes of a replaced frame stay in the trace, each once, the earliest first", arguments: [
        ("", "key", "key"),
        ("key", "snapshot", "key+snapshot"),
        ("key+snapshot", "tick", "key+snapshot+tick"),
        ("snapshot", "snapshot", "snapshot"),
        ("key+tick", "key", "key+tick"),
    ])
    func joined(_ earlier: String, _ later: String, _ expected: String) {
        #expect(TerminalBackend.Frame.joined(earlier, later) == expected)
    }
}
