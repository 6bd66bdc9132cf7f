import Testing

@testable import Console

@Suite("Log ring: bytes, limits, wrap-around", .timeLimit(.minutes(1)))
struct LogRingTests {
    static func kept(_ ring: LogRing) -> [String] { (0..<ring.count).map { ring[$0] } }

    @Test("the byte limit drops the oldest lines, wrapping the storage around", arguments: [
        // 4-byte lines, 10 bytes of storage: two fit, the third wraps to offset 0 and drops the first.
        (lines: ["aaaa", "bbbb"], byteCapacity: 10, kept: ["aaaa", "bbbb"]),
        (lines: ["aaaa", "bbbb", "cccc"], byteCapacity: 10, kept: ["bbbb", "cccc"]),
        (lines: ["aaaa", "bbbb", "cccc", "dddd"], byteCapacity: 10, kept: ["cccc", "dddd"]),
        (lines: ["aaaa", "bbbb", "cccc", "dddd", "eeee"], byteCapacity: 10, kept: ["dddd", "eeee"]),
        // A long line takes the room of several short ones, and later lines give them back.
        (lines: ["a", "b", "c", "dddddddd", "e"], byteCapacity: 10, kept: ["dddddddd", "e"]),
        (lines: ["aaaaaaaa", "b", "c", "d"], byteCapacity: 10, kept: ["b", "c", "d"]),
        // Exactly full, then one more byte.
        (lines: ["aaaaa", "bbbbb"], byteCapacity: 10, kept: ["aaaaa", "bbbbb"]),
        (lines: ["aaaaa", "bbbbb", "c"], byteCapacity: 10, kept: ["bbbbb", "c"]),
        // Empty lines hold no bytes and are kept in order.
        (lines: ["aaaa", "", "bbbb", ""], byteCapacity: 10, kept: ["aaaa", "", "bbbb", ""]),
    ])
    func byteLimit(lines: [String], byteCapacity: Int, kept: [String]) {
        var ring = LogRing(capacity: 100, byteCapacity: byteCapacity, maxLineBytes: byteCapacity)
        for line in lines { ring.append(line) }
        #expect(Self.kept(ring) == kept)
        #expect(ring.dropped == lines.count - kept.count)
        #expect(ring.appended == lines.count)
    }

    @Test("both limits at once: whichever a line reaches first drops the oldest")
    func bothLimits() {
        var ring = LogRing(capacity: 3, byteCapacity: 12, maxLineBytes: 12)
        for line in ["a", "b", "c", "d"] { ring.append(line) }
        #expect(Self.kept(ring) == ["b", "c", "d"], "the line limit")
        ring.append("eeeeeeeeee")
        #expect(Self.kept(ring) == ["eeeeeeeeee"], "b goes for the line limit; ten bytes do not fit after d, and from offset 0 they overlap c and d")
        #expect(ring.dropped == 4)
    }

    @Test("a line longer than maxLineBytes is cut there, never inside a character", arguments: [
        (line: "abcdefgh", limit: 5, kept: "abcde"),
        (line: "abcd", limit: 5, kept: "abcd"),
        // "é" is two bytes (C3 A9): a cut at 5 would split the second one, so it stops at 4.
        (line: "abéé", limit: 5, kept: "abé"),
        (line: "abéé", limit: 6, kept: "abéé"),
        // A four-byte character cut anywhere inside goes whole.
        (line: "a😀b", limit: 3, kept: "a"),
        (line: "😀", limit: 2, kept: ""),
    ])
    func longLines(line: String, limit: Int, kept: String) {
        var ring = LogRing(capacity: 4, byteCapacity: 64, maxLineBytes: limit)
        ring.append(line)
        #expect(ring[0] == kept)
    }

    @Test("thousands of lines of varied length through a small ring: always the newest, in order, within both limits")
    func churn() {
        var ring = LogRing(capacity: 50, byteCapacity: 1_000, maxLineBytes: 200)
        var all: [String] = []
        var seed: UInt64 = 42
        for index in 0..<20_000 {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            let line = "\(index) " + String(repeating: "x", count: Int(seed >> 58) * 3)
            all.append(line)
            ring.append(line)
            let kept = Self.kept(ring)
            let bytes = kept.reduce(0) { $0 + $1.utf8.count }
            let withinLimits = kept.count <= 50 && bytes <= 1_000
            // Nor does it drop more than it must: once full, it holds 50 lines or all but the
            // tail given up at a wrap and the part of a line being overwritten (each < 200 bytes).
            guard index < 100 || kept.count == 50 || bytes > 1_000 - 2 * 200 else {
                Issue.record("after line \(index): only \(kept.count) lines, \(bytes) bytes kept")
                return
            }
            // Dropping only the oldest means: what is kept is the end of what was appended.
            guard withinLimits, !kept.isEmpty, kept == Array(all.suffix(kept.count)) else {
                Issue.record("after line \(index): \(kept.count) lines kept, within limits: \(withinLimits)")
                return
            }
        }
        #expect(ring.appended == 20_000)
    }

