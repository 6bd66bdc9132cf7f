import Foundation
import KubeTestDouble
import PKI
@testable import KubeAPI

/// A KubeTestDouble (the named test double of an API server) on 127.0.0.1 with real TLS, plus a
/// client for it. `with` always stops the server, whatever the test body does.
struct TestCluster: Sendable {
    enum Auth: Sendable {
        case clientCertificate
        case token(Set<String>)
    }

    let double: KubeTestDouble
    let ca: CertificateAuthority
    let user: IssuedCertificate
    let directory: TemporaryDirectory
    let auth: Auth

    static func with<R: Sendable>(_ auth: Auth = .clientCertificate, historyWindow: Int = 1000,
                                  _ body: (TestCluster) async throws -> R) async throws -> R {
        let ca = try CertificateAuthority.create(commonName: "test-ca")
        let server = try ca.issueServer(commonName: "apiserver", dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"])
        let user = try ca.issueClient(commonName: "test-admin", organizations: ["system:masters"])
        var options = KubeTestDoubleOptions(
            serverCertificatePEM: try server.certificatePEM, serverKeyPEM: try server.privateKeyPEM, historyWindow: historyWindow)
        switch auth {
        case .clientCertificate: options.clientCAPEM = try ca.certificate.pem
        case .token(let tokens): options.bearerTokens = tokens
        }
        let double = try await KubeTestDouble.start(options)
        let cluster = TestCluster(double: double, ca: ca, user: user, directory: try TemporaryDirectory(), auth: auth)
        do {
            let result = try await body(cluster)
            await double.stop()
            return result
        } catch {
            await double.stop()
            throw error
        }
    }

    var caPEM: Data { Data(((try? ca.certificate.pem) ?? "").utf8) }

    func config(token: String? = nil, credentials: ClusterConfig.Credentials? = nil) -> ClusterConfig {
        var resolved = credentials ?? ClusterConfig.Credentials(token: token)
        if credentials == nil, case .clientCertificate = auth {
            resolved.clientCertificatePEM = Data(((try? user.certificatePEM) ?? "").utf8)
            resolved.clientKeyPEM = Data(((try? user.privateKeyPEM) ?? "").utf8)
        }
        return ClusterConfig(server: double.baseURL, tls: TLSSettings(certificateAuthorityPEM: caPEM), credentials: resolved)
    }

    func client(token: String? = nil, retry: RetryPolicy = RetryPolicy(initialBackoff: .milliseconds(20)),
                timeout: Duration = .seconds(10)) -> KubeClient {
        KubeClient(config: config(token: token), retryPolicy: retry, requestTimeout: timeout)
    }

    /// Writes a kubeconfig that uses certificate files next to it.
    func writeKubeconfig(namespace: String = "default") throws -> String {
        try directory.write("ca.crt", try ca.certificate.pem)
        try directory.write("admin.crt", try user.certificatePEM)
        try directory.write("admin.key", try user.privateKeyPEM, mode: 0o600)
        return try directory.write("kubeconfig", """
            apiVersion: v1
            kind: Config
            current-context: test
            clusters:
            - name: double
              cluster:
                server: \(double.baseURL)
                certificate-authority: ca.crt
            users:
            - name: admin
              user:
                client-certificate: admin.crt
                client-key: admin.key
            contexts:
            - name: test
              context: {cluster: double, user: admin, namespace: \(namespace)}
            """)
    }
}

/// Polls `condition` until it holds or `timeout` passes.
func eventually(timeout: Duration = .seconds(10), _ condition: @Sendable () async -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return await condition()
}

func configMap(_ name: String, namespace: String = "default", labels: [String: String] = [:], data: [String: String] = [:]) -> ConfigMap {
    var map = ConfigMap(name: name, namespace: namespace)
    map.metadata.labels = labels
    map.data = data
    return map
}
