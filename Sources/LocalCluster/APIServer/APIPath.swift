import Foundation
import KubeAPI

/// What a request path names.
enum APIPath: Equatable, Sendable {
    case version
    case health(String)
    /// `/metrics`: the request counters, in Prometheus' text format.
    case metrics
    case coreVersions                       // /api
    case groups                             // /apis
    case group(String)                      // /apis/GROUP
    case resources(group: String, version: String)
    case openAPIv2
    case openAPIv3Index
    case openAPIv3(group: String, version: String)
    case resource(ResourcePath)

    struct ResourcePath: Equatable, Sendable {
        var group: String
        var version: String
        var plural: String
        var namespace: String?
        var name: String?
        var subresource: String?
    }

    /// Parses a percent-encoded path. Returns nil for anything the API does not serve.
    static func parse(_ rawPath: String) -> APIPath? {
        let trimmed = rawPath.hasSuffix("/") && rawPath.count > 1 ? String(rawPath.dropLast()) : rawPath
        let segments = trimmed.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
            .map { $0.removingPercentEncoding ?? String($0) }
        guard !segments.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) || segments.isEmpty else { return nil }
        switch segments.first {
        case "version": return segments.count == 1 ? .version : nil
        case "healthz", "readyz", "livez": return .health(segments[0])
        case "metrics": return segments.count == 1 ? .metrics : nil
        case "openapi":
            if segments.count == 2, segments[1] == "v2" { return .openAPIv2 }
            if segments.count == 2, segments[1] == "v3" { return .openAPIv3Index }
            if segments.count == 4, segments[1] == "v3", segments[2] == "api" { return .openAPIv3(group: "", version: segments[3]) }
            if segments.count == 5, segments[1] == "v3", segments[2] == "apis" { return .openAPIv3(group: segments[3], version: segments[4]) }
            return nil
        case "api":
            if segments.count == 1 { return .coreVersions }
            if segments.count == 2 { return .resources(group: "", version: segments[1]) }
            return resource(group: "", version: segments[1], rest: Array(segments.dropFirst(2)))
        case "apis":
            if segments.count == 1 { return .groups }
            if segments.count == 2 { return .group(segments[1]) }
            if segments.count == 3 { return .resources(group: segments[1], version: segments[2]) }
            return resource(group: segments[1], version: segments[2], rest: Array(segments.dropFirst(3)))
        default:
            return nil
        }
    }

    private static func resource(group: String, version: String, rest: [String]) -> APIPath? {
        var rest = rest
        var namespace: String?
        // namespaces/NS/PLURAL[/NAME[/SUB]]: a namespaced resource; namespaces[/NAME[/SUB]]: the Namespace itself.
        if rest.count >= 3, rest[0] == "namespaces", group.isEmpty || true, !["status", "finalize"].contains(rest[2]) {
            namespace = rest[1]
            rest.removeFirst(2)
        }
        guard (1...3).contains(rest.count) else { return nil }
        return .resource(ResourcePath(
            group: group, version: version, plural: rest[0], namespace: namespace,
            name: rest.count > 1 ? rest[1] : nil, subresource: rest.count > 2 ? rest[2] : nil))
    }
}

/// Label selectors: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x,y)`, `a`, `!a`, comma-joined.
struct LabelSelector: Sendable, Equatable {
    enum Requirement: Sendable, Equatable {
        case equals(String, String)
        case notEquals(String, String)
        case isIn(String, Set<String>)
        case notIn(String, Set<String>)
        case exists(String)
        case doesNotExist(String)
    }

    var requirements: [Requirement]