    @Test("removeAll forgets the lines and the count, and the ring fills again from the start")
    func removeAll() {
        var ring = LogRing(capacity: 2, byteCapacity: 8, maxLineBytes: 8)
        for line in ["one", "two", "three"] { ring.append(line) }
        ring.removeAll()
        #expect(ring.isEmpty && ring.appended == 0 && ring.dropped == 0)
        ring.append("four")
        #expect(Self.kept(ring) == ["four"])
    }

    @Test("invalid UTF-8 reads back with replacement characters, not a crash")
    func invalidBytes() {
        var ring = LogRing(capacity: 2)
        let bytes: [UInt8] = [0x61, 0xFF, 0x62]
        bytes.withUnsafeBytes { ring.append($0) }
        #expect(ring[0] == "a\u{FFFD}b")
    }

    @Test("moving lines between rings keeps their bytes and order and empties the source, whatever its wrap")
    func moveLines() {
        var source = LogRing(capacity: 1000, byteCapacity: 4096, maxLineBytes: 256)
        var destination = LogRing(capacity: 1000)
        var expected: [String] = []
        for round in 0..<5 {
            // About 2 KB in the first round, 9 KB in the last: the later rounds wrap the source's 4 KB.
            let lines = (0..<(50 + 40 * round)).map { "round \(round) line \($0) " + String(repeating: "é", count: $0 % 23) }
            for line in lines { source.append(line) }
            let kept = Self.kept(source)
            #expect(destination.moveLines(from: &source) == lines.count)
            expected += kept
            #expect(source.isEmpty && source.appended == 0, "the source is empty after a move")
            #expect(destination.moveLines(from: &source) == 0, "a second move finds nothing")
        }
        #expect(Self.kept(destination) == expected)
        #expect(destination.dropped == destination.appended - expected.count && destination.dropped > 0)
        #expect(destination.appended == (0..<5).reduce(0) { $0 + 50 + 40 * $1 })
    }

    @Test("lines the source dropped count as dropped in the destination, which keeps to its own limits")
    func moveLinesDropped() {
        var source = LogRing(capacity: 10)
        var destination = LogRing(capacity: 15)
        for index in 0..<25 { source.append("line \(index)") }
        #expect(destination.moveLines(from: &source) == 25)
        #expect(Self.kept(destination) == (15..<25).map { "line \($0)" })
        #expect(destination.appended == 25 && destination.dropped == 15)
        for index in 25..<33 { source.append("line \(index)") }
        destination.moveLines(from: &source)
        #expect(Self.kept(destination) == (18..<33).map { "line \($0)" }, "the destination drops its oldest beyond 15 lines")
        #expect(destination.appended == 33 && destination.dropped == 18)
    }

    /// A follower's ring is emptied after a few lines each time. Written round and round, its
    /// storage is whole after the first lap, so a burst later (a console that fell behind) finds
    /// room and grows nothing. Emptied with `removeAll`, it would grow at that burst instead.
    @Test("a ring emptied by moves keeps writing round: its storage is whole after one lap and never grows after")
    func movesWriteRound() {
        var source = LogRing(capacity: 40, byteCapacity: 1024, maxLineBytes: 64)
        var destination = LogRing(capacity: 1000)
        var number = 0
        func burst(_ lines: Int) {
            for _ in 0..<lines {
                source.append("line \(number) " + String(repeating: "x", count: number % 17))
                number += 1
            }
            destination.moveLines(from: &source)
        }
        for _ in 0..<60 { burst(2) }
        let afterFirstLap = source.storageSize
        #expect(afterFirstLap.slots == 40, "every slot was used in the first lap")
        #expect(afterFirstLap.bytes == 1024, "the bytes are whole from the first line")
        burst(40)
        for _ in 0..<30 { burst(3) }
        #expect(source.storageSize == afterFirstLap, "bursts after the first lap grow nothing")
        #expect(Self.kept(destination) == (0..<number).map { "line \($0) " + String(repeating: "x", count: $0 % 17) })
        #expect(destination.dropped == 0)
    }
}
