import Foundation
import KubeAPI

/// One thing wrong with a TimesTenClassic, at a field path as kubectl prints them.
public struct SpecProblem: Sendable, Equatable, CustomStringConvertible {
    public var field: String
    public var message: String

    public init(field: String, message: String) {
        self.field = field
        self.message = message
    }

    public var description: String { "\(field): \(message)" }
}

/// Everything wrong with a TimesTenClassic, as a pure function.
///
/// It repeats what the CRD's schema checks (types, ranges, enums, patterns), for objects that
/// did not come through a validating API server, and adds what a schema cannot say: the object's
/// name must make valid pod, Service and database names, quantities must be positive, repPort
/// must not be the agent's port, and no name may be listed twice.
public enum SpecValidation {
    /// The longest name: `NAME-<10-char hash>` must fit the 63-character label value that the
    /// StatefulSet controller puts on every pod (controller-revision-hash).
    public static let maximumNameLength = 52

    public static func problems(in object: TimesTenClassic) -> [SpecProblem] {
        var problems = nameProblems(object.metadata.name ?? "")
        guard let spec = object.json["spec"] else {
            return problems + [SpecProblem(field: "spec", message: "Required value")]
        }
        guard spec.objectValue != nil else {
            return problems + [SpecProblem(field: "spec", message: "must be an object")]
        }
        guard let ttspec = spec["ttspec"].objectValue else {
            let message = spec["ttspec"].isNull ? "Required value" : "must be an object"
            return problems + [SpecProblem(field: "spec.ttspec", message: message)]
        }
        problems += ttspecProblems(TTSpec(json: ttspec))
        return problems
    }

    /// The object's name is also the StatefulSet's, the Service's (a DNS-1035 label) and the
    /// database's (the agent's rule: a-z first, then a-z, 0-9, `-`).
    static func nameProblems(_ name: String) -> [SpecProblem] {
        let field = "metadata.name"
        if name.isEmpty { return [SpecProblem(field: field, message: "Required value")] }
        var problems: [SpecProblem] = []
        if name.utf8.count > maximumNameLength {
            problems.append(SpecProblem(field: field, message: "must be no more than \(maximumNameLength) characters"))
        }
        let bytes = Array(name.utf8)
        let allowed = bytes.allSatisfy { isLowerAlphanumeric($0) || $0 == UInt8(ascii: "-") }
        if !allowed || !isLowerLetter(bytes[0]) || !isLowerAlphanumeric(bytes[bytes.count - 1]) {
            problems.append(SpecProblem(
                field: field,
                message: "\(name.debugDescription) must consist of lower case alphanumeric characters or '-', start with a letter and end with an alphanumeric character (it names the pods, the Service and the database)"))
        }
        return problems
    }

    static func ttspecProblems(_ spec: TTSpec) -> [SpecProblem] {
        var problems: [SpecProblem] = []
        func add(_ key: String, _ message: String) { problems.append(SpecProblem(field: "spec.ttspec.\(key)", message: message)) }
        let json = spec.json

        // Types first: a field of the wrong type gets one message and no further checks.
        var wrongType: Set<String> = []
        for (key, kind) in fieldKinds {
            guard let value = json[key], !kind.accepts(value) else { continue }
            add(key, "Invalid value: \(kind.describe(value)): must be of type \(kind.name)")
            wrongType.insert(key)
        }
        func has(_ key: String) -> Bool { json[key] != nil && !wrongType.contains(key) }

        if json["image"] == nil {
            add("image", "Required value")
        } else if has("image"), spec.image.isEmpty {
            add("image", "Required value: must not be empty")
        }
        for key in ["imagePullPolicy", "bothDownBehavior", "repReturnServiceAttribute", "replicationTopology"] where has(key) {
            let value = json[key]?.stringValue ?? ""
            let allowed = enumValues[key] ?? []
            if !allowed.contains(value) {
                add(key, "Unsupported value: \(value.debugDescription): supported values: \(allowed.map(\.debugDescription).joined(separator: ", "))")
            }
        }
        for key in ["storageSize", "logStorageSize"] where has(key) {
            let text = json[key]?.stringValue ?? ""
            if let bytes = Quantity.bytes(text) {
                if bytes <= 0 { add(key, "Invalid value: \(text.debugDescription): must be greater than zero") }
            } else {
                add(key, "Invalid value: \(text.debugDescription): must be a quantity such as 50Gi, 512Mi or 1G")
            }
        }
        for key in ["imagePullSecret", "storageClassName", "logStorageClassName"] where has(key) {
            let name = json[key]?.stringValue ?? ""
            if !isDNSSubdomain(name) { add(key, "Invalid value: \(name.debugDescription): \(subdomainMessage)") }
        }
        for (key, minimum) in minimums where has(key) {
            let value = Int(json[key]?.intValue ?? 0)
            if value < minimum { add(key, "Invalid value: \(value): must be greater than or equal to \(minimum)") }
        }
        if has("repPort") {
            let port = spec.repPort
            if !(1...65535).contains(port) {
                add("repPort", "Invalid value: \(port): must be between 1 and 65535, inclusive")
            } else if port == PairNames.agentPort {
                add("repPort", "Invalid value: \(port): is the agent's port")
            }
        }
        for key in ["dbConfigMap", "dbSecret"] where has(key) {
            var seen: Set<String> = []
            for (index, item) in (json[key]?.arrayValue ?? []).enumerated() {
                let field = "\(key)[\(index)]"
                guard let name = item.stringValue else {
                    add(field, "Invalid value: \(JSONKind.string.describe(item)): must be of type string")
                    continue
                }
                if !isDNSSubdomain(name) {
                    add(field, "Invalid value: \(name.debugDescription): \(subdomainMessage)")
                } else if !seen.insert(name).inserted {
                    add(field, "Duplicate value: \(name.debugDescription)")
                }
            }
        }
        return problems.sorted { $0.field < $1.field }
    }

