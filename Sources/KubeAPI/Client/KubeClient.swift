import Foundation
import Logging

/// A Kubernetes REST client: typed and untyped CRUD, patches, the status subresource, watches and
/// pod logs. 429 and 5xx answers are retried with Retry-After or backoff; a 401 makes exec
/// plugins and token files refresh once.
public final class KubeClient: Sendable {
    public let config: ClusterConfig
    public let retryPolicy: RetryPolicy
    /// Timeout for ordinary requests. Watches and log follows have none.
    public let requestTimeout: Duration
    let transport: any HTTPTransport
    let credentials: CredentialProvider
    let userAgent: String
    let logger: Logger

    public init(
        config: ClusterConfig, transport: any HTTPTransport = CurlTransport.shared, retryPolicy: RetryPolicy = RetryPolicy(),
        requestTimeout: Duration = .seconds(30), userAgent: String = "tenops", logger: Logger = Logger(label: "tenops.kubeapi")
    ) {
        self.config = config
        self.transport = transport
        self.retryPolicy = retryPolicy
        self.requestTimeout = requestTimeout
        self.credentials = CredentialProvider(config: config)
        self.userAgent = userAgent
        self.logger = logger
    }

    // MARK: - Raw requests

    /// Sends one request and returns the body of a 2xx answer. Other answers become typed errors.
    public func send(
        method: String, path: String, query: [(String, String)] = [], body: Data? = nil, contentType: String? = nil,
        accept: String = "application/json", timeout: Duration? = nil
    ) async throws(KubeAPIError) -> Data {
        var attempt = 0
        var refreshedCredentials = false
        while true {
            attempt += 1
            let request = try await makeRequest(
                method: method, path: path, query: query, body: body, contentType: contentType, accept: accept,
                timeout: timeout ?? requestTimeout)
            let response: HTTPResponse
            do {
                response = try await transport.perform(request.http, tls: request.tls)
            } catch .cancelled {
                throw .cancelled
            } catch {
                // A broken connection is retried only where repeating the request is harmless.
                if method == "GET", attempt < retryPolicy.maxAttempts {
                    try await pause(retryPolicy.backoff(attempt: attempt))
                    continue
                }
                throw error
            }
            let status = response.head.status
            if (200..<300).contains(status) { return response.body }
            let failure = StatusFailure.decode(code: status, body: response.body, retryAfter: response.head.retryAfterSeconds)
            if status == 401, !refreshedCredentials, await credentials.invalidate() {
                refreshedCredentials = true
                attempt -= 1
                continue
            }
            if Self.isRetryable(status: status, method: method), attempt < retryPolicy.maxAttempts {
                let delay = failure.retryAfter.map { Duration.seconds(min($0, 60)) } ?? retryPolicy.backoff(attempt: attempt)
                logger.debug("retrying after HTTP \(status)", metadata: ["path": "\(path)", "attempt": "\(attempt)"])
                try await pause(delay)
                continue
            }
            throw KubeAPIError.from(failure)
        }
    }

    /// 429 is always safe to retry (the server did not process the request). 5xx is retried for
    /// everything but POST, which could create twice.
    static func isRetryable(status: Int, method: String) -> Bool {
        if status == 429 { return true }
        if [500, 502, 503, 504].contains(status) { return method != "POST" }
        return false
    }

    private func pause(_ duration: Duration) async throws(KubeAPIError) {
        do { try await Task.sleep(for: duration) } catch { throw .cancelled }
    }

    struct PreparedRequest {
        var http: HTTPRequest
        var tls: TLSSettings
    }

    func makeRequest(
        method: String, path: String, query: [(String, String)], body: Data?, contentType: String?, accept: String,
        timeout: Duration?
    ) async throws(KubeAPIError) -> PreparedRequest {
        let auth = try await credentials.current()
        var headers: [(String, String)] = [("Accept", accept), ("User-Agent", userAgent)]
        if let contentType { headers.append(("Content-Type", contentType)) }
        if let token = auth.bearerToken { headers.append(("Authorization", "Bearer \(token)")) }
        var url = config.server + path
        if !query.isEmpty { url += "?" + Query.encode(query) }
        return PreparedRequest(
            http: HTTPRequest(method: method, url: url, headers: headers, body: body, timeout: timeout), tls: auth.tls)
    }

    func decodeObject(_ data: Data, _ what: String) throws(KubeAPIError) -> JSONObject {
        do {
            return try JSONParser.parseObject(data)
        } catch {
            throw .malformedResponse("\(what): \(error)")
        }
    }

    // MARK: - Untyped CRUD

    public func get(_ resource: ResourceType, namespace: String?, name: String) async throws(KubeAPIError) -> JSONObject {
        let data = try await send(method: "GET", path: resource.objectPath(namespace: namespace, name: name))
        return try decodeObject(data, "GET \(resource) \(name)")
    }

    public func list(_ resource: ResourceType, namespace: String?, options: ListOptions = ListOptions()) async throws(KubeAPIError)
        -> ObjectList<UnstructuredObject>
    {
        let data = try await send(method: "GET", path: resource.collectionPath(namespace: namespace), query: options.query)
        let object = try decodeObject(data, "LIST \(resource)")
        guard let items = object["items"]?.arrayValue ?? (object["items"]?.isNull == true ? [] : nil) else {
            throw .malformedResponse("LIST \(resource): the answer has no items array")
        }
        var objects: [UnstructuredObject] = []
        objects.reserveCapacity(items.count)
        for item in items {
            guard var json = item.objectValue else { throw .malformedResponse("LIST \(resource): an item is not an object") }
            // Items in a list omit apiVersion and kind; restore them so every object is self-describing.
            if json["kind"] == nil { json["kind"] = .string(resource.kind) }
            if json["apiVersion"] == nil { json["apiVersion"] = .string(resource.apiVersion) }
            objects.append(UnstructuredObject(json: json))
        }
        let metadata = object["metadata"]?.objectValue ?? [:]
        return ObjectList(
            items: objects, resourceVersion: metadata["resourceVersion"]?.stringValue ?? "",
            continueToken: metadata["continue"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 })
    }

