import Foundation

/// A typed view onto a JSON object. The object is the only storage: typed accessors read and
/// write it, and whatever they do not know stays in it untouched.
public protocol JSONBacked: Sendable, Equatable {
    var json: JSONObject { get set }
    init(json: JSONObject)
}

extension JSONBacked {
    public init() { self.init(json: [:]) }

    /// Raw access to one member; assigning `.null` removes it.
    public subscript(field key: String) -> JSONValue {
        get { json[key] ?? .null }
        set {
            if newValue.isNull { json.removeValue(forKey: key) } else { json[key] = newValue }
        }
    }

    func string(_ key: String) -> String? { json[key]?.stringValue }
    mutating func setString(_ key: String, _ value: String?) { self[field: key] = value.map(JSONValue.string) ?? .null }

    func int(_ key: String) -> Int? { json[key]?.intValue.map(Int.init) }
    mutating func setInt(_ key: String, _ value: Int?) { self[field: key] = value.map { .int(Int64($0)) } ?? .null }

    func bool(_ key: String) -> Bool? { json[key]?.boolValue }
    mutating func setBool(_ key: String, _ value: Bool?) { self[field: key] = value.map(JSONValue.bool) ?? .null }

    func time(_ key: String) -> Date? { json[key]?.stringValue.flatMap(KubeTime.parse) }
    mutating func setTime(_ key: String, _ value: Date?, micro: Bool = false) {
        self[field: key] = value.map { .string(micro ? KubeTime.formatMicro($0) : KubeTime.format($0)) } ?? .null
    }

    func child<T: JSONBacked>(_ key: String) -> T { T(json: json[key]?.objectValue ?? [:]) }
    mutating func setChild<T: JSONBacked>(_ key: String, _ value: T) {
        self[field: key] = value.json.isEmpty ? .null : .object(value.json)
    }

    func children<T: JSONBacked>(_ key: String) -> [T] {
        (json[key]?.arrayValue ?? []).compactMap { $0.objectValue.map(T.init(json:)) }
    }
    mutating func setChildren<T: JSONBacked>(_ key: String, _ values: [T]) {
        self[field: key] = values.isEmpty ? .null : .array(values.map { .object($0.json) })
    }

    func strings(_ key: String) -> [String] { (json[key]?.arrayValue ?? []).compactMap(\.stringValue) }
    mutating func setStrings(_ key: String, _ values: [String]) {
        self[field: key] = values.isEmpty ? .null : .array(values.map(JSONValue.string))
    }

    func stringMap(_ key: String) -> [String: String] {
        guard let object = json[key]?.objectValue else { return [:] }
        var map: [String: String] = [:]
        for (k, v) in object { if let s = v.stringValue { map[k] = s } }
        return map
    }
    mutating func setStringMap(_ key: String, _ map: [String: String]) {
        self[field: key] = map.isEmpty ? .null : .object(map.mapValues(JSONValue.string))
    }
}

/// Kubernetes timestamps: RFC 3339 in UTC, with microseconds for MicroTime fields.
public enum KubeTime {
    public static func format(_ date: Date) -> String {
        // Years 1 to 9999: what RFC 3339 can say, and what a hostile value is clamped to.
        let clamped = min(max(date.timeIntervalSince1970.isFinite ? date.timeIntervalSince1970 : 0, -62_135_596_800), 253_402_300_799)
        var seconds = time_t(clamped.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
            Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
    }

    public static func formatMicro(_ date: Date) -> String {
        let time = min(max(date.timeIntervalSince1970.isFinite ? date.timeIntervalSince1970 : 0, -62_135_596_800), 253_402_300_799)
        let whole = time.rounded(.down)
        let micros = min(999_999, max(0, Int(((time - whole) * 1_000_000).rounded(.down))))
        var text = format(Date(timeIntervalSince1970: whole))
        text.removeLast()
        return text + String(format: ".%06dZ", micros)
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`. Returns nil for anything else.
    public static func parse(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 20 else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for index in range {
                guard bytes[index] >= 0x30, bytes[index] <= 0x39 else { return nil }
                value = value * 10 + Int(bytes[index] - 0x30)
            }
            return value
        }
        guard let year = number(0..<4), bytes[4] == UInt8(ascii: "-"), let month = number(5..<7),
              bytes[7] == UInt8(ascii: "-"), let day = number(8..<10), bytes[10] == UInt8(ascii: "T") || bytes[10] == UInt8(ascii: "t"),
              let hour = number(11..<13), bytes[13] == UInt8(ascii: ":"), let minute = number(14..<16),
              bytes[16] == UInt8(ascii: ":"), let second = number(17..<19),
              (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
        else { return nil }
        var index = 19
        var fraction = 0.0
        if bytes[index] == UInt8(ascii: ".") {
            index += 1
            var scale = 0.1
            let start = index
            while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 {
                fraction += Double(bytes[index] - 0x30) * scale
                scale /= 10
                index += 1
            }
            guard index > start else { return nil }
        }
        guard index < bytes.count else { return nil }
        var offset = 0
        if bytes[index] == UInt8(ascii: "Z") || bytes[index] == UInt8(ascii: "z") {
            guard index == bytes.count - 1 else { return nil }
        } else if bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
            guard bytes.count == index + 6, let hours = number(index + 1..<index + 3), bytes[index + 3] == UInt8(ascii: ":"),
                  let minutes = number(index + 4..<index + 6)
            else { return nil }
            offset = (hours * 3600 + minutes * 60) * (bytes[index] == UInt8(ascii: "+") ? 1 : -1)
        } else {
            return nil
        }
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month - 1)
        parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(hour)
        parts.tm_min = Int32(minute)
        parts.tm_sec = Int32(second)
        let seconds = timegm(&parts)
        return Date(timeIntervalSince1970: TimeInterval(seconds - offset) + fraction)
    }
}
