import Foundation
import KubeAPI
import PKI
import Synchronization

/// A problem with a pair's certificates or their Secrets, with the Secret it concerns.
public struct PairCertificateError: Error, Sendable, Equatable, CustomStringConvertible {
    public var secret: String
    public var message: String

    public init(secret: String, message: String) {
        self.secret = secret
        self.message = message
    }

    public var description: String { "Secret \(secret): \(message)" }
}

/// The per-pair CA and what it issues.
///
/// - `NAME-ca` (`ca.crt`, `ca.key`) holds the CA. No pod mounts it; only the operator reads it.
/// - `NAME-agent-tls` (`ca.crt`, `tls.crt`, `tls.key`) is what the pods mount at /agent-tls: the
///   CA certificate, to check the operator's client certificate, and the agent's serverAuth-only
///   certificate with its key.
/// - The operator issues itself clientAuth-only certificates from the same CA.
///
/// How the operator checks an agent: it trusts the pair's CA and nothing else, and checks the
/// agent's certificate against the DNS name `NAME.NS.svc` (`PairNames.agentServerName`) while
/// connecting to the pod's IP, which changes and is not in the certificate. Only the operator
/// holds the CA's key, and the only serverAuth certificate the CA signs is the pair's agent
/// certificate, so a server that passes is an agent of this pair.
public struct PairCertificates: Sendable {
    public static let caCertificateKey = "ca.crt"
    public static let caKeyKey = "ca.key"
    public static let certificateKey = "tls.crt"
    public static let keyKey = "tls.key"
    /// An agent certificate closer than this to its end is issued again.
    public static let renewBefore: TimeInterval = 30 * 86_400

    public let names: PairNames
    /// The CA's certificate as OpenSSL writes it, and its key as the `NAME-ca` Secret holds it.
    public let caCertificatePEM: String
    private let caKeyPEM: String
    /// The uid and resourceVersion of the `NAME-ca` Secret this CA was read from; nil for a
    /// new CA, or one read from a Secret that has neither.
    var caSecretVersion: String?

    public init(names: PairNames, authority: CertificateAuthority) throws {
        self.init(names: names, caCertificatePEM: try authority.certificate.pem, caKeyPEM: try authority.privateKey.pem)
    }

    private init(names: PairNames, caCertificatePEM: String, caKeyPEM: String) {
        self.names = names
        self.caCertificatePEM = caCertificatePEM
        self.caKeyPEM = caKeyPEM
    }

    /// The CA, parsed from its PEM at each use: nothing parsed is kept. A reconcile needs it
    /// only to issue a certificate or to check the agent's (once per version of its Secret), and
    /// 1,000 pairs' parsed CAs held about 4 MB of OpenSSL objects.
    public var authority: CertificateAuthority {
        get throws { try CertificateAuthority(certificatePEM: caCertificatePEM, privateKeyPEM: caKeyPEM) }
    }

    /// A new CA for the pair.
    public static func create(for names: PairNames) throws -> PairCertificates {
        try PairCertificates(names: names, authority: try CertificateAuthority.create(commonName: caCommonName(names)))
    }

    /// The pair's CA from its Secret, or a new CA when there is no Secret yet. Whatever is in an
    /// existing Secret is reused or refused, never replaced: a new CA would cut the operator off
    /// from agents that still trust the old one.
    public static func load(caSecret: Secret?, for names: PairNames) throws(PairCertificateError) -> (PairCertificates, created: Bool) {
        guard let caSecret else {
            do { return (try create(for: names), true) } catch {
                throw PairCertificateError(secret: names.caSecret, message: "cannot create the pair CA: \(error)")
            }
        }
        let data = caSecret.data
        func text(_ key: String) throws(PairCertificateError) -> String {
            guard let bytes = data[key], !bytes.isEmpty else {
                throw PairCertificateError(secret: names.caSecret, message: "key \(key) is missing")
            }
            guard let text = String(data: bytes, encoding: .utf8) else {
                throw PairCertificateError(secret: names.caSecret, message: "key \(key) is not PEM text")
            }
            return text
        }
        let certificate = try text(caCertificateKey)
        let key = try text(caKeyKey)
        // Every reconcile reads the CA; OpenSSL parses a PEM key in about a millisecond, so only
        // a version of the Secret not seen before is parsed: to refuse one that holds no usable
        // CA, and to keep the CA certificate as OpenSSL writes it (the one certificate the pair
        // trusts, whatever else the Secret's text holds).
        let version = ParsedSecretCache.version(of: caSecret)
        if let version, let canonical = ParsedSecretCache.authorityCertificates.value(for: caSecret, version: version) {
            var loaded = PairCertificates(names: names, caCertificatePEM: canonical, caKeyPEM: key)
            loaded.caSecretVersion = version
            return (loaded, false)
        }
        do {
            var loaded = try PairCertificates(names: names, authority: try CertificateAuthority(certificatePEM: certificate, privateKeyPEM: key))
            loaded.caSecretVersion = version
            if let version { ParsedSecretCache.authorityCertificates.store(loaded.caCertificatePEM, for: caSecret, version: version) }
            return (loaded, false)
        } catch {
            throw PairCertificateError(secret: names.caSecret, message: "does not hold a usable CA: \(error)")
        }
    }

