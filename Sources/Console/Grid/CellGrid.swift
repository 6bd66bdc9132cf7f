/// What a cell means, not how it looks: a `Theme` maps each role to colours and attributes, so
/// views never name a colour and a monochrome terminal still tells roles apart.
public enum Role: String, Sendable, CaseIterable, Codable {
    case text, muted, header, border, title, selection, key
    case active, standby, warning, error, ok
    case bar, barEmpty
}

/// One terminal cell: a character (one column wide; views never put wide characters in the grid)
/// and the role it is drawn in.
public struct Cell: Sendable, Equatable {
    public var character: Character
    public var role: Role
    public var bold: Bool

    public init(_ character: Character = " ", role: Role = .text, bold: Bool = false) {
        self.character = character
        self.role = role
        self.bold = bold
    }

    public static let blank = Cell()
}

/// A rectangle of the screen, in cells; origin at the top left.
public struct Rect: Sendable, Equatable {
    public var x: Int
    public var y: Int
    public var width: Int
    public var height: Int

    public init(x: Int, y: Int, width: Int, height: Int) {
        self.x = x
        self.y = y
        self.width = max(0, width)
        self.height = max(0, height)
    }

    public var maxX: Int { x + width }
    public var maxY: Int { y + height }
    public var isEmpty: Bool { width == 0 || height == 0 }

    /// This rectangle less `amount` cells on every side.
    public func inset(by amount: Int) -> Rect {
        Rect(x: x + amount, y: y + amount, width: width - 2 * amount, height: height - 2 * amount)
    }
}

/// The screen as values: views render into a grid, tests read it, and the terminal backend
/// writes only the cells that differ from the grid it wrote last.
public struct CellGrid: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public private(set) var cells: [Cell]

    public init(width: Int, height: Int, fill: Cell = .blank) {
        self.width = max(0, width)
        self.height = max(0, height)
        self.cells = Array(repeating: fill, count: self.width * self.height)
    }

    public var bounds: Rect { Rect(x: 0, y: 0, width: width, height: height) }

    /// The cell at column `x`, row `y`; reads outside the grid give a blank, writes there are dropped.
    public subscript(x: Int, y: Int) -> Cell {
        get { contains(x, y) ? cells[y * width + x] : .blank }
        set { if contains(x, y) { cells[y * width + x] = newValue } }
    }

    public func contains(_ x: Int, _ y: Int) -> Bool { x >= 0 && y >= 0 && x < width && y < height }

    /// Writes `text` from (x, y) rightwards, cut at `limit` columns (and at the grid's edge).
    /// Returns the column after the last character written.
    @discardableResult
    public mutating func put(_ text: String, x: Int, y: Int, role: Role = .text, bold: Bool = false, limit: Int? = nil) -> Int {
        var column = x
        let end = min(width, limit.map { x + max(0, $0) } ?? width)
        for character in text {
            guard column < end else { break }
            self[column, y] = Cell(character.isNewline ? " " : character, role: role, bold: bold)
            column += 1
        }
        return column
    }

    /// Blanks every cell, in place when the grid is `width` by `height` already, or becomes a
    /// blank grid of that size.
    public mutating func clear(width: Int, height: Int) {
        guard width == self.width, height == self.height else {
            self = CellGrid(width: width, height: height)
            return
        }
        fill(bounds)
    }

    /// Becomes a copy of `other`: cell by cell into the storage it has when the sizes agree, so
    /// that a grid kept from frame to frame allocates nothing; else it takes `other`'s size.
    public mutating func overwrite(with other: CellGrid) {
        guard width == other.width, height == other.height else {
            self = other
            return
        }
        cells.withUnsafeMutableBufferPointer { target in
            other.cells.withUnsafeBufferPointer { source in _ = target.update(fromContentsOf: source) }
        }
    }

    /// Sets every cell of `rect` (clipped to the grid) to `cell`.
    public mutating func fill(_ rect: Rect, with cell: Cell = .blank) {
        for row in max(0, rect.y)..<min(height, rect.maxY) {
            for column in max(0, rect.x)..<min(width, rect.maxX) { cells[row * width + column] = cell }
        }
    }

    /// Changes the role of every cell in `rect`, keeping the characters (a selection bar).
    public mutating func paint(_ rect: Rect, role: Role) {
        for row in max(0, rect.y)..<min(height, rect.maxY) {
            for column in max(0, rect.x)..<min(width, rect.maxX) { cells[row * width + column].role = role }
        }
    }

    /// The rows as plain text, trailing spaces kept: what tests and tmux captures compare.
    public var lines: [String] {
        (0..<height).map { row in String(cells[(row * width)..<((row + 1) * width)].map(\.character)) }
    }

    /// The whole grid as text, one line per row, trailing spaces trimmed.
    public var text: String {
        lines.map { line in String(line.reversed().drop(while: { $0 == " " }).reversed()) }.joined(separator: "\n")
    }
}
