import Testing

@testable import Console

@Suite("Cell grid and log ring", .timeLimit(.minutes(5)))
struct CellGridTests {
    @Test("put clips at the limit and at the grid's edge, and reports where it stopped", arguments: [
        (x: 0, limit: nil as Int?, expected: "hello", end: 5),
        (x: 0, limit: 3, expected: "hel  ", end: 3),
        (x: 3, limit: nil, expected: "   he", end: 5),
        (x: 6, limit: nil, expected: "     ", end: 6),
    ])
    func putClips(x: Int, limit: Int?, expected: String, end: Int) {
        var grid = CellGrid(width: 5, height: 1)
        let stop = grid.put("hello", x: x, y: 0, limit: limit)
        #expect(grid.lines == [expected])
        #expect(stop == end)
    }

    @Test("writes outside the grid are dropped, reads give a blank")
    func outside() {
        var grid = CellGrid(width: 2, height: 2)
        grid[5, 5] = Cell("x", role: .error)
        grid[-1, 0] = Cell("y")
        #expect(grid.lines == ["  ", "  "])
        #expect(grid[7, 7] == .blank)
    }

    @Test("paint changes roles and keeps characters; text trims trailing spaces")
    func paint() {
        var grid = CellGrid(width: 6, height: 2)
        grid.put("ab", x: 1, y: 1)
        grid.paint(Rect(x: 0, y: 1, width: 6, height: 1), role: .selection)
        #expect(grid[1, 1] == Cell("a", role: .selection))
        #expect(grid[5, 1].role == .selection)
        #expect(grid[0, 0].role == .text)
        #expect(grid.text == "\n ab")
    }

    @Test("a title line: the title cut with an ellipsis, the right side with its count only where it fits", arguments: [
        (title: "Logs", width: 30, right: "[follow]", count: nil as Int?, expected: "- Logs ------------ [follow] -"),
        (title: "Logs", width: 31, right: " dropped  [follow]", count: 0, expected: "- Logs -- 0 dropped  [follow] -"),
        // One column fewer: no room for the right side beside the title.
        (title: "Logs", width: 30, right: " dropped  [follow]", count: 0, expected: "- Logs -----------------------"),
        (title: "Logs", width: 34, right: " dropped", count: 1_234_567, expected: "- Logs --------- 1234567 dropped -"),
        (title: "Logs", width: 34, right: " below", count: -42, expected: "- Logs --------------- -42 below -"),
        (title: "Logs db-0 daemonlog", width: 30, right: " dropped  [follow]", count: 12, expected: "- Logs db-0 daemonlog --------"),
        (title: "Logs db-0 daemonlog", width: 12, right: "", count: nil, expected: "- Logs db-~-"),
        (title: "Pairs", width: 8, right: "x", count: nil, expected: "- Pairs-"),
        (title: "Pairs", width: 4, right: "", count: nil, expected: "----"),
    ])
    func titleLine(title: String, width: Int, right: String, count: Int?, expected: String) {
        var grid = CellGrid(width: width, height: 1)
        grid.titleLine(title, rect: Rect(x: 0, y: 0, width: width, height: 1), focused: true, glyphs: .ascii, right: right, rightCount: count)
        #expect(grid.lines == [expected])
    }

    @Test("decimals are written digit by digit, with their sign, and measured alike", arguments: [
        0, 7, 10, 99, 100, 65_535, -1, -10, Int.max, Int.min,
    ])
    func decimal(number: Int) {
        var grid = CellGrid(width: 24, height: 1)
        let end = grid.writeDecimal(number, x: 2, y: 0, role: .muted)
        #expect(grid.text == "  \(number)")
        #expect(end == 2 + "\(number)".count)
        #expect(TextMeasure.decimalColumns(number) == "\(number)".count)
        #expect(grid[2, 0].role == .muted)
    }

    @Test("the ring keeps the newest lines in order and counts what it dropped", arguments: [
        (appends: 3, capacity: 5, kept: ["l0", "l1", "l2"], dropped: 0),
        (appends: 5, capacity: 5, kept: ["l0", "l1", "l2", "l3", "l4"], dropped: 0),
        (appends: 7, capacity: 5, kept: ["l2", "l3", "l4", "l5", "l6"], dropped: 2),
        (appends: 12, capacity: 3, kept: ["l9", "l10", "l11"], dropped: 9),
    ])
    func ring(appends: Int, capacity: Int, kept: [String], dropped: Int) {
        var ring = LogRing(capacity: capacity)
        for index in 0..<appends { ring.append("l\(index)") }
        #expect((0..<ring.count).map { ring[$0] } == kept)
        #expect(ring.dropped == dropped)
        #expect(ring.appended == appends)
    }
}
