import Foundation

/// Everything needed to talk to one API server as one user: the resolved form of a kubeconfig
/// context or of the in-cluster service account.
public struct ClusterConfig: Sendable {
    /// Base URL without a trailing slash, e.g. `https://127.0.0.1:6443`.
    public var server: String
    /// Server trust. Client certificates live in `credentials`.
    public var tls: TLSSettings
    /// The namespace from the context, or `default`.
    public var namespace: String
    public var credentials: Credentials
    /// The context this came from; nil in-cluster.
    public var contextName: String?

    public init(server: String, tls: TLSSettings, namespace: String = "default", credentials: Credentials, contextName: String? = nil) {
        self.server = server.hasSuffix("/") ? String(server.dropLast()) : server
        self.tls = tls
        self.namespace = namespace
        self.credentials = credentials
        self.contextName = contextName
    }

    /// How the client proves who it is.
    public struct Credentials: Sendable {
        public var clientCertificatePEM: Data?
        public var clientKeyPEM: Data?
        public var token: String?
        /// Re-read whenever it changes, as projected service-account tokens rotate.
        public var tokenFile: String?
        public var exec: Kubeconfig.ExecConfig?

        public init(
            clientCertificatePEM: Data? = nil, clientKeyPEM: Data? = nil, token: String? = nil, tokenFile: String? = nil,
            exec: Kubeconfig.ExecConfig? = nil
        ) {
            self.clientCertificatePEM = clientCertificatePEM
            self.clientKeyPEM = clientKeyPEM
            self.token = token
            self.tokenFile = tokenFile
            self.exec = exec
        }
    }

    // MARK: From a kubeconfig

    /// Resolves a context (the current one when `context` is nil) the way kubectl does.
    public static func from(kubeconfig: Kubeconfig, context requested: String? = nil) throws(KubeAPIError) -> ClusterConfig {
        let files = kubeconfig.files.joined(separator: ":")
        guard let contextName = requested ?? kubeconfig.currentContext, !contextName.isEmpty else {
            throw .configuration("kubeconfig \(files): no context given and current-context is not set")
        }
        guard let context = kubeconfig.contexts[contextName] else {
            let known = kubeconfig.contexts.keys.sorted().joined(separator: ", ")
            throw .configuration("kubeconfig \(files): context \"\(contextName)\" not found (known contexts: \(known.isEmpty ? "none" : known))")
        }
        let at = "kubeconfig \(context.source): context \"\(contextName)\""
        guard let cluster = kubeconfig.clusters[context.cluster] else {
            throw .configuration("\(at): cluster \"\(context.cluster)\" not found")
        }
        let clusterAt = "kubeconfig \(cluster.source): context \"\(contextName)\": cluster \"\(context.cluster)\""
        guard let server = cluster.server, !server.isEmpty else {
            throw .configuration("\(clusterAt): field \"server\" is missing")
        }
        guard let url = URL(string: server), let scheme = url.scheme, ["https", "http"].contains(scheme), url.host != nil else {
            throw .configuration("\(clusterAt): field \"server\" is not an http(s) URL: \"\(server)\"")
        }
        var tls = TLSSettings(insecureSkipVerify: cluster.insecureSkipTLSVerify, serverName: cluster.tlsServerName)
        if let data = cluster.certificateAuthorityData {
            tls.certificateAuthorityPEM = try decodeBase64(data, field: "certificate-authority-data", at: clusterAt)
        } else if let path = cluster.certificateAuthority {
            tls.certificateAuthorityPEM = try readFile(path, relativeTo: cluster.source, field: "certificate-authority", at: clusterAt)
        }
        if tls.insecureSkipVerify && tls.certificateAuthorityPEM != nil {
            throw .configuration("\(clusterAt): insecure-skip-tls-verify cannot be combined with a certificate authority")
        }

        var credentials = Credentials()
        if !context.user.isEmpty {
            guard let user = kubeconfig.users[context.user] else {
                throw .configuration("\(at): user \"\(context.user)\" not found")
            }
            let userAt = "kubeconfig \(user.source): context \"\(contextName)\": user \"\(context.user)\""
            if let data = user.clientCertificateData {
                credentials.clientCertificatePEM = try decodeBase64(data, field: "client-certificate-data", at: userAt)
            } else if let path = user.clientCertificate {
                credentials.clientCertificatePEM = try readFile(path, relativeTo: user.source, field: "client-certificate", at: userAt)
            }
            if let data = user.clientKeyData {
                credentials.clientKeyPEM = try decodeBase64(data, field: "client-key-data", at: userAt)
            } else if let path = user.clientKey {
                credentials.clientKeyPEM = try readFile(path, relativeTo: user.source, field: "client-key", at: userAt)
            }
            if (credentials.clientCertificatePEM == nil) != (credentials.clientKeyPEM == nil) {
                let missing = credentials.clientCertificatePEM == nil ? "client-certificate" : "client-key"
                throw .configuration("\(userAt): field \"\(missing)\" is missing (a client certificate needs both certificate and key)")
            }
            credentials.token = user.token.flatMap { $0.isEmpty ? nil : $0 }
            if let tokenFile = user.tokenFile {
                credentials.tokenFile = resolve(tokenFile, relativeTo: user.source)
            }
            credentials.exec = user.exec
        }
        return ClusterConfig(
            server: server, tls: tls, namespace: context.namespace.flatMap { $0.isEmpty ? nil : $0 } ?? "default",
            credentials: credentials, contextName: contextName)
    }

