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
/// CA and the operator's certificate for it), and an idle TLS connection holds no buffers.
///
/// HTTP/1.1 only (plain HTTP for test doubles); the body arrives as it is read. A stream that reads nothing for the request's
/// `idleTimeout` fails with a transport error, which is how a vanished peer is noticed.
public final class AgentStreamTransport: Sendable {
    public static let shared = AgentStreamTransport()

    /// A TLS context per identity, so that the certificates are parsed once, not per stream.
    private let contexts = Mutex<[TLSSettings: NIOSSLContext]>([:])
    /// Contexts kept at most; beyond that the cache starts again (identities come and go with pairs).
    private let maximumContexts = 8192

    public init() {}

    public func stream(_ request: HTTPRequest, tls: TLSSettings) async throws(KubeAPIError)
        -> (KubeAPI.HTTPResponseHead, AsyncThrowingStream<Data, any Error>)
    {
        guard request.method == "GET" else { throw .configuration("AgentStreamTransport streams GETs only, not \(request.method)") }
        let target = try Target(url: request.url)
        let context: NIOSSLContext?
        do {
            context = target.secure ? try self.context(for: tls) : nil
        } catch {
            throw .configuration("the agent TLS settings cannot be used: \(error)")
        }
        let channel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>
        do {
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(TimeAmount(request.connectTimeout))
                .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
                .channelOption(ChannelOptions.socketOption(.so_keepalive), value: 1)
                .connect(host: target.host, port: target.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let pipeline = channel.pipeline.syncOperations
                        if let context {
                            try pipeline.addHandler(NIOSSLClientHandler(context: context, serverHostname: tls.serverName ?? target.hostnameForSNI))
                        }
                        if let idle = request.idleTimeout {
                            try pipeline.addHandler(IdleStateHandler(readTimeout: TimeAmount(idle)))
                            try pipeline.addHandler(IdleReadCloser(after: idle))
                        }
                        try pipeline.addHTTPClientHandlers()
                        return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw .transport("\(request.method) \(request.url): cannot connect: \(error)")
        }

        var headers = HTTPHeaders([("Host", target.hostHeader), ("User-Agent", "tenops")])
        for (name, value) in request.headers { headers.add(name: name, value: value) }
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: target.path, headers: headers)
        let (chunks, chunkContinuation) = AsyncThrowingStream<Data, any Error>.makeStream()
        let label = "\(request.method) \(request.url)"
        do {
            let responseHead = try await withCheckedThrowingContinuation { (headContinuation: CheckedContinuation<KubeAPI.HTTPResponseHead, any Error>) in
                let task = Task {
                    var headDelivered = false
                    do {
                        try await channel.executeThenClose { inbound, outbound in
                            try await outbound.write(.head(head))
                            try await outbound.write(.end(nil))
                            for try await part in inbound {
                                switch part {
                                case .head(let received):
                                    headDelivered = true
                                    headContinuation.resume(returning: Self.head(received))
                                case .body(let buffer):
                                    chunkContinuation.yield(Data(buffer.readableBytesView))
                                case .end:
                                    return
                                }
                            }
                            if Task.isCancelled { throw KubeAPIError.cancelled }
                            throw KubeAPIError.transport("\(label): the connection closed before the response ended")
                        }
                        if headDelivered { chunkContinuation.finish() } else {
                            headContinuation.resume(throwing: KubeAPIError.transport("\(label): no response"))
                        }
                    } catch {
                        let mapped = Task.isCancelled ? KubeAPIError.cancelled : Self.mapped(error, label: label)
                        if headDelivered { chunkContinuation.finish(throwing: mapped) } else { headContinuation.resume(throwing: mapped) }
                    }
                }
                chunkContinuation.onTermination = { _ in task.cancel() }
            }
            return (responseHead, chunks)
        } catch {
            chunkContinuation.finish()
            throw Self.mapped(error, label: label)
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

    private static func head(_ head: NIOHTTP1.HTTPResponseHead) -> KubeAPI.HTTPResponseHead {
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
