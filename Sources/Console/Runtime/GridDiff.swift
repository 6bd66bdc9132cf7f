/// A horizontal run of cells drawn in one style: what the backend writes with one call.
public struct GridRun: Sendable, Equatable {
    public var x: Int
    public var y: Int
    /// One per cell (kept apart, so a combining mark alone in a cell never joins its neighbour).
    public var characters: [Character]
    public var role: Role
    public var bold: Bool

    public init(x: Int, y: Int, text: String, role: Role, bold: Bool = false) {
        self.init(x: x, y: y, characters: Array(text), role: role, bold: bold)
    }

    public init(x: Int, y: Int, characters: [Character], role: Role, bold: Bool = false) {
        self.x = x
        self.y = y
        self.characters = characters
        self.role = role
        self.bold = bold
    }

    public var text: String { String(characters) }
}

/// What must be written to turn a screen that shows one grid into one that shows another. Pure.
public enum GridDiff {
    /// The changed cells of `new` as runs, left to right and top to bottom. Every cell of `new`
    /// when there is no `old` or its size differs (a resize or a theme change redraws all).
    /// A run holds consecutive changed cells of one style.
    public static func runs(from old: CellGrid?, to new: CellGrid) -> [GridRun] {
        let full = old == nil || old!.width != new.width || old!.height != new.height
        let before = old?.cells ?? []
        let after = new.cells
        var runs: [GridRun] = []
        for y in 0..<new.height {
            var current: GridRun?
            let rowStart = y * new.width
            for x in 0..<new.width {
                let cell = after[rowStart + x]
                guard full || before[rowStart + x] != cell else {
                    if let run = current { runs.append(run) }
                    current = nil
                    continue
                }
                if var run = current, run.role == cell.role, run.bold == cell.bold {
                    run.characters.append(cell.character)
                    current = run
                } else {
                    if let run = current { runs.append(run) }
                    current = GridRun(x: x, y: y, characters: [cell.character], role: cell.role, bold: cell.bold)
                }
            }
            if let run = current { runs.append(run) }
        }
        return runs
    }

    /// How many cells the runs write.
    public static func cellCount(_ runs: [GridRun]) -> Int { runs.reduce(0) { $0 + $1.characters.count } }
}
