import Foundation

/// A malformed or truncated JSON text.
public struct JSONParseError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public let offset: Int
    public var description: String { "invalid JSON at byte \(offset): \(message)" }
}

/// Parses RFC 8259 JSON into `JSONValue`.
///
/// Foundation's JSONSerialization and JSONDecoder on Linux reach 4,000 to 20,000 Pod-sized
/// objects per second, which is below what an informer needs (see the KubeAPI benchmark). This
/// parser works directly on the bytes. It is strict: trailing garbage, control characters in
/// strings, bad escapes, lone surrogates and nesting deeper than `maximumDepth` are errors, never
/// crashes.
public enum JSONParser {
    public static let maximumDepth = 512

    public static func parse(_ data: Data) throws(JSONParseError) -> JSONValue {
        do {
            return try data.withUnsafeBytes { raw in try parse(bytes: raw) }
        } catch let error as JSONParseError {
            throw error
        } catch {
            throw JSONParseError(message: "\(error)", offset: 0)
        }
    }

    public static func parse(_ bytes: [UInt8]) throws(JSONParseError) -> JSONValue {
        do {
            return try bytes.withUnsafeBytes { raw in try parse(bytes: raw) }
        } catch let error as JSONParseError {
            throw error
        } catch {
            throw JSONParseError(message: "\(error)", offset: 0)
        }
    }

    public static func parse(_ text: String) throws(JSONParseError) -> JSONValue {
        try parse(Array(text.utf8))
    }

    /// Parses a document that must be a JSON object.
    public static func parseObject(_ data: Data) throws(JSONParseError) -> JSONObject {
        guard case .object(let object) = try parse(data) else {
            throw JSONParseError(message: "expected a JSON object", offset: 0)
        }
        return object
    }

    public static func parse(bytes: UnsafeRawBufferPointer) throws(JSONParseError) -> JSONValue {
        var cursor = Cursor(bytes: bytes)
        cursor.skipWhitespace()
        let value = try cursor.parseValue(depth: 0)
        cursor.skipWhitespace()
        guard cursor.index == bytes.count else {
            throw JSONParseError(message: "unexpected data after the value", offset: cursor.index)
        }
        return value
    }
}

private struct Cursor {
    let bytes: UnsafeRawBufferPointer
    var index = 0

    init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    @inline(__always) var atEnd: Bool { index >= bytes.count }

    @inline(__always) func peek() -> UInt8 { bytes[index] }

