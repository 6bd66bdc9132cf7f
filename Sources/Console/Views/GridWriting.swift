/// Writing text into the grid for the views: one column per character always, text cut with an
/// ellipsis rather than wrapped, and bars drawn from glyphs.
extension CellGrid {
    /// Writes `text` from (x, y), at most `width` columns; text that is longer ends in
    /// `ellipsis`. Characters that are not one column wide (wide CJK, emoji, controls) become
    /// `?` or a space, so nothing the cluster sends can shift the screen. Returns the column
    /// after the last character written.
    @discardableResult
    mutating func write(
        _ text: String, x: Int, y: Int, width: Int, role: Role = .text, bold: Bool = false, ellipsis: Character? = nil
    ) -> Int {
        if TextMeasure.isASCII(text) {
            return writeASCII(text.utf8, x: x, y: y, width: width, role: role, bold: bold, ellipsis: ellipsis)
        }
        guard width > 0, y >= 0, y < height, x < self.width else { return x }
        let room = min(width, self.width - x)
        guard room > 0 else { return x }
        var column = x
        let end = x + room
        let count = text.count
        let cut = count > room
        let last = cut ? end - 1 : end
        var written = 0
        for character in text {
            guard column < last else { break }
            self[column, y] = Cell(TextMeasure.oneColumn(character), role: role, bold: bold)
            column += 1
            written += 1
        }
        if cut, column < end {
            let fallback = TextMeasure.oneColumn(text[text.index(text.startIndex, offsetBy: written)])
            self[column, y] = Cell(ellipsis ?? fallback, role: role, bold: bold)
            column += 1
        }
        return column
    }

    /// `write` for text known to be ASCII, straight from its bytes: a log line is drawn from
    /// the ring without a `String` made for it.
    @discardableResult
    mutating func writeASCII<Bytes: Collection<UInt8>>(
        _ bytes: Bytes, x: Int, y: Int, width: Int, role: Role = .text, bold: Bool = false, ellipsis: Character? = nil
    ) -> Int {
        guard width > 0, y >= 0, y < height, x < self.width else { return x }
        let room = min(width, self.width - x)
        guard room > 0 else { return x }
        var column = x
        let end = x + room
        let cut = bytes.count > room
        let last = cut ? end - 1 : end
        for byte in bytes {
            guard column < last else { break }
            self[column, y] = Cell(TextMeasure.asciiCharacter(byte), role: role, bold: bold)
            column += 1
        }
        if cut, column < end {
            self[column, y] = Cell(ellipsis ?? TextMeasure.asciiCharacter(bytes[bytes.index(bytes.startIndex, offsetBy: room - 1)]), role: role, bold: bold)
            column += 1
        }
        return column
    }

    /// A horizontal run of one glyph.
    mutating func repeatCharacter(_ character: Character, x: Int, y: Int, count: Int, role: Role) {
        guard y >= 0, y < height, count > 0 else { return }
        for column in max(0, x)..<min(width, x + count) { self[column, y] = Cell(character, role: role) }
    }

    /// A progress bar `width` columns wide, `fraction` (0...1) of it full.
    mutating func bar(x: Int, y: Int, width: Int, fraction: Double, glyphs: Glyphs) {
        guard width > 0 else { return }
        let clamped = fraction.isFinite ? min(1, max(0, fraction)) : 0
        let filled = Int((clamped * Double(width)).rounded(.down))
        repeatCharacter(glyphs.barFull, x: x, y: y, count: filled, role: .bar)
        repeatCharacter(glyphs.barEmpty, x: x + filled, y: y, count: width - filled, role: .barEmpty)
    }

