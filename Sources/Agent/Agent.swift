// Module Agent.
//
// The in-pod agent: an HTTPS endpoint with mutual TLS in front of a DatabaseEngine, with
// PostgresEngine first. Imports PKI only (see ../shared/DESIGN.md).

import Foundation
import Hummingbird
import HummingbirdTLS
import Logging
import NIOSSL
import PKI
import Synchronization

/// Errors that keep the agent from starting.
public enum AgentError: Error, CustomStringConvertible {
    case tls(String)
    case couldNotStart(String)
    case engine(EngineError)

    public var description: String {
        switch self {
        case .tls(let detail): return "agent TLS: \(detail)"
        case .couldNotStart(let detail): return "the agent did not start: \(detail)"
        case .engine(let error): return "the database engine: \(error)"
        }
    }
}

/// The agent: the engine, its verbs, and the HTTPS endpoint with mutual TLS.
///
/// API (all JSON):
/// - `GET /v1/status`: the engine's status, freshly read.
/// - `GET /v1/status?watch=true`: one status per line, the current one first, then each change
///   (and the latest again every 5 s when nothing changed: see `StatusHeartbeat`)
///   as it happens (a postmaster crash is pushed the moment the process ends), and a re-check of
///   replication state and lag every `statusInterval`.
/// - `POST /v1/actions/{verb}` with a JSON object body: see ``AgentService``. 200 with the
///   status; 202 with a job for repDuplicate; 400 for an unknown verb, a malformed body or a path
///   outside the pod's volumes; 409 when it conflicts with a running verb or the database's role;
///   500 with the engine's stderr when the engine fails.
/// - `GET /v1/jobs/{id}`: a job's state, phase, bytesDone and bytesTotal.
///
/// Clients must present a certificate issued by the pair's CA (`ca.crt`) for clientAuth.
/// The agent's own serverAuth certificate is refused as a client certificate.
public final class Agent: Sendable {
    public let configuration: AgentConfiguration
    public let engine: PostgresEngine
    public let service: AgentService
    private let serverTask: Task<Void, Never>
    private let stopped = Mutex(false)

    private init(configuration: AgentConfiguration, engine: PostgresEngine, service: AgentService, serverTask: Task<Void, Never>) {
        self.configuration = configuration
        self.engine = engine
        self.service = service
        self.serverTask = serverTask
    }

    /// The base URL clients use.
    public var baseURL: String {
        let host = configuration.listenAddress.contains(":") ? "[\(configuration.listenAddress)]" : configuration.listenAddress
        return "https://\(host):\(configuration.port)"
    }

    /// Starts the engine's bookkeeping and the HTTPS endpoint; returns once it listens.
    /// `onDie` runs for the `die` verb (the command exits the process).
    public static func start(
        _ configuration: AgentConfiguration, logger: Logger, onDie: @escaping @Sendable () -> Void
    ) async throws -> Agent {
        do { try configuration.validate() } catch { throw AgentError.couldNotStart(error.description) }
        let tls = try TLSSetup.load(directory: configuration.volumes.realPath(configuration.tlsDirectory), logger: logger)
        let engine = PostgresEngine(configuration: configuration, logger: logger)
        do { try await engine.prepare() } catch { throw AgentError.engine(error) }
        let endpoint: AgentEndpoint
        do {
            endpoint = try await AgentEndpoint.start(configuration, engine: engine, tls: tls, logger: logger, onDie: onDie)
        } catch {
            await engine.shutdown()
            throw error
        }
        logger.info("agent listening on https://\(configuration.listenAddress):\(configuration.port) for database \(configuration.databaseName)")
        return Agent(configuration: configuration, engine: engine, service: endpoint.service, serverTask: endpoint.serverTask)
    }

    /// Stops the database server cleanly, ends every status stream and closes the endpoint.
    public func stop() async {
        let first = stopped.withLock { stopped -> Bool in
            defer { stopped = true }
            return !stopped
        }
        guard first else { return }
        await engine.shutdown()
        serverTask.cancel()
        await serverTask.value
    }

    /// Waits until the endpoint has stopped.
    public func wait() async {
        await serverTask.value
    }
}