    /// Loads `path` (or `KUBECONFIG`, or `~/.kube/config`) and resolves `context`.
    public static func load(kubeconfig path: String? = nil, context: String? = nil,
                            environment: [String: String] = ProcessInfo.processInfo.environment) throws(KubeAPIError) -> ClusterConfig {
        let kubeconfig: Kubeconfig
        if let path {
            kubeconfig = try Kubeconfig.load(paths: [path])
        } else {
            kubeconfig = try Kubeconfig.loadDefault(environment: environment)
        }
        return try from(kubeconfig: kubeconfig, context: context)
    }

    // MARK: In-cluster

    public static let serviceAccountDirectory = "/var/run/secrets/kubernetes.io/serviceaccount"

    /// The pod's service account, as client-go's rest.InClusterConfig reads it.
    public static func inCluster(
        directory: String = serviceAccountDirectory, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(KubeAPIError) -> ClusterConfig {
        guard let host = environment["KUBERNETES_SERVICE_HOST"], !host.isEmpty,
              let port = environment["KUBERNETES_SERVICE_PORT"], !port.isEmpty
        else {
            throw .configuration("not running in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set")
        }
        let tokenPath = "\(directory)/token"
        guard FileManager.default.isReadableFile(atPath: tokenPath) else {
            throw .configuration("in-cluster configuration: cannot read the service-account token \(tokenPath)")
        }
        let ca = try readFile("\(directory)/ca.crt", relativeTo: nil, field: "ca.crt", at: "in-cluster configuration")
        let namespace = (try? String(contentsOfFile: "\(directory)/namespace", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let hostPart = host.contains(":") ? "[\(host)]" : host
        return ClusterConfig(
            server: "https://\(hostPart):\(port)", tls: TLSSettings(certificateAuthorityPEM: ca),
            namespace: namespace.flatMap { $0.isEmpty ? nil : $0 } ?? "default",
            credentials: Credentials(tokenFile: tokenPath))
    }

    // MARK: Helpers

    static func resolve(_ path: String, relativeTo source: String?) -> String {
        if path.hasPrefix("/") || source == nil { return path }
        let directory = URL(fileURLWithPath: source!).deletingLastPathComponent().path
        return "\(directory)/\(path)"
    }

    static func readFile(_ path: String, relativeTo source: String?, field: String, at: String) throws(KubeAPIError) -> Data {
        let full = resolve(path, relativeTo: source)
        guard let data = FileManager.default.contents(atPath: full) else {
            throw .configuration("\(at): field \"\(field)\": cannot read \(full)")
        }
        return data
    }

    static func decodeBase64(_ text: String, field: String, at: String) throws(KubeAPIError) -> Data {
        let cleaned = text.filter { !$0.isWhitespace }
        guard let data = Data(base64Encoded: cleaned), !data.isEmpty else {
            throw .configuration("\(at): field \"\(field)\" is not valid base64")
        }
        return data
    }
}
