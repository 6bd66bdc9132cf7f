import Foundation
import KubeAPI
import Synchronization

/// Where pod logs come from. The API server asks the pod's node, as kube-apiserver asks the
/// kubelet; the process node serves `/containerLogs/NS/POD/CONTAINER` (see `KubeletLogSource`).
public protocol PodLogSource: Sendable {
    func logs(pod: JSONObject, node: JSONObject?, options: PodLogOptions) async throws -> AsyncThrowingStream<Data, any Error>
}

/// The Kubernetes API semantics over `APIStorage`: verbs, subresources, selectors, paging,
/// watches, dry runs, finalizers, cascading deletion and CRD registration.
final class APIHandler: Sendable {
    let storage: APIStorage
    let registry: ResourceRegistry
    let serverAddress: String
    let logSource: (any PodLogSource)?
    let bookmarkInterval: Duration
    /// Every request answered, for `/metrics`.
    let requests = RequestCounter()

    init(storage: APIStorage, registry: ResourceRegistry, serverAddress: String, logSource: (any PodLogSource)?,
         bookmarkInterval: Duration = .seconds(10)) throws {
        self.storage = storage
        self.registry = registry
        self.serverAddress = serverAddress
        self.logSource = logSource
        self.bookmarkInterval = bookmarkInterval
        // CRDs stored before a restart are served again at once.
        for crd in storage.list("customresourcedefinitions.apiextensions.k8s.io", namespace: nil).objects {
            if let resources = try? ObjectLifecycle.servedResources(of: crd), let name = crd["metadata"]?["name"].stringValue {
                registry.register(crdName: name, resources: resources)
            }
        }
        try bootstrap()
    }

    /// The namespaces every cluster has.
    private func bootstrap() throws {
        let namespaces = registry.builtIn.first { $0.plural == "namespaces" }!
        for name in ["default", "kube-system", "kube-public", "kube-node-lease"] where storage.get(namespaces.storageKey, namespace: "", name: name) == nil {
            let (object, _, _) = try ObjectLifecycle.prepareCreate(
                ["metadata": ["name": .string(name)], "status": ["phase": "Active"]], resource: namespaces, pathNamespace: nil,
                now: Date(), uid: UUID().uuidString.lowercased(), randomSuffix: "")
            try storage.commit(.create, resource: namespaces.storageKey, namespace: "", name: name, object: object)
        }
    }

    func handle(_ request: APIRequest) async -> APIResponse {
        let response: APIResponse
        do {
            response = try await route(request)
        } catch let error as APIError {
            response = .json(error.code, error.body)
        } catch {
            response = .json(500, APIError(code: 500, reason: "InternalError", message: "\(error)").body)
        }
        requests.record(RequestKind(request, code: response.statusCode))
        return response
    }

    private func route(_ request: APIRequest) async throws -> APIResponse {
        guard let path = APIPath.parse(request.path) else {
            throw APIError(code: 404, reason: "NotFound", message: "the server could not find the requested resource")
        }
        switch path {
        case .version: return .json(200, Discovery.version())
        case .health: return .text(200, "ok", contentType: "text/plain")
        case .metrics:
            // Who calls whom is for the cluster's administrators only, as with kube-apiserver's RBAC default.
            guard request.user.groups.contains("system:masters") else {
                throw APIError(code: 403, reason: "Forbidden", message: "forbidden: User \"\(request.user.name)\" cannot get path \"/metrics\"")
            }
            return .text(200, requests.exposition(), contentType: "text/plain; version=0.0.4; charset=utf-8")
        case .coreVersions: return .json(200, Discovery.coreVersions(serverAddress: serverAddress))
        case .groups: return .json(200, Discovery.groupList(registry))
        case .group(let name):
            guard let group = registry.groups.first(where: { $0.name == name }) else {
                throw APIError(code: 404, reason: "NotFound", message: "the server could not find the requested resource")
            }
            return .json(200, Discovery.group(group.name, group.versions))
        case .resources(let group, let version):
            guard let list = Discovery.resourceList(registry, group: group, version: version) else {
                throw APIError(code: 404, reason: "NotFound", message: "the server could not find the requested resource")
            }
            return .json(200, list)
        case .openAPIv3Index:
            return .json(200, OpenAPIDocuments.index(registry))
        case .openAPIv3(let group, let version):
            guard let document = OpenAPIDocuments.document(registry, group: group, version: version) else {
                throw APIError(code: 404, reason: "NotFound", message: "the server could not find the requested resource")
            }
            return .json(200, document)
        case .openAPIv2:
            // Only v3 is published; clients that find v3 do not ask for v2.
            throw APIError(code: 404, reason: "NotFound", message: "the server could not find the requested resource")
        case .resource(let target):
            guard let resource = registry.find(group: target.group, version: target.version, plural: target.plural) else {
                throw APIError(code: 404, reason: "NotFound", message: "the server could not find the requested resource")
            }
            return try await resourceRequest(request, resource: resource, target: target)
        }
    }

    // MARK: - Resources

