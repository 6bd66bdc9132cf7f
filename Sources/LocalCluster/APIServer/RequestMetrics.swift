import Foundation
import Synchronization

/// What one request was, in kube-apiserver's terms: `apiserver_request_total`'s labels, with the
/// caller's user name added so that a benchmark can tell the operator's requests from a node's.
struct RequestKind: Hashable, Sendable, Comparable {
    /// GET, LIST, WATCH, POST, PUT, PATCH, DELETE or DELETECOLLECTION; the HTTP method for
    /// paths that name no resource (discovery, health).
    var verb: String
    var group: String
    var resource: String
    var subresource: String
    var user: String
    var code: Int

    /// Sorts a request as kube-apiserver does: a GET without a name is a LIST, or a WATCH when
    /// it asks to watch; a DELETE without a name is a DELETECOLLECTION.
    init(_ request: APIRequest, code: Int) {
        self.user = request.user.name
        self.code = code
        guard case .resource(let target)? = APIPath.parse(request.path) else {
            verb = request.method
            group = ""
            resource = ""
            subresource = ""
            return
        }
        group = target.group
        resource = target.plural
        subresource = target.subresource ?? ""
        switch (request.method, target.name) {
        case ("GET", nil): verb = request.flag("watch") ? "WATCH" : "LIST"
        case ("DELETE", nil): verb = "DELETECOLLECTION"
        default: verb = request.method
        }
    }

    static func < (a: RequestKind, b: RequestKind) -> Bool {
        (a.user, a.verb, a.group, a.resource, a.subresource, a.code) < (b.user, b.verb, b.group, b.resource, b.subresource, b.code)
    }
}

/// Counts the requests the API server answered, by `RequestKind`, for its `/metrics` endpoint.
/// Requests that fail authentication are not counted (they reach no handler).
final class RequestCounter: Sendable {
    private let counts = Mutex<[RequestKind: Int]>([:])

    func record(_ kind: RequestKind) {
        counts.withLock { $0[kind, default: 0] += 1 }
    }

    var snapshot: [RequestKind: Int] { counts.withLock { $0 } }

    /// The Prometheus text format (version 0.0.4), one series per kind, in a stable order.
    func exposition() -> String {
        var text = """
            # HELP apiserver_request_total Counter of apiserver requests broken out for each verb, group, resource, subresource, user and HTTP response code.
            # TYPE apiserver_request_total counter

            """
        for (kind, count) in snapshot.sorted(by: { $0.key < $1.key }) {
            let labels = [
                ("code", String(kind.code)), ("group", kind.group), ("resource", kind.resource),
                ("subresource", kind.subresource), ("user", kind.user), ("verb", kind.verb),
            ].map { "\($0.0)=\"\(Self.escape($0.1))\"" }.joined(separator: ",")
            text += "apiserver_request_total{\(labels)} \(count)\n"
        }
        return text
    }

    /// A label value as the text format wants it: backslash, double quote and newline escaped.
    static func escape(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }
}

extension APIResponse {
    /// The HTTP status the client gets (a watch or a log stream starts with 200).
    var statusCode: Int {
        switch self {
        case .json(let code, _), .rawJSON(let code, _), .text(let code, _, _): code
        case .watch, .logStream: 200
        }
    }
}