    init(parsing text: String) throws(APIError) {
        requirements = []
        var parts: [String] = []
        var depth = 0
        var current = ""
        for character in text {
            if character == "(" { depth += 1 }
            if character == ")" { depth -= 1 }
            if character == ",", depth == 0 {
                parts.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        if !current.isEmpty || !parts.isEmpty { parts.append(current) }
        for raw in parts {
            let part = raw.trimmingCharacters(in: .whitespaces)
            guard !part.isEmpty else { throw APIError.badRequest("unable to parse requirement: found '', expected: identifier") }
            if let range = part.range(of: " notin ") ?? part.range(of: " in ") {
                let key = String(part[..<range.lowerBound]).trimmingCharacters(in: .whitespaces)
                let list = part[range.upperBound...].trimmingCharacters(in: .whitespaces)
                guard list.hasPrefix("("), list.hasSuffix(")") else {
                    throw APIError.badRequest("unable to parse requirement: found '\(list)', expected: '('")
                }
                let values = Set(list.dropFirst().dropLast().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
                try Self.checkKey(key)
                requirements.append(part[range].contains("notin") ? .notIn(key, values) : .isIn(key, values))
            } else if let range = part.range(of: "!=") {
                let key = part[..<range.lowerBound].trimmingCharacters(in: .whitespaces)
                try Self.checkKey(key)
                requirements.append(.notEquals(key, part[range.upperBound...].trimmingCharacters(in: .whitespaces)))
            } else if let range = part.range(of: "==") ?? part.range(of: "=") {
                let key = part[..<range.lowerBound].trimmingCharacters(in: .whitespaces)
                try Self.checkKey(key)
                requirements.append(.equals(key, part[range.upperBound...].trimmingCharacters(in: .whitespaces)))
            } else if part.hasPrefix("!") {
                let key = String(part.dropFirst()).trimmingCharacters(in: .whitespaces)
                try Self.checkKey(key)
                requirements.append(.doesNotExist(key))
            } else {
                try Self.checkKey(part)
                requirements.append(.exists(part))
            }
        }
    }

    private static func checkKey(_ key: String) throws(APIError) {
        let valid = !key.isEmpty && key.count <= 317 && key.allSatisfy { $0.isLetter || $0.isNumber || "-_./".contains($0) }
        guard valid else { throw APIError.badRequest("unable to parse requirement: invalid label key \"\(key)\"") }
    }

    func matches(_ labels: [String: String]) -> Bool {
        requirements.allSatisfy { requirement in
            switch requirement {
            case .equals(let k, let v): return labels[k] == v
            case .notEquals(let k, let v): return labels[k] != v
            case .isIn(let k, let values): return labels[k].map(values.contains) ?? false
            case .notIn(let k, let values): return !(labels[k].map(values.contains) ?? false)
            case .exists(let k): return labels[k] != nil
            case .doesNotExist(let k): return labels[k] == nil
            }
        }
    }
}

/// Field selectors: `path=value`, `path==value`, `path!=value`, comma-joined, over the fields
/// Kubernetes supports for each kind.
struct FieldSelector: Sendable, Equatable {
    struct Requirement: Sendable, Equatable {
        var path: [String]
        var value: String
        var negated: Bool
    }

    var requirements: [Requirement]

    static let supported: Set<String> = [
        "metadata.name", "metadata.namespace", "spec.nodeName", "status.phase", "spec.schedulerName", "spec.restartPolicy",
        "involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
        "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason", "type", "source",
        "regarding.kind", "regarding.name", "regarding.namespace", "regarding.uid", "reportingController", "spec.unschedulable",
    ]

    init(parsing text: String) throws(APIError) {
        requirements = []
        for raw in text.split(separator: ",") {
            let part = String(raw)
            let negated = part.contains("!=")
            let separator = negated ? "!=" : (part.contains("==") ? "==" : "=")
            guard let range = part.range(of: separator) else {
                throw APIError.badRequest("invalid selector: '\(text)'; can't understand '\(part)'")
            }
            let field = String(part[..<range.lowerBound])
            guard Self.supported.contains(field) else {
                throw APIError.badRequest("field label not supported: \(field)")
            }
            requirements.append(Requirement(path: field.split(separator: ".").map(String.init), value: String(part[range.upperBound...]), negated: negated))
        }
    }

    func matches(_ object: JSONObject) -> Bool {
        requirements.allSatisfy { requirement in
            let actual: String
            switch object.value(at: requirement.path) {
            case .string(let s): actual = s
            case .bool(let b): actual = b ? "true" : "false"
            case .int(let i): actual = String(i)
            case .null: actual = ""
            default: actual = ""
            }
            return (actual == requirement.value) != requirement.negated
        }
    }
}
