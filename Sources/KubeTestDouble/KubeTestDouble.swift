import Foundation
import Hummingbird
import HummingbirdTLS
import NIOCore
import NIOSSL
import Synchronization

// TEST DOUBLE. Nothing in this module is a Kubernetes API server; it imitates one closely enough
// to test a Kubernetes client against it: real HTTPS on 127.0.0.1, real Kubernetes JSON bodies
// (objects, lists, watch events, metav1.Status errors) and real semantics for resourceVersion,
// optimistic concurrency, selectors, pagination, watch history and its expiry, with faults on
// demand. It is never linked into `tenops`.

/// How to start a ``KubeTestDouble``.
public struct KubeTestDoubleOptions: Sendable {
    public var serverCertificatePEM: String
    public var serverKeyPEM: String
    /// When set, mutual TLS is required: clients must present a certificate issued by this CA.
    public var clientCAPEM: String?
    /// When non-empty, every request needs `Authorization: Bearer <one of these>`, else 401.
    public var bearerTokens: Set<String>
    /// How many watch events are kept. A watch from an older resourceVersion gets 410 Expired.
    public var historyWindow: Int

    public init(
        serverCertificatePEM: String, serverKeyPEM: String, clientCAPEM: String? = nil,
        bearerTokens: Set<String> = [], historyWindow: Int = 1000
    ) {
        self.serverCertificatePEM = serverCertificatePEM
        self.serverKeyPEM = serverKeyPEM
        self.clientCAPEM = clientCAPEM
        self.bearerTokens = bearerTokens
        self.historyWindow = historyWindow
    }
}

/// One request as the test double received it. The bearer token itself is never stored.
public struct RecordedRequest: Sendable, Equatable, CustomStringConvertible {
    public var method: String
    /// The path, still percent-encoded as sent.
    public var path: String
    /// The raw query string, nil when the URL had none.
    public var query: String?
    /// The query parameters, percent-decoded (the last one wins for repeated names).
    public var queryParameters: [String: String]
    public var hasAuthorization: Bool
    public var contentType: String?
    /// The request body as UTF-8 text (empty when there was none).
    public var body: String
    /// For DELETE: the propagationPolicy from the query or the DeleteOptions body.
    public var propagationPolicy: String?

    public var description: String { "\(method) \(path)\(query.map { "?\($0)" } ?? "")" }
}

/// Errors of ``KubeTestDouble/start(_:)``.
public enum KubeTestDoubleError: Error, CustomStringConvertible {
    case invalidTLSMaterial(String)
    case couldNotStart(String)

    public var description: String {
        switch self {
        case .invalidTLSMaterial(let detail): return "KubeTestDouble: invalid TLS material: \(detail)"
        case .couldNotStart(let detail): return "KubeTestDouble: the server did not start: \(detail)"
        }
    }
}

/// A TEST DOUBLE of a Kubernetes API server: an HTTPS server on 127.0.0.1 that keeps objects in
/// memory and answers with real Kubernetes JSON bodies and semantics. It is a stand-in for tests
/// and benchmarks of Kubernetes clients, not an API server: there is no discovery, no admission, no
/// schema validation, no defaulting and no controllers (deleting a Namespace removes its contents at
/// once). Objects posted with a `status` keep it, so tests can seed state directly.
///
/// Serves `/api/v1/...` and `/apis/GROUP/VERSION/...`: create, get, list (label and field
/// selectors, `limit`/`continue`), update, the `status` subresource, merge/JSON/strategic-merge
/// patch, delete (preconditions, finalizers, propagationPolicy), deletecollection, watch
/// (history replay, 410 Expired, bookmarks, `timeoutSeconds`), pod logs (`follow`, `tailLines`,
/// `timestamps`, `sinceSeconds`; a followed log stays open until the client leaves or the double
/// stops) and `GET /version`. All state is in memory and gone after ``stop()``.
public final class KubeTestDouble: Sendable {
    let store: DoubleStore
    let options: KubeTestDoubleOptions
    private let serverTask: Task<Void, Never>

