import Dispatch
import Foundation
import Hummingbird
import HummingbirdTLS
import KubeAPI
import Logging
import NIOCore
import NIOSSL
import PKI
import Synchronization

/// The local, Kubernetes-compatible API server: HTTPS on a loopback address, authenticated by
/// client certificate or bearer token, with everything persisted under the state directory.
public final class LocalAPIServer: Sendable {
    public struct Options: Sendable {
        public var stateDirectory: String
        public var host: String
        /// 0 picks a free port; the port is remembered in the state directory, so a restart
        /// serves on the same one when it can.
        public var port: Int
        public var logSource: (any PodLogSource)?
        /// How many events watchers may resume from; an older resourceVersion gets 410 Gone.
        public var historyWindow: Int

        public init(stateDirectory: String, host: String = "127.0.0.1", port: Int = 0, logSource: (any PodLogSource)? = nil,
                    historyWindow: Int = 20_000) {
            self.stateDirectory = stateDirectory
            self.historyWindow = historyWindow
            self.host = host
            self.port = port
            self.logSource = logSource
        }
    }

    public let port: Int
    public let host: String
    public let credentials: ClusterCredentials
    let handler: APIHandler
    let storage: APIStorage
    private let serverTask: Task<Void, Never>
    private let maintenance: MaintenanceThread

    public var url: String { "https://\(host):\(port)" }
    public var kubeconfigPath: String { "\(credentials.directory)/../kubeconfig" }

    private init(port: Int, host: String, credentials: ClusterCredentials, handler: APIHandler, storage: APIStorage,
                 serverTask: Task<Void, Never>, maintenance: MaintenanceThread) {
        self.port = port
        self.host = host
        self.credentials = credentials
        self.handler = handler
        self.storage = storage
        self.serverTask = serverTask
        self.maintenance = maintenance
    }

    /// Starts serving and writes `STATE/kubeconfig` once the port is open.
    public static func start(_ options: Options) async throws -> LocalAPIServer {
        let directory = options.stateDirectory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let credentials = try ClusterCredentials.loadOrCreate(directory: "\(directory)/pki", host: options.host)
        let storage = try APIStorage(directory: "\(directory)/store", historyWindow: options.historyWindow)
        let registry = ResourceRegistry()
        let portFile = "\(directory)/apiserver.port"
        let preferredPort = options.port != 0 ? options.port
            : (try? String(contentsOfFile: portFile, encoding: .utf8)).flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 0

        let (ports, portContinuation) = AsyncStream<Result<Int, any Error>>.makeStream()
        let handlerBox = HandlerSlot()
        let tls = try credentials.serverTLSConfiguration()
        let authenticator = Authenticator(credentials: credentials)

        @Sendable func launch(port: Int) -> Task<Void, Never> {
            Task {
                let responder = CallbackResponder<APIRequestContext> { request, context in
                    guard let handler = handlerBox.handler else {
                        return Response(status: .serviceUnavailable)
                    }
                    return await HTTPAdapter.respond(to: request, context: context, handler: handler, authenticator: authenticator)
                }
                do {
                    var app = Application(
                        responder: responder, server: try .tls(.http1(), tlsConfiguration: tls),
                        configuration: .init(address: .hostname(options.host, port: port), serverName: nil),
                        onServerRunning: { channel in portContinuation.yield(.success(channel.localAddress?.port ?? 0)) })
                    app.logger.logLevel = .critical  // shutdown cancellations are not errors worth printing
                    try await app.run()
                } catch {
                    portContinuation.yield(.failure(error))
                }
            }
        }

        var task = launch(port: preferredPort)
        var iterator = ports.makeAsyncIterator()
        var result = await iterator.next() ?? .failure(LocalClusterError.io("the API server did not start"))
        if case .failure = result, preferredPort != 0, options.port == 0 {
            task.cancel()  // the remembered port is taken: take any
            task = launch(port: 0)
            result = await iterator.next() ?? .failure(LocalClusterError.io("the API server did not start"))
        }
        let port: Int
        switch result {
        case .success(let bound): port = bound
        case .failure(let error):
            task.cancel()
            throw LocalClusterError.io("the API server could not listen on \(options.host):\(preferredPort): \(error)")
        }
        let logSource = try options.logSource ?? KubeletLogSource(credentials: credentials)
        let handler = try APIHandler(storage: storage, registry: registry, serverAddress: "\(options.host):\(port)", logSource: logSource)
        handlerBox.handler = handler
        try? String(port).write(toFile: portFile, atomically: true, encoding: .utf8)

        // Syncing and compacting the log block on the disk: a thread of their own, not the
        // cooperative pool.
        let maintenance = MaintenanceThread(storage: storage)
        let server = LocalAPIServer(port: port, host: options.host, credentials: credentials, handler: handler, storage: storage,
                                    serverTask: task, maintenance: maintenance)
        try credentials.writeKubeconfig(to: "\(directory)/kubeconfig", server: server.url)
        return server
    }

