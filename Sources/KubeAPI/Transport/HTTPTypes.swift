import Foundation

/// One HTTP request for the transport.
public struct HTTPRequest: Sendable {
    public var method: String
    public var url: String
    public var headers: [(String, String)]
    public var body: Data?
    /// Total time allowed for the whole transfer. nil: no limit (watches, log follows).
    public var timeout: Duration?
    public var connectTimeout: Duration
    /// The most a buffered response body may hold; a larger one fails the request instead of
    /// filling memory (a hostile or broken server). Streams are not capped here: their readers
    /// bound their own lines.
    public var maxBodyBytes: Int

    public static let defaultMaxBodyBytes = 512 << 20

    /// A stream that receives nothing for this long is ended with a transport error: how a
    /// client notices a peer that vanished without closing the connection. nil: no limit.
    public var idleTimeout: Duration?

    public init(
        method: String, url: String, headers: [(String, String)] = [], body: Data? = nil,
        timeout: Duration? = .seconds(30), connectTimeout: Duration = .seconds(10), maxBodyBytes: Int = HTTPRequest.defaultMaxBodyBytes
    ) {
        self.maxBodyBytes = maxBodyBytes
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
        self.connectTimeout = connectTimeout
    }
}

/// The status line and headers of a response. Header names are lower-cased.
public struct HTTPResponseHead: Sendable, Equatable {
    public var status: Int
    public var headers: [String: String]
    public var httpVersion: String

    public init(status: Int, headers: [String: String], httpVersion: String = "") {
        self.status = status
        self.headers = headers
        self.httpVersion = httpVersion
    }

    /// Retry-After in whole seconds, when present and numeric.
    public var retryAfterSeconds: Int? { headers["retry-after"].flatMap { Int($0.trimmingCharacters(in: .whitespaces)) } }
}

/// A buffered response.
public struct HTTPResponse: Sendable {
    /// How much of a refused stream's body is read: its Status is in the first bytes.
    static let refusedStreamBodyBytes = 64 << 10

    public var head: HTTPResponseHead
    public var body: Data
}

/// How to trust the server and how to prove who we are at the TLS layer.
public struct TLSSettings: Sendable, Hashable {
    /// PEM bundle to trust. nil: the system's trust store.
    public var certificateAuthorityPEM: Data?
    public var clientCertificatePEM: Data?
    public var clientKeyPEM: Data?
    public var insecureSkipVerify: Bool
    /// Name to verify the server certificate against, when it differs from the URL's host.
    public var serverName: String?

    public init(
        certificateAuthorityPEM: Data? = nil, clientCertificatePEM: Data? = nil, clientKeyPEM: Data? = nil,
        insecureSkipVerify: Bool = false, serverName: String? = nil
    ) {
        self.certificateAuthorityPEM = certificateAuthorityPEM
        self.clientCertificatePEM = clientCertificatePEM
        self.clientKeyPEM = clientKeyPEM
        self.insecureSkipVerify = insecureSkipVerify
        self.serverName = serverName
    }
}

/// What the REST layer needs from a transport. `CurlTransport` is the one implementation.
public protocol HTTPTransport: Sendable {
    /// Performs a request and buffers the whole body.
    func perform(_ request: HTTPRequest, tls: TLSSettings) async throws(KubeAPIError) -> HTTPResponse
    /// Performs a request and returns once the response head has arrived; the body follows as
    /// chunks. Ending iteration early, or cancelling the consuming Task, aborts the transfer.
    func stream(_ request: HTTPRequest, tls: TLSSettings) async throws(KubeAPIError)
        -> (HTTPResponseHead, AsyncThrowingStream<Data, any Error>)
    /// Performs a request and hands a successful (2xx) response's body to `receive` as it
    /// arrives, chunk by chunk and in order, on the transport's own thread: `receive` must copy
    /// what it keeps and must not block. Of any other response's body, the first 64 KiB are
    /// returned. Returns when the transfer ends; cancelling the calling Task aborts it.
    /// Nothing is allocated per chunk, unlike `stream`.
    func forward(_ request: HTTPRequest, tls: TLSSettings, to receive: @escaping @Sendable (UnsafeRawBufferPointer) -> Void)
        async throws(KubeAPIError) -> HTTPResponse
}