    private func resourceRequest(_ request: APIRequest, resource: ServedResource, target: APIPath.ResourcePath) async throws -> APIResponse {
        var request = request
        if !request.body.isEmpty, request.contentType.contains("protobuf") || request.contentType.contains("cbor") {
            // JSON is this server's format; the few kinds kubectl only ever sends as protobuf are read here.
            guard request.contentType.contains("protobuf"), let decoded = ProtobufBodies.decode(Array(request.body)) else {
                throw APIError(code: 415, reason: "UnsupportedMediaType",
                               message: "the body of the request was in an unknown format - accepted media types include: application/json, application/merge-patch+json, application/json-patch+json, application/strategic-merge-patch+json")
            }
            request.body = JSONWriter.data(decoded)
            request.contentType = "application/json"
        }
        if !resource.namespaced, target.namespace != nil {
            throw APIError(code: 404, reason: "NotFound", message: "the server could not find the requested resource")
        }
        if let sub = target.subresource, !resource.subresources.contains(sub) {
            throw APIError(code: 404, reason: "NotFound", message: "the server could not find the requested resource")
        }
        let namespace = resource.namespaced ? target.namespace : nil
        switch (request.method, target.name) {
        case ("GET", nil):
            if request.flag("watch") { return try watch(request, resource: resource, namespace: namespace) }
            return try list(request, resource: resource, namespace: namespace)
        case ("GET", let name?):
            if target.subresource == "log" { return try await podLogs(request, namespace: namespace ?? "", name: name) }
            let object = try fetch(resource, namespace ?? "", name)
            if target.subresource == "scale" { return .json(200, .object(ScaleSubresource.scale(of: object))) }
            if TablePrinter.wantsTable(request.accept) {
                return .json(200, TablePrinter.table(for: resource, objects: [object], resourceVersion: storage.resourceVersion, continueToken: nil,
                                                     includeObject: request.query["includeObject"] ?? "Metadata", now: Date()))
            }
            return .json(200, .object(object))
        case ("POST", let name?) where target.subresource == "binding":
            return try bind(request, namespace: namespace ?? "", name: name)
        case ("POST", nil):
            guard !resource.namespaced || namespace != nil else {
                throw APIError.methodNotAllowed("POST is not allowed on \(resource.plural) across namespaces; name a namespace")
            }
            return try create(request, resource: resource, namespace: namespace)
        case ("PUT", let name?) where target.subresource == "scale", ("PATCH", let name?) where target.subresource == "scale":
            return try rescale(request, resource: resource, namespace: namespace ?? "", name: name)
        case ("PUT", let name?):
            return try update(request, resource: resource, namespace: namespace ?? "", name: name, subresource: target.subresource)
        case ("PATCH", let name?):
            return try patch(request, resource: resource, namespace: namespace ?? "", name: name, subresource: target.subresource)
        case ("DELETE", let name?):
            guard target.subresource == nil else { throw APIError.methodNotAllowed("DELETE is not supported on a subresource") }
            return try delete(request, resource: resource, namespace: namespace ?? "", name: name)
        case ("DELETE", nil):
            return try deleteCollection(request, resource: resource, namespace: namespace)
        default:
            throw APIError.methodNotAllowed("the server does not allow this method on the requested resource")
        }
    }

    private func fetch(_ resource: ServedResource, _ namespace: String, _ name: String) throws(APIError) -> JSONObject {
        guard let object = storage.get(resource.storageKey, namespace: namespace, name: name) else {
            throw APIError.notFound(resource, name)
        }
        return object
    }

    private func parseBody(_ request: APIRequest) throws(APIError) -> JSONObject {
        do {
            return try JSONParser.parseObject(request.body)
        } catch {
            throw APIError.badRequest("the request body is not a JSON object: \(error)")
        }
    }

    private func requireNamespace(_ namespace: String?, for resource: ServedResource) throws(APIError) {
        guard resource.namespaced, let namespace else { return }
        let namespaces = registry.builtIn.first { $0.plural == "namespaces" }!
        guard let object = storage.get(namespaces.storageKey, namespace: "", name: namespace) else {
            throw APIError(code: 404, reason: "NotFound", message: "namespaces \"\(namespace)\" not found",
                           details: ["name": .string(namespace), "kind": "namespaces"])
        }
        if object["metadata"]?["deletionTimestamp"].stringValue != nil {
            throw APIError(code: 403, reason: "Forbidden",
                           message: "\(resource.kind.lowercased()) is forbidden: unable to create new content in namespace \(namespace) because it is being terminated")
        }
    }

    // MARK: List and watch

    private func selectors(_ request: APIRequest) throws(APIError) -> @Sendable (JSONObject) -> Bool {
        let labels = try request.query["labelSelector"].flatMap { $0.isEmpty ? nil : $0 }.map { (text: String) throws(APIError) in try LabelSelector(parsing: text) }
        let fields = try request.query["fieldSelector"].flatMap { $0.isEmpty ? nil : $0 }.map { (text: String) throws(APIError) in try FieldSelector(parsing: text) }
        return { object in
            if let labels {
                let map = (object["metadata"]?["labels"].objectValue ?? [:]).compactMapValues(\.stringValue)
                if !labels.matches(map) { return false }
            }
            if let fields, !fields.matches(object) { return false }
            return true
        }
    }

