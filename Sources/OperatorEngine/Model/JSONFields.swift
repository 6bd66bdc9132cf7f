import Foundation
import KubeAPI

/// A Swift value that one JSON member holds: what the typed views of this module read and write.
/// (KubeAPI's own accessors are internal to KubeAPI.)
protocol JSONField {
    static func from(_ value: JSONValue) -> Self?
    var jsonValue: JSONValue { get }
}

extension String: JSONField {
    static func from(_ value: JSONValue) -> String? { value.stringValue }
    var jsonValue: JSONValue { .string(self) }
}

extension Int: JSONField {
    static func from(_ value: JSONValue) -> Int? { value.intValue.map(Int.init) }
    var jsonValue: JSONValue { .int(Int64(self)) }
}

extension Bool: JSONField {
    static func from(_ value: JSONValue) -> Bool? { value.boolValue }
    var jsonValue: JSONValue { .bool(self) }
}

/// Times are RFC 3339 in UTC with microseconds, which `KubeTime.parse` reads back exactly.
extension Date: JSONField {
    static func from(_ value: JSONValue) -> Date? { value.stringValue.flatMap(KubeTime.parse) }
    var jsonValue: JSONValue { .string(KubeTime.formatMicro(self)) }
}

extension Array: JSONField where Element == String {
    static func from(_ value: JSONValue) -> [String]? { value.arrayValue?.compactMap(\.stringValue) }
    var jsonValue: JSONValue { .array(map(JSONValue.string)) }
}

extension JSONBacked {
    /// The member `key` as `T`; nil when it is absent or of another JSON type.
    func get<T: JSONField>(_ key: String) -> T? { T.from(self[field: key]) }

    /// Sets or (with nil) removes the member `key`.
    mutating func set<T: JSONField>(_ key: String, _ value: T?) { self[field: key] = value?.jsonValue ?? .null }

    /// A nested view; an absent member reads as an empty object.
    func view<T: JSONBacked>(_ key: String) -> T { T(json: self[field: key].objectValue ?? [:]) }

    /// Sets a nested view; an empty one removes the member.
    mutating func setView<T: JSONBacked>(_ key: String, _ value: T) { self[field: key] = value.json.isEmpty ? .null : .object(value.json) }

    /// An array of nested views; members that are not objects are skipped.
    func views<T: JSONBacked>(_ key: String) -> [T] { (self[field: key].arrayValue ?? []).compactMap { $0.objectValue.map(T.init(json:)) } }

    /// Sets an array of nested views; an empty array removes the member.
    mutating func setViews<T: JSONBacked>(_ key: String, _ values: [T]) {
        self[field: key] = values.isEmpty ? .null : .array(values.map { .object($0.json) })
    }
}
