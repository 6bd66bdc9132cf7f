import COpenSSL
import Foundation

/// A certificate together with the private key it was issued for.
public struct IssuedCertificate: Sendable {
    public let certificate: Certificate
    public let privateKey: PrivateKey

    public init(certificate: Certificate, privateKey: PrivateKey) {
        self.certificate = certificate
        self.privateKey = privateKey
    }

    public var certificatePEM: String { get throws { try certificate.pem } }
    public var privateKeyPEM: String { get throws { try privateKey.pem } }
}

/// What a new leaf certificate should say.
public struct CertificateRequest: Sendable, Equatable {
    public var commonName: String
    public var organizations: [String]
    public var dnsNames: [String]
    public var ipAddresses: [String]
    public var usages: Set<ExtendedKeyUsage>
    public var validity: TimeInterval

    public init(
        commonName: String, organizations: [String] = [], dnsNames: [String] = [], ipAddresses: [String] = [],
        usages: Set<ExtendedKeyUsage>, validity: TimeInterval = CertificateAuthority.defaultLeafValidity
    ) {
        self.commonName = commonName
        self.organizations = organizations
        self.dnsNames = dnsNames
        self.ipAddresses = ipAddresses
        self.usages = usages
        self.validity = validity
    }
}

/// A certificate authority: a self-signed CA certificate and its key. It issues serverAuth and
/// clientAuth leaves and verifies chains with libssl.
public struct CertificateAuthority: Sendable {
    public static let defaultCAValidity: TimeInterval = 10 * 365 * 86_400
    public static let defaultLeafValidity: TimeInterval = 2 * 365 * 86_400
    /// Backdating tolerates small clock differences between machines.
    static let backdate: TimeInterval = 300

    public let certificate: Certificate
    public let privateKey: PrivateKey

