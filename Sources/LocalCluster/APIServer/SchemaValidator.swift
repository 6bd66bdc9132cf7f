import Foundation
import KubeAPI

/// Validates a value against a CRD's structural OpenAPI v3 schema: type, required, enum,
/// minimum/maximum (and their exclusive forms), minLength/maxLength, minItems/maxItems, pattern,
/// properties, items, additionalProperties and x-kubernetes-int-or-string. Unknown fields are
/// pruned, as the API server does for structural schemas, unless
/// x-kubernetes-preserve-unknown-fields is set. Pure.
enum SchemaValidator {
    /// Returns the pruned value and every violation, with field paths as kubectl prints them.
    static func validate(_ value: JSONValue, schema: JSONObject, path: String) -> (JSONValue, [FieldCause]) {
        var causes: [FieldCause] = []
        let pruned = check(value, schema, path, &causes)
        return (pruned, causes)
    }

    private static func check(_ value: JSONValue, _ schema: JSONObject, _ path: String, _ causes: inout [FieldCause]) -> JSONValue {
        if value.isNull {
            if schema["nullable"]?.boolValue == true { return value }
            if schema["type"] != nil {
                causes.append(.typeInvalid(path, value, schema["type"]?.stringValue ?? "object"))
            }
            return value
        }
        let intOrString = schema["x-kubernetes-int-or-string"]?.boolValue == true
        if let type = schema["type"]?.stringValue, !intOrString {
            let ok: Bool
            switch (type, value) {
            case ("object", .object), ("array", .array), ("string", .string), ("boolean", .bool), ("integer", .int): ok = true
            case ("integer", .double(let d)): ok = d.rounded() == d
            case ("number", .int), ("number", .double): ok = true
            default: ok = false
            }
            if !ok {
                causes.append(.typeInvalid(path, value, type))
                return value
            }
        } else if intOrString {
            switch value {
            case .int, .string: break
            default:
                causes.append(FieldCause(reason: "FieldValueTypeInvalid", field: path, message: "Invalid value: \"\(FieldCause.kindOf(value))\": \(path) in body must be of type integer or string"))
                return value
            }
        }
        if let allowed = schema["enum"]?.arrayValue, !allowed.contains(value) {
            causes.append(.notSupported(path, value, allowed))
        }
        switch value {
        case .int, .double:
            let number = value.doubleValue ?? 0
            if let minimum = schema["minimum"]?.doubleValue {
                let exclusive = schema["exclusiveMinimum"]?.boolValue == true
                if exclusive ? number <= minimum : number < minimum {
                    causes.append(.invalid(path, value, "\(path) in body should be greater than \(exclusive ? "" : "or equal to ")\(format(minimum))"))
                }
            }
            if let maximum = schema["maximum"]?.doubleValue {
                let exclusive = schema["exclusiveMaximum"]?.boolValue == true
                if exclusive ? number >= maximum : number > maximum {
                    causes.append(.invalid(path, value, "\(path) in body should be less than \(exclusive ? "" : "or equal to ")\(format(maximum))"))
                }
            }
            return value
        case .string(let text):
            if let minLength = schema["minLength"]?.intValue, text.count < minLength {
                causes.append(.invalid(path, value, "\(path) in body should be at least \(minLength) chars long"))
            }
            if let maxLength = schema["maxLength"]?.intValue, text.count > maxLength {
                causes.append(FieldCause(reason: "FieldValueTooLong", field: path, message: "Too long: may not be longer than \(maxLength)"))
            }
            if let pattern = schema["pattern"]?.stringValue {
                if let regex = try? NSRegularExpression(pattern: pattern) {
                    let range = NSRange(text.startIndex..., in: text)
                    if regex.firstMatch(in: text, range: range) == nil {
                        causes.append(.invalid(path, value, "\(path) in body should match '\(pattern)'"))
                    }
                }
            }
            return value
        case .array(let items):
            if let minItems = schema["minItems"]?.intValue, items.count < minItems {
                causes.append(.invalid(path, value, "\(path) in body should have at least \(minItems) items"))
            }
            if let maxItems = schema["maxItems"]?.intValue, items.count > maxItems {
                causes.append(FieldCause(reason: "FieldValueTooMany", field: path, message: "Too many: \(items.count): must have at most \(maxItems) items"))
            }
            guard let itemSchema = schema["items"]?.objectValue else { return value }
            return .array(items.enumerated().map { check($0.element, itemSchema, "\(path)[\($0.offset)]", &causes) })
        case .object(let object):
            for required in schema["required"]?.arrayValue?.compactMap(\.stringValue) ?? [] where object[required] == nil {
                causes.append(.required(path.isEmpty ? required : "\(path).\(required)"))
            }
            let properties = schema["properties"]?.objectValue
            let additional = schema["additionalProperties"]?.objectValue
            let preserve = schema["x-kubernetes-preserve-unknown-fields"]?.boolValue == true
            var result = JSONObject()
            for (key, child) in object {
                let childPath = path.isEmpty ? key : "\(path).\(key)"
                if let propertySchema = properties?[key]?.objectValue {
                    result[key] = check(child, propertySchema, childPath, &causes)
                } else if let additional {
                    result[key] = check(child, additional, childPath, &causes)
                } else if preserve || (properties == nil && schema["additionalProperties"]?.boolValue != false && schema["type"] == nil) {
                    result[key] = child
                } else if schema["additionalProperties"]?.boolValue == true {
                    result[key] = child
                }
                // Otherwise an unknown field: pruned.
            }
            return .object(result)
        default:
            return value
        }
    }

    private static func format(_ number: Double) -> String {
        number.rounded() == number && abs(number) < 9e15 ? String(Int64(number)) : String(number)
    }
}