/// The agent's HTTPS endpoint with mutual TLS (its routes, its verbs through ``AgentService``,
/// its client verification) in front of any ``DatabaseEngine``: the PostgreSQL agent's, and the
/// simulated databases of tenops-bench's scale benchmark, which must speak the agent's real
/// protocol without running a database.
public final class AgentEndpoint: Sendable {
    public let service: AgentService
    let serverTask: Task<Void, Never>

    private init(service: AgentService, serverTask: Task<Void, Never>) {
        self.service = service
        self.serverTask = serverTask
    }

    /// Listens on the configuration's address and port, with the certificates in its TLS
    /// directory (`ca.crt`, `tls.crt`, `tls.key`); returns once it listens. The engine is
    /// expected to be ready; stopping the endpoint does not stop it.
    public static func start(
        _ configuration: AgentConfiguration, engine: any DatabaseEngine, logger: Logger, onDie: @escaping @Sendable () -> Void
    ) async throws -> AgentEndpoint {
        do { try configuration.validate() } catch { throw AgentError.couldNotStart(error.description) }
        let tls = try TLSSetup.load(directory: configuration.volumes.realPath(configuration.tlsDirectory), logger: logger)
        return try await start(configuration, engine: engine, tls: tls, logger: logger, onDie: onDie)
    }

    static func start(
        _ configuration: AgentConfiguration, engine: any DatabaseEngine, tls: TLSChannelConfiguration, logger: Logger,
        onDie: @escaping @Sendable () -> Void
    ) async throws -> AgentEndpoint {
        let service = AgentService(engine: engine, configuration: configuration, logger: logger, onDie: onDie)
        await service.prepare()

        let router = Routes.build(service: service, engine: engine)
        let (ports, portContinuation) = AsyncStream<Bool>.makeStream()
        let failure = Mutex<String?>(nil)
        var appLogger = logger
        // Hummingbird reports the cancellation that stop() uses as an error; the agent logs its own.
        appLogger.logLevel = .critical
        let app = Application(
            router: router,
            server: try .tls(.http1(), configuration: tls),
            configuration: .init(
                address: .hostname(configuration.listenAddress, port: configuration.port), serverName: nil, reuseAddress: true),
            onServerRunning: { _ in portContinuation.yield(true) },
            logger: appLogger
        )
        let task = Task {
            do {
                try await app.run()
            } catch {
                failure.withLock { $0 = String(describing: error) }
            }
            portContinuation.finish()
        }
        var iterator = ports.makeAsyncIterator()
        guard await iterator.next() == true else {
            throw AgentError.couldNotStart(
                "cannot listen on \(configuration.listenAddress):\(configuration.port): \(failure.withLock { $0 } ?? "unknown error")")
        }
        return AgentEndpoint(service: service, serverTask: task)
    }

    /// Closes the endpoint and ends every status stream.
    public func stop() async {
        serverTask.cancel()
        await serverTask.value
    }
}

/// The status stream repeats the latest status every `interval` when nothing changed, so that a
/// client can tell a quiet agent from a dead connection (a powered-off node leaves a half-open
/// TCP connection that never reports an error): no line for three intervals means it is gone.
enum StatusHeartbeat {
    static let interval: Duration = .seconds(5)

    static func lines(_ updates: AsyncStream<EngineStatus>, every interval: Duration) -> AsyncStream<EngineStatus> {
        let (lines, continuation) = AsyncStream<EngineStatus>.makeStream(bufferingPolicy: .bufferingNewest(64))
        let latest = Latest()
        let forward = Task { [updates] in
            for await status in updates {
                latest.set(status)
                continuation.yield(status)
            }
            continuation.finish()
        }
        let beat = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                if !Task.isCancelled, let status = latest.value { continuation.yield(status) }
            }
        }
        continuation.onTermination = { _ in
            forward.cancel()
            beat.cancel()
        }
        return lines
    }

    private final class Latest: Sendable {
        private let status = Mutex<EngineStatus?>(nil)
        var value: EngineStatus? { status.withLock { $0 } }
        func set(_ new: EngineStatus) { status.withLock { $0 = new } }
    }
}