    /// A pane's title line: `── Title ──────  right ─`, the title in the title role when the
    /// pane has the focus. `rightCount`, when given, is written just before `right` (the log
    /// pane's dropped lines). No text is built for it: the log pane's is drawn at every frame
    /// while a log streams.
    mutating func titleLine(_ title: String, rect: Rect, focused: Bool, glyphs: Glyphs, right: String = "", rightCount: Int? = nil) {
        guard rect.width > 0, rect.height > 0 else { return }
        repeatCharacter(glyphs.horizontal, x: rect.x, y: rect.y, count: rect.width, role: .border)
        guard rect.width > 4 else { return }
        let role: Role = focused ? .title : .muted
        // " Title ", cut with an ellipsis where it does not fit.
        let start = rect.x + 1, end = rect.maxX - 1
        var column = write(" ", x: start, y: rect.y, width: 1, role: role, bold: focused)
        column = write(title, x: column, y: rect.y, width: end - column, role: role, bold: focused, ellipsis: glyphs.ellipsis)
        column = write(" ", x: column, y: rect.y, width: end - column, role: role, bold: focused)
        guard !right.isEmpty || rightCount != nil else { return }
        let rightWidth = (rightCount.map(TextMeasure.decimalColumns) ?? 0) + TextMeasure.columns(right) + 2
        let rightX = rect.maxX - 1 - rightWidth
        guard rightX > column + 1 else { return }
        var x = write(" ", x: rightX, y: rect.y, width: 1, role: .muted)
        if let rightCount { x = writeDecimal(rightCount, x: x, y: rect.y, role: .muted) }
        x = write(right, x: x, y: rect.y, width: rect.maxX - 1 - x, role: .muted)
        write(" ", x: x, y: rect.y, width: 1, role: .muted)
    }

    /// `number` in decimal from (x, y), without a `String` made for it. Returns the column after.
    @discardableResult
    mutating func writeDecimal(_ number: Int, x: Int, y: Int, role: Role) -> Int {
        let end = x + TextMeasure.decimalColumns(number)
        var rest = number.magnitude, column = end - 1
        repeat {
            self[column, y] = Cell(TextMeasure.asciiCharacter(UInt8(ascii: "0") + UInt8(rest % 10)), role: role)
            rest /= 10
            column -= 1
        } while rest > 0
        if number < 0 { self[x, y] = Cell("-", role: role) }
        return end
    }

    /// A box with a border and a title on its top edge; the inside is cleared.
    mutating func box(_ rect: Rect, title: String, glyphs: Glyphs, role: Role = .border) {
        guard rect.width >= 2, rect.height >= 2 else {
            fill(rect)
            return
        }
        fill(rect)
        repeatCharacter(glyphs.horizontal, x: rect.x + 1, y: rect.y, count: rect.width - 2, role: role)
        repeatCharacter(glyphs.horizontal, x: rect.x + 1, y: rect.maxY - 1, count: rect.width - 2, role: role)
        for row in (rect.y + 1)..<(rect.maxY - 1) {
            self[rect.x, row] = Cell(glyphs.vertical, role: role)
            self[rect.maxX - 1, row] = Cell(glyphs.vertical, role: role)
        }
        self[rect.x, rect.y] = Cell(glyphs.topLeft, role: role)
        self[rect.maxX - 1, rect.y] = Cell(glyphs.topRight, role: role)
        self[rect.x, rect.maxY - 1] = Cell(glyphs.bottomLeft, role: role)
        self[rect.maxX - 1, rect.maxY - 1] = Cell(glyphs.bottomRight, role: role)
        if !title.isEmpty, rect.width > 6 {
            write(" \(title) ", x: rect.x + 2, y: rect.y, width: rect.width - 4, role: .title, bold: true, ellipsis: glyphs.ellipsis)
        }
    }
}

/// Column counts and the one-column rule.
enum TextMeasure {
    static func isASCII(_ text: String) -> Bool { text.utf8.allSatisfy { $0 < 0x80 } }

    /// Printable ASCII as itself; tabs and other controls as a space.
    @inline(__always)
    static func asciiCharacter(_ byte: UInt8) -> Character {
        byte >= 0x20 && byte < 0x7F ? Character(Unicode.Scalar(byte)) : " "
    }

    /// The columns `number` takes in decimal, with its sign.
    static func decimalColumns(_ number: Int) -> Int {
        var digits = 1, rest = number.magnitude
        while rest >= 10 {
            rest /= 10
            digits += 1
        }
        return number < 0 ? digits + 1 : digits
    }

