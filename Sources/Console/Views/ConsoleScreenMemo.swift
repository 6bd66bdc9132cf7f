import Foundation

/// `ConsoleScreen.render` for a console that draws frame after frame: everything but the log
/// pane and the overlay (the base) is kept from the last frame and drawn again only when what it
/// shows changed: the snapshot, the UI state, the size, the glyphs or the time zone. A console
/// streaming a log draws twenty frames a second with none of these changed, and each of them
/// used to build the table's cells, the detail's facts and the titles as strings anew: over a
/// thousand of the 2,400 small allocations a second that the console made while streaming. Now
/// the base is drawn once a second (the clock) and the frames between copy it and draw the log
/// lines over it.
public struct ConsoleScreenMemo: Sendable {
    /// What the base is drawn from. The snapshot is last: a tick changes only its clock, and its
    /// pairs compare at no cost while they are the array of the last frame.
    struct BaseInputs: Equatable {
        var width: Int
        var height: Int
        var glyphs: Glyphs
        var timeZone: TimeZone
        var state: ConsoleState
        var snapshot: ConsoleSnapshot
    }

    private var pairList = PairListMemo()
    private var inputs: BaseInputs?
    private var list: PairList?
    private var base = CellGrid(width: 0, height: 0)
    /// How many times the base has been drawn: once per change of its inputs.
    public private(set) var baseDraws = 0

    public init() {}

    /// The frame `ConsoleScreen.render` draws for these arguments, in `grid` (kept by the
    /// caller; a grid of the right size is overwritten in place).
    public mutating func render(
        _ snapshot: ConsoleSnapshot, _ state: ConsoleState, logs: LogRing?, into grid: inout CellGrid, width: Int, height: Int,
        glyphs: Glyphs, timeZone: TimeZone = .current
    ) {
        let current = BaseInputs(width: width, height: height, glyphs: glyphs, timeZone: timeZone, state: state, snapshot: snapshot)
        let kept = current == inputs ? list : nil
        let list = kept ?? pairList.list(snapshot: snapshot, state: state)
        let context = RenderContext(snapshot: snapshot, state: state, glyphs: glyphs, list: list)
        let layout = ConsoleLayout(width: width, height: height, state: state, list: list)
        if kept == nil {
            base.clear(width: width, height: height)
            ConsoleScreen.drawBase(into: &base, layout: layout, context: context, timeZone: timeZone)
            self.list = list
            inputs = current
            baseDraws += 1
        }
        grid.overwrite(with: base)
        ConsoleScreen.drawTop(into: &grid, layout: layout, context: context, logs: logs)
    }
}