    private func list(_ request: APIRequest, resource: ServedResource, namespace: String?) throws -> APIResponse {
        let matches = try selectors(request)
        let (all, currentVersion) = storage.list(resource.storageKey, namespace: namespace)
        var objects = all.filter(matches)
        var continueToken: String?
        // Every page reports the first page's resourceVersion, so that a client watching from
        // it after the last page is replayed whatever changed meanwhile, as with Kubernetes.
        var version = currentVersion
        if let token = request.query["continue"], !token.isEmpty {
            let parts = Data(base64Encoded: token).map { String(decoding: $0, as: UTF8.self) }?
                .split(separator: "\u{0}", omittingEmptySubsequences: false).map(String.init) ?? []
            guard parts.count == 3, let first = Int64(parts[0]) else {
                throw APIError.badRequest("continue key is not valid: the token is malformed")
            }
            version = first
            let after = (parts[1], parts[2])
            objects = objects.filter { (($0["metadata"]?["namespace"].stringValue ?? ""), ($0["metadata"]?["name"].stringValue ?? "")) > after }
        }
        if let limit = request.query["limit"].flatMap(Int.init), limit > 0, objects.count > limit {
            objects = Array(objects.prefix(limit))
            let last = objects.last!["metadata"] ?? .null
            continueToken = Data("\(version)\u{0}\(last["namespace"].stringValue ?? "")\u{0}\(last["name"].stringValue ?? "")".utf8).base64EncodedString()
        }
        if TablePrinter.wantsTable(request.accept) {
            return .json(200, TablePrinter.table(for: resource, objects: objects, resourceVersion: version, continueToken: continueToken,
                                                 includeObject: request.query["includeObject"] ?? "Metadata", now: Date()))
        }
        var metadata: JSONObject = ["resourceVersion": .string(String(version))]
        if let continueToken { metadata["continue"] = .string(continueToken) }
        // Written by hand around pre-serialised items would save little; lists are not the hot path.
        return .json(200, .object([
            "kind": .string("\(resource.kind)List"), "apiVersion": .string(resource.apiVersion),
            "metadata": .object(metadata), "items": .array(objects.map(JSONValue.object)),
        ]))
    }

    private func watch(_ request: APIRequest, resource: ServedResource, namespace: String?) throws -> APIResponse {
        let matches = try selectors(request)
        let start: APIStorage.WatchStart
        switch request.query["resourceVersion"] {
        case nil, "", "0": start = .current
        case let text?:
            guard let version = Int64(text) else { throw APIError.badRequest("invalid resourceVersion \"\(text)\"") }
            start = .after(version)
        }
        guard let opened = storage.watch(resource.storageKey, namespace: namespace, from: start) else {
            let requested = request.query["resourceVersion"] ?? ""
            let expired = APIError.gone("too old resource version: \(requested) (\(storage.resourceVersion))")
            return .rawJSON(200, Array(JSONWriter.data(["type": "ERROR", "object": expired.body]).appending(0x0A)))
        }
        let timeout = request.query["timeoutSeconds"].flatMap(Int.init).map { Duration.seconds(min(max(1, $0), 86_400)) }
        return .watch(WatchStream(
            id: opened.id, replay: opened.replay, live: opened.stream, filter: matches, timeout: timeout,
            bookmarks: request.flag("allowWatchBookmarks"), asTable: TablePrinter.wantsTable(request.accept)))
    }

    /// The bytes of one watch event line.
    func eventLine(_ event: StoredEvent, resource: ServedResource, asTable: Bool, firstTable: Bool) -> [UInt8] {
        var line: [UInt8] = Array("{\"type\":\"\(event.kind.rawValue)\",\"object\":".utf8)
        if asTable {
            var table = TablePrinter.table(for: resource, objects: [event.object], resourceVersion: event.resourceVersion,
                                           continueToken: nil, includeObject: "Metadata", now: Date()).objectValue ?? [:]
            if !firstTable { table["columnDefinitions"] = .array([]) }
            JSONWriter.write(.object(table), into: &line)
        } else {
            line.append(contentsOf: event.objectJSON)
        }
        line.append(contentsOf: "}\n".utf8)
        return line
    }

    func bookmarkLine(_ resource: ServedResource, resourceVersion: Int64) -> [UInt8] {
        let object: JSONValue = ["kind": .string(resource.kind), "apiVersion": .string(resource.apiVersion),
                                 "metadata": ["resourceVersion": .string(String(resourceVersion))]]
        return Array(JSONWriter.data(["type": "BOOKMARK", "object": object])) + [0x0A]
    }

    func resource(for storageKey: String) -> ServedResource? {
        registry.all.first { $0.storageKey == storageKey }
    }

    // MARK: Writes