    static func caCommonName(_ names: PairNames) -> String { String("tenops-ca-\(names.name)".prefix(64)) }

    // MARK: Secrets

    /// `NAME-ca`, owned by the TimesTenClassic.
    public func caSecret(owner: TimesTenClassic) throws -> Secret {
        try secret(names.caSecret, type: "Opaque", owner: owner, data: [
            Self.caCertificateKey: caCertificatePEM,
            Self.caKeyKey: caKeyPEM,
        ])
    }

    /// `NAME-agent-tls` with a newly issued agent certificate, owned by the TimesTenClassic.
    public func agentTLSSecret(owner: TimesTenClassic) throws -> Secret {
        let agent = try issueAgent()
        return try secret(names.agentTLSSecret, type: "kubernetes.io/tls", owner: owner, data: [
            Self.caCertificateKey: caCertificatePEM,
            Self.certificateKey: try agent.certificatePEM,
            Self.keyKey: try agent.privateKeyPEM,
        ])
    }

    private func secret(_ name: String, type: String, owner: TimesTenClassic, data: [String: String]) throws -> Secret {
        var secret = Secret(name: name, namespace: names.namespace)
        secret.metadata = names.metadata(name, owner: owner)
        secret.type = type
        secret.data = data.mapValues { Data($0.utf8) }
        return secret
    }

    // MARK: Certificates

    /// Every name an agent of the pair answers to: the Service's, each pod's, and wildcards
    /// under the Service for pods the pair may get later.
    public static func agentDNSNames(_ names: PairNames) -> [String] {
        let service = names.service, namespace = names.namespace, domain = PairNames.clusterDomain
        var dns = [service, "\(service).\(namespace)", "\(service).\(namespace).svc", "\(service).\(namespace).svc.\(domain)",
                   "*.\(service).\(namespace).svc", "*.\(service).\(namespace).svc.\(domain)"]
        for ordinal in 0..<PairNames.replicas {
            dns += ["\(names.pod(ordinal)).\(service).\(namespace).svc", names.podDNSName(ordinal)]
        }
        return dns
    }

    /// The agent's certificate: serverAuth only, for `agentDNSNames`.
    public func issueAgent(validity: TimeInterval = CertificateAuthority.defaultLeafValidity) throws -> IssuedCertificate {
        try authority.issue(CertificateRequest(
            commonName: String("\(names.name)-agent".prefix(64)), dnsNames: Self.agentDNSNames(names), usages: [.serverAuth],
            validity: validity))
    }

    /// A client certificate for the operator: clientAuth only.
    public func issueOperatorClient(
        commonName: String = "tenops-operator", validity: TimeInterval = CertificateAuthority.defaultLeafValidity
    ) throws -> IssuedCertificate {
        try authority.issueClient(commonName: commonName, organizations: ["tenops"], validity: validity)
    }

    /// How the operator talks to this pair's agents with `client` (from `issueOperatorClient`):
    /// the pair CA as the only trust, the client certificate, and `NAME.NS.svc` as the name to
    /// check the agent's certificate against. The transport must honour `serverName`.
    public func agentTLSSettings(client: IssuedCertificate) throws -> TLSSettings {
        TLSSettings(
            certificateAuthorityPEM: Data(caCertificatePEM.utf8),
            clientCertificatePEM: Data(try client.certificatePEM.utf8), clientKeyPEM: Data(try client.privateKeyPEM.utf8),
            serverName: names.agentServerName)
    }