    /// Creates a new self-signed CA.
    public static func create(commonName: String, validity: TimeInterval = defaultCAValidity) throws -> CertificateAuthority {
        try CertificateName.validate(commonName: commonName)
        let key = try PrivateKey.generate()
        let builder = try CertificateBuilder(subjectKey: key, commonName: commonName, organizations: [], validity: validity)
        try builder.addExtension(NID_basic_constraints, "critical,CA:TRUE", issuer: nil)
        try builder.addExtension(NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature", issuer: nil)
        try builder.addExtension(NID_subject_key_identifier, "hash", issuer: nil)
        let certificate = try builder.sign(issuerName: nil, with: key)
        return CertificateAuthority(certificate: certificate, privateKey: key)
    }

    /// Loads a CA from PEM. The key must belong to the certificate, and the certificate must be a CA.
    public init(certificatePEM: String, privateKeyPEM: String) throws {
        let certificate = try Certificate(pem: certificatePEM)
        let key = try PrivateKey(pem: privateKeyPEM)
        guard certificate.matches(key) else {
            throw PKIError.invalidArgument("the CA private key does not belong to the CA certificate")
        }
        guard certificate.isCertificateAuthority else {
            throw PKIError.invalidArgument("the certificate is not a CA (basicConstraints CA:TRUE is missing)")
        }
        self.init(certificate: certificate, privateKey: key)
    }

    init(certificate: Certificate, privateKey: PrivateKey) {
        self.certificate = certificate
        self.privateKey = privateKey
    }

    /// Issues a leaf certificate with a fresh key.
    public func issue(_ request: CertificateRequest) throws -> IssuedCertificate {
        guard !request.usages.isEmpty else {
            throw PKIError.invalidArgument("a leaf certificate needs at least one extended key usage")
        }
        try CertificateName.validate(commonName: request.commonName)
        let sans = try CertificateName.subjectAltNames(dns: request.dnsNames, ip: request.ipAddresses)
        let key = try PrivateKey.generate()
        let builder = try CertificateBuilder(
            subjectKey: key, commonName: request.commonName, organizations: request.organizations,
            validity: request.validity)
        let issuer = certificate.handle.pointer
        try builder.addExtension(NID_basic_constraints, "critical,CA:FALSE", issuer: issuer)
        try builder.addExtension(NID_key_usage, "critical,digitalSignature,keyEncipherment", issuer: issuer)
        let usages = ExtendedKeyUsage.allCases.filter(request.usages.contains).map(\.rawValue).joined(separator: ",")
        try builder.addExtension(NID_ext_key_usage, usages, issuer: issuer)
        try builder.addExtension(NID_subject_key_identifier, "hash", issuer: issuer)
        try builder.addExtension(NID_authority_key_identifier, "keyid:always", issuer: issuer)
        if let sans { try builder.addExtension(NID_subject_alt_name, sans, issuer: issuer) }
        let leaf = try builder.sign(issuerName: X509_get_subject_name(issuer), with: privateKey)
        return IssuedCertificate(certificate: leaf, privateKey: key)
    }

    /// A serverAuth certificate for the given names and addresses.
    public func issueServer(
        commonName: String, dnsNames: [String] = [], ipAddresses: [String] = [],
        validity: TimeInterval = defaultLeafValidity
    ) throws -> IssuedCertificate {
        try issue(CertificateRequest(
            commonName: commonName, dnsNames: dnsNames, ipAddresses: ipAddresses, usages: [.serverAuth],
            validity: validity))
    }

    /// A clientAuth certificate. Kubernetes reads the user from CN and the groups from O.
    public func issueClient(
        commonName: String, organizations: [String] = [], validity: TimeInterval = defaultLeafValidity
    ) throws -> IssuedCertificate {
        try issue(CertificateRequest(
            commonName: commonName, organizations: organizations, usages: [.clientAuth], validity: validity))
    }

    /// Verifies that `leaf` chains to this CA, is within its validity period and may be used
    /// for `usage`. Throws with libssl's reason when it does not.
    public func verify(_ leaf: Certificate, for usage: ExtendedKeyUsage) throws {
        guard let store = X509_STORE_new() else { throw PKIError.openssl("X509_STORE_new") }
        defer { X509_STORE_free(store) }
        guard X509_STORE_add_cert(store, certificate.handle.pointer) == 1 else { throw PKIError.openssl("X509_STORE_add_cert") }
        guard let context = X509_STORE_CTX_new() else { throw PKIError.openssl("X509_STORE_CTX_new") }
        defer { X509_STORE_CTX_free(context) }
        guard X509_STORE_CTX_init(context, store, leaf.handle.pointer, nil) == 1 else {
            throw PKIError.openssl("X509_STORE_CTX_init")
        }
        let purpose = usage == .serverAuth ? X509_PURPOSE_SSL_SERVER : X509_PURPOSE_SSL_CLIENT
        _ = X509_STORE_CTX_set_purpose(context, purpose)
        if X509_verify_cert(context) != 1 {
            let code = X509_STORE_CTX_get_error(context)
            let reason = String(cString: X509_verify_cert_error_string(Int(code)))
            ERR_clear_error()
            throw PKIError.invalidArgument("certificate verification failed: \(reason)")
        }
    }
}

/// Assembles and signs one X509 certificate.
private final class CertificateBuilder {
    let x509: OpaquePointer

    init(subjectKey: PrivateKey, commonName: String, organizations: [String], validity: TimeInterval) throws {
        guard validity > 0 else { throw PKIError.invalidArgument("certificate validity must be positive") }
        guard let x509 = X509_new() else { throw PKIError.openssl("X509_new") }
        self.x509 = x509
        guard X509_set_version(x509, 2) == 1 else { throw PKIError.openssl("X509_set_version") }
        try Self.setRandomSerial(x509)
        guard X509_gmtime_adj(X509_getm_notBefore(x509), -Int(CertificateAuthority.backdate)) != nil,
              X509_gmtime_adj(X509_getm_notAfter(x509), Int(validity)) != nil
        else { throw PKIError.openssl("X509_gmtime_adj") }
        guard let name = X509_get_subject_name(x509) else { throw PKIError.openssl("X509_get_subject_name") }
        for organization in organizations { try Self.addEntry(name, "O", organization) }
        try Self.addEntry(name, "CN", commonName)
        guard X509_set_pubkey(x509, subjectKey.handle.pointer) == 1 else { throw PKIError.openssl("X509_set_pubkey") }
    }