    private func create(_ request: APIRequest, resource: ServedResource, namespace: String?) throws -> APIResponse {
        let body = try parseBody(request)
        try requireNamespace(namespace ?? (resource.namespaced ? (body["metadata"]?["namespace"].stringValue ?? "default") : nil), for: resource)
        let suffix = String((0..<5).map { _ in "bcdfghjklmnpqrstvwxz2456789".randomElement()! })
        let (object, objectNamespace, name) = try ObjectLifecycle.prepareCreate(
            body, resource: resource, pathNamespace: namespace, now: Date(), uid: UUID().uuidString.lowercased(), randomSuffix: suffix)
        var prepared = object
        if resource.storageKey == "customresourcedefinitions.apiextensions.k8s.io" {
            _ = try ObjectLifecycle.servedResources(of: prepared)
        }
        if resource.storageKey == "namespaces" {
            prepared["status"] = ["phase": "Active"]
        }
        let stored: JSONObject
        do {
            stored = try storage.commit(.create, resource: resource.storageKey, namespace: objectNamespace, name: name, object: prepared,
                                        dryRun: request.dryRun)
        } catch APIStorage.StorageError.alreadyExists {
            throw APIError.alreadyExists(resource, name)
        }
        if resource.storageKey == "customresourcedefinitions.apiextensions.k8s.io", !request.dryRun {
            return .json(201, .object(try establish(stored)))
        }
        if !request.dryRun, ownersAllGone(stored, namespace: objectNamespace) {
            // What Kubernetes' garbage collector does soon after: a dependent whose every owner
            // is gone (a controller that acted on a stale cache) is deleted. It is done at once here.
            _ = try? deleteObject(stored, resource: resource, namespace: objectNamespace, name: name, policy: "Background", grace: nil, dryRun: false)
        }
        return .json(201, .object(stored))
    }

    /// The object names owners, and none of them exists (by kind, name and uid).
    private func ownersAllGone(_ object: JSONObject, namespace: String) -> Bool {
        let references = object["metadata"]?["ownerReferences"].arrayValue ?? []
        guard !references.isEmpty else { return false }
        return references.allSatisfy { reference in
            let apiVersion = reference["apiVersion"].stringValue ?? ""
            let group = apiVersion.contains("/") ? String(apiVersion.split(separator: "/")[0]) : ""
            guard let kind = reference["kind"].stringValue, let name = reference["name"].stringValue,
                  let owner = registry.all.first(where: { $0.kind == kind && $0.group == group })
            else { return false }  // an owner of a kind this server does not know: leave it be
            let stored = storage.get(owner.storageKey, namespace: owner.namespaced ? namespace : "", name: name)
            return stored?["metadata"]?["uid"].stringValue != reference["uid"].stringValue
        }
    }

