import Foundation

/// A JSON value as the test double stores it. Parsing and writing go through Foundation's
/// `JSONSerialization`; this enum only exists so that objects can be held under a lock and passed
/// between tasks (it is `Sendable`, `[String: Any]` is not).
enum JSON: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSON])
    case object([String: JSON])

    // MARK: Parsing and writing

    struct ParseError: Error, CustomStringConvertible {
        var description: String
    }

    /// Parses any JSON text (fragments allowed).
    static func parse(_ data: Data) throws -> JSON {
        let any: Any
        do {
            any = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            throw ParseError(description: "invalid JSON: \(error.localizedDescription)")
        }
        return try JSON(foundation: any)
    }

    static func parse(_ text: String) throws -> JSON { try parse(Data(text.utf8)) }

    init(foundation value: Any) throws {
        switch value {
        case is NSNull:
            self = .null
        case let string as String:
            self = .string(string)
        case let number as NSNumber:
            // JSONSerialization gives booleans as NSNumber of type "c" on every platform.
            let type = String(cString: number.objCType)
            if type == "c" || type == "B" {
                self = .bool(number.boolValue)
            } else if type == "d" || type == "f" {
                self = .double(number.doubleValue)
            } else {
                self = .int(number.int64Value)
            }
        case let array as [Any]:
            self = .array(try array.map { try JSON(foundation: $0) })
        case let dictionary as [String: Any]:
            var object: [String: JSON] = [:]
            for (key, element) in dictionary { object[key] = try JSON(foundation: element) }
            self = .object(object)
        default:
            throw ParseError(description: "unsupported JSON value of type \(type(of: value))")
        }
    }

    var foundation: Any {
        switch self {
        case .null: return NSNull()
        case .bool(let value): return NSNumber(value: value)
        case .int(let value): return NSNumber(value: value)
        case .double(let value): return NSNumber(value: value)
        case .string(let value): return value
        case .array(let values): return values.map(\.foundation)
        case .object(let values): return values.mapValues(\.foundation)
        }
    }

    /// Compact JSON with sorted keys, so output is deterministic.
    var data: Data {
        switch self {
        case .string(let value):
            // Fragments are written through an array to stay compatible with older Foundations.
            let data = (try? JSONSerialization.data(withJSONObject: [value], options: [.withoutEscapingSlashes])) ?? Data("[\"\"]".utf8)
            return data.dropFirst().dropLast()
        case .array, .object:
            return (try? JSONSerialization.data(withJSONObject: foundation, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("null".utf8)
        case .null: return Data("null".utf8)
        case .bool(let value): return Data((value ? "true" : "false").utf8)
        case .int(let value): return Data(String(value).utf8)
        case .double(let value):
            return (try? JSONSerialization.data(withJSONObject: [value], options: []))?.dropFirst().dropLast() ?? Data("0".utf8)
        }
    }

    var text: String { String(decoding: data, as: UTF8.self) }

    // MARK: Access

    var objectValue: [String: JSON]? { if case .object(let value) = self { return value } else { return nil } }
    var arrayValue: [JSON]? { if case .array(let value) = self { return value } else { return nil } }
    var stringValue: String? { if case .string(let value) = self { return value } else { return nil } }
    var isNull: Bool { if case .null = self { return true } else { return false } }

    subscript(key: String) -> JSON? {
        get { objectValue?[key] }
        set {
            guard case .object(var object) = self else { return }
            object[key] = newValue
            self = .object(object)
        }
    }

    /// The value at a dotted path such as `metadata.name`.
    func value(atDottedPath path: String) -> JSON? {
        var current: JSON? = self
        for component in path.split(separator: ".", omittingEmptySubsequences: false) {
            current = current?[String(component)]
        }
        return current
    }

    /// A scalar as text, the way field selectors compare it.
    var selectorText: String {
        switch self {
        case .string(let value): return value
        case .bool(let value): return value ? "true" : "false"
        case .int(let value): return String(value)
        case .double(let value): return String(value)
        case .null, .array, .object: return ""
        }
    }

    // MARK: Equality (numbers compare by value, so 1 == 1.0 as RFC 6902 "test" requires)

    static func == (lhs: JSON, rhs: JSON) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.int(let a), .int(let b)): return a == b
        case (.double(let a), .double(let b)): return a == b
        case (.int(let a), .double(let b)), (.double(let b), .int(let a)): return Double(a) == b
        case (.string(let a), .string(let b)): return a == b
        case (.array(let a), .array(let b)): return a == b
        case (.object(let a), .object(let b)): return a == b
        default: return false
        }
    }
}

// MARK: - Patches

/// A patch that cannot be applied. The API server answers 422 (Invalid) for these.
struct PatchError: Error, CustomStringConvertible {
    var description: String
}

enum Patch {
    /// RFC 7386 JSON merge patch.
    static func merge(_ target: JSON, _ patch: JSON) -> JSON {
        guard case .object(let patchObject) = patch else { return patch }
        var result = target.objectValue ?? [:]
        for (key, value) in patchObject {
            if value.isNull {
                result.removeValue(forKey: key)
            } else {
                result[key] = merge(result[key] ?? .null, value)
            }
        }
        return .object(result)
    }

