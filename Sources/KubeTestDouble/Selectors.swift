import Foundation

/// A syntax error in a selector; the API server answers 400 (BadRequest).
struct SelectorError: Error, CustomStringConvertible {
    var description: String
}

/// A parsed `labelSelector`, with the operators of Kubernetes' labels.Parse:
/// `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k` and `!k`, joined by commas.
struct LabelSelector: Sendable {
    enum Requirement: Sendable {
        case equals(String, String)
        case notEquals(String, String)
        case `in`(String, Set<String>)
        case notIn(String, Set<String>)
        case exists(String)
        case doesNotExist(String)
    }

    var requirements: [Requirement]

    var isEmpty: Bool { requirements.isEmpty }

    init(_ text: String?) throws {
        requirements = []
        guard let text, !text.trimmingCharacters(in: .whitespaces).isEmpty else { return }
        for term in Self.splitTopLevel(text) {
            requirements.append(try Self.requirement(term.trimmingCharacters(in: .whitespaces), in: text))
        }
    }

    func matches(_ labels: [String: String]) -> Bool {
        requirements.allSatisfy { requirement in
            switch requirement {
            case .equals(let key, let value): return labels[key] == value
            case .notEquals(let key, let value): return labels[key] != value
            case .in(let key, let values): return labels[key].map(values.contains) ?? false
            case .notIn(let key, let values): return !(labels[key].map(values.contains) ?? false)
            case .exists(let key): return labels[key] != nil
            case .doesNotExist(let key): return labels[key] == nil
            }
        }
    }

    /// Splits on commas that are not inside parentheses.
    private static func splitTopLevel(_ text: String) -> [String] {
        var terms: [String] = []
        var current = ""
        var depth = 0
        for character in text {
            switch character {
            case "(": depth += 1; current.append(character)
            case ")": depth -= 1; current.append(character)
            case "," where depth == 0: terms.append(current); current = ""
            default: current.append(character)
            }
        }
        terms.append(current)
        return terms
    }

    private static func requirement(_ term: String, in selector: String) throws -> Requirement {
        func fail(_ why: String) -> SelectorError {
            SelectorError(description: "unable to parse requirement: \(why) in selector \(selector.debugDescription)")
        }
        guard !term.isEmpty else { throw fail("found '', expected: identifier") }
        if let open = term.firstIndex(of: "(") {
            guard term.hasSuffix(")") else { throw fail("found '\(term)', expected: ')'") }
            let head = term[..<open].split(whereSeparator: \.isWhitespace).map(String.init)
            guard head.count == 2 else { throw fail("found '\(term)', expected: in or notin") }
            let key = try validKey(head[0], fail)
            let inner = term[term.index(after: open)..<term.index(before: term.endIndex)]
            let values = try inner.split(separator: ",", omittingEmptySubsequences: false).map {
                try validValue($0.trimmingCharacters(in: .whitespaces), fail)
            }
            guard !values.isEmpty, !(values.count == 1 && values[0].isEmpty) else {
                throw fail("for 'in', 'notin' operators, values set can't be empty")
            }
            switch head[1] {
            case "in": return .in(key, Set(values))
            case "notin": return .notIn(key, Set(values))
            default: throw fail("found '\(head[1])', expected: in, notin")
            }
        }
        if term.hasPrefix("!") {
            return .doesNotExist(try validKey(term.dropFirst().trimmingCharacters(in: .whitespaces), fail))
        }
        for (op, make) in [("!=", Requirement.notEquals), ("==", Requirement.equals), ("=", Requirement.equals)] {
            if let range = term.range(of: op) {
                let key = try validKey(term[..<range.lowerBound].trimmingCharacters(in: .whitespaces), fail)
                let value = try validValue(term[range.upperBound...].trimmingCharacters(in: .whitespaces), fail)
                return make(key, value)
            }
        }
        return .exists(try validKey(term, fail))
    }

    /// A label key: an optional DNS-subdomain prefix and a slash, then a name of at most 63 characters.
    private static func validKey(_ key: String, _ fail: (String) -> SelectorError) throws -> String {
        let parts = key.split(separator: "/", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let name = parts.last, isQualifiedName(name) else {
            throw fail("invalid label key \(key.debugDescription)")
        }
        if parts.count == 2 {
            let prefix = parts[0]
            guard !prefix.isEmpty, prefix.count <= 253,
                  prefix.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-" || $0 == ".") })
            else { throw fail("invalid label key \(key.debugDescription)") }
        }
        return key
    }

    private static func validValue(_ value: String, _ fail: (String) -> SelectorError) throws -> String {
        guard value.isEmpty || isQualifiedName(Substring(value)) else {
            throw fail("invalid label value: \(value.debugDescription)")
        }
        return value
    }

    private static func isQualifiedName(_ name: Substring) -> Bool {
        guard !name.isEmpty, name.count <= 63, let first = name.first, let last = name.last,
              first.isASCII, last.isASCII, first.isLetter || first.isNumber, last.isLetter || last.isNumber
        else { return false }
        return name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") }
    }
}

/// A parsed `fieldSelector`: `path=value`, `path==value` and `path!=value`, joined by commas.
/// Any dotted path is accepted (the real server allows a fixed list per kind; `metadata.name`
/// and `metadata.namespace` work for every kind there too).
struct FieldSelector: Sendable {
    struct Requirement: Sendable {
        var path: String
        var value: String
        var negated: Bool
    }

    var requirements: [Requirement]

    var isEmpty: Bool { requirements.isEmpty }

    init(_ text: String?) throws {
        requirements = []
        guard let text, !text.trimmingCharacters(in: .whitespaces).isEmpty else { return }
        for rawTerm in text.split(separator: ",", omittingEmptySubsequences: false) {
            let term = rawTerm.trimmingCharacters(in: .whitespaces)
            var parsed: Requirement?
            for (op, negated) in [("!=", true), ("==", false), ("=", false)] {
                if let range = term.range(of: op) {
                    parsed = Requirement(
                        path: term[..<range.lowerBound].trimmingCharacters(in: .whitespaces),
                        value: term[range.upperBound...].trimmingCharacters(in: .whitespaces),
                        negated: negated)
                    break
                }
            }
            guard let parsed, !parsed.path.isEmpty else {
                throw SelectorError(description: "invalid selector: '\(text)'; can't understand '\(term)'")
            }
            requirements.append(parsed)
        }
    }

    func matches(_ object: JSON) -> Bool {
        requirements.allSatisfy { requirement in
            let actual = object.value(atDottedPath: requirement.path)?.selectorText ?? ""
            return (actual == requirement.value) != requirement.negated
        }
    }
}

/// Both selectors of a list or watch request.
struct ObjectFilter: Sendable {
    var labels: LabelSelector
    var fields: FieldSelector

    var isEmpty: Bool { labels.isEmpty && fields.isEmpty }

    func matches(_ object: JSON) -> Bool {
        var labelMap: [String: String] = [:]
        for (key, value) in object["metadata"]?["labels"]?.objectValue ?? [:] {
            labelMap[key] = value.stringValue ?? value.selectorText
        }
        return labels.matches(labelMap) && fields.matches(object)
    }
}