/// The routes.
enum Routes {
    static func build(service: AgentService, engine: any DatabaseEngine) -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.get("/v1/status") { request, _ -> Response in
            if let watch = request.uri.queryParameters.get("watch"), watch == "true" || watch == "1" {
                let updates = StatusHeartbeat.lines(await engine.statusUpdates(), every: StatusHeartbeat.interval)
                return Response(
                    status: .ok,
                    headers: [.contentType: "application/x-ndjson", .cacheControl: "no-cache"],
                    body: ResponseBody { writer in
                        for await status in updates {
                            try await writer.write(ByteBuffer(string: AgentService.encode(status) + "\n"))
                        }
                        try await writer.finish(nil)
                    })
            }
            return reply(await service.status())
        }
        router.post("/v1/actions/{verb}") { request, context -> Response in
            let verb = context.parameters.get("verb") ?? ""
            let body: ByteBuffer
            do {
                body = try await request.body.collect(upTo: 1 << 20)
            } catch {
                return reply(.error(413, code: "badRequest", verb: verb, "the body is larger than 1 MiB"))
            }
            return reply(await service.perform(verb: verb, body: Array(buffer: body)))
        }
        router.get("/v1/jobs/{id}") { _, context -> Response in
            reply(await service.job(context.parameters.get("id") ?? ""))
        }
        return router
    }

    static func reply(_ reply: AgentReply) -> Response {
        Response(
            status: HTTPResponse.Status(code: reply.status),
            headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: reply.body + "\n")))
    }
}

/// The server side of mutual TLS.
enum TLSSetup {
    static func load(directory: String, logger: Logger) throws -> TLSChannelConfiguration {
        func read(_ name: String) throws -> String {
            do { return try PEMFile.read(directory + "/" + name) } catch { throw AgentError.tls("\(error)") }
        }
        let caPEM = try read("ca.crt")
        let certificatePEM = try read("tls.crt")
        let keyPEM = try read("tls.key")
        let trusted: [Certificate]
        let chain: [NIOSSLCertificate]
        let roots: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        do {
            trusted = try Certificate.bundle(pem: caPEM)
            chain = try NIOSSLCertificate.fromPEMBytes(Array(certificatePEM.utf8))
            roots = try NIOSSLCertificate.fromPEMBytes(Array(caPEM.utf8))
            key = try NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem)
        } catch {
            throw AgentError.tls("cannot parse the certificates in \(directory): \(error)")
        }
        guard !chain.isEmpty, !roots.isEmpty else { throw AgentError.tls("\(directory): tls.crt or ca.crt holds no certificate") }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        configuration.certificateVerification = .noHostnameVerification
        configuration.trustRoots = .certificates(roots)
        configuration.shutdownTimeout = .milliseconds(100)
        return TLSChannelConfiguration(tlsConfiguration: configuration) { certificates in
            switch verifyClient(certificates, trusted: trusted) {
            case .success:
                return .certificateVerified
            case .failure(let reason):
                logger.warning("refused a client: \(reason)")
                return .failed
            }
        }
    }

    struct Refusal: Error, CustomStringConvertible {
        let description: String
    }

    /// The whole verification, since a custom callback replaces BoringSSL's: signed by the pair's
    /// CA, within its validity, not a CA, and for clientAuth.
    static func verifyClient(_ certificates: [NIOSSLCertificate], trusted: [Certificate]) -> Result<Void, Refusal> {
        guard let leaf = certificates.first else { return .failure(Refusal(description: "no client certificate")) }
        let certificate: Certificate
        do {
            let der = try leaf.toDERBytes()
            let base64 = Data(der).base64EncodedString(options: [.lineLength64Characters, .endLineWithLineFeed])
            certificate = try Certificate(pem: "-----BEGIN CERTIFICATE-----\n\(base64)\n-----END CERTIFICATE-----\n")
        } catch {
            return .failure(Refusal(description: "unreadable client certificate: \(error)"))
        }
        let name = certificate.subjectCommonName ?? "(no CN)"
        guard trusted.contains(where: { certificate.isSigned(by: $0) }) else {
            return .failure(Refusal(description: "the certificate of \(name) is not signed by the pair's CA"))
        }
        let now = Date()
        guard certificate.notBefore <= now, now <= certificate.notAfter else {
            return .failure(Refusal(description: "the certificate of \(name) is not valid now"))
        }
        guard !certificate.isCertificateAuthority else {
            return .failure(Refusal(description: "\(name) is a CA certificate, not a client certificate"))
        }
        guard certificate.extendedKeyUsages.contains(.clientAuth) else {
            return .failure(Refusal(description: "the certificate of \(name) is not for clientAuth (a server certificate used as a client certificate?)"))
        }
        return .success(())
    }
}