    /// What is wrong with an existing `NAME-agent-tls` Secret; empty when it can stay: it holds
    /// this CA's certificate, and a serverAuth-only certificate from this CA for every name in
    /// `agentDNSNames`, not within `renewBefore` of its end, with the key that belongs to it.
    public func agentTLSProblems(_ secret: Secret, now: Date = Date()) -> [String] {
        // Parsed once per version of both Secrets; only the expiry depends on `now`.
        let version = caSecretVersion.flatMap { ca in ParsedSecretCache.version(of: secret).map { "\($0) ca \(ca)" } }
        if let version, let cached = ParsedSecretCache.agentChecks.value(for: secret, version: version) {
            return cached.problems(now: now)
        }
        let check = agentTLSCheck(secret)
        if let version { ParsedSecretCache.agentChecks.store(check, for: secret, version: version) }
        return check.problems(now: now)
    }

    /// What `agentTLSProblems` finds, its expiry left for the time of asking.
    struct AgentTLSCheck: Sendable {
        var before: [String]
        /// The certificate's end; nil when there is no certificate (and nothing after it).
        var notAfter: Date?
        var after: [String]

        func problems(now: Date) -> [String] {
            var problems = before
            if let notAfter, notAfter.timeIntervalSince(now) < PairCertificates.renewBefore {
                problems.append("\(PairCertificates.certificateKey) expires at \(KubeTime.format(notAfter))")
            }
            return problems + after
        }
    }

    func agentTLSCheck(_ secret: Secret) -> AgentTLSCheck {
        let data = secret.data
        func text(_ key: String) -> String? { data[key].flatMap { String(data: $0, encoding: .utf8) } }
        var problems: [String] = []
        if text(Self.caCertificateKey) != caCertificatePEM { problems.append("\(Self.caCertificateKey) is not the pair CA's certificate") }
        guard let certificatePEM = text(Self.certificateKey), let certificate = try? Certificate(pem: certificatePEM) else {
            return AgentTLSCheck(before: problems + ["\(Self.certificateKey) is missing or not a certificate"], notAfter: nil, after: [])
        }
        do { try authority.verify(certificate, for: .serverAuth) } catch {
            problems.append("\(Self.certificateKey) does not verify against the pair CA: \(error)")
        }
        if certificate.extendedKeyUsages != [.serverAuth] { problems.append("\(Self.certificateKey) is not for serverAuth only") }
        let missing = Self.agentDNSNames(names).filter { !certificate.dnsNames.contains($0) }
        if !missing.isEmpty { problems.append("\(Self.certificateKey) lacks the names \(missing.joined(separator: ", "))") }
        let key = text(Self.keyKey).flatMap { try? PrivateKey(pem: $0) }
        let keyProblems = key.map(certificate.matches) == true ? [] : ["\(Self.keyKey) is missing or does not belong to \(Self.certificateKey)"]
        return AgentTLSCheck(before: problems, notAfter: certificate.notAfter, after: keyProblems)
    }
}

/// What was parsed out of a pair's Secrets, by Secret and version (uid and resourceVersion, which
/// change with any change of content). One entry per Secret: a new version replaces the old.
enum ParsedSecretCache {
    /// The CA certificate of each CA Secret that holds a usable CA, as OpenSSL writes it: text,
    /// no parsed object.
    static let authorityCertificates = ParsedSecrets<String>()
    static let agentChecks = ParsedSecrets<PairCertificates.AgentTLSCheck>()

    /// The Secret's version, nil when it has no uid or resourceVersion (not from an API server).
    static func version(of secret: Secret) -> String? {
        guard let uid = secret.uid, let resourceVersion = secret.resourceVersion else { return nil }
        return "\(uid)/\(resourceVersion)"
    }
}

/// One kind of parsed value, by Secret; see `ParsedSecretCache`.
final class ParsedSecrets<Value: Sendable>: Sendable {
    /// Past this many Secrets (pairs come and go), the cache starts over.
    static var capacity: Int { 20_000 }

    private let entries = Mutex<[String: (version: String, value: Value)]>([:])

    func value(for secret: Secret, version: String) -> Value? {
        entries.withLock { entries in
            guard let entry = entries[secret.key.description], entry.version == version else { return nil }
            return entry.value
        }
    }

    func store(_ value: Value, for secret: Secret, version: String) {
        entries.withLock { entries in
            if entries.count >= Self.capacity { entries = [:] }
            entries[secret.key.description] = (version, value)
        }
    }
}
