import Foundation
import KubeAPI
import NIOSSL
import PKI
import Synchronization

/// The local cluster's PKI, kept under `STATE/pki`: a CA, the API server's serving
/// certificate, an administrator's client certificate (CN tenops-admin, O system:masters) and
/// bearer tokens for service accounts. Created once; a restart reuses it, so kubeconfigs stay
/// valid.
public struct ClusterCredentials: Sendable {
    public let directory: String
    public let ca: CertificateAuthority
    public let server: IssuedCertificate
    public let admin: IssuedCertificate
    public let kubeletClient: IssuedCertificate
    /// token -> user, shared by every copy of these credentials.
    let tokens: TokenTable

    public static func loadOrCreate(directory: String, host: String) throws -> ClusterCredentials {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        let caCert = "\(directory)/ca.crt", caKey = "\(directory)/ca.key"
        let ca: CertificateAuthority
        if FileManager.default.fileExists(atPath: caCert) {
            ca = try CertificateAuthority(certificatePEM: PEMFile.read(caCert), privateKeyPEM: PEMFile.read(caKey))
        } else {
            ca = try CertificateAuthority.create(commonName: "tenops-local-ca")
            try PEMFile.write(ca.certificate.pem, to: caCert)
            try PEMFile.write(ca.privateKey.pem, to: caKey, privateKey: true)
        }
        func leaf(_ name: String, issue: () throws -> IssuedCertificate) throws -> IssuedCertificate {
            let cert = "\(directory)/\(name).crt", key = "\(directory)/\(name).key"
            if FileManager.default.fileExists(atPath: cert), let existing = try? IssuedCertificate(
                certificate: PEMFile.readCertificate(cert), privateKey: PEMFile.readPrivateKey(key)),
                existing.certificate.isSigned(by: ca.certificate) {
                return existing
            }
            let issued = try issue()
            try PEMFile.write(issued, certificatePath: cert, keyPath: key)
            return issued
        }
        let server = try leaf("apiserver") {
            try ca.issueServer(commonName: "tenops-apiserver", dnsNames: ["localhost", "kubernetes", "kubernetes.default"],
                               ipAddresses: Array(Set(["127.0.0.1", host])).filter { !$0.contains(":") || true })
        }
        let admin = try leaf("admin") { try ca.issueClient(commonName: "tenops-admin", organizations: ["system:masters"]) }
        // What the API server presents to a node's kubelet endpoint when it proxies pod logs,
        // as kube-apiserver presents its apiserver-kubelet-client certificate.
        let kubeletClient = try leaf("apiserver-kubelet-client") {
            try ca.issueClient(commonName: "kube-apiserver-kubelet-client", organizations: ["system:masters"])
        }
        let tokensPath = "\(directory)/tokens.json"
        var tokens: [String: AuthenticatedUser] = [:]
        if let data = FileManager.default.contents(atPath: tokensPath), let object = try? JSONParser.parseObject(data) {
            for (token, entry) in object {
                if let user = entry["user"].stringValue {
                    tokens[token] = AuthenticatedUser(name: user, groups: entry["groups"].arrayValue?.compactMap(\.stringValue) ?? [])
                }
            }
        }
        return ClusterCredentials(directory: directory, ca: ca, server: server, admin: admin, kubeletClient: kubeletClient,
                                  tokens: TokenTable(tokens))
    }

    func user(forToken token: String) -> AuthenticatedUser? { tokens.user(for: token) }

    /// The bearer token of a component that runs on every start (a node, the controllers): the
    /// one issued before, so tokens.json does not grow with each restart.
    public func componentToken(for user: String, groups: [String]) throws -> String {
        if let existing = tokens.token(of: user) { return existing }
        return try issueToken(for: user, groups: groups)
    }

    /// Issues a bearer token for a service account and remembers it in the state directory.
    public func issueToken(for user: String, groups: [String]) throws -> String {
        var bytes = [UInt8](repeating: 0, count: 32)
        for index in bytes.indices { bytes[index] = UInt8.random(in: 0...255) }
        let token = Data(bytes).base64EncodedString().replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "+", with: "-")
        let path = "\(directory)/tokens.json"
        var object = (FileManager.default.contents(atPath: path)).flatMap { try? JSONParser.parseObject($0) } ?? [:]
        object[token] = ["user": .string(user), "groups": .array(groups.map(JSONValue.string))]
        try PEMFile.write(JSONWriter.string(.object(object)), to: path, privateKey: true)
        tokens.add(token, AuthenticatedUser(name: user, groups: groups))
        return token
    }

    func serverTLSConfiguration() throws -> TLSConfiguration {
        let chain = try NIOSSLCertificate.fromPEMBytes(Array(try server.certificatePEM.utf8))
        let key = try NIOSSLPrivateKey(bytes: Array(try server.privateKeyPEM.utf8), format: .pem)
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(try ca.certificate.pem.utf8)))
        // Client certificates are optional (tokens work too), but one that is presented must verify.
        configuration.certificateVerification = .optionalVerification
        configuration.shutdownTimeout = .milliseconds(100)
        return configuration
    }

    /// An admin kubeconfig with everything embedded, written atomically with mode 0600.
    public func writeKubeconfig(to path: String, server: String, context: String = "tenops-local") throws {
        func b64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }
        let text = """
            apiVersion: v1
            kind: Config
            current-context: \(context)
            clusters:
            - name: \(context)
              cluster:
                server: \(server)
                certificate-authority-data: \(b64(try ca.certificate.pem))
            users:
            - name: tenops-admin
              user:
                client-certificate-data: \(b64(try admin.certificatePEM))
                client-key-data: \(b64(try admin.privateKeyPEM))
            contexts:
            - name: \(context)
              context:
                cluster: \(context)
                user: tenops-admin
                namespace: default

            """
        try PEMFile.write(text, to: path, privateKey: true)
    }
}

/// Bearer tokens the server accepts. Never logged.
final class TokenTable: Sendable {
    private let table: Mutex<[String: AuthenticatedUser]>
    init(_ initial: [String: AuthenticatedUser]) { table = Mutex(initial) }
    func user(for token: String) -> AuthenticatedUser? { table.withLock { $0[token] } }
    func add(_ token: String, _ user: AuthenticatedUser) { table.withLock { $0[token] = user } }
    func token(of user: String) -> String? { table.withLock { $0.first { $0.value.name == user }?.key } }
}