    /// Stops serving: open watches end, and the log is synced.
    public func stop() async {
        storage.stopAllWatches()
        serverTask.cancel()
        await serverTask.value
        maintenance.stop()
        try? storage.maintain()
    }
}

/// The handler, set once the port is known.
final class HandlerSlot: Sendable {
    private let slot = Mutex<APIHandler?>(nil)
    var handler: APIHandler? {
        get { slot.withLock { $0 } }
        set { slot.withLock { $0 = newValue } }
    }
}

/// Remembers the connection, for client certificates and for noticing a watcher that left.
struct APIRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
    }
}

/// Who is calling: the CN and O of a client certificate, or the owner of a bearer token.
struct Authenticator: Sendable {
    let credentials: ClusterCredentials

    func authenticate(authorization: String?, channel: any Channel) async -> AuthenticatedUser? {
        if let authorization {
            let parts = authorization.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer" {
                return credentials.user(forToken: String(parts[1]).trimmingCharacters(in: .whitespaces))
            }
            return nil
        }
        let der: [UInt8]? = try? await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self).peerCertificate?.toDERBytes()
        }.get()
        guard let der, let certificate = try? Certificate(der: der), let name = certificate.subjectCommonName else { return nil }
        return AuthenticatedUser(name: name, groups: certificate.subjectOrganizations)
    }
}

/// Between Hummingbird's requests and responses and the API layer's.
enum HTTPAdapter {
    static let maxBodySize = 8 << 20

