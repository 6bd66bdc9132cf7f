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

    /// Grows up to `byteCapacity` while the ring first fills, then is written over in place.
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
        if bytes.count < head + length { bytes.append(contentsOf: repeatElement(0, count: head + length - bytes.count)) }
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

    public mutating func append(contentsOf lines: LogLines) {
        lines.forEachLine { append($0) }
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

    /// The lines kept, oldest first, as one compact batch (the ring is left as it was).
    public var lines: LogLines {
        var result = LogLines()
        // Twenty batches a second: storage of a few sizes only.
        let byteCount = (0..<count).reduce(0) { $0 + Int(span($1).length) }
        result.reserve(lines: StorageSize.powerOfTwo(atLeast: count, minimum: 64),
                       bytes: StorageSize.powerOfTwo(atLeast: byteCount, minimum: 64))
        bytes.withUnsafeBytes { storage in
            for index in 0..<count {
                let span = span(index)
                result.append(UnsafeRawBufferPointer(rebasing: storage[Int(span.offset)..<Int(span.offset + span.length)]))
            }
        }
        return result
    }

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

/// Lines that travel together (a batch from the log follower), as one buffer of UTF-8 bytes and
/// where each line ends: two allocations for a batch, not one per line.
public struct LogLines: Sendable, Equatable, RandomAccessCollection {
    private var bytes: [UInt8] = []
    /// The end of each line in `bytes`; a line starts where the one before it ends.
    private var ends: [Int32] = []

    public init() {}

    public init(_ lines: [String]) {
        for line in lines { append(line) }
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { ends.count }
    public var byteCount: Int { bytes.count }

    public subscript(index: Int) -> String {
        let range = self.range(index)
        return bytes.withUnsafeBufferPointer { String(decoding: UnsafeBufferPointer(rebasing: $0[range]), as: UTF8.self) }
    }

    public mutating func reserve(lines: Int, bytes: Int) {
        ends.reserveCapacity(lines)
        self.bytes.reserveCapacity(bytes)
    }

    public mutating func append(_ line: UnsafeRawBufferPointer) {
        bytes.append(contentsOf: line)
        ends.append(Int32(bytes.count))
    }

    public mutating func append(_ line: String) {
        var line = line
        line.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    /// Each line's bytes in order, without a `String` for any.
    public func forEachLine(_ body: (UnsafeRawBufferPointer) -> Void) {
        bytes.withUnsafeBytes { storage in
            for index in ends.indices { body(UnsafeRawBufferPointer(rebasing: storage[range(index)])) }
        }
    }

    private func range(_ index: Int) -> Range<Int> {
        (index == 0 ? 0 : Int(ends[index - 1]))..<Int(ends[index])
    }
}
