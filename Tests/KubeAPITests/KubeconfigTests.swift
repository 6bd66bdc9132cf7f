import Foundation
import PKI
import Testing
@testable import KubeAPI

@Suite("kubeconfig and in-cluster configuration", .timeLimit(.minutes(5)))
struct KubeconfigTests {
    static let caPEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

    func config(_ yaml: String, context: String? = nil) throws -> ClusterConfig {
        try ClusterConfig.from(kubeconfig: Kubeconfig.parse(yaml, source: "/cfg/test.yaml"), context: context)
    }

    @Test("resolves the current context: server, namespace, inline CA, client certificate and token")
    func inlineForms() throws {
        let b64 = { (s: String) in Data(s.utf8).base64EncodedString() }
        let resolved = try config("""
            apiVersion: v1
            kind: Config
            current-context: dev
            clusters:
            - name: c1
              cluster:
                server: https://127.0.0.1:6443/
                certificate-authority-data: \(b64(Self.caPEM))
                tls-server-name: api.local
            users:
            - name: u1
              user:
                client-certificate-data: \(b64("CERT"))
                client-key-data: \(b64("KEY"))
                token: abc
            contexts:
            - name: dev
              context: {cluster: c1, user: u1, namespace: team}
            - name: other
              context: {cluster: c1, user: u1}
            """)
        #expect(resolved.server == "https://127.0.0.1:6443")
        #expect(resolved.namespace == "team")
        #expect(resolved.contextName == "dev")
        #expect(resolved.tls.certificateAuthorityPEM == Data(Self.caPEM.utf8))
        #expect(resolved.tls.serverName == "api.local")
        #expect(resolved.credentials.clientCertificatePEM == Data("CERT".utf8))
        #expect(resolved.credentials.clientKeyPEM == Data("KEY".utf8))
        #expect(resolved.credentials.token == "abc")
    }

    @Test("an explicit context wins and its namespace defaults to default")
    func explicitContext() throws {
        let resolved = try config("""
            current-context: a
            clusters: [{name: c, cluster: {server: "https://10.0.0.1", insecure-skip-tls-verify: true}}]
            users: [{name: u, user: {tokenFile: tok}}]
            contexts:
            - {name: a, context: {cluster: c, user: u, namespace: x}}
            - {name: b, context: {cluster: c, user: u}}
            """, context: "b")
        #expect(resolved.namespace == "default")
        #expect(resolved.tls.insecureSkipVerify)
        #expect(resolved.credentials.tokenFile == "/cfg/tok")  // relative to the kubeconfig's directory
    }

    @Test("file forms resolve relative to the kubeconfig, and KUBECONFIG lists merge with first-wins")
    func filesAndMerge() throws {
        let dir = try TemporaryDirectory()
        try dir.write("pki/ca.crt", Self.caPEM)
        try dir.write("pki/client.crt", "CERT")
        try dir.write("pki/client.key", "KEY", mode: 0o600)
        let first = try dir.write("first.yaml", """
            current-context: one
            clusters: [{name: shared, cluster: {server: "https://first", certificate-authority: pki/ca.crt}}]
            users: [{name: cert-user, user: {client-certificate: pki/client.crt, client-key: \(dir.path)/pki/client.key}}]
            contexts: [{name: one, context: {cluster: shared, user: cert-user}}]
            """)
        let second = try dir.write("second.yaml", """
            current-context: two
            clusters:
            - {name: shared, cluster: {server: "https://second"}}
            - {name: only-second, cluster: {server: "https://only-second"}}
            users: [{name: token-user, user: {token: t2}}]
            contexts: [{name: two, context: {cluster: only-second, user: token-user, namespace: ns2}}]
            """)
        let env = ["KUBECONFIG": "\(dir.path)/missing.yaml:\(first):\(second)", "HOME": dir.path]
        let merged = try Kubeconfig.loadDefault(environment: env)
        #expect(merged.files == [first, second])
        #expect(merged.currentContext == "one")
        let one = try ClusterConfig.from(kubeconfig: merged)
        #expect(one.server == "https://first")  // the first file's "shared" cluster wins
        #expect(one.tls.certificateAuthorityPEM == Data(Self.caPEM.utf8))
        #expect(one.credentials.clientCertificatePEM == Data("CERT".utf8))
        #expect(one.credentials.clientKeyPEM == Data("KEY".utf8))
        let two = try ClusterConfig.from(kubeconfig: merged, context: "two")
        #expect(two.server == "https://only-second")
        #expect(two.namespace == "ns2")
        #expect(two.credentials.token == "t2")
    }

