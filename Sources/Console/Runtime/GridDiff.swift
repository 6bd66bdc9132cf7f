/// A horizontal run of changed cells in one style, as a place in the grid: what the backend
/// writes with one call, reading the characters from the grid itself.
public struct GridSpan: Sendable, Equatable {
    public var x: Int
    public var y: Int
    public var count: Int
    public var role: Role
    public var bold: Bool
}

/// What must be written to turn a screen that shows one grid into one that shows another. Pure.
public enum GridDiff {
    /// The changed cells of `new` as spans, left to right and top to bottom. Every cell of `new`
    /// when there is no `old` or its size differs (a resize or a theme change redraws all).
    /// A span holds consecutive changed cells of one style. Nothing is copied: a full redraw of
    /// 200x60 takes well under a millisecond.
    public static func spans(from old: CellGrid?, to new: CellGrid) -> [GridSpan] {
        var spans: [GridSpan] = []
        self.spans(from: old, to: new, into: &spans)
        return spans
    }

    /// The same spans written over `spans`, whose storage is kept: a backend that diffs every
    /// frame allocates nothing for it once its array has grown to a full redraw's.
    public static func spans(from old: CellGrid?, to new: CellGrid, into spans: inout [GridSpan]) {
        let full = old == nil || old!.width != new.width || old!.height != new.height
        spans.removeAll(keepingCapacity: true)
        spans.reserveCapacity(full ? new.height * 8 : 64)  // one allocation for a usual frame, not one per doubling
        new.cells.withUnsafeBufferPointer { after in
            let before = full ? nil : old?.cells
            for y in 0..<new.height {
                let rowStart = y * new.width
                var open = false
                for x in 0..<new.width {
                    let cell = after[rowStart + x]
                    if let before, before[rowStart + x] == cell {
                        open = false
                        continue
                    }
                    if open, spans[spans.count - 1].role == cell.role, spans[spans.count - 1].bold == cell.bold {
                        spans[spans.count - 1].count += 1
                    } else {
                        spans.append(GridSpan(x: x, y: y, count: 1, role: cell.role, bold: cell.bold))
                        open = true
                    }
                }
            }
        }
    }

    /// How many cells the spans write.
    public static func cellCount(_ spans: [GridSpan]) -> Int { spans.reduce(0) { $0 + $1.count } }
}