    /// Lists every page.
    public func listAll(_ resource: ResourceType, namespace: String?, options: ListOptions = ListOptions(), pageSize: Int = 500)
        async throws(KubeAPIError) -> ObjectList<UnstructuredObject>
    {
        var options = options
        options.limit = pageSize
        var all: [UnstructuredObject] = []
        while true {
            let page = try await list(resource, namespace: namespace, options: options)
            all.append(contentsOf: page.items)
            guard let next = page.continueToken else {
                return ObjectList(items: all, resourceVersion: page.resourceVersion, continueToken: nil)
            }
            options.continueToken = next
        }
    }

    public func create(_ resource: ResourceType, namespace: String?, object: JSONObject, dryRun: Bool = false) async throws(KubeAPIError)
        -> JSONObject
    {
        let data = try await send(
            method: "POST", path: resource.collectionPath(namespace: namespace), query: dryRun ? [("dryRun", "All")] : [],
            body: JSONWriter.data(object), contentType: "application/json")
        return try decodeObject(data, "POST \(resource)")
    }

    /// PUT. A stale `metadata.resourceVersion` gives `.conflict`.
    public func update(_ resource: ResourceType, namespace: String?, object: JSONObject, subresource: String? = nil)
        async throws(KubeAPIError) -> JSONObject
    {
        guard let name = object["metadata"]?["name"].stringValue else {
            throw .invalid(StatusFailure(code: 422, reason: "Invalid", message: "metadata.name is required for an update"))
        }
        let data = try await send(
            method: "PUT", path: resource.objectPath(namespace: namespace, name: name, subresource: subresource),
            body: JSONWriter.data(object), contentType: "application/json")
        return try decodeObject(data, "PUT \(resource) \(name)")
    }

    public func patch(
        _ resource: ResourceType, namespace: String?, name: String, type: PatchType, patch: JSONValue, subresource: String? = nil
    ) async throws(KubeAPIError) -> JSONObject {
        let data = try await send(
            method: "PATCH", path: resource.objectPath(namespace: namespace, name: name, subresource: subresource),
            body: JSONWriter.data(patch), contentType: type.rawValue)
        return try decodeObject(data, "PATCH \(resource) \(name)")
    }

    /// DELETE. Returns the object as the server last saw it (or the Status it answered with).
    @discardableResult
    public func delete(_ resource: ResourceType, namespace: String?, name: String, options: DeleteOptions = DeleteOptions())
        async throws(KubeAPIError) -> JSONObject
    {
        let data = try await send(
            method: "DELETE", path: resource.objectPath(namespace: namespace, name: name),
            body: JSONWriter.data(options.body), contentType: "application/json")
        return try decodeObject(data, "DELETE \(resource) \(name)")
    }

    // MARK: - Typed CRUD

    public func get<T: KubeObject>(_ type: T.Type, name: String, namespace: String? = nil) async throws(KubeAPIError) -> T {
        T(json: try await get(T.resourceType, namespace: namespace, name: name))
    }

    public func list<T: KubeObject>(_ type: T.Type, namespace: String? = nil, options: ListOptions = ListOptions())
        async throws(KubeAPIError) -> ObjectList<T>
    {
        let page = try await list(T.resourceType, namespace: namespace, options: options)
        return ObjectList(items: page.items.map { T(json: $0.json) }, resourceVersion: page.resourceVersion,
                          continueToken: page.continueToken)
    }

    public func create<T: KubeObject>(_ object: T, dryRun: Bool = false) async throws(KubeAPIError) -> T {
        T(json: try await create(T.resourceType, namespace: object.metadata.namespace, object: object.json, dryRun: dryRun))
    }

    public func update<T: KubeObject>(_ object: T) async throws(KubeAPIError) -> T {
        T(json: try await update(T.resourceType, namespace: object.metadata.namespace, object: object.json))
    }

    /// PUT to `/status`: only the status is written.
    public func updateStatus<T: KubeObject>(_ object: T) async throws(KubeAPIError) -> T {
        T(json: try await update(T.resourceType, namespace: object.metadata.namespace, object: object.json, subresource: "status"))
    }

    public func patch<T: KubeObject>(_ type: T.Type, name: String, namespace: String? = nil, patchType: PatchType, patch: JSONValue,
                                     subresource: String? = nil) async throws(KubeAPIError) -> T {
        T(json: try await self.patch(T.resourceType, namespace: namespace, name: name, type: patchType, patch: patch,
                                     subresource: subresource))
    }

    @discardableResult
    public func delete<T: KubeObject>(_ type: T.Type, name: String, namespace: String? = nil, options: DeleteOptions = DeleteOptions())
        async throws(KubeAPIError) -> JSONObject
    {
        try await delete(T.resourceType, namespace: namespace, name: name, options: options)
    }

    /// Reads, applies `change`, and writes back; on a 409 it reads again and retries, as
    /// client-go's RetryOnConflict does.
    public func modify<T: KubeObject>(_ type: T.Type, name: String, namespace: String? = nil, attempts: Int = 5,
                                      status: Bool = false, _ change: @Sendable (inout T) throws -> Void) async throws -> T {
        var attempt = 0
        while true {
            attempt += 1
            var object = try await get(T.self, name: name, namespace: namespace)
            try change(&object)
            do {
                return status ? try await updateStatus(object) : try await update(object)
            } catch {
                guard case .conflict = error, attempt < attempts else { throw error }
            }
        }
    }
}
