import KubeAPI

/// The last lines of a log, kept as UTF-8 bytes in one fixed-size byte ring: memory stays bounded
/// however chatty the container is, and appending a line allocates nothing once the ring has
/// filled. At 10,000 lines a second that matters: a `String` per line, each freed again a second
/// later, left malloc's heap fragmented and the RSS drifting.
///
/// Two limits hold at once: `capacity` lines and `byteCapacity` bytes. The oldest lines go first,
/// whichever limit a new line reaches. A line longer than `maxLineBytes` is cut there, at a
/// character boundary.
public struct LogRing: Sendable {
    public let capacity: Int
    public let byteCapacity: Int
    public let maxLineBytes: Int

    /// Where one line's bytes are in `bytes`.
    struct Span: Sendable {
        var offset: Int32
        var length: Int32
    }

    /// `byteCapacity` bytes from the first line on (none before), written over in place: a ring
    /// that grew as it filled would grow again whenever a lap ended further on than the others.
    private var bytes: [UInt8] = []
    /// Up to `capacity` spans; the oldest kept is at `first`.
    private var spans: [Span] = []
    private var first = 0
    public private(set) var count = 0
    /// Where the next line's bytes go.
    private var head = 0
    /// Every line ever appended, kept or not.
    public private(set) var appended = 0

    public init(capacity: Int, byteCapacity: Int? = nil, maxLineBytes: Int = 8 << 10) {
        precondition(capacity > 0, "a log ring needs room for one line")
        precondition(maxLineBytes > 0, "a log line needs room for one byte")
        self.capacity = capacity
        // 200 bytes a line on average, well above a database daemon's typical line.
        let bytes = byteCapacity ?? max(capacity * 200, 64 << 10)
        precondition(bytes >= maxLineBytes, "the ring must hold its longest line")
        self.byteCapacity = bytes
        self.maxLineBytes = maxLineBytes
    }

    public var isEmpty: Bool { count == 0 }
    /// Lines appended and since dropped to make room.
    public var dropped: Int { appended - count }

    /// Appends one line (without its newline).
    public mutating func append(_ line: UnsafeRawBufferPointer) {
        appended += 1
        let length = Self.cut(line, at: maxLineBytes)
        if count == capacity { dropOldest() }
        if head + length > byteCapacity {
            // The bytes from `head` to the end are given up for this lap: lines of earlier laps
            // still there are the oldest kept, and go now.
            while count > 0, Int(spans[first].offset) >= head { dropOldest() }
            head = 0
        }
        // What is left of the previous lap lies after `head`, oldest first: drop what the new
        // line overlaps.
        while count > 0, overlaps(spans[first], from: head, length: length) { dropOldest() }
        if bytes.count < head + length { bytes.append(contentsOf: repeatElement(0, count: byteCapacity - bytes.count)) }
        if length > 0 {
            bytes.withUnsafeMutableBytes { storage in
                storage.baseAddress!.advanced(by: head).copyMemory(from: line.baseAddress!, byteCount: length)
            }
        }
        let span = Span(offset: Int32(head), length: Int32(length))
        let slot = (first + count) % capacity
        if slot == spans.count { spans.append(span) } else { spans[slot] = span }
        count += 1
        head += length
    }

    public mutating func append(_ line: String) {
        var line = line
        line.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    /// Line `index`, 0 being the oldest kept.
    public subscript(index: Int) -> String {
        precondition(index >= 0 && index < count, "line \(index) of \(count)")
        let span = span(index)
        return bytes.withUnsafeBufferPointer { storage in
            String(decoding: UnsafeBufferPointer(rebasing: storage[Int(span.offset)..<Int(span.offset + span.length)]), as: UTF8.self)
        }
    }

    /// Calls `body` with line `index`'s UTF-8 bytes, which live only for the call: for a reader
    /// that draws or searches them without making a `String`.
    public func withLine<Result>(_ index: Int, _ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        precondition(index >= 0 && index < count, "line \(index) of \(count)")
        let span = span(index)
        return try bytes.withUnsafeBytes { storage in
            try body(UnsafeRawBufferPointer(rebasing: storage[Int(span.offset)..<Int(span.offset + span.length)]))
        }
    }

    /// Moves every line of `other` here, oldest first, and empties `other` (`discardLines`), whose
    /// storage stays for its next lines: no batch is allocated on the way. The lines `other` had
    /// dropped count here as appended and dropped, so `dropped` is what this log lost in all.
    /// Returns how many lines `other` held or dropped (0: nothing changed).
    @discardableResult
    public mutating func moveLines(from other: inout LogRing) -> Int {
        let news = other.appended
        appended += other.dropped
        other.bytes.withUnsafeBytes { storage in
            for index in 0..<other.count {
                let span = other.span(index)
                append(UnsafeRawBufferPointer(rebasing: storage[Int(span.offset)..<Int(span.offset + span.length)]))
            }
        }
        other.discardLines()
        return news
    }

    /// Forgets every line and the count of appends, and goes on writing where the last line
    /// ended: lap after lap, the next lines take the slots and bytes after the last ones, so
    /// every line slot is used in the first lap and their array never grows again. (`removeAll`
    /// starts over at the beginning; a ring emptied that way after every few lines grows only
    /// when a burst first outdoes the others: a follower's ring, emptied twenty times a second,
    /// grew from 64 to 128 KiB after minutes of streaming when the console once fell behind.)
    public mutating func discardLines() {
        first = (first + count) % capacity
        count = 0
        appended = 0
    }

    /// Bytes and line slots the storage holds now, for tests of its growth.
    var storageSize: (bytes: Int, slots: Int) { (bytes.count, spans.count) }

    /// Forgets every line and the count of appends; the storage stays allocated for reuse.
    public mutating func removeAll() {
        first = 0
        count = 0
        head = 0
        appended = 0
    }

    /// Lines are written one after another, wrapping to offset 0 when the next does not fit
    /// before `byteCapacity`; a wrap drops the lines beyond the wrap point, and each write the
    /// lines it overlaps. So the lines kept from the previous lap all lie after `head`, oldest
    /// first, followed by this lap's, which lie before it: the oldest is always the one to drop.
    private mutating func dropOldest() {
        first = (first + 1) % capacity
        count -= 1
    }

    /// Where line `index` (0 the oldest kept) is.
    private func span(_ index: Int) -> Span { spans[(first + index) % capacity] }

    private func overlaps(_ span: Span, from start: Int, length: Int) -> Bool {
        Int(span.offset) < start + length && Int(span.offset + span.length) > start
    }

    /// The length of `line` cut to at most `limit` bytes, never inside a UTF-8 sequence.
    static func cut(_ line: UnsafeRawBufferPointer, at limit: Int) -> Int {
        guard line.count > limit else { return line.count }
        var end = limit
        // Step back over continuation bytes (10xxxxxx) to the start of the cut character.
        while end > 0, line[end] & 0xC0 == 0x80 { end -= 1 }
        return end
    }
}