    /// The columns `text` takes once written: one per character.
    static func columns(_ text: String) -> Int { isASCII(text) ? text.utf8.count : text.count }

    /// Characters known to take one column stay; anything else (wide, combining, emoji,
    /// controls) becomes `?` or, for controls, a space.
    static func oneColumn(_ character: Character) -> Character {
        if let ascii = character.asciiValue { return asciiCharacter(ascii) }
        let scalars = character.unicodeScalars
        guard scalars.count == 1, let scalar = scalars.first else { return "?" }
        switch scalar.value {
        case 0x80..<0xA0: return " "
        case 0xA0...0x24F, 0x370...0x3FF, 0x400...0x4FF, 0x2010...0x2027, 0x2030...0x205E, 0x2190...0x21FF,
            0x2500...0x259F:
            return character
        default: return "?"
        }
    }

    /// Cuts `text` to `width` columns, ending in the ellipsis when something was cut.
    static func fit(_ text: String, _ width: Int, ellipsis: Character) -> String {
        guard width > 0 else { return "" }
        guard columns(text) > width else { return text }
        return String(text.prefix(width - 1)) + String(ellipsis)
    }

    /// Pads `text` with spaces to `width` columns, or cuts it.
    static func pad(_ text: String, _ width: Int, ellipsis: Character) -> String {
        let count = columns(text)
        if count > width { return fit(text, width, ellipsis: ellipsis) }
        return text + String(repeating: " ", count: width - count)
    }

    /// Case-insensitive (ASCII) substring test on UTF-8 bytes: the table filter runs it on
    /// every row at every render, so it allocates nothing.
    static func contains(_ haystack: String, lowercasedNeedle needle: [UInt8]) -> Bool {
        if needle.isEmpty { return true }
        var haystack = haystack
        return haystack.withUTF8 { bytes in
            let n = needle.count
            guard bytes.count >= n else { return false }
            var start = 0
            while start + n <= bytes.count {
                var index = 0
                while index < n && lower(bytes[start + index]) == needle[index] { index += 1 }
                if index == n { return true }
                start += 1
            }
            return false
        }
    }

    /// Every column where `needle` starts in `line` (case-insensitive ASCII), for highlights.
    static func matches(in line: String, lowercasedNeedle needle: [UInt8]) -> [Int] {
        guard !needle.isEmpty else { return [] }
        if isASCII(line) {
            var line = line
            return line.withUTF8 { matches(inASCII: UnsafeRawBufferPointer($0), lowercasedNeedle: needle) }
        }
        var result: [Int] = []
        let characters = Array(line)
        let wanted = Array(String(decoding: needle, as: UTF8.self))
        guard characters.count >= wanted.count else { return [] }
        var start = 0
        while start + wanted.count <= characters.count {
            if (0..<wanted.count).allSatisfy({ characters[start + $0].lowercased() == wanted[$0].lowercased() }) {
                result.append(start)
                start += wanted.count
            } else {
                start += 1
            }
        }
        return result
    }

    /// `matches` for a line known to be ASCII, on its bytes: one column per byte.
    static func matches(inASCII bytes: UnsafeRawBufferPointer, lowercasedNeedle needle: [UInt8]) -> [Int] {
        guard !needle.isEmpty else { return [] }
        var result: [Int] = []
        let n = needle.count
        var start = 0
        while start + n <= bytes.count {
            var index = 0
            while index < n && lower(bytes[start + index]) == needle[index] { index += 1 }
            if index == n {
                result.append(start)
                start += n
            } else {
                start += 1
            }
        }
        return result
    }

    static func isASCII(_ bytes: UnsafeRawBufferPointer) -> Bool { bytes.allSatisfy { $0 < 0x80 } }

    static func lowercasedBytes(_ text: String) -> [UInt8] { Array(text.utf8).map(lower) }

    @inline(__always)
    static func lower(_ byte: UInt8) -> UInt8 { byte >= 0x41 && byte <= 0x5A ? byte + 32 : byte }
}
