import Foundation
import KubeAPI
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// The agents' status streams, over SwiftNIO: one long-lived HTTPS GET per pod, thousands at
/// once when an operator keeps a thousand pairs.
///
/// Why not `CurlTransport`, which serves every other call: libcurl builds an OpenSSL `SSL_CTX`
/// for each connection, and under OpenSSL 3 that and its caches cost about 150 KB a stream,
/// 300 MB for 1,000 pairs. Here one `NIOSSLContext` serves every stream of an identity (a pair's
/// CA and the operator's certificate for it); what remains per stream is swift-nio-ssl's own
/// buffers (48 KB, of which `PageBackedAllocator` keeps only the written pages resident) and
/// BoringSSL's connection state.
///
/// HTTP/1.1 only (plain HTTP for test doubles); the body arrives as it is read, through callbacks
/// on the event loop: no task waits while a stream is open (a suspended task held about 9 KB a
/// stream, 9 MB for 1,000 pairs). A stream that
/// reads nothing for the request's `idleTimeout` fails with a transport error, which is how a
/// vanished peer is noticed.
public final class AgentStreamTransport: Sendable {
    public static let shared = AgentStreamTransport()

    /// A TLS context per identity, so that the certificates are parsed once, not per stream.
    private let contexts = Mutex<[TLSSettings: NIOSSLContext]>([:])
    /// Contexts kept at most; beyond that the cache starts again (identities come and go with pairs).
    private let maximumContexts = 8192

    public init() {}

    /// A streamed GET in flight. `cancel` closes it; its `end` is called once either way.
    public final class Stream: Sendable {
        private enum State {
            /// The connection attempts under way: more than one when the agent's name has
            /// several addresses (NIO tries them in turn, closing those that lose).
            case connecting([any Channel])
            case open(any Channel)
            case cancelled
        }

        private let state = Mutex(State.connecting([]))

        public var isCancelled: Bool { state.withLock { if case .cancelled = $0 { true } else { false } } }

        /// Closes the connection, whether open or still being opened. The stream's `end`
        /// gets `KubeAPIError.cancelled` unless it has ended already.
        public func cancel() {
            let channels: [any Channel] = state.withLock { state in
                defer { state = .cancelled }
                switch state {
                case .connecting(let attempts): return attempts
                case .open(let channel): return [channel]
                case .cancelled: return []
                }
            }
            for channel in channels { channel.close(promise: nil) }
        }

        /// Keeps a connection attempt before it connects, so that `cancel` can give it up;
        /// false when the stream was cancelled already.
        fileprivate func attempting(_ channel: any Channel) -> Bool {
            state.withLock { state in
                guard case .connecting(let attempts) = state else { return false }
                state = .connecting(attempts + [channel])
                return true
            }
        }

        /// Keeps the connection that connected, unless the stream was cancelled meanwhile (then false).
        fileprivate func attach(_ channel: any Channel) -> Bool {
            state.withLock { state in
                guard case .connecting = state else { return false }
                state = .open(channel)
                return true
            }
        }
    }