    /// The TCP port the double listens on (on 127.0.0.1).
    public let port: Int

    /// `https://127.0.0.1:PORT`
    public var baseURL: String { "https://127.0.0.1:\(port)" }

    private init(store: DoubleStore, options: KubeTestDoubleOptions, serverTask: Task<Void, Never>, port: Int) {
        self.store = store
        self.options = options
        self.serverTask = serverTask
        self.port = port
    }

    /// Starts a double on 127.0.0.1 on a free port and returns once it is listening.
    public static func start(_ options: KubeTestDoubleOptions) async throws -> KubeTestDouble {
        let tls = try tlsConfiguration(options)
        let store = DoubleStore(historyWindow: options.historyWindow)
        let handler = RequestHandler(store: store, bearerTokens: options.bearerTokens)
        let responder = CallbackResponder<DoubleRequestContext> { request, context in
            await handler.respond(to: request, context: context)
        }
        let (ports, portContinuation) = AsyncStream<Int>.makeStream()
        let failure = Mutex<String?>(nil)
        var app = Application(
            responder: responder,
            server: try .tls(.http1(), tlsConfiguration: tls),
            configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: nil),
            onServerRunning: { channel in
                portContinuation.yield(channel.localAddress?.port ?? 0)
            }
        )
        // A test double keeps quiet: no "server started" lines in test output, and the
        // cancellation that stop() uses is no error worth printing.
        app.logger.logLevel = .critical
        let task = Task { [app] in
            do {
                try await app.run()
            } catch {
                failure.withLock { $0 = String(describing: error) }
            }
            portContinuation.finish()
        }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next(), port > 0 else {
            task.cancel()
            await task.value
            throw KubeTestDoubleError.couldNotStart(failure.withLock { $0 } ?? "no listening port")
        }
        return KubeTestDouble(store: store, options: options, serverTask: task, port: port)
    }

    private static func tlsConfiguration(_ options: KubeTestDoubleOptions) throws -> TLSConfiguration {
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        do {
            chain = try NIOSSLCertificate.fromPEMBytes(Array(options.serverCertificatePEM.utf8))
            key = try NIOSSLPrivateKey(bytes: Array(options.serverKeyPEM.utf8), format: .pem)
        } catch {
            throw KubeTestDoubleError.invalidTLSMaterial("server certificate or key: \(error)")
        }
        guard !chain.isEmpty else { throw KubeTestDoubleError.invalidTLSMaterial("no server certificate in the PEM") }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        // On close, do not wait the default 5 s for the peer's close_notify.
        configuration.shutdownTimeout = .milliseconds(100)
        if let caPEM = options.clientCAPEM {
            let roots: [NIOSSLCertificate]
            do {
                roots = try NIOSSLCertificate.fromPEMBytes(Array(caPEM.utf8))
            } catch {
                throw KubeTestDoubleError.invalidTLSMaterial("client CA: \(error)")
            }
            guard !roots.isEmpty else { throw KubeTestDoubleError.invalidTLSMaterial("no certificate in the client CA PEM") }
            configuration.certificateVerification = .noHostnameVerification
            configuration.trustRoots = .certificates(roots)
        } else {
            configuration.certificateVerification = .none
        }
        return configuration
    }

    /// Stops the server and closes every connection, open watches and log streams included
    /// (they are cut off without their terminating chunk). Safe to call more than once.
    public func stop() async {
        let channels = store.state.withLock { state -> [any Channel] in
            state.stopped = true
            for watcher in state.watchers.values { watcher.continuation.yield(.abort) }
            for follower in state.logFollowers.values { follower.continuation.yield(.abort) }
            return Array(state.channels.values)
        }
        for channel in channels { channel.close(promise: nil) }
        serverTask.cancel()
        await serverTask.value
    }

    // MARK: Fault injection

    /// The next `count` requests (any path) fail with `status` and a metav1.Status body, with a
    /// `Retry-After` header when `retryAfterSeconds` is given (e.g. 429, or 503).
    public func failNextRequests(_ count: Int, status: Int, retryAfterSeconds: Int? = nil) {
        store.state.withLock { $0.failNext = (max(0, count), status, retryAfterSeconds) }
    }

    /// Every watch opened from now on is cut off after sending `n` events: the connection is
    /// closed without the terminating chunk. With 0 the stream is cut right after the headers.
    public func dropWatches(afterEvents n: Int) {
        store.state.withLock { $0.dropWatchesAfter = max(0, n) }
    }

    /// Watches opened from now on are no longer dropped.
    public func stopDroppingWatches() {
        store.state.withLock { $0.dropWatchesAfter = nil }
    }

    /// Forgets all watch history: a watch from any older resourceVersion, or a list `continue`
    /// token issued before now, gets 410 Expired.
    public func compact() {
        store.compact()
    }

    /// The next request (any path) gets exactly this answer, for example truncated or malformed
    /// JSON. Calls queue up: each one answers one request, in order.
    public func respondNextWith(status: Int, contentType: String, body: String) {
        store.state.withLock { $0.rawResponses.append((status, contentType, body)) }
    }

    /// Every open watch that asked for `allowWatchBookmarks=true` gets a BOOKMARK event with the
    /// current resourceVersion.
    public func sendBookmark() {
        store.sendBookmark()
    }

    // MARK: Inspection

    /// Every request received since the start or the last ``resetRequests()``, oldest first
    /// (only about the last 100,000 are kept).
    public var requests: [RecordedRequest] {
        store.state.withLock { $0.requests }
    }

    public func resetRequests() {
        store.state.withLock { $0.requests.removeAll() }
    }

    /// The newest resourceVersion handed out (0 before the first write).
    public var currentResourceVersion: Int {
        store.state.withLock { $0.resourceVersion }
    }

    /// How many watch streams are open right now.
    public var openWatchCount: Int {
        store.state.withLock { $0.watchers.count }
    }

    /// Runs one request against the store directly, without HTTP, authentication, faults or
    /// recording; for tests that need to change server-side state behind a client's back.
    /// Watch and log-follow requests are not supported here. Returns the status code and body.
    public func perform(
        _ method: String, _ pathAndQuery: String, body: String? = nil, contentType: String = "application/json"
    ) -> (status: Int, body: String) {
        let parts = pathAndQuery.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        var query = RequestHandler.parseQuery(parts.count > 1 ? String(parts[1]) : nil)
        query["watch"] = nil
        query["follow"] = nil
        let request = DoubleStore.Request(
            method: method.uppercased(), path: String(parts[0]), query: query, contentType: contentType, body: Data((body ?? "").utf8))
        switch store.handle(request) {
        case .json(let status, let json): return (status, json.text)
        case .text(let status, _, let text): return (status, text)
        case .watch(let stream):
            store.removeWatcher(stream.id)
            return (400, APIError.badRequest("watch is not supported by perform").status.text)
        case .logs(let stream):
            store.removeLogFollower(stream.id)
            return (200, stream.text)
        }
    }

    // MARK: Pod logs

    /// Appends lines to a container's log. Open `follow=true` streams of that container get them at once.
    public func appendPodLog(namespace: String, pod: String, container: String, lines: [String]) {
        store.appendPodLog(namespace: namespace, pod: pod, container: container, lines: lines)
    }
}