    deinit { X509_free(x509) }

    /// Adds one v3 extension in OpenSSL's configuration syntax. `issuer` nil means self-signed.
    func addExtension(_ nid: Int32, _ value: String, issuer: OpaquePointer?) throws {
        var context = X509V3_CTX()
        tenops_x509v3_set_ctx_nodb(&context)
        X509V3_set_ctx(&context, issuer ?? x509, x509, nil, nil, 0)
        guard let ext = X509V3_EXT_conf_nid(nil, &context, nid, value) else {
            throw PKIError.openssl("extension \(String(cString: OBJ_nid2sn(nid))) = \(value)")
        }
        defer { X509_EXTENSION_free(ext) }
        guard X509_add_ext(x509, ext, -1) == 1 else { throw PKIError.openssl("X509_add_ext") }
    }

    func sign(issuerName: OpaquePointer?, with key: PrivateKey) throws -> Certificate {
        guard X509_set_issuer_name(x509, issuerName ?? X509_get_subject_name(x509)) == 1 else {
            throw PKIError.openssl("X509_set_issuer_name")
        }
        guard X509_sign(x509, key.handle.pointer, EVP_sha256()) > 0 else { throw PKIError.openssl("X509_sign") }
        guard X509_up_ref(x509) == 1 else { throw PKIError.openssl("X509_up_ref") }
        return Certificate(handle: CertificateHandle(x509))
    }

    private static func addEntry(_ name: OpaquePointer, _ field: String, _ value: String) throws {
        let bytes = Array(value.utf8)
        let ok = bytes.withUnsafeBufferPointer {
            X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8, $0.baseAddress, Int32($0.count), -1, 0)
        }
        guard ok == 1 else { throw PKIError.openssl("subject \(field)=\(value)") }
    }

    private static func setRandomSerial(_ x509: OpaquePointer) throws {
        var bytes = [UInt8](repeating: 0, count: 16)
        guard RAND_bytes(&bytes, Int32(bytes.count)) == 1 else { throw PKIError.openssl("RAND_bytes") }
        bytes[0] &= 0x7F  // a positive serial
        guard let bignum = BN_bin2bn(bytes, Int32(bytes.count), nil) else { throw PKIError.openssl("BN_bin2bn") }
        defer { BN_free(bignum) }
        guard BN_to_ASN1_INTEGER(bignum, X509_get_serialNumber(x509)) != nil else {
            throw PKIError.openssl("BN_to_ASN1_INTEGER")
        }
    }
}

/// Validation of names that go into certificates, before they reach OpenSSL's config syntax.
enum CertificateName {
    static func validate(commonName: String) throws {
        guard !commonName.isEmpty, commonName.utf8.count <= 64 else {
            throw PKIError.invalidArgument("a common name must have 1 to 64 bytes, got \(commonName.utf8.count)")
        }
    }

    /// The subjectAltName value in OpenSSL's syntax, or nil when there are no names.
    static func subjectAltNames(dns: [String], ip: [String]) throws -> String? {
        var parts: [String] = []
        for name in dns {
            let allowed = name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "." || $0 == "*") }
            guard !name.isEmpty, name.count <= 253, allowed else {
                throw PKIError.invalidArgument("invalid DNS name for a certificate: \(name.debugDescription)")
            }
            parts.append("DNS:\(name)")
        }
        for address in ip {
            guard IPAddressText.isAddress(address) else {
                throw PKIError.invalidArgument("invalid IP address for a certificate: \(address.debugDescription)")
            }
            parts.append("IP:\(address)")
        }
        return parts.isEmpty ? nil : parts.joined(separator: ",")
    }
}
