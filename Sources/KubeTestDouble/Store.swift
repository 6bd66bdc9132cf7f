import Foundation
import NIOCore
import Synchronization

/// Where a request points: `/api/v1/...` or `/apis/GROUP/VERSION/...`, then
/// `[namespaces/NS/]PLURAL[/NAME[/SUBRESOURCE]]`. The double infers scope from the path alone.
struct ResourcePath: Sendable {
    var group: String
    var version: String
    var plural: String
    /// nil when the URL carries no namespace (cluster-scoped, or a list across all namespaces).
    var namespace: String?
    var name: String?
    var subresource: String?

    var apiVersion: String { group.isEmpty ? version : "\(group)/\(version)" }
    /// Objects of all versions of one group/resource share storage, as in the real server.
    var storageKey: String { "\(group)/\(plural)" }
    /// `pods` or `timestenclassics.tenops.io`, as messages name a resource.
    var qualifiedResource: String { group.isEmpty ? plural : "\(plural).\(group)" }

    /// Parses the path part of a URL; nil when it is no resource path.
    init?(path: String) {
        var segments = path.split(separator: "/").map { String($0).removingPercentEncoding ?? String($0) }
        guard segments.count >= 2 else { return nil }
        if segments[0] == "api" {
            group = ""
            version = segments[1]
            segments.removeFirst(2)
        } else if segments[0] == "apis", segments.count >= 3 {
            group = segments[1]
            version = segments[2]
            segments.removeFirst(3)
        } else {
            return nil
        }
        isWatchPath = segments.first == "watch"
        if isWatchPath { segments.removeFirst() }
        guard !segments.isEmpty, !segments.contains(where: \.isEmpty) else { return nil }
        let namespaceSubresource = group.isEmpty && segments.count == 3 && ["status", "finalize"].contains(segments[2])
        if segments[0] == "namespaces", segments.count >= 3, !namespaceSubresource {
            guard segments.count <= 5 else { return nil }
            namespace = segments[1]
            plural = segments[2]
            name = segments.count > 3 ? segments[3] : nil
            subresource = segments.count > 4 ? segments[4] : nil
        } else {
            guard segments.count <= 3 else { return nil }
            namespace = nil
            plural = segments[0]
            name = segments.count > 1 ? segments[1] : nil
            subresource = segments.count > 2 ? segments[2] : nil
        }
    }

    /// True for the deprecated `/api/v1/watch/...` form.
    var isWatchPath = false
}

/// What a handler answers. Streams are set up already (registered under the lock) when returned.
enum Reply: Sendable {
    case json(status: Int, body: JSON)
    case text(status: Int, contentType: String, body: String)
    case watch(WatchStream)
    case logs(LogStream)
}

/// One event as the history keeps it, before any watcher's selectors are applied.
struct HistoryEvent: Sendable {
    enum Kind: String, Sendable { case added = "ADDED", modified = "MODIFIED", deleted = "DELETED" }
    var resourceVersion: Int
    var storageKey: String
    var namespace: String
    var type: Kind
    var object: JSON
    /// For MODIFIED: the object before, so selector watches see ADDED/DELETED when it starts or stops matching.
    var previous: JSON?
}

enum WatchSignal: Sendable {
    case event(type: String, object: JSON)
    case bookmark(resourceVersion: Int)
    case timeout
    case abort
}

struct WatchStream: Sendable {
    var id: UUID
    var kind: String
    var apiVersion: String
    /// Events to send first: the replay from history or the synthetic ADDED events.
    var initial: [WatchSignal]
    /// When set, the stream sends this one ERROR event and ends (410 Expired).
    var expired: APIError?
    var signals: AsyncStream<WatchSignal>?
    var dropAfterEvents: Int?
    var timeoutSeconds: Int?
}

enum LogSignal: Sendable {
    case line(LogLine)
    case abort
}

struct LogStream: Sendable {
    var id: UUID
    var text: String
    var signals: AsyncStream<LogSignal>?
    var timestamps: Bool
}

struct Watcher: Sendable {
    var storageKey: String
    var namespace: String?
    var filter: ObjectFilter
    var allowBookmarks: Bool
    var continuation: AsyncStream<WatchSignal>.Continuation

    /// What this watcher sees of a stored event, if anything.
    func translate(_ event: HistoryEvent) -> (type: String, object: JSON)? {
        guard event.storageKey == storageKey, namespace == nil || namespace == event.namespace else { return nil }
        if filter.isEmpty { return (event.type.rawValue, event.object) }
        let now = filter.matches(event.object)
        switch event.type {
        case .added, .deleted:
            return now ? (event.type.rawValue, event.object) : nil
        case .modified:
            let before = event.previous.map(filter.matches) ?? false
            switch (before, now) {
            case (true, true): return ("MODIFIED", event.object)
            case (false, true): return ("ADDED", event.object)
            case (true, false): return ("DELETED", event.object)
            case (false, false): return nil
            }
        }
    }
}

struct LogLine: Sendable {
    var time: Date
    var text: String
}

struct LogFollower: Sendable {
    var key: String
    var continuation: AsyncStream<LogSignal>.Continuation
}