    /// RFC 6902 JSON patch. `operations` must already be known to be an array.
    static func apply(jsonPatch operations: [JSON], to document: JSON) throws -> JSON {
        var document = document
        for (index, operation) in operations.enumerated() {
            guard let op = operation["op"]?.stringValue else {
                throw PatchError(description: "operation \(index) has no \"op\"")
            }
            guard let path = operation["path"]?.stringValue else {
                throw PatchError(description: "operation \(index) (\(op)) has no \"path\"")
            }
            let tokens = try pointer(path)
            switch op {
            case "add":
                guard let value = operation["value"] else { throw PatchError(description: "add operation does not contain a value") }
                document = try add(value, at: tokens[...], in: document)
            case "remove":
                document = try remove(at: tokens[...], in: document).document
            case "replace":
                guard let value = operation["value"] else { throw PatchError(description: "replace operation does not contain a value") }
                document = try replace(value, at: tokens[...], in: document)
            case "move":
                guard let from = operation["from"]?.stringValue else { throw PatchError(description: "move operation does not contain a from") }
                let fromTokens = try pointer(from)
                if tokens.count > fromTokens.count, Array(tokens.prefix(fromTokens.count)) == fromTokens {
                    throw PatchError(description: "move: \(from) is a prefix of \(path)")
                }
                let removed = try remove(at: fromTokens[...], in: document)
                document = try add(removed.value, at: tokens[...], in: removed.document)
            case "copy":
                guard let from = operation["from"]?.stringValue else { throw PatchError(description: "copy operation does not contain a from") }
                let value = try get(try pointer(from)[...], in: document)
                document = try add(value, at: tokens[...], in: document)
            case "test":
                guard let expected = operation["value"] else { throw PatchError(description: "test operation does not contain a value") }
                let actual = try get(tokens[...], in: document)
                guard actual == expected else {
                    throw PatchError(description: "testing value \(path) failed: \(actual.text) is not \(expected.text)")
                }
            default:
                throw PatchError(description: "unexpected kind: \(op)")
            }
        }
        return document
    }

    /// RFC 6901 JSON pointer into reference tokens.
    static func pointer(_ text: String) throws -> [String] {
        if text.isEmpty { return [] }
        guard text.hasPrefix("/") else { throw PatchError(description: "JSON pointer \(text.debugDescription) does not start with /") }
        return text.dropFirst().split(separator: "/", omittingEmptySubsequences: false).map {
            $0.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
        }
    }

    private static func index(_ token: String, count: Int, allowEnd: Bool) throws -> Int {
        if allowEnd, token == "-" { return count }
        guard let value = Int(token), value >= 0, String(value) == token, value < count || (allowEnd && value == count) else {
            throw PatchError(description: "array index \(token.debugDescription) out of bounds (length \(count))")
        }
        return value
    }

    static func get(_ tokens: ArraySlice<String>, in document: JSON) throws -> JSON {
        guard let token = tokens.first else { return document }
        switch document {
        case .object(let object):
            guard let child = object[token] else { throw PatchError(description: "doc is missing path: /\(tokens.joined(separator: "/"))") }
            return try get(tokens.dropFirst(), in: child)
        case .array(let array):
            return try get(tokens.dropFirst(), in: array[try index(token, count: array.count, allowEnd: false)])
        default:
            throw PatchError(description: "doc is missing path: /\(tokens.joined(separator: "/"))")
        }
    }

    static func add(_ value: JSON, at tokens: ArraySlice<String>, in document: JSON) throws -> JSON {
        guard let token = tokens.first else { return value }
        let rest = tokens.dropFirst()
        switch document {
        case .object(var object):
            if rest.isEmpty {
                object[token] = value
            } else {
                guard let child = object[token] else { throw PatchError(description: "doc is missing path: /\(tokens.joined(separator: "/"))") }
                object[token] = try add(value, at: rest, in: child)
            }
            return .object(object)
        case .array(var array):
            if rest.isEmpty {
                array.insert(value, at: try index(token, count: array.count, allowEnd: true))
            } else {
                let position = try index(token, count: array.count, allowEnd: false)
                array[position] = try add(value, at: rest, in: array[position])
            }
            return .array(array)
        default:
            throw PatchError(description: "doc is missing path: /\(tokens.joined(separator: "/"))")
        }
    }

    static func remove(at tokens: ArraySlice<String>, in document: JSON) throws -> (document: JSON, value: JSON) {
        guard let token = tokens.first else { throw PatchError(description: "cannot remove the whole document") }
        let rest = tokens.dropFirst()
        switch document {
        case .object(var object):
            guard let child = object[token] else { throw PatchError(description: "unable to remove nonexistent key: \(token)") }
            if rest.isEmpty {
                object.removeValue(forKey: token)
                return (.object(object), child)
            }
            let result = try remove(at: rest, in: child)
            object[token] = result.document
            return (.object(object), result.value)
        case .array(var array):
            let position = try index(token, count: array.count, allowEnd: false)
            if rest.isEmpty {
                let value = array.remove(at: position)
                return (.array(array), value)
            }
            let result = try remove(at: rest, in: array[position])
            array[position] = result.document
            return (.array(array), result.value)
        default:
            throw PatchError(description: "unable to remove nonexistent path: /\(tokens.joined(separator: "/"))")
        }
    }

    static func replace(_ value: JSON, at tokens: ArraySlice<String>, in document: JSON) throws -> JSON {
        guard let token = tokens.first else { return value }
        let rest = tokens.dropFirst()
        switch document {
        case .object(var object):
            guard let child = object[token] else { throw PatchError(description: "replace operation does not apply: doc is missing key: /\(tokens.joined(separator: "/"))") }
            object[token] = rest.isEmpty ? value : try replace(value, at: rest, in: child)
            return .object(object)
        case .array(var array):
            let position = try index(token, count: array.count, allowEnd: false)
            array[position] = rest.isEmpty ? value : try replace(value, at: rest, in: array[position])
            return .array(array)
        default:
            throw PatchError(description: "replace operation does not apply: doc is missing path: /\(tokens.joined(separator: "/"))")
        }
    }
}
