import Foundation

/// An error answer of the test double: always rendered as a real `metav1.Status` body.
struct APIError: Error {
    var code: Int
    var reason: String
    var message: String
    var details: [String: JSON]?
    var retryAfterSeconds: Int?

    init(code: Int, reason: String? = nil, message: String, details: [String: JSON]? = nil, retryAfterSeconds: Int? = nil) {
        self.code = code
        self.reason = reason ?? Self.reason(for: code)
        self.message = message
        self.details = details
        self.retryAfterSeconds = retryAfterSeconds
    }

    /// The `metav1.Status` object, field for field as the API server writes it.
    var status: JSON {
        var object: [String: JSON] = [
            "kind": .string("Status"),
            "apiVersion": .string("v1"),
            "metadata": .object([:]),
            "status": .string("Failure"),
            "message": .string(message),
            "code": .int(Int64(code)),
        ]
        if !reason.isEmpty { object["reason"] = .string(reason) }
        if let details { object["details"] = .object(details) }
        return .object(object)
    }

    /// The StatusReason the API server uses for an HTTP code.
    static func reason(for code: Int) -> String {
        switch code {
        case 400: return "BadRequest"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "NotFound"
        case 405: return "MethodNotAllowed"
        case 406: return "NotAcceptable"
        case 409: return "Conflict"
        case 410: return "Expired"
        case 413: return "RequestEntityTooLarge"
        case 415: return "UnsupportedMediaType"
        case 422: return "Invalid"
        case 429: return "TooManyRequests"
        case 500: return "InternalError"
        case 503: return "ServiceUnavailable"
        case 504: return "Timeout"
        default: return ""
        }
    }

    /// The message the API server gives for an injected failure of this code.
    static func injected(code: Int, retryAfterSeconds: Int?) -> APIError {
        let message: String
        switch code {
        case 429: message = "Too many requests, please try again later."
        case 500: message = "Internal error occurred: injected failure"
        case 503: message = "the server is currently unable to handle the request"
        case 504: message = "Timeout: request did not complete within requested timeout - context deadline exceeded"
        default: message = "injected failure (HTTP \(code))"
        }
        var details: [String: JSON]?
        if let retryAfterSeconds, code == 429 || code >= 500 {
            details = ["retryAfterSeconds": .int(Int64(retryAfterSeconds))]
        }
        return APIError(code: code, message: message, details: details, retryAfterSeconds: retryAfterSeconds)
    }

    // MARK: The usual errors of a resource

    static func details(_ resource: ResourcePath, name: String?, kind: String? = nil) -> [String: JSON] {
        var details: [String: JSON] = ["kind": .string(kind ?? resource.plural)]
        if let name { details["name"] = .string(name) }
        if !resource.group.isEmpty { details["group"] = .string(resource.group) }
        return details
    }

    static func notFound(_ resource: ResourcePath, name: String) -> APIError {
        APIError(code: 404, message: "\(resource.qualifiedResource) \"\(name)\" not found", details: details(resource, name: name))
    }

    static func alreadyExists(_ resource: ResourcePath, name: String) -> APIError {
        APIError(code: 409, reason: "AlreadyExists", message: "\(resource.qualifiedResource) \"\(name)\" already exists",
                 details: details(resource, name: name))
    }

    static func conflict(_ resource: ResourcePath, name: String, why: String = "the object has been modified; please apply your changes to the latest version and try again") -> APIError {
        APIError(code: 409, reason: "Conflict", message: "Operation cannot be fulfilled on \(resource.qualifiedResource) \"\(name)\": \(why)",
                 details: details(resource, name: name))
    }

    static func badRequest(_ message: String) -> APIError {
        APIError(code: 400, message: message)
    }

    /// 422 with one cause, like field validation errors.
    static func invalid(_ resource: ResourcePath, kind: String, name: String, field: String, causeReason: String, detail: String) -> APIError {
        var details = details(resource, name: name, kind: kind)
        details["causes"] = .array([.object([
            "reason": .string(causeReason), "message": .string(detail), "field": .string(field),
        ])])
        return APIError(code: 422, message: "\(kind) \"\(name)\" is invalid: \(field): \(detail)", details: details)
    }

    static var pathNotFound: APIError {
        APIError(code: 404, message: "the server could not find the requested resource", details: [:])
    }

    static var methodNotAllowed: APIError {
        APIError(code: 405, message: "the server does not allow this method on the requested resource", details: [:])
    }
}