    // MARK: Tables

    private enum JSONKind {
        case string, integer, boolean, stringArray, intOrString

        var name: String {
            switch self {
            case .string: return "string"
            case .integer: return "integer"
            case .boolean: return "boolean"
            case .stringArray: return "array"
            case .intOrString: return "integer or string"
            }
        }

        func accepts(_ value: JSONValue) -> Bool {
            switch (self, value) {
            case (.string, .string), (.boolean, .bool), (.stringArray, .array), (.intOrString, .string): return true
            case (.integer, _), (.intOrString, _): return value.intValue != nil
            default: return false
            }
        }

        func describe(_ value: JSONValue) -> String {
            switch value {
            case .string(let text): return text.debugDescription
            case .object: return "object"
            case .array: return "array"
            case .null: return "null"
            default: return value.description
            }
        }
    }

    private static let fieldKinds: [(String, JSONKind)] = [
        ("image", .string), ("imagePullPolicy", .string), ("imagePullSecret", .string), ("storageClassName", .string),
        ("storageSize", .string), ("logStorageSize", .string), ("logStorageClassName", .string),
        ("pollingInterval", .integer), ("unreachableTimeout", .integer), ("repStateTimeout", .integer),
        ("deleteDbOnNotReadyNode", .integer), ("bothDownBehavior", .string), ("repReturnServiceAttribute", .string),
        ("repPort", .integer), ("dbConfigMap", .stringArray), ("dbSecret", .stringArray),
        ("stopManaging", .intOrString), ("reexamine", .intOrString),
        ("agentGetTimeout", .integer), ("agentPostTimeout", .integer), ("agentAsyncTimeout", .integer),
        ("daemonLogSidecar", .boolean), ("replicationTopology", .string),
    ]

    private static let enumValues: [String: [String]] = [
        "imagePullPolicy": ImagePullPolicy.allCases.map(\.rawValue),
        "bothDownBehavior": BothDownBehavior.allCases.map(\.rawValue),
        "repReturnServiceAttribute": ReturnService.allCases.map(\.rawValue),
        "replicationTopology": ReplicationTopology.allCases.map(\.rawValue),
    ]

    private static let minimums: [(String, Int)] = [
        ("pollingInterval", 1), ("unreachableTimeout", 1), ("repStateTimeout", 1), ("deleteDbOnNotReadyNode", 0),
        ("agentGetTimeout", 1), ("agentPostTimeout", 1), ("agentAsyncTimeout", 1),
    ]

    // MARK: Names

    static let subdomainMessage =
        "must be a lowercase RFC 1123 subdomain: lower case alphanumeric characters, '-' or '.', starting and ending with an alphanumeric character, at most 253 characters"

    /// DNS-1123 subdomain, what Secret, ConfigMap and StorageClass names must be.
    public static func isDNSSubdomain(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 253 else { return false }
        return name.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            let bytes = Array(label.utf8)
            guard let first = bytes.first, let last = bytes.last, bytes.count <= 63 else { return false }
            return isLowerAlphanumeric(first) && isLowerAlphanumeric(last)
                && bytes.allSatisfy { isLowerAlphanumeric($0) || $0 == UInt8(ascii: "-") }
        }
    }

    private static func isLowerLetter(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z") }
    private static func isLowerAlphanumeric(_ byte: UInt8) -> Bool {
        isLowerLetter(byte) || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
    }
}

/// Kubernetes quantities of the form the CRD accepts: digits, an optional fraction and an
/// optional binary (Ki..Ei) or decimal (k..E) suffix.
public enum Quantity {
    /// The number of bytes, rounded up; nil when `text` is not such a quantity or too large.
    public static func bytes(_ text: String) -> Int64? {
        let suffixes: [(String, Double)] = [
            ("Ki", 0x1p10), ("Mi", 0x1p20), ("Gi", 0x1p30), ("Ti", 0x1p40), ("Pi", 0x1p50), ("Ei", 0x1p60),
            ("k", 1e3), ("M", 1e6), ("G", 1e9), ("T", 1e12), ("P", 1e15), ("E", 1e18),
        ]
        let (number, scale) = suffixes.first { text.hasSuffix($0.0) }.map { (String(text.dropLast($0.0.count)), $0.1) } ?? (text, 1)
        let parts = number.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count),
              parts.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") } }),
              let value = Double(number)
        else { return nil }
        let bytes = (value * scale).rounded(.up)
        guard bytes < 0x1p63 else { return nil }
        return Int64(bytes)
    }
}