    @Test("exec plugins in v1 and v1beta1 with args and env")
    func execForms() throws {
        for version in ["client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"] {
            let resolved = try config("""
                current-context: x
                clusters: [{name: c, cluster: {server: "https://h"}}]
                users:
                - name: u
                  user:
                    exec:
                      apiVersion: \(version)
                      command: ./bin/get-token
                      args: ["--cluster", "x"]
                      env: [{name: REGION, value: eu}]
                      provideClusterInfo: true
                      interactiveMode: Never
                contexts: [{name: x, context: {cluster: c, user: u}}]
                """)
            let exec = try #require(resolved.credentials.exec)
            #expect(exec.apiVersion == version)
            #expect(exec.command == "./bin/get-token")
            #expect(exec.args == ["--cluster", "x"])
            #expect(exec.env.map(\.name) == ["REGION"])
            #expect(exec.env.map(\.value) == ["eu"])
            #expect(exec.provideClusterInfo)
        }
    }

    @Test("malformed or incomplete kubeconfigs name the file, the context and the field", arguments: [
        ("current-context: x\nclusters: [{name: c, cluster: {server: https://h}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]",
         nil, ["/cfg/test.yaml", "context \"x\"", "user \"u\" not found"]),
        ("current-context: x\ncontexts: [{name: x, context: {cluster: nope}}]", nil, ["/cfg/test.yaml", "context \"x\"", "cluster \"nope\" not found"]),
        ("current-context: x\nclusters: [{name: c, cluster: {insecure-skip-tls-verify: true}}]\ncontexts: [{name: x, context: {cluster: c}}]",
         nil, ["/cfg/test.yaml", "context \"x\"", "cluster \"c\"", "\"server\" is missing"]),
        ("current-context: x\nclusters: [{name: c, cluster: {server: 'ftp://h'}}]\ncontexts: [{name: x, context: {cluster: c}}]",
         nil, ["\"server\" is not an http(s) URL"]),
        ("current-context: x\nclusters: [{name: c, cluster: {server: 'https://h', certificate-authority-data: '%%%'}}]\ncontexts: [{name: x, context: {cluster: c}}]",
         nil, ["certificate-authority-data", "not valid base64"]),
        ("current-context: x\nclusters: [{name: c, cluster: {server: 'https://h', certificate-authority: /no/such/ca.crt}}]\ncontexts: [{name: x, context: {cluster: c}}]",
         nil, ["certificate-authority", "cannot read /no/such/ca.crt"]),
        ("current-context: x\nclusters: [{name: c, cluster: {server: 'https://h'}}]\nusers: [{name: u, user: {client-certificate-data: Q0VSVA==}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]",
         nil, ["user \"u\"", "\"client-key\" is missing"]),
        ("current-context: x\nclusters: [{name: c, cluster: {server: 'https://h'}}]\nusers: [{name: u, user: {exec: {command: x}}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]",
         nil, ["users[u].user.exec", "\"apiVersion\" is missing"]),
        ("current-context: x\nclusters: [{name: c, cluster: {server: 'https://h'}}]\nusers: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1alpha1, command: x}}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]",
         nil, ["v1alpha1", "not supported"]),
        ("clusters: [{name: c, cluster: {server: 'https://h'}}]", nil, ["/cfg/test.yaml", "current-context is not set"]),
        ("current-context: x\ncontexts: [{name: y, context: {cluster: c}}]", nil, ["context \"x\" not found", "known contexts: y"]),
        ("current-context: x\ncontexts: [{name: x, context: {cluster: c}}]", "z", ["context \"z\" not found"]),
        ("clusters: {name: c}", nil, ["/cfg/test.yaml", "clusters", "must be a list"]),
        ("clusters: [{cluster: {server: x}}]", nil, ["clusters[0]", "\"name\" is missing"]),
        ("clusters: [{name: c}]", nil, ["clusters[c]", "\"cluster\" is missing"]),
        ("contexts: [{name: x, context: {user: u}}]", nil, ["contexts[x].context", "\"cluster\" is missing"]),
        ("clusters: [{name: c, cluster: {server: 'https://h', insecure-skip-tls-verify: maybe}}]", nil, ["insecure-skip-tls-verify", "true or false"]),
        ("key: [unclosed", nil, ["/cfg/test.yaml", "not valid YAML"]),
        ("- just\n- a list", nil, ["/cfg/test.yaml", "must be a mapping"]),
    ] as [(String, String?, [String])])
    func errors(yaml: String, context: String?, fragments: [String]) {
        #expect {
            _ = try config(yaml, context: context)
        } throws: { error in
            guard case KubeAPIError.configuration(let message) = error else { return false }
            let missing = fragments.filter { !message.contains($0) }
            if !missing.isEmpty { Issue.record("message \"\(message)\" lacks \(missing)") }
            return missing.isEmpty
        }
    }

    @Test("no kubeconfig at all is a clear error")
    func noFiles() {
        #expect(throws: KubeAPIError.configuration("no kubeconfig found (looked for /nonexistent/a, /nonexistent/b)")) {
            try Kubeconfig.loadDefault(environment: ["KUBECONFIG": "/nonexistent/a:/nonexistent/b"])
        }
    }

    @Test("in-cluster: service-account token, CA and namespace; IPv6 host")
    func inCluster() throws {
        let dir = try TemporaryDirectory()
        try dir.write("token", "sa-token\n")
        try dir.write("ca.crt", Self.caPEM)
        try dir.write("namespace", "tenops-system")
        let resolved = try ClusterConfig.inCluster(
            directory: dir.path, environment: ["KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"])
        #expect(resolved.server == "https://[fd00::1]:443")
        #expect(resolved.namespace == "tenops-system")
        #expect(resolved.tls.certificateAuthorityPEM == Data(Self.caPEM.utf8))
        #expect(resolved.credentials.tokenFile == "\(dir.path)/token")
        #expect(throws: KubeAPIError.self) { try ClusterConfig.inCluster(directory: dir.path, environment: [:]) }
        #expect(throws: KubeAPIError.self) {
            try ClusterConfig.inCluster(directory: "/nonexistent", environment: ["KUBERNETES_SERVICE_HOST": "h", "KUBERNETES_SERVICE_PORT": "1"])
        }
    }

    @Test("in-cluster token rotation: a rewritten token file is read again")
    func tokenRotation() async throws {
        let dir = try TemporaryDirectory()
        let token = try dir.write("token", "first")
        let provider = CredentialProvider(config: ClusterConfig(server: "https://h", tls: TLSSettings(), credentials: .init(tokenFile: token)))
        #expect(try await provider.current().bearerToken == "first")
        try dir.write("token", "second-token")
        #expect(try await provider.current().bearerToken == "second-token")
    }

    @Test("exec plugin output is validated; errors never echo the credential", arguments: [
        (#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","status":{"token":"s3cret"}}"#, true, ""),
        (#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1beta1","status":{"token":"s3cret"}}"#, false, "does not match"),
        (#"{"kind":"Other","apiVersion":"client.authentication.k8s.io/v1","status":{"token":"s3cret"}}"#, false, "kind must be ExecCredential"),
        (#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","status":{}}"#, false, "neither a token nor"),
        (#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","status":{"clientCertificateData":"c"}}"#, false, "must come together"),
        (#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","status":{"token":"s3cret","expirationTimestamp":"soon"}}"#, false, "RFC 3339"),
        (#"token=s3cret"#, false, "not an ExecCredential"),
    ])
    func execOutput(output: String, valid: Bool, fragment: String) {
        do {
            let credential = try ExecCredentialPlugin.parse(output, expectedVersion: "client.authentication.k8s.io/v1", command: "plugin")
            #expect(valid)
            #expect(credential.token == "s3cret")
        } catch {
            #expect(!valid)
            #expect(error.description.contains(fragment))
            #expect(!error.description.contains("s3cret"))
        }
    }
}