/// Request context that remembers the connection, so the double can close every connection on
/// `stop()` and notice when a watching client goes away.
struct DoubleRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
    }
}

/// Sits first in a connection's pipeline and reports when the client closes its side (TCP FIN;
/// the server allows half-closure, so nothing else would notice while a watch is idle) or the
/// connection fails.
final class ClientGoneDetector: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let onGone: @Sendable () -> Void

    init(_ onGone: @escaping @Sendable () -> Void) { self.onGone = onGone }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event { onGone() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        onGone()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        onGone()
        context.fireErrorCaught(error)
    }
}

/// The watch or log stream was cut off on purpose (fault injection, stop, or the client left).
struct StreamCutOff: Error {}

/// The HTTP side of the double: authentication, faults, recording, and writing replies.
struct RequestHandler: Sendable {
    let store: DoubleStore
    let bearerTokens: Set<String>
    static let maxBodySize = 64 << 20

    func respond(to request: Request, context: DoubleRequestContext) async -> Response {
        track(context.channel)
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: Self.maxBodySize)
        } catch {
            return jsonResponse(413, APIError(code: 413, message: "the request body is too large").status)
        }
        let bodyData = Data(body.readableBytesView)
        let method = request.method.rawValue
        let path = request.uri.path
        let rawQuery = request.uri.query
        let query = Self.parseQuery(rawQuery)
        let contentType = request.headers[.contentType]
        let authorization = request.headers[.authorization]

        var recorded = RecordedRequest(
            method: method, path: path, query: rawQuery, queryParameters: query, hasAuthorization: authorization != nil,
            contentType: contentType, body: String(decoding: bodyData, as: UTF8.self), propagationPolicy: nil)
        if method == "DELETE" {
            recorded.propagationPolicy = (try? DoubleStore.deleteOptions(query: query, body: bodyData))?.propagationPolicy
        }

        enum Gate { case pass, raw(Int, String, String), fail(APIError) }
        let tokens = bearerTokens
        let gate: Gate = store.state.withLock { state in
            state.requests.append(recorded)
            // Trimmed in batches, so that a long benchmark does not shift the array on every request.
            if state.requests.count > DoubleStore.maxRecordedRequests + DoubleStore.maxRecordedRequests / 10 {
                state.requests.removeFirst(state.requests.count - DoubleStore.maxRecordedRequests)
            }
            if !tokens.isEmpty {
                let parts = (authorization ?? "").split(separator: " ", maxSplits: 1)
                guard parts.count == 2, parts[0].lowercased() == "bearer",
                      tokens.contains(parts[1].trimmingCharacters(in: .whitespaces))
                else { return .fail(APIError(code: 401, message: "Unauthorized")) }
            }
            if !state.rawResponses.isEmpty {
                let raw = state.rawResponses.removeFirst()
                return .raw(raw.status, raw.contentType, raw.body)
            }
            if state.failNext.count > 0 {
                state.failNext.count -= 1
                return .fail(APIError.injected(code: state.failNext.status, retryAfterSeconds: state.failNext.retryAfterSeconds))
            }
            return .pass
        }
        switch gate {
        case .fail(let error):
            var headers = Self.commonHeaders(contentType: "application/json")
            if let seconds = error.retryAfterSeconds { headers[.retryAfter] = String(seconds) }
            return Response(status: .init(code: error.code), headers: headers, body: Self.body(error.status.data))
        case .raw(let status, let type, let text):
            return Response(status: .init(code: status), headers: Self.commonHeaders(contentType: type), body: Self.body(Data(text.utf8)))
        case .pass:
            break
        }

        let reply = store.handle(DoubleStore.Request(method: method, path: path, query: query, contentType: contentType, body: bodyData))
        switch reply {
        case .json(let status, let json):
            return jsonResponse(status, json)
        case .text(let status, let type, let text):
            return Response(status: .init(code: status), headers: Self.commonHeaders(contentType: type), body: Self.body(Data(text.utf8)))
        case .watch(let stream):
            return watchResponse(stream, channel: context.channel)
        case .logs(let stream):
            return logResponse(stream, channel: context.channel)
        }
    }

    /// Remembers every connection (so stop() can close it) and watches for the client going
    /// away: an idle watch has nothing to write, so only the socket's end of input tells.
    private func track(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        let isNew = store.state.withLock { state -> Bool in
            guard state.channels[id] == nil else { return false }
            state.channels[id] = channel
            return true
        }
        guard isNew else { return }
        let store = self.store
        channel.closeFuture.whenComplete { _ in store.connectionGone(id) }
        channel.pipeline.addHandler(ClientGoneDetector { store.connectionGone(id) }, position: .first).whenFailure { _ in
            store.connectionGone(id)
        }
    }

    private func jsonResponse(_ status: Int, _ json: JSON) -> Response {
        Response(status: .init(code: status), headers: Self.commonHeaders(contentType: "application/json"), body: Self.body(json.data))
    }

    static func body(_ data: Data) -> ResponseBody {
        var buffer = ByteBuffer()
        buffer.writeBytes(data)
        return ResponseBody(byteBuffer: buffer)
    }

    static func commonHeaders(contentType: String) -> HTTPFields {
        var headers = HTTPFields()
        headers[.contentType] = contentType
        headers[.cacheControl] = "no-cache, private"
        if let auditID = HTTPFields.Element.Name("Audit-Id") { headers[auditID] = UUID().uuidString.lowercased() }
        return headers
    }

    /// Splits and percent-decodes a query string (`+` is a space, as in forms).
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

    // MARK: Streams

    private func watchResponse(_ stream: WatchStream, channel: any Channel) -> Response {
        let store = self.store
        let body = ResponseBody { writer in
            defer { store.removeWatcher(stream.id) }
            if let expired = stream.expired {
                try await writer.write(DoubleStore.watchLine(type: "ERROR", object: expired.status))
                try await writer.finish(nil)
                return
            }
            guard let signals = stream.signals else { throw StreamCutOff() }
            // The signals stream ends when the watcher is removed; make sure that happens when
            // the client goes away or the timeout passes.
            let id = stream.id
            store.attach(stream: id, to: ObjectIdentifier(channel))
            let timeout: Task<Void, Never>? = stream.timeoutSeconds.map { seconds in
                Task {
                    try? await Task.sleep(for: .seconds(seconds))
                    if !Task.isCancelled {
                        _ = store.state.withLock { $0.watchers[id]?.continuation.yield(.timeout) }
                    }
                }
            }
            defer { timeout?.cancel() }

            var sent = 0
            func cutOffIfDue() throws {
                if let limit = stream.dropAfterEvents, sent >= limit { throw StreamCutOff() }
            }
            func line(_ signal: WatchSignal) -> ByteBuffer? {
                switch signal {
                case .event(let type, let object):
                    return DoubleStore.watchLine(type: type, object: object)
                case .bookmark(let rv):
                    let object = DoubleStore.bookmarkObject(kind: stream.kind, apiVersion: stream.apiVersion, resourceVersion: rv)
                    return DoubleStore.watchLine(type: "BOOKMARK", object: object)
                case .timeout, .abort:
                    return nil
                }
            }
            try cutOffIfDue()
            for signal in stream.initial {
                guard let buffer = line(signal) else { continue }
                try await writer.write(buffer)
                sent += 1
                try cutOffIfDue()
            }
            for await signal in signals {
                switch signal {
                case .timeout:
                    try await writer.finish(nil)
                    return
                case .abort:
                    throw StreamCutOff()
                case .event, .bookmark:
                    guard let buffer = line(signal) else { continue }
                    try await writer.write(buffer)
                    sent += 1
                    try cutOffIfDue()
                }
            }
            // Ended without a timeout: the client left, the server stops, or the task was cancelled.
            throw StreamCutOff()
        }
        return Response(status: .ok, headers: Self.commonHeaders(contentType: "application/json"), body: body)
    }

    private func logResponse(_ stream: LogStream, channel: any Channel) -> Response {
        let headers = Self.commonHeaders(contentType: "text/plain")
        guard let signals = stream.signals else {
            return Response(status: .ok, headers: headers, body: Self.body(Data(stream.text.utf8)))
        }
        let store = self.store
        let body = ResponseBody { writer in
            let id = stream.id
            defer { store.removeLogFollower(id) }
            store.attach(stream: id, to: ObjectIdentifier(channel))
            if !stream.text.isEmpty { try await writer.write(ByteBuffer(string: stream.text)) }
            for await signal in signals {
                switch signal {
                case .line(let line):
                    try await writer.write(ByteBuffer(string: DoubleStore.logText(line, timestamps: stream.timestamps)))
                case .abort:
                    throw StreamCutOff()
                }
            }
            throw StreamCutOff()
        }
        return Response(status: .ok, headers: headers, body: body)
    }
}
