import Foundation
import KubeAPI

/// An HTTP request as the API layer sees it, after TLS and authentication.
struct APIRequest: Sendable {
    var method: String
    var path: String
    var query: [String: String]
    var accept: String
    var contentType: String
    var body: Data
    var user: AuthenticatedUser

    func flag(_ name: String) -> Bool {
        guard let value = query[name] else { return false }
        return value == "true" || value == "1" || value.isEmpty
    }

    var dryRun: Bool { query["dryRun"] == "All" }
}

struct AuthenticatedUser: Sendable, Equatable {
    var name: String
    var groups: [String]
}

/// What the API layer answers.
enum APIResponse: Sendable {
    case json(Int, JSONValue)
    case rawJSON(Int, [UInt8])
    case text(Int, String, contentType: String)
    case watch(WatchStream)
    case logStream(AsyncThrowingStream<Data, any Error>)
}

/// An open watch: replayed events, then live ones, as newline-delimited JSON.
struct WatchStream: Sendable {
    let id: UUID
    let replay: [StoredEvent]
    let live: AsyncStream<StoredEvent>
    let filter: @Sendable (JSONObject) -> Bool
    let timeout: Duration?
    let bookmarks: Bool
    let asTable: Bool
}

/// The failure bodies Kubernetes sends: a `metav1.Status`.
struct APIError: Error, Sendable {
    var code: Int
    var reason: String
    var message: String
    var details: JSONObject?

    var body: JSONValue {
        var status: JSONObject = [
            "kind": "Status", "apiVersion": "v1", "metadata": .object([:]), "status": "Failure",
            "message": .string(message), "reason": .string(reason), "code": .int(Int64(code)),
        ]
        if let details { status["details"] = .object(details) }
        return .object(status)
    }

    static func notFound(_ resource: ServedResource, _ name: String) -> APIError {
        APIError(code: 404, reason: "NotFound", message: "\(resource.plural)\(resource.group.isEmpty ? "" : ".\(resource.group)") \"\(name)\" not found",
                 details: ["name": .string(name), "group": .string(resource.group), "kind": .string(resource.plural)])
    }

    static func alreadyExists(_ resource: ServedResource, _ name: String) -> APIError {
        APIError(code: 409, reason: "AlreadyExists", message: "\(resource.plural)\(resource.group.isEmpty ? "" : ".\(resource.group)") \"\(name)\" already exists",
                 details: ["name": .string(name), "group": .string(resource.group), "kind": .string(resource.plural)])
    }

    static func conflict(_ resource: ServedResource, _ name: String) -> APIError {
        APIError(code: 409, reason: "Conflict",
                 message: "Operation cannot be fulfilled on \(resource.plural)\(resource.group.isEmpty ? "" : ".\(resource.group)") \"\(name)\": the object has been modified; please apply your changes to the latest version and try again",
                 details: ["name": .string(name), "group": .string(resource.group), "kind": .string(resource.plural)])
    }

    static func badRequest(_ message: String) -> APIError { APIError(code: 400, reason: "BadRequest", message: message) }

    static func methodNotAllowed(_ message: String) -> APIError { APIError(code: 405, reason: "MethodNotAllowed", message: message) }

    static func gone(_ message: String) -> APIError { APIError(code: 410, reason: "Expired", message: message) }

    static func unsupportedMediaType(_ type: String) -> APIError {
        APIError(code: 415, reason: "UnsupportedMediaType", message: "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json")
    }

    /// 422 Invalid, in the form kubectl prints: `The Kind "name" is invalid: field: reason`.
    static func invalid(kind: String, group: String, name: String, causes: [FieldCause]) -> APIError {
        let summary = causes.map { "\($0.field): \($0.message)" }
        let message = "\(kind) \"\(name)\" is invalid: " + (summary.count == 1 ? summary[0] : "[\(summary.joined(separator: ", "))]")
        return APIError(code: 422, reason: "Invalid", message: message, details: [
            "name": .string(name), "group": .string(group), "kind": .string(kind),
            "causes": .array(causes.map { ["reason": .string($0.reason), "message": .string($0.message), "field": .string($0.field)] }),
        ])
    }
}

/// One reason an object is invalid, with the field path it concerns.
struct FieldCause: Sendable, Equatable {
    var reason: String   // FieldValueInvalid, FieldValueRequired, FieldValueNotSupported, ...
    var field: String
    var message: String

    static func required(_ field: String) -> FieldCause {
        FieldCause(reason: "FieldValueRequired", field: field, message: "Required value")
    }
    static func invalid(_ field: String, _ value: JSONValue, _ detail: String) -> FieldCause {
        FieldCause(reason: "FieldValueInvalid", field: field, message: "Invalid value: \(Self.render(value)): \(detail)")
    }
    static func notSupported(_ field: String, _ value: JSONValue, _ allowed: [JSONValue]) -> FieldCause {
        FieldCause(reason: "FieldValueNotSupported", field: field,
                   message: "Unsupported value: \(Self.render(value)): supported values: \(allowed.map(Self.render).joined(separator: ", "))")
    }
    static func typeInvalid(_ field: String, _ value: JSONValue, _ type: String) -> FieldCause {
        FieldCause(reason: "FieldValueTypeInvalid", field: field, message: "Invalid value: \"\(Self.kindOf(value))\": \(field) in body must be of type \(type): \"\(Self.kindOf(value))\"")
    }

    static func render(_ value: JSONValue) -> String {
        switch value {
        case .string(let s): return "\"\(s)\""
        default: return value.description
        }
    }

    static func kindOf(_ value: JSONValue) -> String {
        switch value {
        case .null: return "null"
        case .bool: return "boolean"
        case .int: return "integer"
        case .double: return "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }
}
