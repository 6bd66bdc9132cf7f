import Foundation

public struct ListOptions: Sendable, Equatable {
    public var labelSelector: String?
    public var fieldSelector: String?
    public var limit: Int?
    public var continueToken: String?
    public var resourceVersion: String?

    public init(labelSelector: String? = nil, fieldSelector: String? = nil, limit: Int? = nil, continueToken: String? = nil,
                resourceVersion: String? = nil) {
        self.labelSelector = labelSelector
        self.fieldSelector = fieldSelector
        self.limit = limit
        self.continueToken = continueToken
        self.resourceVersion = resourceVersion
    }

    var query: [(String, String)] {
        var items: [(String, String)] = []
        if let labelSelector, !labelSelector.isEmpty { items.append(("labelSelector", labelSelector)) }
        if let fieldSelector, !fieldSelector.isEmpty { items.append(("fieldSelector", fieldSelector)) }
        if let limit { items.append(("limit", String(limit))) }
        if let continueToken, !continueToken.isEmpty { items.append(("continue", continueToken)) }
        if let resourceVersion { items.append(("resourceVersion", resourceVersion)) }
        return items
    }
}

public struct WatchOptions: Sendable, Equatable {
    public var resourceVersion: String?
    public var allowBookmarks: Bool
    public var timeoutSeconds: Int?
    public var labelSelector: String?
    public var fieldSelector: String?

    public init(resourceVersion: String? = nil, allowBookmarks: Bool = true, timeoutSeconds: Int? = nil,
                labelSelector: String? = nil, fieldSelector: String? = nil) {
        self.resourceVersion = resourceVersion
        self.allowBookmarks = allowBookmarks
        self.timeoutSeconds = timeoutSeconds
        self.labelSelector = labelSelector
        self.fieldSelector = fieldSelector
    }

    var query: [(String, String)] {
        var items: [(String, String)] = [("watch", "true")]
        if let resourceVersion { items.append(("resourceVersion", resourceVersion)) }
        if allowBookmarks { items.append(("allowWatchBookmarks", "true")) }
        if let timeoutSeconds { items.append(("timeoutSeconds", String(timeoutSeconds))) }
        if let labelSelector, !labelSelector.isEmpty { items.append(("labelSelector", labelSelector)) }
        if let fieldSelector, !fieldSelector.isEmpty { items.append(("fieldSelector", fieldSelector)) }
        return items
    }
}

public enum PatchType: String, Sendable {
    case merge = "application/merge-patch+json"
    case json = "application/json-patch+json"
    case strategicMerge = "application/strategic-merge-patch+json"
}

public enum PropagationPolicy: String, Sendable {
    case orphan = "Orphan"
    case background = "Background"
    case foreground = "Foreground"
}

public struct DeleteOptions: Sendable, Equatable {
    public var propagationPolicy: PropagationPolicy?
    public var preconditionUID: String?
    public var preconditionResourceVersion: String?
    public var gracePeriodSeconds: Int?

    public init(propagationPolicy: PropagationPolicy? = nil, preconditionUID: String? = nil,
                preconditionResourceVersion: String? = nil, gracePeriodSeconds: Int? = nil) {
        self.propagationPolicy = propagationPolicy
        self.preconditionUID = preconditionUID
        self.preconditionResourceVersion = preconditionResourceVersion
        self.gracePeriodSeconds = gracePeriodSeconds
    }

    var body: JSONValue {
        var object: JSONObject = ["kind": "DeleteOptions", "apiVersion": "v1"]
        if let propagationPolicy { object["propagationPolicy"] = .string(propagationPolicy.rawValue) }
        if let gracePeriodSeconds { object["gracePeriodSeconds"] = .int(Int64(gracePeriodSeconds)) }
        var preconditions: JSONObject = [:]
        if let preconditionUID { preconditions["uid"] = .string(preconditionUID) }
        if let preconditionResourceVersion { preconditions["resourceVersion"] = .string(preconditionResourceVersion) }
        if !preconditions.isEmpty { object["preconditions"] = .object(preconditions) }
        return .object(object)
    }
}

public struct LogOptions: Sendable, Equatable {
    public var container: String?
    public var follow: Bool
    public var tailLines: Int?
    public var previous: Bool

    public init(container: String? = nil, follow: Bool = false, tailLines: Int? = nil, previous: Bool = false) {
        self.container = container
        self.follow = follow
        self.tailLines = tailLines
        self.previous = previous
    }

    var query: [(String, String)] {
        var items: [(String, String)] = []
        if let container { items.append(("container", container)) }
        if follow { items.append(("follow", "true")) }
        if let tailLines { items.append(("tailLines", String(tailLines))) }
        if previous { items.append(("previous", "true")) }
        return items
    }
}

/// One page of a LIST.
public struct ObjectList<T: APIObject>: Sendable {
    public var items: [T]
    public var resourceVersion: String
    public var continueToken: String?
}

public enum WatchEventType: String, Sendable {
    case added = "ADDED"
    case modified = "MODIFIED"
    case deleted = "DELETED"
    case bookmark = "BOOKMARK"
}

public struct WatchEvent<T: APIObject>: Sendable {
    public var type: WatchEventType
    public var object: T
}

/// How 429 and 5xx answers are retried.
public struct RetryPolicy: Sendable {
    public var maxAttempts: Int
    public var initialBackoff: Duration
    public var maxBackoff: Duration

    public init(maxAttempts: Int = 6, initialBackoff: Duration = .milliseconds(200), maxBackoff: Duration = .seconds(10)) {
        self.maxAttempts = maxAttempts
        self.initialBackoff = initialBackoff
        self.maxBackoff = maxBackoff
    }

    public static let none = RetryPolicy(maxAttempts: 1)

    /// Exponential backoff with full jitter for the given (1-based) attempt.
    func backoff(attempt: Int) -> Duration {
        let exponential = min(maxBackoff.inSeconds, initialBackoff.inSeconds * pow(2, Double(min(attempt, 60) - 1)))
        return .seconds(fraction: Double.random(in: exponential / 2...exponential))
    }
}

enum Query {
    /// Percent-encodes a query component: only RFC 3986 unreserved characters stay as they are.
    static func encode(_ items: [(String, String)]) -> String {
        items.map { "\(escape($0.0))=\(escape($0.1))" }.joined(separator: "&")
    }

    static func escape(_ text: String) -> String {
        var result = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                result.append(Character(Unicode.Scalar(byte)))
            default:
                result += "%" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
            }
        }
        return result
    }
}
