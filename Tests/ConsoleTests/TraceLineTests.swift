import Foundation
import Testing

@testable import Console

@Suite("The frame trace's line, written without String(format:)")
struct TraceLineTests {
    /// Values away from rounding ties, where printf's `%.Nf` is the reference.
    @Test("decimals come out as printf writes them", arguments: [
        (0.0, 1), (3.14159, 1), (2.75, 1), (12.04, 1), (999.96, 1), (0.049, 1), (-7.26, 1), (-0.04, 1), (1_764_872_400.123456, 6),
        (1_764_872_400.5, 6), (0.000001, 6), (42.0, 0), (41.7, 0), (-3.2, 0), (123_456.789, 3),
    ])
    func decimals(value: Double, decimals: Int) {
        var line = TraceLine()
        line.start("x")
        line.field("v", value, decimals: decimals)
        let expected = "x v=" + String(format: "%.\(decimals)f", value)
        #expect(String(decoding: line.bytes, as: UTF8.self) == expected)
    }

    @Test("a whole line: text, integers, decimals and the end; a second line reuses the storage")
    func wholeLine() {
        var line = TraceLine()
        line.start("frame")
        line.field("cause", "logs")
        line.field("render_us", 412.345, decimals: 1)
        line.field("cells", 0)
        line.field("n", -1_234_567)
        line.field("full", 1)
        line.end()
        #expect(String(decoding: line.bytes, as: UTF8.self) == "frame cause=logs render_us=412.3 cells=0 n=-1234567 full=1\n")
        line.start("frame")
        line.field("bad", Double.nan, decimals: 1)
        line.field("huge", -Double.infinity, decimals: 1)
        line.field("max", Int.max)
        line.field("min", Int.min)
        line.end()
        #expect(String(decoding: line.bytes, as: UTF8.self)
            == "frame bad=nan huge=-inf max=\(Int.max) min=\(Int.min)\n")
    }
}
