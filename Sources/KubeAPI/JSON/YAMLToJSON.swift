import Foundation
import Yams

extension JSONValue {
    /// One YAML document as a JSON value, parsed by Yams. Scalars take the type YAML's core schema
    /// resolves them to (a quoted "1" stays a string); anchors and aliases are resolved by Yams.
    /// Text that is not YAML, or a YAML value JSON cannot hold (a non-string key, a non-finite
    /// number), is an error that says where.
    public static func parseYAML(_ text: String, source: String = "YAML") throws(KubeAPIError) -> JSONValue {
        let root: Yams.Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw .configuration("\(source): not valid YAML\(yamlErrorPosition(error))")
        }
        guard let root else { return .null }
        return try convert(root, path: "", source: source)
    }

    /// Every document of a YAML stream (`---` between documents), empty ones left out.
    public static func parseYAMLDocuments(_ text: String, source: String = "YAML") throws(KubeAPIError) -> [JSONValue] {
        var documents: [JSONValue] = []
        do {
            // Parser.nextRoot throws on a syntax error (compose_all's sequence would just end).
            let parser = try Yams.Parser(yaml: text)
            while let node = try parser.nextRoot() {
                documents.append(try convert(node, path: "", source: "\(source) document \(documents.count + 1)"))
            }
        } catch let error as KubeAPIError {
            throw error
        } catch {
            throw .configuration("\(source): not valid YAML\(yamlErrorPosition(error))")
        }
        return documents.filter { !$0.isNull }
    }

    private static func convert(_ node: Yams.Node, path: String, source: String) throws(KubeAPIError) -> JSONValue {
        switch node {
        case .scalar(let scalar):
            switch node.tag.rawValue {
            case Tag.Name.null.rawValue: return .null
            case Tag.Name.bool.rawValue:
                guard let value = node.bool else { throw .configuration("\(source): \(path.isEmpty ? "value" : path): not a boolean") }
                return .bool(value)
            case Tag.Name.int.rawValue:
                if let value = node.int { return .int(Int64(value)) }
                throw .configuration("\(source): \(path.isEmpty ? "value" : path): integer out of range")
            case Tag.Name.float.rawValue:
                guard let value = node.float, value.isFinite else {
                    throw .configuration("\(source): \(path.isEmpty ? "value" : path): JSON has no number \(scalar.string)")
                }
                return .double(value)
            default:
                return .string(scalar.string)
            }
        case .mapping(let mapping):
            var object: JSONObject = [:]
            for (key, value) in mapping {
                guard case .scalar(let keyScalar) = key else {
                    throw .configuration("\(source): \(path.isEmpty ? "a mapping" : path) has a key that is not a string")
                }
                object[keyScalar.string] = try convert(value, path: path.isEmpty ? keyScalar.string : "\(path).\(keyScalar.string)", source: source)
            }
            return .object(object)
        case .sequence(let sequence):
            var array: [JSONValue] = []
            for (index, element) in sequence.enumerated() {
                array.append(try convert(element, path: "\(path)[\(index)]", source: source))
            }
            return .array(array)
        case .alias:
            throw .configuration("\(source): \(path.isEmpty ? "value" : path): an unresolved alias")
        }
    }
}

/// Where a Yams error is, as " at line:column L:C", and nothing else: Yams quotes the offending
/// line, which may hold a token or a key.
func yamlErrorPosition(_ error: any Error) -> String {
    let text = "\(error)"
    return text.range(of: #"\d+:\d+"#, options: .regularExpression).map { " at line:column \(text[$0])" } ?? ""
}
