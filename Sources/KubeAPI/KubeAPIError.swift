import Foundation

/// A `metav1.Status` failure from the API server.
public struct StatusFailure: Sendable, Equatable, CustomStringConvertible {
    public let code: Int
    /// StatusReason: NotFound, AlreadyExists, Conflict, Invalid, Expired, Gone, TooManyRequests, ...
    public let reason: String
    public let message: String
    public let details: JSONObject?
    /// Seconds from a Retry-After header, when the server sent one.
    public let retryAfter: Int?

    public init(code: Int, reason: String, message: String, details: JSONObject? = nil, retryAfter: Int? = nil) {
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.retryAfter = retryAfter
    }

    public var description: String { "\(code) \(reason): \(message)" }

    /// Decodes a response body. A body that is not a Status still yields a failure with the HTTP
    /// code and a short, printable excerpt of the body.
    static func decode(code: Int, body: Data, retryAfter: Int?) -> StatusFailure {
        if let object = try? JSONParser.parseObject(body), object["kind"]?.stringValue == "Status" {
            return StatusFailure(
                code: object["code"]?.intValue.map(Int.init) ?? code,
                reason: object["reason"]?.stringValue ?? Self.defaultReason(code),
                message: object["message"]?.stringValue ?? "",
                details: object["details"]?.objectValue,
                retryAfter: retryAfter)
        }
        let excerpt = String(decoding: body.prefix(200), as: UTF8.self)
            .filter { !$0.isNewline }
        return StatusFailure(
            code: code, reason: defaultReason(code),
            message: excerpt.isEmpty ? "HTTP \(code) with an empty body" : excerpt, retryAfter: retryAfter)
    }

    static func defaultReason(_ code: Int) -> String {
        switch code {
        case 400: return "BadRequest"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "NotFound"
        case 405: return "MethodNotAllowed"
        case 409: return "Conflict"
        case 410: return "Gone"
        case 415: return "UnsupportedMediaType"
        case 422: return "Invalid"
        case 429: return "TooManyRequests"
        case 500: return "InternalError"
        case 503: return "ServiceUnavailable"
        case 504: return "Timeout"
        default: return "Unknown"
        }
    }
}

/// Every error the Kubernetes client raises.
public enum KubeAPIError: Error, Sendable, CustomStringConvertible, Equatable {
    /// A Status failure that has no more specific case.
    case status(StatusFailure)
    /// 404.
    case notFound(StatusFailure)
    /// 409 with reason AlreadyExists.
    case alreadyExists(StatusFailure)
    /// 409 Conflict: the object changed since it was read, or a precondition failed.
    case conflict(StatusFailure)
    /// 410 Gone / Expired: the resourceVersion is too old; relist.
    case gone(StatusFailure)
    /// 401: the credentials were refused.
    case unauthorized(StatusFailure)
    /// 422 Invalid: the server rejected the object's content.
    case invalid(StatusFailure)
    /// The connection failed, timed out or broke off.
    case transport(String)
    /// The transfer was cancelled by its Task.
    case cancelled
    /// The server answered with something that is not what the API promises.
    case malformedResponse(String)
    /// A configuration problem: kubeconfig, in-cluster files, credentials plugin.
    case configuration(String)

    public var description: String {
        switch self {
        case .status(let s), .notFound(let s), .alreadyExists(let s), .conflict(let s), .gone(let s),
             .unauthorized(let s), .invalid(let s):
            return s.description
        case .transport(let message): return "transport error: \(message)"
        case .cancelled: return "cancelled"
        case .malformedResponse(let message): return "malformed response: \(message)"
        case .configuration(let message): return message
        }
    }

    /// The Status failure, when the server sent one.
    public var statusFailure: StatusFailure? {
        switch self {
        case .status(let s), .notFound(let s), .alreadyExists(let s), .conflict(let s), .gone(let s),
             .unauthorized(let s), .invalid(let s):
            return s
        default:
            return nil
        }
    }

    public var code: Int? { statusFailure?.code }

    public var isNotFound: Bool { if case .notFound = self { return true } else { return false } }
    public var isAlreadyExists: Bool { if case .alreadyExists = self { return true } else { return false } }
    public var isConflict: Bool { if case .conflict = self { return true } else { return false } }

    static func from(_ failure: StatusFailure) -> KubeAPIError {
        switch (failure.code, failure.reason) {
        case (404, _): return .notFound(failure)
        case (409, "AlreadyExists"): return .alreadyExists(failure)
        case (409, _): return .conflict(failure)
        case (410, _), (_, "Expired"), (_, "Gone"): return .gone(failure)
        case (401, _): return .unauthorized(failure)
        case (422, _): return .invalid(failure)
        default: return .status(failure)
        }
    }
}