    static func respond(to request: Request, context: APIRequestContext, handler: APIHandler, authenticator: Authenticator) async -> Response {
        guard let user = await authenticator.authenticate(authorization: request.headers[.authorization], channel: context.channel) else {
            return json(401, APIError(code: 401, reason: "Unauthorized", message: "Unauthorized").body)
        }
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: maxBodySize)
        } catch {
            return json(413, APIError(code: 413, reason: "RequestEntityTooLarge", message: "the request body is larger than \(maxBodySize) bytes").body)
        }
        let apiRequest = APIRequest(
            method: request.method.rawValue, path: request.uri.path, query: parseQuery(request.uri.query),
            accept: request.headers[.accept] ?? "application/json", contentType: request.headers[.contentType] ?? "",
            body: Data(body.readableBytesView), user: user)
        switch await handler.handle(apiRequest) {
        case .json(let status, let value):
            return json(status, value)
        case .rawJSON(let status, let bytes):
            return Response(status: .init(code: status), headers: headers("application/json"), body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        case .text(let status, let text, let contentType):
            return Response(status: .init(code: status), headers: headers(contentType), body: .init(byteBuffer: ByteBuffer(string: text)))
        case .watch(let stream):
            return watchResponse(stream, handler: handler, resource: apiRequest, channel: context.channel)
        case .logStream(let stream):
            let body = ResponseBody { writer in
                for try await chunk in stream { try await writer.write(ByteBuffer(bytes: chunk)) }
                try await writer.finish(nil)
            }
            return Response(status: .ok, headers: headers("text/plain"), body: body)
        }
    }

    static func json(_ status: Int, _ value: JSONValue) -> Response {
        var buffer = ByteBuffer()
        var bytes: [UInt8] = []
        JSONWriter.write(value, into: &bytes)
        buffer.writeBytes(bytes)
        return Response(status: .init(code: status), headers: headers("application/json"), body: .init(byteBuffer: buffer))
    }

    static func headers(_ contentType: String) -> HTTPFields {
        var fields = HTTPFields()
        fields[.contentType] = contentType
        fields[.cacheControl] = "no-cache, private"
        return fields
    }

    static func parseQuery(_ query: String?) -> [String: String] {
        var result: [String: String] = [:]
        guard let query, !query.isEmpty else { return result }
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let decode: (Substring) -> String = { raw in
                let spaced = raw.replacingOccurrences(of: "+", with: " ")
                return spaced.removingPercentEncoding ?? spaced
            }
            result[decode(parts[0])] = parts.count > 1 ? decode(parts[1]) : ""
        }
        return result
    }

    /// Streams a watch: replayed events, then live ones, with bookmarks and the timeout. Ends
    /// when the client leaves (its connection closes) or the server stops.
    static func watchResponse(_ stream: WatchStream, handler: APIHandler, resource apiRequest: APIRequest, channel: any Channel) -> Response {
        let storage = handler.storage
        let path = APIPath.parse(apiRequest.path)
        guard case .resource(let target)? = path,
              let resource = handler.registry.find(group: target.group, version: target.version, plural: target.plural)
        else { return json(500, APIError(code: 500, reason: "InternalError", message: "watch without a resource").body) }
        let id = stream.id
        channel.closeFuture.whenComplete { _ in storage.stopWatching(id) }
        let body = ResponseBody { writer in
            defer { storage.stopWatching(id) }
            var first = true
            for event in stream.replay where stream.filter(event.object) {
                try await writer.write(ByteBuffer(bytes: handler.eventLine(event, resource: resource, asTable: stream.asTable, firstTable: first)))
                first = false
            }
            // The timeout ends the live stream, which ends the response cleanly.
            let timer = stream.timeout.map { timeout in
                Task {
                    try? await Task.sleep(for: timeout)
                    if !Task.isCancelled { storage.stopWatching(id) }
                }
            }
            defer { timer?.cancel() }
            var lastBookmark = ContinuousClock.now
            // Bookmarks carry the version of the last event this watcher has been given, never
            // a newer one: a client that resumes from a bookmark must not skip anything.
            var delivered = stream.replay.last?.resourceVersion
            for await event in stream.live {
                if let visible = WatchSelection.visible(event, filter: stream.filter) {
                    try await writer.write(ByteBuffer(bytes: handler.eventLine(visible, resource: resource, asTable: stream.asTable, firstTable: first)))
                    first = false
                }
                delivered = event.resourceVersion
                if stream.bookmarks, let delivered, lastBookmark.duration(to: .now) > handler.bookmarkInterval {
                    lastBookmark = .now
                    try await writer.write(ByteBuffer(bytes: handler.bookmarkLine(resource, resourceVersion: delivered)))
                }
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: headers("application/json"), body: body)
    }
}

/// Which event, if any, a watch with a selector sees: an object entering the selection is
/// ADDED, one leaving it is DELETED, as the API server's watch cache reports them.
enum WatchSelection {
    static func visible(_ event: StoredEvent, filter: (JSONObject) -> Bool) -> StoredEvent? {
        let now = filter(event.object)
        switch event.kind {
        case .added, .deleted:
            return now ? event : nil
        case .modified:
            let before = event.previous.map(filter) ?? now
            if now && before { return event }
            var changed = event
            if now { changed.kind = .added; return changed }
            if before { changed.kind = .deleted; return changed }
            return nil
        }
    }
}

/// Syncs the write-ahead log every 200 ms and compacts it when it grows, on its own thread.
final class MaintenanceThread: @unchecked Sendable {
    private let stopped = Atomic<Bool>(false)
    private let done = DispatchSemaphore(value: 0)

    init(storage: APIStorage) {
        let thread = Thread { [self] in
            while !stopped.load(ordering: .acquiring) {
                usleep(200_000)
                try? storage.maintain()
            }
            done.signal()
        }
        thread.name = "tenops-apiserver-log"
        thread.start()
    }

    func stop() {
        stopped.store(true, ordering: .releasing)
        done.wait()
    }
}
