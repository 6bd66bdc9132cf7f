import Foundation
import Hummingbird
import HummingbirdTLS
import KubeAPI
import Logging
import NIOCore
import NIOSSL
import PKI

/// The node's kubelet endpoint, where the API server fetches pod logs:
///
/// - `GET /containerLogs/NAMESPACE/POD/CONTAINER?follow=&tailLines=&limitBytes=&previous=`
///   streams a container's stdout and stderr; while following, until that container instance
///   stops. (`timestamps` is accepted and ignored: the node keeps no per-line times.)
/// - `GET /healthz` answers `ok`.
///
/// HTTPS only, with a serving certificate from the node's own CA for its address and name. A
/// client must present a certificate issued by the cluster's CA (the API server's kubelet client
/// certificate); anyone else is refused during the TLS handshake.
enum KubeletServer {
    /// Serves on `host`, on `port` when it is free (else on any port when `fallBackToAnyPort`);
    /// returns once listening.
    static func start(host: String, port: Int, fallBackToAnyPort: Bool, tls: TLSConfiguration, logs: ContainerLogReader)
        async throws -> (port: Int, task: Task<Void, Never>)
    {
        do {
            return try await serve(host: host, port: port, tls: tls, logs: logs)
        } catch where fallBackToAnyPort && port != 0 {
            return try await serve(host: host, port: 0, tls: tls, logs: logs)
        }
    }

    private static func serve(host: String, port: Int, tls: TLSConfiguration, logs: ContainerLogReader)
        async throws -> (port: Int, task: Task<Void, Never>)
    {
        let (bound, continuation) = AsyncStream<Result<Int, any Error>>.makeStream()
        let responder = CallbackResponder<BasicRequestContext> { request, _ in respond(to: request, logs: logs) }
        var quiet = Logger(label: "tenops.kubelet")
        quiet.logLevel = .critical  // the cancellation that stops the server is not worth a line
        let app = Application(
            responder: responder, server: try .tls(.http1(), tlsConfiguration: tls),
            configuration: .init(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { channel in continuation.yield(.success(channel.localAddress?.port ?? 0)) },
            logger: quiet)
        let task = Task {
            do {
                try await app.run()
            } catch {
                continuation.yield(.failure(error))
            }
            continuation.finish()
        }
        var iterator = bound.makeAsyncIterator()
        switch await iterator.next() {
        case .success(let port)?:
            return (port, task)
        case .failure(let error)?:
            task.cancel()
            throw LocalClusterError.io("the kubelet endpoint cannot listen on \(host):\(port): \(error)")
        case nil:
            task.cancel()
            throw LocalClusterError.io("the kubelet endpoint did not start on \(host):\(port)")
        }
    }

    static func respond(to request: Request, logs: ContainerLogReader) -> Response {
        guard request.method == .get else { return text(405, "only GET is served\n") }
        let segments = request.uri.path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
            .map { $0.removingPercentEncoding ?? String($0) }
        if segments == ["healthz"] { return text(200, "ok") }
        guard segments.first == "containerLogs" else { return text(404, "not found\n") }
        let parsed = LogRequest.parse(segments: Array(segments.dropFirst()), query: HTTPAdapter.parseQuery(request.uri.query))
        switch parsed.flatMap(logs.open) {
        case .failure(.badRequest(let message)): return text(400, message + "\n")
        case .failure(.notFound(let message)): return text(404, message + "\n")
        case .success(let stream):
            let body = ResponseBody { writer in
                for try await chunk in stream { try await writer.write(ByteBuffer(bytes: chunk)) }
                try await writer.finish(nil)
            }
            return Response(status: .ok, headers: HTTPAdapter.headers("text/plain"), body: body)
        }
    }

    private static func text(_ status: Int, _ message: String) -> Response {
        Response(status: .init(code: status), headers: HTTPAdapter.headers("text/plain"), body: .init(byteBuffer: ByteBuffer(string: message)))
    }
}

/// The node's certificates, kept in `DIR/pki`: a CA of its own (created once) and a serving
/// certificate for the kubelet endpoint, issued again at every start for the node's current
/// address and name.
enum KubeletCertificates {
    static func serverConfiguration(directory: String, nodeName: String, address: String, clientCA: Data?) throws -> TLSConfiguration {
        try NodeLayout.makeDirectory(directory, mode: 0o700)
        let caCertificate = "\(directory)/ca.crt", caKey = "\(directory)/ca.key"
        let ca: CertificateAuthority
        if FileManager.default.fileExists(atPath: caCertificate) {
            ca = try CertificateAuthority(certificatePEM: PEMFile.read(caCertificate), privateKeyPEM: PEMFile.read(caKey))
        } else {
            ca = try CertificateAuthority.create(commonName: "\(nodeName)-ca".prefix(64).description)
            try PEMFile.write(ca.privateKey.pem, to: caKey, privateKey: true)
            try PEMFile.write(ca.certificate.pem, to: caCertificate)
        }
        let serving = try ca.issueServer(commonName: nodeName.prefix(64).description, dnsNames: [nodeName], ipAddresses: [address])
        try PEMFile.write(serving, certificatePath: "\(directory)/kubelet.crt", keyPath: "\(directory)/kubelet.key")

        let chain = try NIOSSLCertificate.fromPEMBytes(Array(try serving.certificatePEM.utf8)) +
            NIOSSLCertificate.fromPEMBytes(Array(try ca.certificate.pem.utf8))
        let key = try NIOSSLPrivateKey(bytes: Array(try serving.privateKeyPEM.utf8), format: .pem)
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        // A client certificate is required and must chain to the cluster's CA.
        configuration.certificateVerification = .noHostnameVerification
        if let clientCA {
            configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(clientCA)))
        }
        configuration.shutdownTimeout = .milliseconds(100)
        return configuration
    }
}