/// Everything the double holds, guarded by one mutex.
struct StoreState {
    var resourceVersion = 0
    /// storageKey -> "namespace/name" -> object. Cluster-scoped objects have an empty namespace.
    var objects: [String: [String: JSON]] = [:]
    /// storageKey -> Kind, learned from created objects.
    var kinds: [String: String] = [:]
    var history: [HistoryEvent] = []
    /// Every event with a resourceVersion above this one is still in `history`.
    var historyStart = 0
    var watchers: [UUID: Watcher] = [:]
    var logs: [String: [LogLine]] = [:]
    var logFollowers: [UUID: LogFollower] = [:]

    var failNext: (count: Int, status: Int, retryAfterSeconds: Int?) = (0, 0, nil)
    var rawResponses: [(status: Int, contentType: String, body: String)] = []
    var dropWatchesAfter: Int?
    var requests: [RecordedRequest] = []
    var channels: [ObjectIdentifier: any Channel] = [:]
    /// Open watch and log streams per connection, to end them when the client goes away.
    var streamsByChannel: [ObjectIdentifier: Set<UUID>] = [:]
    var stopped = false
}

/// The in-memory API server logic of the test double. No I/O happens here; the HTTP layer in
/// `KubeTestDouble` feeds requests in and streams the replies out.
final class DoubleStore: Sendable {
    let state = Mutex(StoreState())
    let historyWindow: Int
    static let maxRecordedRequests = 100_000

    init(historyWindow: Int) {
        self.historyWindow = max(1, historyWindow)
    }

    // MARK: Routing

    struct Request {
        var method: String
        var path: String
        var query: [String: String]
        var contentType: String?
        var body: Data
    }

    func handle(_ request: Request) -> Reply {
        do {
            return try route(request)
        } catch let error as APIError {
            return .json(status: error.code, body: error.status)
        } catch {
            let failure = APIError(code: 500, message: "Internal error occurred: \(error)")
            return .json(status: 500, body: failure.status)
        }
    }