    @inline(__always) mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return
            }
        }
    }

    func error(_ message: String) -> JSONParseError { JSONParseError(message: message, offset: index) }

    mutating func parseValue(depth: Int) throws(JSONParseError) -> JSONValue {
        guard !atEnd else { throw error("unexpected end of input (truncated)") }
        switch peek() {
        case UInt8(ascii: "{"):
            guard depth < JSONParser.maximumDepth else { throw error("nesting deeper than \(JSONParser.maximumDepth)") }
            return .object(try parseObject(depth: depth + 1))
        case UInt8(ascii: "["):
            guard depth < JSONParser.maximumDepth else { throw error("nesting deeper than \(JSONParser.maximumDepth)") }
            return .array(try parseArray(depth: depth + 1))
        case UInt8(ascii: "\""):
            return .string(try parseString())
        case UInt8(ascii: "t"):
            try expectLiteral("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expectLiteral("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try expectLiteral("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return try parseNumber()
        default:
            throw error("unexpected character \(Self.describe(peek()))")
        }
    }

    mutating func expectLiteral(_ literal: StaticString) throws(JSONParseError) {
        let count = literal.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw error("unexpected end of input (truncated)") }
        let pointer = literal.utf8Start
        for offset in 0..<count where bytes[index + offset] != pointer[offset] {
            throw error("invalid literal, expected \(literal)")
        }
        index += count
    }

    mutating func parseObject(depth: Int) throws(JSONParseError) -> JSONObject {
        index += 1  // {
        var object = JSONObject()
        skipWhitespace()
        guard !atEnd else { throw error("unexpected end of input inside an object (truncated)") }
        if peek() == UInt8(ascii: "}") {
            index += 1
            return object
        }
        while true {
            skipWhitespace()
            guard !atEnd else { throw error("unexpected end of input inside an object (truncated)") }
            guard peek() == UInt8(ascii: "\"") else { throw error("expected a string key, found \(Self.describe(peek()))") }
            let key = try parseString()
            skipWhitespace()
            guard !atEnd else { throw error("unexpected end of input inside an object (truncated)") }
            guard peek() == UInt8(ascii: ":") else { throw error("expected ':' after an object key") }
            index += 1
            skipWhitespace()
            object[key] = try parseValue(depth: depth)
            skipWhitespace()
            guard !atEnd else { throw error("unexpected end of input inside an object (truncated)") }
            let next = peek()
            index += 1
            if next == UInt8(ascii: ",") { continue }
            if next == UInt8(ascii: "}") { return object }
            index -= 1
            throw error("expected ',' or '}' in an object, found \(Self.describe(next))")
        }
    }

    mutating func parseArray(depth: Int) throws(JSONParseError) -> [JSONValue] {
        index += 1  // [
        var array: [JSONValue] = []
        skipWhitespace()
        guard !atEnd else { throw error("unexpected end of input inside an array (truncated)") }
        if peek() == UInt8(ascii: "]") {
            index += 1
            return array
        }
        while true {
            skipWhitespace()
            array.append(try parseValue(depth: depth))
            skipWhitespace()
            guard !atEnd else { throw error("unexpected end of input inside an array (truncated)") }
            let next = peek()
            index += 1
            if next == UInt8(ascii: ",") { continue }
            if next == UInt8(ascii: "]") { return array }
            index -= 1
            throw error("expected ',' or ']' in an array, found \(Self.describe(next))")
        }
    }

    mutating func parseString() throws(JSONParseError) -> String {
        index += 1  // opening quote
        let start = index
        // Fast path: no escapes.
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                let slice = UnsafeRawBufferPointer(rebasing: bytes[start..<index])
                index += 1
                return String(decoding: slice, as: UTF8.self)
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { throw error("control character in a string") }
            index += 1
        }
        guard index < bytes.count else { throw error("unexpected end of input inside a string (truncated)") }
        // Slow path: copy with escapes decoded.
        var buffer = [UInt8](UnsafeRawBufferPointer(rebasing: bytes[start..<index]))
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                return String(decoding: buffer, as: UTF8.self)
            case UInt8(ascii: "\\"):
                index += 1
                guard index < bytes.count else { break }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""): buffer.append(0x22)
                case UInt8(ascii: "\\"): buffer.append(0x5C)
                case UInt8(ascii: "/"): buffer.append(0x2F)
                case UInt8(ascii: "b"): buffer.append(0x08)
                case UInt8(ascii: "f"): buffer.append(0x0C)
                case UInt8(ascii: "n"): buffer.append(0x0A)
                case UInt8(ascii: "r"): buffer.append(0x0D)
                case UInt8(ascii: "t"): buffer.append(0x09)
                case UInt8(ascii: "u"):
                    let scalar = try parseUnicodeEscape()
                    Self.appendUTF8(scalar, to: &buffer)
                default:
                    index -= 1
                    throw error("invalid escape \\\(Self.describe(escape))")
                }
            default:
                if byte < 0x20 { throw error("control character in a string") }
                buffer.append(byte)
                index += 1
            }
        }
        throw error("unexpected end of input inside a string (truncated)")
    }

    /// Reads the four hex digits after `\u`, and a following low surrogate when needed.
    mutating func parseUnicodeEscape() throws(JSONParseError) -> Unicode.Scalar {
        let high = try readHex4()
        if (0xD800...0xDBFF).contains(high) {
            guard index + 6 <= bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                throw error("a high surrogate must be followed by a low surrogate")
            }
            index += 2
            let low = try readHex4()
            guard (0xDC00...0xDFFF).contains(low) else { throw error("invalid low surrogate") }
            let value = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
            guard let scalar = Unicode.Scalar(value) else { throw error("invalid code point") }
            return scalar
        }
        if (0xDC00...0xDFFF).contains(high) { throw error("lone low surrogate") }
        guard let scalar = Unicode.Scalar(high) else { throw error("invalid code point") }
        return scalar
    }

    mutating func readHex4() throws(JSONParseError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw error("unexpected end of input in a \\u escape (truncated)") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw error("invalid hex digit in a \\u escape")
            }
            value = value << 4 | digit
            index += 1
        }
        return value
    }

    static func appendUTF8(_ scalar: Unicode.Scalar, to buffer: inout [UInt8]) {
        for unit in UTF8.encode(scalar)! { buffer.append(unit) }
    }

    mutating func parseNumber() throws(JSONParseError) -> JSONValue {
        let start = index
        var isInteger = true
        if peek() == UInt8(ascii: "-") { index += 1 }
        guard !atEnd else { throw error("unexpected end of input in a number (truncated)") }
        if peek() == UInt8(ascii: "0") {
            index += 1
            if !atEnd, Self.isDigit(peek()) { throw error("leading zeros are not allowed") }
        } else if Self.isDigit(peek()) {
            while !atEnd, Self.isDigit(peek()) { index += 1 }
        } else {
            throw error("expected a digit")
        }
        if !atEnd, peek() == UInt8(ascii: ".") {
            isInteger = false
            index += 1
            guard !atEnd, Self.isDigit(peek()) else { throw error("expected a digit after '.'") }
            while !atEnd, Self.isDigit(peek()) { index += 1 }
        }
        if !atEnd, peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
            isInteger = false
            index += 1
            if !atEnd, peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { index += 1 }
            guard !atEnd, Self.isDigit(peek()) else { throw error("expected a digit in the exponent") }
            while !atEnd, Self.isDigit(peek()) { index += 1 }
        }
        let text = UnsafeRawBufferPointer(rebasing: bytes[start..<index])
        if isInteger, text.count <= 18 {
            var value: Int64 = 0
            var negative = false
            for byte in text {
                if byte == UInt8(ascii: "-") { negative = true; continue }
                value = value * 10 + Int64(byte - UInt8(ascii: "0"))
            }
            return .int(negative ? -value : value)
        }
        let string = String(decoding: text, as: UTF8.self)
        if isInteger, let value = Int64(string) { return .int(value) }
        guard let double = Double(string) else { throw JSONParseError(message: "invalid number", offset: start) }
        return .double(double)
    }

    @inline(__always) static func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }

    static func describe(_ byte: UInt8) -> String {
        if byte >= 0x21 && byte < 0x7F { return "'\(Character(Unicode.Scalar(byte)))'" }
        return "byte 0x\(String(byte, radix: 16))"
    }
}