    /// Starts a GET whose body streams, and returns at once: `head` once, then `chunk` for each
    /// piece of the body as it is read, then `end` once when the response ends (success), the
    /// transfer fails (a `KubeAPIError`, or whatever `head` or `chunk` threw, as it is), or the
    /// stream is cancelled (`KubeAPIError.cancelled`). All three are called on the connection's
    /// event loop, one at a time, never before `open` returns; nothing waits on Swift's
    /// cooperative pool meanwhile, so an open stream costs its connection and nothing more.
    public func open(
        _ request: HTTPRequest, tls: TLSSettings,
        head onHead: @escaping @Sendable (KubeAPI.HTTPResponseHead) throws -> Void,
        chunk onChunk: @escaping @Sendable (ByteBuffer) throws -> Void,
        end onEnd: @escaping @Sendable (Result<Void, any Error>) -> Void
    ) -> Stream {
        let stream = Stream()
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let label = "\(request.method) \(request.url)"
        let done = loop.makePromise(of: Void.self)
        done.futureResult.whenComplete { result in
            // Whatever else happened meanwhile (a response that ends at close, a line the reader
            // refused), a cancelled stream ends as cancelled.
            guard !stream.isCancelled else { return onEnd(.failure(KubeAPIError.cancelled)) }
            switch result {
            case .success: onEnd(.success(()))
            case .failure(let error as StreamReader.CallerError): onEnd(.failure(error.error))
            case .failure(let error): onEnd(.failure(Self.mapped(error, label: label)))
            }
        }
        let target: Target
        let context: NIOSSLContext?
        do {
            guard request.method == "GET" else { throw KubeAPIError.configuration("AgentStreamTransport streams GETs only, not \(request.method)") }
            target = try Target(url: request.url)
            do {
                context = target.secure ? try self.context(for: tls) : nil
            } catch {
                throw KubeAPIError.configuration("the agent TLS settings cannot be used: \(error)")
            }
        } catch {
            loop.execute { done.fail(error) }
            return stream
        }
        var headers = HTTPHeaders([("Host", target.hostHeader), ("User-Agent", "tenops")])
        for (name, value) in request.headers { headers.add(name: name, value: value) }
        let requestHead = HTTPRequestHead(version: .http1_1, method: .GET, uri: target.path, headers: headers)
        // From the loop's next tick, so that even a refusal known at once ends the stream only
        // after `open` has returned it.
        loop.execute { Self.connect(target, context: context, serverName: tls.serverName, request: request, requestHead: requestHead,
                                    label: label, loop: loop, stream: stream, head: onHead, chunk: onChunk, done: done) }
        return stream
    }

    private static func connect(
        _ target: Target, context: NIOSSLContext?, serverName: String?, request: HTTPRequest, requestHead: HTTPRequestHead, label: String,
        loop: any EventLoop, stream: Stream, head onHead: @escaping @Sendable (KubeAPI.HTTPResponseHead) throws -> Void,
        chunk onChunk: @escaping @Sendable (ByteBuffer) throws -> Void, done: EventLoopPromise<Void>
    ) {
        guard !stream.isCancelled else {
            done.fail(KubeAPIError.cancelled)
            return
        }
        ClientBootstrap(group: loop)
            .connectTimeout(TimeAmount(request.connectTimeout))
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .channelOption(ChannelOptions.socketOption(.so_keepalive), value: 1)
            .channelOption(ChannelOptions.allocator, value: PageBackedAllocator.allocator)
            .channelInitializer { channel in
                // Kept from before the connect starts, so that `cancel` closes a connection still
                // being opened (toward a partitioned node, that can take the connect timeout).
                guard stream.attempting(channel) else { return channel.eventLoop.makeFailedFuture(KubeAPIError.cancelled) }
                return channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    if let context {
                        try pipeline.addHandler(NIOSSLClientHandler(context: context, serverHostname: serverName ?? target.hostnameForSNI))
                    }
                    if let idle = request.idleTimeout {
                        try pipeline.addHandler(IdleStateHandler(readTimeout: TimeAmount(idle)))
                        try pipeline.addHandler(IdleReadCloser(after: idle))
                    }
                    try pipeline.addHTTPClientHandlers()
                    try pipeline.addHandler(StreamReader(label: label, onHead: onHead, onChunk: onChunk, done: done))
                }
            }
            .connect(host: target.host, port: target.port)
            .whenComplete { result in
                switch result {
                case .failure(let error):
                    done.fail(KubeAPIError.transport("\(label): cannot connect: \(error)"))
                case .success(let channel):
                    guard stream.attach(channel) else {
                        channel.close(promise: nil)
                        done.fail(KubeAPIError.cancelled)
                        return
                    }
                    channel.write(HTTPClientRequestPart.head(requestHead), promise: nil)
                    channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
                }
            }
    }

    private func context(for tls: TLSSettings) throws -> NIOSSLContext {
        if let cached = contexts.withLock({ $0[tls] }) { return cached }
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.applicationProtocols = ["http/1.1"]
        if let ca = tls.certificateAuthorityPEM {
            configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(ca)))
        }
        if let certificate = tls.clientCertificatePEM {
            configuration.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(certificate)).map { .certificate($0) }
        }
        if let key = tls.clientKeyPEM {
            configuration.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(key), format: .pem))
        }
        if tls.insecureSkipVerify { configuration.certificateVerification = .none }
        let context = try NIOSSLContext(configuration: configuration)
        contexts.withLock { contexts in
            if contexts.count >= maximumContexts { contexts.removeAll() }
            contexts[tls] = context
        }
        return context
    }

    static func head(_ head: NIOHTTP1.HTTPResponseHead) -> KubeAPI.HTTPResponseHead {
        var headers: [String: String] = [:]
        for (name, value) in head.headers { headers[name.lowercased()] = value }
        return KubeAPI.HTTPResponseHead(status: Int(head.status.code), headers: headers, httpVersion: "\(head.version.major).\(head.version.minor)")
    }

    private static func mapped(_ error: any Error, label: String) -> KubeAPIError {
        if let error = error as? KubeAPIError { return error }
        if error is CancellationError { return .cancelled }
        if let idle = error as? IdleReadCloser.Expired { return .transport("\(label): nothing read for \(idle.after)") }
        return .transport("\(label): \(error)")
    }

    /// Host, port and path of an `https://` URL (or `http://`, which the test doubles speak).
    struct Target {
        var secure: Bool
        var host: String
        var port: Int
        var path: String

        init(url: String) throws(KubeAPIError) {
            guard let components = URLComponents(string: url), components.scheme == "https" || components.scheme == "http",
                  let host = components.host, !host.isEmpty
            else {
                throw .configuration("not an http(s) URL: \(url)")
            }
            self.secure = components.scheme == "https"
            self.host = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
            self.port = components.port ?? (secure ? 443 : 80)
            let path = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
            self.path = components.percentEncodedQuery.map { "\(path)?\($0)" } ?? path
        }

        var hostHeader: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

        /// SNI carries names only, never an address.
        var hostnameForSNI: String? {
            var ipv4 = in_addr()
            var ipv6 = in6_addr()
            return inet_pton(AF_INET, host, &ipv4) == 1 || inet_pton(AF_INET6, host, &ipv6) == 1 ? nil : host
        }
    }
}