    private func route(_ request: Request) throws -> Reply {
        let method = request.method
        switch request.path {
        case "/version", "/version/":
            guard method == "GET" else { throw APIError.methodNotAllowed }
            return .json(status: 200, body: Self.versionInfo)
        case "/healthz", "/livez", "/readyz":
            guard method == "GET" else { throw APIError.methodNotAllowed }
            return .text(status: 200, contentType: "text/plain; charset=utf-8", body: "ok")
        default:
            break
        }
        guard let resource = ResourcePath(path: request.path) else { throw APIError.pathNotFound }
        let query = request.query
        let watch = resource.isWatchPath || query["watch"] == "true" || query["watch"] == "1"

        guard let name = resource.name else {
            switch method {
            case "GET": return watch ? try openWatch(resource, query: query) : try list(resource, query: query)
            case "POST": return try create(resource, body: request.body)
            case "DELETE": return try deleteCollection(resource, query: query, body: request.body)
            default: throw APIError.methodNotAllowed
            }
        }
        switch resource.subresource {
        case nil:
            switch method {
            case "GET":
                if watch {
                    var byName = query
                    let nameTerm = "metadata.name=\(name)"
                    byName["fieldSelector"] = [query["fieldSelector"], nameTerm].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: ",")
                    var collection = resource
                    collection.name = nil
                    return try openWatch(collection, query: byName)
                }
                return try get(resource, name: name)
            case "PUT": return try update(resource, name: name, body: request.body, statusOnly: false)
            case "PATCH": return try patch(resource, name: name, contentType: request.contentType, body: request.body, statusOnly: false)
            case "DELETE": return try delete(resource, name: name, query: query, body: request.body)
            default: throw APIError.methodNotAllowed
            }
        case "status":
            switch method {
            case "GET": return try get(resource, name: name)
            case "PUT": return try update(resource, name: name, body: request.body, statusOnly: true)
            case "PATCH": return try patch(resource, name: name, contentType: request.contentType, body: request.body, statusOnly: true)
            default: throw APIError.methodNotAllowed
            }
        case "log" where resource.group.isEmpty && resource.plural == "pods" && resource.namespace != nil:
            guard method == "GET" else { throw APIError.methodNotAllowed }
            return try podLogs(resource, pod: name, query: query)
        default:
            throw APIError.pathNotFound
        }
    }

    static let versionInfo: JSON = .object([
        "major": .string("1"),
        "minor": .string("33"),
        "gitVersion": .string("v1.33.1"),
        "gitCommit": .string("8adc0f041b8e7ad1d30e29cc59c6ae7a15e19828"),
        "gitTreeState": .string("clean"),
        "buildDate": .string("2025-05-15T08:19:08Z"),
        "goVersion": .string("go1.24.2"),
        "compiler": .string("gc"),
        "platform": .string("linux/amd64"),
    ])

    // MARK: Helpers

    static func objectKey(namespace: String, name: String) -> String { "\(namespace)/\(name)" }

    static func timestamp(_ date: Date = Date()) -> String {
        date.formatted(Date.ISO8601FormatStyle())
    }

    static func kind(forPlural plural: String) -> String {
        let known: [String: String] = [
            "pods": "Pod", "services": "Service", "namespaces": "Namespace", "configmaps": "ConfigMap",
            "secrets": "Secret", "events": "Event", "nodes": "Node", "endpoints": "Endpoints",
            "persistentvolumeclaims": "PersistentVolumeClaim", "persistentvolumes": "PersistentVolume",
            "serviceaccounts": "ServiceAccount", "statefulsets": "StatefulSet", "deployments": "Deployment",
            "replicasets": "ReplicaSet", "daemonsets": "DaemonSet", "jobs": "Job", "cronjobs": "CronJob",
            "leases": "Lease", "customresourcedefinitions": "CustomResourceDefinition",
            "timestenclassics": "TimesTenClassic", "roles": "Role", "rolebindings": "RoleBinding",
            "clusterroles": "ClusterRole", "clusterrolebindings": "ClusterRoleBinding",
            "endpointslices": "EndpointSlice", "poddisruptionbudgets": "PodDisruptionBudget",
            "storageclasses": "StorageClass", "ingresses": "Ingress", "networkpolicies": "NetworkPolicy",
        ]
        if let kind = known[plural] { return kind }
        var singular = plural
        if singular.hasSuffix("ies") { singular = String(singular.dropLast(3)) + "y" }
        else if singular.hasSuffix("sses") || singular.hasSuffix("ches") || singular.hasSuffix("xes") { singular = String(singular.dropLast(2)) }
        else if singular.hasSuffix("s") { singular = String(singular.dropLast()) }
        return singular.prefix(1).uppercased() + singular.dropFirst()
    }

    private func kindName(_ resource: ResourcePath, _ state: StoreState) -> String {
        state.kinds[resource.storageKey] ?? Self.kind(forPlural: resource.plural)
    }

    /// Parses a request body that must be one JSON object.
    private func bodyObject(_ body: Data, _ resource: ResourcePath, kind: String) throws -> [String: JSON] {
        let parsed: JSON
        do {
            parsed = try JSON.parse(body)
        } catch {
            throw APIError.badRequest("the object provided is unrecognized (must be of type \(kind)): couldn't get version/kind; json parse error: \(error)")
        }
        guard case .object(let object) = parsed else {
            throw APIError.badRequest("the object provided is unrecognized (must be of type \(kind)): couldn't get version/kind; json parse error: expected a JSON object")
        }
        if let metadata = object["metadata"], metadata.objectValue == nil {
            throw APIError.badRequest("the object provided is unrecognized (must be of type \(kind)): metadata must be an object")
        }
        return object
    }

    private static let nameCharacters = Set("abcdefghijklmnopqrstuvwxyz0123456789-.")

    /// DNS-1123 subdomain, as most kinds require of metadata.name.
    private static func nameProblem(_ name: String, group: String) -> String? {
        if group == "rbac.authorization.k8s.io" { return name.contains("/") || name.contains("%") ? "may not contain '/' or '%'" : nil }
        let alphanumeric: (Character?) -> Bool = { $0.map { $0.isASCII && ($0.isLowercase || $0.isNumber) } ?? false }
        if name.count > 253 { return "Invalid value: \"\(name)\": must be no more than 253 characters" }
        if !name.allSatisfy(nameCharacters.contains) || !alphanumeric(name.first) || !alphanumeric(name.last) {
            return "Invalid value: \"\(name)\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        }
        return nil
    }

    private static func randomSuffix() -> String {
        let alphabet = Array("bcdfghjklmnpqrstvwxz2456789")
        return String((0..<5).map { _ in alphabet.randomElement()! })
    }

    /// Appends an event to the history (trimming it to the window) and hands it to every watcher.
    private func record(_ event: HistoryEvent, _ state: inout StoreState) {
        state.history.append(event)
        if state.history.count > historyWindow {
            let excess = state.history.count - historyWindow
            state.historyStart = state.history[excess - 1].resourceVersion
            state.history.removeFirst(excess)
        }
        for watcher in state.watchers.values {
            if let (type, object) = watcher.translate(event) {
                watcher.continuation.yield(.event(type: type, object: object))
            }
        }
    }

    private func nextResourceVersion(_ state: inout StoreState) -> Int {
        state.resourceVersion += 1
        return state.resourceVersion
    }

    private static func setMeta(_ object: inout JSON, _ key: String, _ value: JSON?) {
        var metadata = object["metadata"]?.objectValue ?? [:]
        metadata[key] = value
        object["metadata"] = .object(metadata)
    }

    private static func meta(_ object: JSON, _ key: String) -> JSON? { object["metadata"]?[key] }

    // MARK: GET and LIST

    private func get(_ resource: ResourcePath, name: String) throws -> Reply {
        let key = Self.objectKey(namespace: resource.namespace ?? "", name: name)
        let object = state.withLock { $0.objects[resource.storageKey]?[key] }
        guard let object else { throw APIError.notFound(resource, name: name) }
        return .json(status: 200, body: object)
    }

    struct ContinueToken {
        var resourceVersion: Int
        var start: String

        var encoded: String {
            let json: JSON = .object(["v": .string("meta.k8s.io/v1"), "rv": .int(Int64(resourceVersion)), "start": .string(start)])
            return json.data.base64EncodedString()
        }

        init(resourceVersion: Int, start: String) {
            self.resourceVersion = resourceVersion
            self.start = start
        }

        init?(_ text: String) {
            guard let data = Data(base64Encoded: text), let json = try? JSON.parse(data),
                  case .int(let rv) = json["rv"] ?? .null, let start = json["start"]?.stringValue
            else { return nil }
            self.resourceVersion = Int(rv)
            self.start = start
        }
    }

    private func filter(_ query: [String: String]) throws -> ObjectFilter {
        do {
            return ObjectFilter(labels: try LabelSelector(query["labelSelector"]), fields: try FieldSelector(query["fieldSelector"]))
        } catch let error as SelectorError {
            throw APIError.badRequest(error.description)
        }
    }

    private func list(_ resource: ResourcePath, query: [String: String]) throws -> Reply {
        let filter = try filter(query)
        var limit: Int?
        if let text = query["limit"], !text.isEmpty {
            guard let value = Int(text), value >= 0 else { throw APIError.badRequest("limit: invalid value \(text.debugDescription)") }
            limit = value > 0 ? value : nil
        }
        return try state.withLock { state in
            var token: ContinueToken?
            if let text = query["continue"], !text.isEmpty {
                guard let parsed = ContinueToken(text), parsed.resourceVersion >= state.historyStart else {
                    throw APIError(code: 410, reason: "Expired",
                                   message: "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.")
                }
                token = parsed
            }
            let prefix = resource.namespace.map { "\($0)/" }
            let stored = state.objects[resource.storageKey] ?? [:]
            var keys = stored.keys.filter { prefix == nil || $0.hasPrefix(prefix!) }.sorted()
            if let token { keys = keys.filter { $0 >= token.start } }
            var items: [JSON] = []
            var continueToken: String?
            var remaining = 0
            for (index, key) in keys.enumerated() {
                guard let object = stored[key], filter.matches(object) else { continue }
                if let limit, items.count == limit {
                    let listRV = token?.resourceVersion ?? state.resourceVersion
                    continueToken = ContinueToken(resourceVersion: listRV, start: keys[index - 1] + "\u{0}").encoded
                    remaining = keys[index...].filter { stored[$0].map(filter.matches) ?? false }.count
                    break
                }
                items.append(object)
            }
            var metadata: [String: JSON] = ["resourceVersion": .string(String(token?.resourceVersion ?? state.resourceVersion))]
            if let continueToken {
                metadata["continue"] = .string(continueToken)
                if filter.isEmpty { metadata["remainingItemCount"] = .int(Int64(remaining)) }
            }
            let list: JSON = .object([
                "kind": .string(kindName(resource, state) + "List"),
                "apiVersion": .string(resource.apiVersion),
                "metadata": .object(metadata),
                "items": .array(items),
            ])
            return .json(status: 200, body: list)
        }
    }

    // MARK: CREATE

    private func create(_ resource: ResourcePath, body: Data) throws -> Reply {
        guard resource.subresource == nil else { throw APIError.methodNotAllowed }
        let defaultKind = state.withLock { kindName(resource, $0) }
        var object = JSON.object(try bodyObject(body, resource, kind: defaultKind))
        let kind = object["kind"]?.stringValue ?? defaultKind
        if object["kind"]?.stringValue?.isEmpty ?? true { object["kind"] = .string(kind) }
        if object["apiVersion"]?.stringValue?.isEmpty ?? true { object["apiVersion"] = .string(resource.apiVersion) }

        let givenName = Self.meta(object, "name")?.stringValue ?? ""
        let generateName = Self.meta(object, "generateName")?.stringValue ?? ""
        if givenName.isEmpty && generateName.isEmpty {
            throw APIError.invalid(resource, kind: kind, name: "", field: "metadata.name", causeReason: "FieldValueRequired",
                                   detail: "Required value: name or generateName is required")
        }
        if let namespace = resource.namespace {
            let bodyNamespace = Self.meta(object, "namespace")?.stringValue ?? ""
            guard bodyNamespace.isEmpty || bodyNamespace == namespace else {
                throw APIError.badRequest("the namespace of the provided object does not match the namespace sent on the request")
            }
            Self.setMeta(&object, "namespace", .string(namespace))
        } else {
            Self.setMeta(&object, "namespace", nil)
        }
        let namespace = resource.namespace ?? ""

        return try state.withLock { state in
            var name = givenName
            if name.isEmpty {
                // Like the real server, try a few suffixes before giving up with AlreadyExists.
                for _ in 0..<8 {
                    name = generateName + Self.randomSuffix()
                    if state.objects[resource.storageKey]?[Self.objectKey(namespace: namespace, name: name)] == nil { break }
                }
            }
            if let problem = Self.nameProblem(name, group: resource.group) {
                throw APIError.invalid(resource, kind: kind, name: name, field: "metadata.name", causeReason: "FieldValueInvalid", detail: problem)
            }
            let key = Self.objectKey(namespace: namespace, name: name)
            if state.objects[resource.storageKey]?[key] != nil {
                throw APIError.alreadyExists(resource, name: name)
            }
            let rv = nextResourceVersion(&state)
            Self.setMeta(&object, "name", .string(name))
            Self.setMeta(&object, "uid", .string(UUID().uuidString.lowercased()))
            Self.setMeta(&object, "creationTimestamp", .string(Self.timestamp()))
            Self.setMeta(&object, "resourceVersion", .string(String(rv)))
            Self.setMeta(&object, "generation", .int(1))
            Self.setMeta(&object, "deletionTimestamp", nil)
            Self.setMeta(&object, "deletionGracePeriodSeconds", nil)
            state.objects[resource.storageKey, default: [:]][key] = object
            if state.kinds[resource.storageKey] == nil { state.kinds[resource.storageKey] = kind }
            record(HistoryEvent(resourceVersion: rv, storageKey: resource.storageKey, namespace: namespace, type: .added, object: object), &state)
            return .json(status: 201, body: object)
        }
    }

    // MARK: UPDATE and PATCH

    private func update(_ resource: ResourcePath, name: String, body: Data, statusOnly: Bool) throws -> Reply {
        let kind = state.withLock { kindName(resource, $0) }
        let object = JSON.object(try bodyObject(body, resource, kind: kind))
        return try state.withLock { state in
            try write(resource, name: name, proposed: { _ in object }, statusOnly: statusOnly, &state)
        }
    }

    private func patch(_ resource: ResourcePath, name: String, contentType: String?, body: Data, statusOnly: Bool) throws -> Reply {
        let mediaType = (contentType ?? "").split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        let patchDocument: JSON
        switch mediaType {
        case "application/merge-patch+json", "application/strategic-merge-patch+json", "application/json-patch+json":
            do {
                patchDocument = try JSON.parse(body)
            } catch {
                throw APIError.badRequest("error decoding patch: \(error)")
            }
        default:
            throw APIError(code: 415, message: "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json")
        }
        let transform: (JSON) throws -> JSON
        if mediaType == "application/json-patch+json" {
            guard case .array(let operations) = patchDocument else {
                throw APIError.badRequest("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
            }
            transform = { existing in
                do {
                    return try Patch.apply(jsonPatch: operations, to: existing)
                } catch let error as PatchError {
                    throw APIError(code: 422, message: "the server rejected our request due to an error in our request",
                                   details: ["causes": .array([.object(["message": .string(error.description)])])])
                }
            }
        } else {
            guard patchDocument.objectValue != nil else {
                throw APIError.badRequest("json: cannot unmarshal non-object into Go value of type map[string]interface {}")
            }
            transform = { existing in Patch.merge(existing, patchDocument) }
        }
        return try state.withLock { state in
            try write(resource, name: name, proposed: transform, statusOnly: statusOnly, &state)
        }
    }

    /// The common path of PUT and PATCH: concurrency check, server-owned fields, status handling,
    /// generation, no-op detection, finalizer completion, event.
    private func write(
        _ resource: ResourcePath, name: String, proposed: (JSON) throws -> JSON, statusOnly: Bool, _ state: inout StoreState
    ) throws -> Reply {
        let namespace = resource.namespace ?? ""
        let key = Self.objectKey(namespace: namespace, name: name)
        guard let existing = state.objects[resource.storageKey]?[key] else { throw APIError.notFound(resource, name: name) }
        var updated = try proposed(existing)
        guard updated.objectValue != nil else { throw APIError.badRequest("the result of the patch is not a JSON object") }
        if let metadata = updated["metadata"], metadata.objectValue == nil {
            throw APIError.badRequest("metadata must be an object")
        }

        let bodyName = Self.meta(updated, "name")?.stringValue ?? ""
        guard bodyName.isEmpty || bodyName == name else {
            throw APIError.badRequest("the name of the object (\(bodyName)) does not match the name on the URL (\(name))")
        }
        let bodyNamespace = Self.meta(updated, "namespace")?.stringValue ?? ""
        guard bodyNamespace.isEmpty || bodyNamespace == namespace else {
            throw APIError.badRequest("the namespace of the provided object does not match the namespace sent on the request")
        }
        let existingRV = Self.meta(existing, "resourceVersion")?.stringValue ?? ""
        if let bodyRV = Self.meta(updated, "resourceVersion")?.stringValue, !bodyRV.isEmpty, bodyRV != existingRV {
            throw APIError.conflict(resource, name: name)
        }
        let existingUID = Self.meta(existing, "uid")?.stringValue ?? ""
        if let bodyUID = Self.meta(updated, "uid")?.stringValue, !bodyUID.isEmpty, bodyUID != existingUID {
            throw APIError.conflict(resource, name: name, why: "Precondition failed: UID in precondition: \(bodyUID), UID in object meta: \(existingUID)")
        }

        if statusOnly {
            var result = existing
            result["status"] = updated["status"]
            updated = result
        } else {
            updated["status"] = existing["status"]
            if updated["kind"]?.stringValue?.isEmpty ?? true { updated["kind"] = existing["kind"] }
            if updated["apiVersion"]?.stringValue?.isEmpty ?? true { updated["apiVersion"] = existing["apiVersion"] }
            for field in ["name", "namespace", "uid", "creationTimestamp", "generation", "deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion"] {
                Self.setMeta(&updated, field, Self.meta(existing, field))
            }
            if (updated["spec"] ?? .null) != (existing["spec"] ?? .null) {
                if case .int(let generation) = Self.meta(existing, "generation") ?? .null {
                    Self.setMeta(&updated, "generation", .int(generation + 1))
                } else {
                    Self.setMeta(&updated, "generation", .int(1))
                }
            }
        }
        // A write that changes nothing is not a write: no new resourceVersion, no event.
        if updated == existing { return .json(status: 200, body: existing) }

        let rv = nextResourceVersion(&state)
        Self.setMeta(&updated, "resourceVersion", .string(String(rv)))
        let finalizers = Self.meta(updated, "finalizers")?.arrayValue ?? []
        if Self.meta(updated, "deletionTimestamp") != nil, finalizers.isEmpty {
            state.objects[resource.storageKey]?[key] = nil
            record(HistoryEvent(resourceVersion: rv, storageKey: resource.storageKey, namespace: namespace, type: .deleted, object: updated), &state)
            return .json(status: 200, body: updated)
        }
        state.objects[resource.storageKey]?[key] = updated
        record(HistoryEvent(resourceVersion: rv, storageKey: resource.storageKey, namespace: namespace, type: .modified,
                            object: updated, previous: existing), &state)
        return .json(status: 200, body: updated)
    }

    // MARK: DELETE

    struct DeleteOptions {
        var propagationPolicy: String?
        var uid: String?
        var resourceVersion: String?
        var orphanDependents: Bool?
    }

    static func deleteOptions(query: [String: String], body: Data) throws -> DeleteOptions {
        var options = DeleteOptions(propagationPolicy: query["propagationPolicy"])
        if let orphan = query["orphanDependents"] { options.orphanDependents = orphan == "true" }
        let trimmed = String(decoding: body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { return options }
        guard case .object(let object) = (try? JSON.parse(body)) ?? .null else {
            throw APIError.badRequest("the body of the request was in an unknown format - DeleteOptions must be a JSON object")
        }
        if let policy = object["propagationPolicy"]?.stringValue { options.propagationPolicy = policy }
        if case .bool(let orphan) = object["orphanDependents"] ?? .null { options.orphanDependents = orphan }
        if let preconditions = object["preconditions"] {
            options.uid = preconditions["uid"]?.stringValue
            options.resourceVersion = preconditions["resourceVersion"]?.stringValue
        }
        return options
    }

    private func delete(_ resource: ResourcePath, name: String, query: [String: String], body: Data) throws -> Reply {
        let options = try Self.deleteOptions(query: query, body: body)
        if let policy = options.propagationPolicy, !["Orphan", "Background", "Foreground"].contains(policy) {
            throw APIError(code: 422, message: "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"\(policy)\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\"")
        }
        return try state.withLock { state in
            let namespace = resource.namespace ?? ""
            let key = Self.objectKey(namespace: namespace, name: name)
            guard let existing = state.objects[resource.storageKey]?[key] else { throw APIError.notFound(resource, name: name) }
            let existingUID = Self.meta(existing, "uid")?.stringValue ?? ""
            if let uid = options.uid, uid != existingUID {
                throw APIError.conflict(resource, name: name, why: "Precondition failed: UID in precondition: \(uid), UID in object meta: \(existingUID)")
            }
            let existingRV = Self.meta(existing, "resourceVersion")?.stringValue ?? ""
            if let rv = options.resourceVersion, rv != existingRV {
                throw APIError.conflict(resource, name: name, why: "Precondition failed: ResourceVersion in precondition: \(rv), ResourceVersion in meta: \(existingRV)")
            }
            let finalizers = Self.meta(existing, "finalizers")?.arrayValue ?? []
            if !finalizers.isEmpty {
                // Graceful: mark and wait for the finalizers to be removed by their owners.
                let status = options.orphanDependents == false ? 202 : 200
                if Self.meta(existing, "deletionTimestamp") != nil { return .json(status: status, body: existing) }
                var marked = existing
                let rv = nextResourceVersion(&state)
                Self.setMeta(&marked, "deletionTimestamp", .string(Self.timestamp()))
                Self.setMeta(&marked, "deletionGracePeriodSeconds", .int(0))
                Self.setMeta(&marked, "resourceVersion", .string(String(rv)))
                if case .int(let generation) = Self.meta(existing, "generation") ?? .null {
                    Self.setMeta(&marked, "generation", .int(generation + 1))
                }
                state.objects[resource.storageKey]?[key] = marked
                record(HistoryEvent(resourceVersion: rv, storageKey: resource.storageKey, namespace: namespace, type: .modified,
                                    object: marked, previous: existing), &state)
                return .json(status: status, body: marked)
            }
            let deleted = remove(resource.storageKey, key: key, namespace: namespace, &state)
            if resource.group.isEmpty, resource.plural == "namespaces", resource.namespace == nil {
                removeNamespaceContents(name, &state)
            }
            return .json(status: 200, body: deleted)
        }
    }

    /// Removes an object now, with a DELETED event carrying the deletion's resourceVersion.
    @discardableResult
    private func remove(_ storageKey: String, key: String, namespace: String, _ state: inout StoreState) -> JSON {
        guard var object = state.objects[storageKey]?.removeValue(forKey: key) else { return .null }
        let rv = nextResourceVersion(&state)
        Self.setMeta(&object, "resourceVersion", .string(String(rv)))
        record(HistoryEvent(resourceVersion: rv, storageKey: storageKey, namespace: namespace, type: .deleted, object: object), &state)
        return object
    }

    /// Deleting a Namespace deletes what is in it (at once; the real server does this in the
    /// namespace controller, asynchronously).
    private func removeNamespaceContents(_ namespace: String, _ state: inout StoreState) {
        for storageKey in state.objects.keys.sorted() {
            let keys = (state.objects[storageKey] ?? [:]).keys.filter { $0.hasPrefix("\(namespace)/") }.sorted()
            for key in keys { remove(storageKey, key: key, namespace: namespace, &state) }
        }
    }

    private func deleteCollection(_ resource: ResourcePath, query: [String: String], body: Data) throws -> Reply {
        let filter = try filter(query)
        _ = try Self.deleteOptions(query: query, body: body)
        return state.withLock { state in
            let prefix = resource.namespace.map { "\($0)/" }
            let stored = state.objects[resource.storageKey] ?? [:]
            var items: [JSON] = []
            for key in stored.keys.sorted() where prefix == nil || key.hasPrefix(prefix!) {
                guard let object = stored[key], filter.matches(object) else { continue }
                let namespace = Self.meta(object, "namespace")?.stringValue ?? ""
                if !(Self.meta(object, "finalizers")?.arrayValue ?? []).isEmpty {
                    guard Self.meta(object, "deletionTimestamp") == nil else { items.append(object); continue }
                    var marked = object
                    let rv = nextResourceVersion(&state)
                    Self.setMeta(&marked, "deletionTimestamp", .string(Self.timestamp()))
                    Self.setMeta(&marked, "deletionGracePeriodSeconds", .int(0))
                    Self.setMeta(&marked, "resourceVersion", .string(String(rv)))
                    state.objects[resource.storageKey]?[key] = marked
                    record(HistoryEvent(resourceVersion: rv, storageKey: resource.storageKey, namespace: namespace, type: .modified,
                                        object: marked, previous: object), &state)
                    items.append(marked)
                } else {
                    items.append(remove(resource.storageKey, key: key, namespace: namespace, &state))
                }
            }
            return .json(status: 200, body: .object([
                "kind": .string(kindName(resource, state) + "List"),
                "apiVersion": .string(resource.apiVersion),
                "metadata": .object(["resourceVersion": .string(String(state.resourceVersion))]),
                "items": .array(items),
            ]))
        }
    }

    // MARK: WATCH

    private func openWatch(_ resource: ResourcePath, query: [String: String]) throws -> Reply {
        let filter = try filter(query)
        let allowBookmarks = query["allowWatchBookmarks"] == "true" || query["allowWatchBookmarks"] == "1"
        let sendInitialEvents = query["sendInitialEvents"] == "true"
        var timeoutSeconds: Int?
        if let text = query["timeoutSeconds"], !text.isEmpty {
            guard let value = Int(text), value >= 0 else { throw APIError.badRequest("timeoutSeconds: invalid value \(text.debugDescription)") }
            timeoutSeconds = value > 0 ? value : nil
        }
        let requestedRV: Int?
        if let text = query["resourceVersion"], !text.isEmpty {
            guard let value = Int(text), value >= 0 else {
                throw APIError.badRequest("resourceVersion: Invalid value: \(text.debugDescription): must be a non-negative integer")
            }
            requestedRV = value
        } else {
            requestedRV = nil
        }
        let id = UUID()
        return state.withLock { state in
            let kind = kindName(resource, state)
            var stream = WatchStream(id: id, kind: kind, apiVersion: resource.apiVersion, initial: [], expired: nil, signals: nil,
                                     dropAfterEvents: state.dropWatchesAfter, timeoutSeconds: timeoutSeconds)
            if let rv = requestedRV, rv > 0, rv < state.historyStart, !sendInitialEvents {
                stream.expired = APIError(code: 410, reason: "Expired", message: "too old resource version: \(rv) (\(state.historyStart + 1))")
                return .watch(stream)
            }
            let (signals, continuation) = AsyncStream<WatchSignal>.makeStream()
            let registered = Watcher(storageKey: resource.storageKey, namespace: resource.namespace, filter: filter,
                                     allowBookmarks: allowBookmarks, continuation: continuation)
            if let rv = requestedRV, rv > 0, !sendInitialEvents {
                for event in state.history where event.resourceVersion > rv {
                    if let (type, object) = registered.translate(event) { stream.initial.append(.event(type: type, object: object)) }
                }
            } else {
                let prefix = resource.namespace.map { "\($0)/" }
                let stored = state.objects[resource.storageKey] ?? [:]
                for key in stored.keys.sorted() where prefix == nil || key.hasPrefix(prefix!) {
                    if let object = stored[key], filter.matches(object) { stream.initial.append(.event(type: "ADDED", object: object)) }
                }
                if sendInitialEvents, allowBookmarks {
                    stream.initial.append(.bookmark(resourceVersion: -state.resourceVersion))  // negative: initial-events-end
                }
            }
            if state.stopped { continuation.yield(.abort) }
            state.watchers[id] = registered
            stream.signals = signals
            return .watch(stream)
        }
    }

    /// Binds a stream to its connection; a stream whose client is already gone ends at once.
    func attach(stream id: UUID, to channel: ObjectIdentifier) {
        state.withLock { state in
            // Every request's connection is in `channels` until it is gone (which also keeps the
            // Channel alive, so its ObjectIdentifier cannot be reused meanwhile).
            if state.channels[channel] == nil {
                state.watchers[id]?.continuation.yield(.abort)
                state.logFollowers[id]?.continuation.yield(.abort)
            } else {
                state.streamsByChannel[channel, default: []].insert(id)
            }
        }
    }

    /// The client of a connection went away (or the connection closed): end its streams.
    func connectionGone(_ channel: ObjectIdentifier) {
        state.withLock { state in
            for id in state.streamsByChannel.removeValue(forKey: channel) ?? [] {
                state.watchers[id]?.continuation.yield(.abort)
                state.logFollowers[id]?.continuation.yield(.abort)
            }
            state.channels.removeValue(forKey: channel)
        }
    }

    func removeWatcher(_ id: UUID) {
        let watcher = state.withLock { $0.watchers.removeValue(forKey: id) }
        watcher?.continuation.finish()
    }

    /// One line of a watch stream.
    static func watchLine(type: String, object: JSON) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeString("{\"type\":\"\(type)\",\"object\":")
        buffer.writeBytes(object.data)
        buffer.writeString("}\n")
        return buffer
    }

    static func bookmarkObject(kind: String, apiVersion: String, resourceVersion: Int) -> JSON {
        var metadata: [String: JSON] = ["resourceVersion": .string(String(abs(resourceVersion)))]
        if resourceVersion < 0 { metadata["annotations"] = .object(["k8s.io/initial-events-end": .string("true")]) }
        return .object(["kind": .string(kind), "apiVersion": .string(apiVersion), "metadata": .object(metadata)])
    }

    // MARK: Pod logs

    static func logKey(namespace: String, pod: String, container: String) -> String { "\(namespace)/\(pod)/\(container)" }

    private func podLogs(_ resource: ResourcePath, pod: String, query: [String: String]) throws -> Reply {
        let namespace = resource.namespace ?? ""
        let follow = query["follow"] == "true" || query["follow"] == "1"
        let timestamps = query["timestamps"] == "true" || query["timestamps"] == "1"
        var tailLines: Int?
        if let text = query["tailLines"], !text.isEmpty {
            guard let value = Int(text), value >= 0 else { throw APIError.badRequest("tailLines: invalid value \(text.debugDescription)") }
            tailLines = value
        }
        var sinceSeconds: Int?
        if let text = query["sinceSeconds"], !text.isEmpty {
            guard let value = Int(text), value > 0 else { throw APIError.badRequest("sinceSeconds: must be greater than 0") }
            sinceSeconds = value
        }
        let id = UUID()
        return try state.withLock { state in
            let podObject = state.objects["/pods"]?[Self.objectKey(namespace: namespace, name: pod)]
            let logPrefix = "\(namespace)/\(pod)/"
            let logContainers = state.logs.keys.filter { $0.hasPrefix(logPrefix) }.map { String($0.dropFirst(logPrefix.count)) }.sorted()
            let specContainers = (podObject?["spec"]?["containers"]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue }
            guard podObject != nil || !logContainers.isEmpty else { throw APIError.notFound(resource, name: pod) }
            let known = specContainers.isEmpty ? logContainers : specContainers
            let container: String
            if let requested = query["container"], !requested.isEmpty {
                guard known.contains(requested) || logContainers.contains(requested) else {
                    throw APIError.badRequest("container \(requested) is not valid for pod \(pod)")
                }
                container = requested
            } else if known.count == 1 {
                container = known[0]
            } else if known.isEmpty {
                container = ""
            } else {
                throw APIError.badRequest("a container name must be specified for pod \(pod), choose one of: [\(known.joined(separator: " "))]")
            }
            let key = Self.logKey(namespace: namespace, pod: pod, container: container)
            var lines = state.logs[key] ?? []
            if let sinceSeconds {
                let cutoff = Date().addingTimeInterval(-Double(sinceSeconds))
                lines = lines.filter { $0.time >= cutoff }
            }
            if let tailLines { lines = Array(lines.suffix(tailLines)) }
            let text = lines.map { Self.logText($0, timestamps: timestamps) }.joined()
            var stream = LogStream(id: id, text: text, signals: nil, timestamps: timestamps)
            guard follow else { return .logs(stream) }
            let (signals, continuation) = AsyncStream<LogSignal>.makeStream()
            if state.stopped { continuation.yield(.abort) }
            state.logFollowers[id] = LogFollower(key: key, continuation: continuation)
            stream.signals = signals
            return .logs(stream)
        }
    }

    static func logText(_ line: LogLine, timestamps: Bool) -> String {
        guard timestamps else { return line.text + "\n" }
        let stamp = line.time.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
        return "\(stamp) \(line.text)\n"
    }

    func removeLogFollower(_ id: UUID) {
        let follower = state.withLock { $0.logFollowers.removeValue(forKey: id) }
        follower?.continuation.finish()
    }

    func appendPodLog(namespace: String, pod: String, container: String, lines: [String]) {
        let now = Date()
        let key = Self.logKey(namespace: namespace, pod: pod, container: container)
        // Lines with embedded newlines are split, as a container's stdout would be.
        let split = lines.flatMap { $0.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) }
        state.withLock { state in
            state.logs[key, default: []].append(contentsOf: split.map { LogLine(time: now, text: $0) })
            for follower in state.logFollowers.values where follower.key == key {
                for line in split { follower.continuation.yield(.line(LogLine(time: now, text: line))) }
            }
        }
    }

    // MARK: Fault injection and control

    func sendBookmark() {
        state.withLock { state in
            for watcher in state.watchers.values where watcher.allowBookmarks {
                watcher.continuation.yield(.bookmark(resourceVersion: state.resourceVersion))
            }
        }
    }

    func compact() {
        state.withLock { state in
            state.history.removeAll()
            state.historyStart = state.resourceVersion
        }
    }
}