    /// Registers a CRD's versions and marks it Established, as the apiextensions controller does.
    private func establish(_ crd: JSONObject) throws -> JSONObject {
        let resources = try ObjectLifecycle.servedResources(of: crd)
        let name = crd["metadata"]?["name"].stringValue ?? ""
        registry.register(crdName: name, resources: resources)
        var updated = crd
        let now = JSONValue.string(KubeTime.format(Date()))
        updated["status"] = .object([
            "acceptedNames": crd["spec"]?["names"] ?? .object([:]),
            "storedVersions": .array(resources.map { .string($0.version) }),
            "conditions": [
                ["type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now],
                ["type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now],
            ],
        ])
        return try storage.commit(.update(expectedResourceVersion: nil), resource: "customresourcedefinitions.apiextensions.k8s.io",
                                  namespace: "", name: name, object: updated)
    }

    private func update(_ request: APIRequest, resource: ServedResource, namespace: String, name: String, subresource: String?) throws -> APIResponse {
        let body = try parseBody(request)
        let expected = body["metadata"]?["resourceVersion"].stringValue
        return try replace(expected: expected, request: request, resource: resource, namespace: namespace, name: name,
                           subresource: subresource) { _ in body }
    }

    /// PUT or PATCH of a Scale: the request applies to the object's Scale view, and the
    /// replicas it yields go to the object's spec; the answer is the new Scale.
    private func rescale(_ request: APIRequest, resource: ServedResource, namespace: String, name: String) throws -> APIResponse {
        let requested: (JSONObject) throws -> JSONObject
        var expected: String?
        if request.method == "PUT" {
            let body = try parseBody(request)
            expected = body["metadata"]?["resourceVersion"].stringValue
            requested = { _ in body }
        } else {
            let patch = try parsePatch(request, resource: resource)
            requested = { scale in try Self.applyPatch(patch.document, mediaType: patch.mediaType, to: scale) }
        }
        let response = try replace(expected: expected, request: request, resource: resource, namespace: namespace, name: name,
                                   subresource: nil) { old in
            try ScaleSubresource.apply(try requested(ScaleSubresource.scale(of: old)), to: old)
        }
        guard case .json(let status, .object(let stored)) = response else { return response }
        return .json(status, .object(ScaleSubresource.scale(of: stored)))
    }

    /// A patch body and its media type, checked against what the resource accepts.
    private func parsePatch(_ request: APIRequest, resource: ServedResource) throws -> (document: JSONValue, mediaType: String) {
        let patch: JSONValue
        do {
            patch = try JSONParser.parse(request.body)
        } catch {
            throw APIError.badRequest("the patch is not valid JSON: \(error)")
        }
        let mediaType = request.contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        switch mediaType {
        case "application/merge-patch+json", "application/strategic-merge-patch+json":
            guard patch.objectValue != nil else { throw APIError.badRequest("a merge patch must be a JSON object") }
            if mediaType.hasPrefix("application/strategic"), resource.crdName != nil {
                throw APIError(code: 415, reason: "UnsupportedMediaType",
                               message: "strategic merge patch is not supported for a custom resource; use a merge patch")
            }
        case "application/json-patch+json":
            break
        default:
            throw APIError.unsupportedMediaType(mediaType)
        }
        return (patch, mediaType)
    }

    /// Applies a merge, JSON or strategic merge patch to one object.
    private static func applyPatch(_ patch: JSONValue, mediaType: String, to old: JSONObject) throws -> JSONObject {
        let patched: JSONValue
        do {
            switch mediaType {
            case "application/merge-patch+json": patched = Patches.merge(.object(old), patch)
            case "application/json-patch+json": patched = try Patches.jsonPatch(.object(old), patch)
            default: patched = try Patches.strategicMerge(.object(old), patch)
            }
        } catch let error as Patches.PatchError {
            throw APIError(code: 422, reason: "Invalid", message: error.message)
        }
        guard case .object(let body) = patched else { throw APIError(code: 422, reason: "Invalid", message: "the patch did not produce an object") }
        return body
    }

    private func patch(_ request: APIRequest, resource: ServedResource, namespace: String, name: String, subresource: String?) throws -> APIResponse {
        let (patch, mediaType) = try parsePatch(request, resource: resource)
        let expected = patch["metadata"]["resourceVersion"].stringValue
        // The patch applies to the object as it is at each attempt.
        return try replace(expected: expected, request: request, resource: resource, namespace: namespace, name: name,
                           subresource: subresource) { old in
            try Self.applyPatch(patch, mediaType: mediaType, to: old)
        }
    }

    /// Read, transform, write with the read version as the precondition; on a conflict, read
    /// again and retry, unless the client itself named the version (then the 409 is theirs).
    private func replace(expected: String?, request: APIRequest, resource: ServedResource, namespace: String, name: String,
                         subresource: String?, body makeBody: (JSONObject) throws -> JSONObject) throws -> APIResponse {
        for _ in 0..<32 {
            let old = try fetch(resource, namespace, name)
            let object = try ObjectLifecycle.prepareUpdate(try makeBody(old), old: old, resource: resource, subresource: subresource,
                                                           pathNamespace: namespace, name: name)
            if let expected, !expected.isEmpty, old["metadata"]?["resourceVersion"].stringValue != expected {
                throw APIError.conflict(resource, name)
            }
            if object == old {
                return .json(200, .object(old))  // a no-op write keeps the resourceVersion, as Kubernetes does
            }
            if resource.storageKey == "customresourcedefinitions.apiextensions.k8s.io", subresource == nil {
                _ = try ObjectLifecycle.servedResources(of: object)
            }
            let precondition = old["metadata"]?["resourceVersion"].stringValue
            // The last finalizer gone from an object being deleted: it goes, unless it is a pod
            // whose node has yet to stop it (the node finishes with a zero grace period).
            let deleting = object["metadata"]?["deletionTimestamp"].stringValue != nil
            let finalizers = object["metadata"]?["finalizers"].arrayValue ?? []
            let graceLeft = (object["metadata"]?["deletionGracePeriodSeconds"].intValue ?? 0) > 0 && resource.storageKey == "pods"
            do {
                if deleting, finalizers.isEmpty, !graceLeft {
                    let removed = try storage.commit(.delete(expectedResourceVersion: precondition), resource: resource.storageKey,
                                                     namespace: namespace, name: name, object: object, dryRun: request.dryRun)
                    if !request.dryRun { try afterDelete(removed, resource: resource, policy: "Background") }
                    return .json(200, .object(removed))
                }
                let stored = try storage.commit(.update(expectedResourceVersion: precondition), resource: resource.storageKey,
                                                namespace: namespace, name: name, object: object, dryRun: request.dryRun)
                if resource.storageKey == "customresourcedefinitions.apiextensions.k8s.io", subresource == nil, !request.dryRun {
                    return .json(200, .object(try establish(stored)))
                }
                return .json(200, .object(stored))
            } catch APIStorage.StorageError.conflict {
                continue
            } catch APIStorage.StorageError.notFound {
                throw APIError.notFound(resource, name)
            }
        }
        throw APIError.conflict(resource, name)
    }

    /// The same loop for the server's own changes: `change` returns nil when nothing is to do.
    @discardableResult
    func guaranteedUpdate(_ resource: ServedResource, namespace: String, name: String,
                          _ change: (JSONObject) throws -> JSONObject?) throws -> JSONObject? {
        for _ in 0..<32 {
            guard let old = storage.get(resource.storageKey, namespace: namespace, name: name) else { return nil }
            guard let new = try change(old) else { return old }
            do {
                return try storage.commit(.update(expectedResourceVersion: old["metadata"]?["resourceVersion"].stringValue),
                                          resource: resource.storageKey, namespace: namespace, name: name, object: new)
            } catch APIStorage.StorageError.conflict {
                continue
            }
        }
        throw APIError.conflict(resource, name)
    }

    // MARK: Delete

    private func deleteOptions(_ request: APIRequest) throws(APIError) -> (policy: String?, uid: String?, version: String?, grace: Int?) {
        var policy = request.query["propagationPolicy"]
        var grace = request.query["gracePeriodSeconds"].flatMap(Int.init)
        var uid: String?
        var version: String?
        if !request.body.isEmpty {
            let body = try parseBody(request)
            policy = body["propagationPolicy"]?.stringValue ?? policy
            grace = body["gracePeriodSeconds"]?.intValue.map(Int.init) ?? grace
            uid = body["preconditions"]?["uid"].stringValue
            version = body["preconditions"]?["resourceVersion"].stringValue
            if body["orphanDependents"]?.boolValue == true { policy = "Orphan" }
        }
        if let policy, !["Orphan", "Background", "Foreground"].contains(policy) {
            throw APIError.invalid(kind: "DeleteOptions", group: "", name: "",
                                   causes: [.notSupported("propagationPolicy", .string(policy), ["Foreground", "Background", "Orphan"])])
        }
        return (policy, uid, version, grace)
    }

    private func delete(_ request: APIRequest, resource: ServedResource, namespace: String, name: String) throws -> APIResponse {
        let options = try deleteOptions(request)
        let old = try fetch(resource, namespace, name)
        if let uid = options.uid, old["metadata"]?["uid"].stringValue != uid {
            throw APIError(code: 409, reason: "Conflict",
                           message: "Precondition failed: UID in precondition: \(uid), UID in object meta: \(old["metadata"]?["uid"].stringValue ?? "")")
        }
        if let version = options.version, old["metadata"]?["resourceVersion"].stringValue != version {
            throw APIError(code: 409, reason: "Conflict",
                           message: "Precondition failed: ResourceVersion in precondition: \(version), ResourceVersion in object meta: \(old["metadata"]?["resourceVersion"].stringValue ?? "")")
        }
        let result = try deleteObject(old, resource: resource, namespace: namespace, name: name, policy: options.policy ?? "Background",
                                      grace: options.grace, dryRun: request.dryRun)
        return .json(200, .object(result))
    }

    /// Deletes one object: graceful for pods bound to a node, deferred while finalizers remain,
    /// and cascading to dependents according to `policy`.
    @discardableResult
    private func deleteObject(_ initial: JSONObject, resource: ServedResource, namespace: String, name: String, policy: String,
                              grace: Int?, dryRun: Bool) throws -> JSONObject {
        var old = initial
        for _ in 0..<32 {
            let precondition = old["metadata"]?["resourceVersion"].stringValue
            var metadata = old["metadata"]?.objectValue ?? [:]
            var finalizers = metadata["finalizers"]?.arrayValue ?? []
            if policy == "Foreground", !finalizers.contains("foregroundDeletion") { finalizers.append("foregroundDeletion") }
            if policy == "Orphan", !finalizers.contains("orphan") { finalizers.append("orphan") }
            let requested = grace ?? Int(clamping: old["spec"]?["terminationGracePeriodSeconds"].intValue ?? 30)
            let podGrace = resource.storageKey == "pods" && old["spec"]?["nodeName"].stringValue != nil ? min(max(requested, 0), 86_400 * 365) : 0
            do {
                if !finalizers.isEmpty || podGrace > 0 {
                    if metadata["deletionTimestamp"] == nil {
                        metadata["deletionTimestamp"] = .string(KubeTime.format(Date().addingTimeInterval(TimeInterval(podGrace))))
                        metadata["deletionGracePeriodSeconds"] = .int(Int64(podGrace))
                    }
                    metadata["finalizers"] = finalizers.isEmpty ? nil : .array(finalizers)
                    var marked = old
                    marked["metadata"] = .object(metadata.filter { !$0.value.isNull })
                    if marked == old { return old }
                    let stored = try storage.commit(.update(expectedResourceVersion: precondition), resource: resource.storageKey,
                                                    namespace: namespace, name: name, object: marked, dryRun: dryRun)
                    if !dryRun { try processDeletionFinalizers(stored, resource: resource) }
                    return storage.get(resource.storageKey, namespace: namespace, name: name) ?? stored
                }
                let removed = try storage.commit(.delete(expectedResourceVersion: precondition), resource: resource.storageKey,
                                                 namespace: namespace, name: name, object: old, dryRun: dryRun)
                if !dryRun { try afterDelete(removed, resource: resource, policy: policy) }
                return removed
            } catch APIStorage.StorageError.conflict {
                guard let fresh = storage.get(resource.storageKey, namespace: namespace, name: name) else { throw APIError.notFound(resource, name) }
                old = fresh
            }
        }
        throw APIError.conflict(resource, name)
    }

    /// Acts on the garbage collector's finalizers at once: orphan releases the dependents;
    /// foreground deletes them, and the owner stays until none with blockOwnerDeletion is left
    /// (the last one to go calls this again, see `releaseWaitingOwners`). Then the finalizer
    /// is removed.
    private func processDeletionFinalizers(_ object: JSONObject, resource: ServedResource) throws {
        let finalizers = object["metadata"]?["finalizers"].arrayValue?.compactMap(\.stringValue) ?? []
        guard finalizers.contains("foregroundDeletion") || finalizers.contains("orphan") else { return }
        let namespace = object["metadata"]?["namespace"].stringValue ?? ""
        let name = object["metadata"]?["name"].stringValue ?? ""
        let orphan = finalizers.contains("orphan")
        try cascade(from: object, policy: orphan ? "Orphan" : "Foreground")
        if !orphan, let uid = object["metadata"]?["uid"].stringValue,
           dependents(of: uid, namespace: object["metadata"]?["namespace"].stringValue).contains(where: { $0.reference["blockOwnerDeletion"].boolValue == true }) {
            return
        }
        let released = try guaranteedUpdate(resource, namespace: namespace, name: name) { current in
            var metadata = current["metadata"]?.objectValue ?? [:]
            let remaining = (metadata["finalizers"]?.arrayValue ?? []).filter { $0 != "foregroundDeletion" && $0 != "orphan" }
            metadata["finalizers"] = remaining.isEmpty ? nil : .array(remaining)
            var updated = current
            updated["metadata"] = .object(metadata.filter { !$0.value.isNull })
            return updated == current ? nil : updated
        }
        // Nothing holds it any more: it goes (a pod with grace left still waits for its node).
        let graceLeft = resource.storageKey == "pods" && (released?["metadata"]?["deletionGracePeriodSeconds"].intValue ?? 0) > 0
        if let released, (released["metadata"]?["finalizers"].arrayValue ?? []).isEmpty, !graceLeft {
            do {
                let removed = try storage.commit(.delete(expectedResourceVersion: released["metadata"]?["resourceVersion"].stringValue),
                                                 resource: resource.storageKey, namespace: namespace, name: name, object: released)
                try afterDelete(removed, resource: resource, policy: "Background")
            } catch APIStorage.StorageError.conflict {
                // Changed meanwhile: whoever changed it sees the deletionTimestamp and finishes.
            }
        }
    }

    /// A dependent is gone: owners it held in foreground deletion may go now.
    private func releaseWaitingOwners(of removed: JSONObject) throws {
        let namespace = removed["metadata"]?["namespace"].stringValue ?? ""
        for reference in removed["metadata"]?["ownerReferences"].arrayValue ?? [] where reference["blockOwnerDeletion"].boolValue == true {
            guard let name = reference["name"].stringValue,
                  let resource = registry.all.first(where: { $0.kind == reference["kind"].stringValue && $0.apiVersion == reference["apiVersion"].stringValue }),
                  let owner = storage.get(resource.storageKey, namespace: resource.namespaced ? namespace : "", name: name),
                  owner["metadata"]?["uid"] == reference["uid"], owner["metadata"]?["deletionTimestamp"] != nil
            else { continue }
            try processDeletionFinalizers(owner, resource: resource)
        }
    }

    private func afterDelete(_ removed: JSONObject, resource: ServedResource, policy: String) throws {
        if resource.storageKey == "customresourcedefinitions.apiextensions.k8s.io", let name = removed["metadata"]?["name"].stringValue {
            for served in registry.all where served.crdName == name {
                for object in storage.list(served.storageKey, namespace: nil).objects {
                    try storage.commit(.delete(expectedResourceVersion: nil), resource: served.storageKey,
                                       namespace: object["metadata"]?["namespace"].stringValue ?? "", name: object["metadata"]?["name"].stringValue ?? "", object: object)
                }
            }
            registry.unregister(crdName: name)
        }
        if resource.storageKey == "namespaces", let name = removed["metadata"]?["name"].stringValue {
            for served in registry.all where served.namespaced && served.version == (registry.all.first { $0.storageKey == served.storageKey }?.version ?? "") {
                for object in storage.list(served.storageKey, namespace: name).objects {
                    _ = try? deleteObject(object, resource: served, namespace: name, name: object["metadata"]?["name"].stringValue ?? "",
                                      policy: "Background", grace: 0, dryRun: false)
                }
            }
        }
        try cascade(from: removed, policy: policy)
        try releaseWaitingOwners(of: removed)
    }

    /// The objects that name the owner `uid` in their ownerReferences, with that reference.
    private func dependents(of uid: String, namespace ownerNamespace: String?)
        -> [(resource: ServedResource, object: JSONObject, reference: JSONValue)]
    {
        var seen = Set<String>()
        var found: [(resource: ServedResource, object: JSONObject, reference: JSONValue)] = []
        for served in registry.all where seen.insert(served.storageKey).inserted {
            for dependent in storage.list(served.storageKey, namespace: served.namespaced ? ownerNamespace : nil).objects {
                let references = dependent["metadata"]?["ownerReferences"].arrayValue ?? []
                if let reference = references.first(where: { $0["uid"].stringValue == uid }) { found.append((served, dependent, reference)) }
            }
        }
        return found
    }

    /// Deletes (or, for Orphan, releases) the objects that name `owner` in their ownerReferences.
    private func cascade(from owner: JSONObject, policy: String) throws {
        guard let uid = owner["metadata"]?["uid"].stringValue else { return }
        for (served, dependent, _) in dependents(of: uid, namespace: owner["metadata"]?["namespace"].stringValue) {
            let namespace = dependent["metadata"]?["namespace"].stringValue ?? ""
            let name = dependent["metadata"]?["name"].stringValue ?? ""
            if policy == "Orphan" {
                try guaranteedUpdate(served, namespace: namespace, name: name) { current in
                    var metadata = current["metadata"]?.objectValue ?? [:]
                    let remaining = (metadata["ownerReferences"]?.arrayValue ?? []).filter { $0["uid"].stringValue != uid }
                    metadata["ownerReferences"] = remaining.isEmpty ? nil : .array(remaining)
                    var released = current
                    released["metadata"] = .object(metadata.filter { !$0.value.isNull })
                    return released == current ? nil : released
                }
            } else if let current = storage.get(served.storageKey, namespace: namespace, name: name),
                      current["metadata"]?["deletionTimestamp"].isNull ?? true {
                // Read again: deleting one dependent may have deleted others (through an owner
                // in foreground deletion that it released).
                try deleteObject(current, resource: served, namespace: namespace, name: name, policy: policy == "Foreground" ? "Foreground" : "Background",
                                 grace: nil, dryRun: false)
            }
        }
    }

    private func deleteCollection(_ request: APIRequest, resource: ServedResource, namespace: String?) throws -> APIResponse {
        let matches = try selectors(request)
        let options = try deleteOptions(request)
        var deleted: [JSONValue] = []
        for object in storage.list(resource.storageKey, namespace: namespace).objects where matches(object) {
            let result = try deleteObject(object, resource: resource, namespace: object["metadata"]?["namespace"].stringValue ?? "",
                                          name: object["metadata"]?["name"].stringValue ?? "", policy: options.policy ?? "Background",
                                          grace: options.grace, dryRun: request.dryRun)
            deleted.append(.object(result))
        }
        return .json(200, .object(["kind": .string("\(resource.kind)List"), "apiVersion": .string(resource.apiVersion),
                                   "metadata": ["resourceVersion": .string(String(storage.resourceVersion))], "items": .array(deleted)]))
    }

    /// `pods/NAME/binding`: how a scheduler assigns a pod to a node. A pod is bound once.
    private func bind(_ request: APIRequest, namespace: String, name: String) throws -> APIResponse {
        let body = try parseBody(request)
        guard let node = body["target"]?["name"].stringValue, !node.isEmpty else {
            throw APIError.invalid(kind: "Binding", group: "", name: name, causes: [.required("target.name")])
        }
        let pods = registry.builtIn.first { $0.plural == "pods" }!
        let expected = body["metadata"]?["resourceVersion"].stringValue
        _ = try fetch(pods, namespace, name)
        try guaranteedUpdate(pods, namespace: namespace, name: name) { current in
            if let expected, !expected.isEmpty, current["metadata"]?["resourceVersion"].stringValue != expected {
                throw APIError.conflict(pods, name)
            }
            if let bound = current["spec"]?["nodeName"].stringValue, !bound.isEmpty {
                throw APIError(code: 409, reason: "Conflict", message: "pod \(name) is already assigned to node \"\(bound)\"")
            }
            if current["metadata"]?["deletionTimestamp"].isNull == false {
                throw APIError(code: 409, reason: "Conflict", message: "pod \(name) is being deleted")
            }
            guard !request.dryRun else { return nil }
            var pod = current
            var spec = pod["spec"]?.objectValue ?? [:]
            spec["nodeName"] = .string(node)
            pod["spec"] = .object(spec)
            // As kube-apiserver does on binding: PodScheduled=True.
            var status = pod["status"]?.objectValue ?? [:]
            var conditions = (status["conditions"]?.arrayValue ?? []).filter { $0["type"] != "PodScheduled" }
            conditions.append(["type": "PodScheduled", "status": "True", "lastProbeTime": nil, "lastTransitionTime": .string(KubeTime.format(Date()))])
            status["conditions"] = .array(conditions)
            pod["status"] = .object(status)
            return pod
        }
        return .json(201, .object(["kind": "Status", "apiVersion": "v1", "metadata": .object([:]), "status": "Success", "code": 201]))
    }

    // MARK: Logs

    private func podLogs(_ request: APIRequest, namespace: String, name: String) async throws -> APIResponse {
        let pods = registry.builtIn.first { $0.plural == "pods" }!
        let pod = try fetch(pods, namespace, name)
        let containers = pod["spec"]?["containers"].arrayValue?.compactMap { $0["name"].stringValue } ?? []
        let container = request.query["container"] ?? (containers.count == 1 ? containers[0] : "")
        guard !container.isEmpty else {
            throw APIError.badRequest("a container name must be specified for pod \(name), choose one of: [\(containers.joined(separator: " "))]")
        }
        guard containers.contains(container) else {
            throw APIError.badRequest("container \(container) is not valid for pod \(name)")
        }
        guard let nodeName = pod["spec"]?["nodeName"].stringValue, !nodeName.isEmpty else {
            throw APIError.badRequest("pod \(name) does not have a host assigned")
        }
        guard let logSource else {
            throw APIError(code: 503, reason: "ServiceUnavailable", message: "no node serves logs for pod \(name) on node \(nodeName)")
        }
        let node = storage.get("nodes", namespace: "", name: nodeName)
        func count(_ key: String) throws -> Int? {
            guard let text = request.query[key] else { return nil }
            guard let value = Int(text), value >= 0 else { throw APIError.badRequest("\(key) must be a non-negative integer, not \(text)") }
            return value
        }
        let options = PodLogOptions(container: container, follow: request.flag("follow"), tailLines: try count("tailLines"),
                                    limitBytes: try count("limitBytes"), previous: request.flag("previous"),
                                    timestamps: request.flag("timestamps"))
        let stream = try await logSource.logs(pod: pod, node: node, options: options)
        return .logStream(stream)
    }
}

extension Data {
    func appending(_ byte: UInt8) -> Data {
        var copy = self
        copy.append(byte)
        return copy
    }
}