/// Hands a streamed response to its reader on the event loop, and completes `done` when it
/// ends: normally at its end, with the error when it fails or the connection closes early.
final class StreamReader: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    /// An error thrown by the reader's `onHead` or `onChunk`, carried through untouched.
    struct CallerError: Error {
        let error: any Error
    }

    private let label: String
    private let onHead: @Sendable (KubeAPI.HTTPResponseHead) throws -> Void
    private let onChunk: @Sendable (ByteBuffer) throws -> Void
    private let done: EventLoopPromise<Void>
    private var finished = false

    init(label: String, onHead: @escaping @Sendable (KubeAPI.HTTPResponseHead) throws -> Void,
         onChunk: @escaping @Sendable (ByteBuffer) throws -> Void, done: EventLoopPromise<Void>) {
        self.label = label
        self.onHead = onHead
        self.onChunk = onChunk
        self.done = done
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !finished else { return }
        do {
            switch unwrapInboundIn(data) {
            case .head(let head): try onHead(AgentStreamTransport.head(head))
            case .body(let buffer): try onChunk(buffer)
            case .end: finish(context, .success(()))
            }
        } catch {
            finish(context, .failure(CallerError(error: error)))
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish(context, .failure(error))
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(context, .failure(KubeAPIError.transport("\(label): the connection closed before the response ended")))
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        finish(context, .failure(KubeAPIError.transport("\(label): the connection closed before the response ended")))
    }

    private func finish(_ context: ChannelHandlerContext, _ result: Result<Void, any Error>) {
        guard !finished else { return }
        finished = true
        done.completeWith(result)
        context.close(promise: nil)
    }
}

/// Closes the connection when `IdleStateHandler` reports that nothing was read for a while,
/// failing the reader with `Expired`.
final class IdleReadCloser: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer

    struct Expired: Error, CustomStringConvertible {
        let after: Duration
        var description: String { "nothing read for \(after)" }
    }

    let after: Duration
    init(after: Duration) { self.after = after }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            context.fireErrorCaught(Expired(after: after))
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}
