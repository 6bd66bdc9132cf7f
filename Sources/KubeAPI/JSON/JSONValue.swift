/// A JSON document as the API server sent it.
///
/// Every object the client reads is held as a `JSONValue` tree, and the typed models are views
/// onto that tree. A field that the models do not know is therefore never dropped on a
/// read-modify-write: it was never taken out of the tree.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    public var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }
    public var boolValue: Bool? { if case .bool(let b) = self { return b } else { return nil } }
    public var objectValue: JSONObject? { if case .object(let o) = self { return o } else { return nil } }
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { return a } else { return nil } }
    public var isNull: Bool { if case .null = self { return true } else { return false } }

    /// An integer, also from a whole `double` (JSON does not distinguish them).
    public var intValue: Int64? {
        switch self {
        case .int(let i): return i
        case .double(let d) where d.rounded() == d && abs(d) < 9.0e15: return Int64(d)
        default: return nil
        }
    }

    public var doubleValue: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }

    /// Member access for objects; `.null` for anything else.
    public subscript(key: String) -> JSONValue {
        objectValue?[key] ?? .null
    }
}

/// A JSON object. Keys are unordered, as in Kubernetes; serialisation sorts them so that output
/// is deterministic.
public typealias JSONObject = [String: JSONValue]

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral, ExpressibleByFloatLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(nilLiteral: ()) { self = .null }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
}

extension JSONValue: CustomStringConvertible {
    public var description: String { JSONWriter.string(self) }
}

extension Dictionary where Key == String, Value == JSONValue {
    /// Reads a nested value by path, `.null` when any step is missing.
    public func value(at path: [String]) -> JSONValue {
        guard let first = path.first else { return .object(self) }
        var current = self[first] ?? .null
        for key in path.dropFirst() { current = current[key] }
        return current
    }

    /// Writes a nested value by path, creating intermediate objects. `.null` removes the key.
    public mutating func setValue(_ value: JSONValue, at path: [String]) {
        guard let first = path.first else { return }
        if path.count == 1 {
            if value.isNull { self.removeValue(forKey: first) } else { self[first] = value }
            return
        }
        var child = self[first]?.objectValue ?? [:]
        child.setValue(value, at: Array(path.dropFirst()))
        self[first] = .object(child)
    }
}
