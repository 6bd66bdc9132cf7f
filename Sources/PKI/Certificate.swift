import COpenSSL
import Foundation

/// What a certificate may be used for, from its extendedKeyUsage extension.
public enum ExtendedKeyUsage: String, Sendable, Hashable, CaseIterable {
    case serverAuth
    case clientAuth

    var nid: Int32 {
        switch self {
        case .serverAuth: return NID_server_auth
        case .clientAuth: return NID_client_auth
        }
    }
}

/// An X.509 certificate, parsed and inspectable.
public struct Certificate: Sendable {
    let handle: CertificateHandle

    init(handle: CertificateHandle) { self.handle = handle }

    /// Parses the first certificate in a PEM text.
    public init(pem: String) throws {
        let bio = try MemoryBIO(reading: pem)
        guard let cert = PEM_read_bio_X509(bio.bio, nil, nil, nil) else {
            throw PKIError.invalidPEM(what: "certificate", detail: PKIError.drainErrorQueue())
        }
        self.handle = CertificateHandle(cert)
    }

    /// Every certificate in a PEM bundle, in order.
    public static func bundle(pem: String) throws -> [Certificate] {
        let bio = try MemoryBIO(reading: pem)
        var certificates: [Certificate] = []
        while let cert = PEM_read_bio_X509(bio.bio, nil, nil, nil) {
            certificates.append(Certificate(handle: CertificateHandle(cert)))
        }
        ERR_clear_error()  // the loop ends on a "no start line" error
        guard !certificates.isEmpty else {
            throw PKIError.invalidPEM(what: "certificate bundle", detail: "no certificate found")
        }
        return certificates
    }

    public var pem: String {
        get throws {
            let bio = try MemoryBIO()
            guard PEM_write_bio_X509(bio.bio, handle.pointer) == 1 else { throw PKIError.openssl("PEM_write_bio_X509") }
            return bio.contents()
        }
    }

    public var subjectCommonName: String? { Self.entries(of: X509_get_subject_name(handle.pointer), nid: NID_commonName).first }
    public var subjectOrganizations: [String] { Self.entries(of: X509_get_subject_name(handle.pointer), nid: NID_organizationName) }
    public var issuerCommonName: String? { Self.entries(of: X509_get_issuer_name(handle.pointer), nid: NID_commonName).first }

    /// True when basicConstraints says CA:TRUE.
    public var isCertificateAuthority: Bool { X509_check_ca(handle.pointer) >= 1 }

    public var extendedKeyUsages: Set<ExtendedKeyUsage> {
        let flags = X509_get_extended_key_usage(handle.pointer)
        if flags == UInt32.max { return [] }  // no extension at all
        var usages: Set<ExtendedKeyUsage> = []
        if flags & UInt32(XKU_SSL_SERVER) != 0 { usages.insert(.serverAuth) }
        if flags & UInt32(XKU_SSL_CLIENT) != 0 { usages.insert(.clientAuth) }
        return usages
    }

    public var dnsNames: [String] { subjectAlternativeNames().dns }
    public var ipAddresses: [String] { subjectAlternativeNames().ip }

    public var notBefore: Date { Self.date(X509_get0_notBefore(handle.pointer)) }
    public var notAfter: Date { Self.date(X509_get0_notAfter(handle.pointer)) }

    /// True when `issuer`'s key signed this certificate. A signature check only; see
    /// `CertificateAuthority.verify` for a full chain verification with purposes and dates.
    public func isSigned(by issuer: Certificate) -> Bool {
        guard let key = X509_get0_pubkey(issuer.handle.pointer) else { return false }
        let ok = X509_verify(handle.pointer, key) == 1
        ERR_clear_error()
        return ok
    }

    /// True when this certificate carries the public half of `key`.
    public func matches(_ key: PrivateKey) -> Bool {
        let ok = X509_check_private_key(handle.pointer, key.handle.pointer) == 1
        ERR_clear_error()
        return ok
    }

    // MARK: - Helpers

    private static func entries(of name: OpaquePointer?, nid: Int32) -> [String] {
        guard let name else { return [] }
        var values: [String] = []
        var index: Int32 = -1
        while true {
            index = X509_NAME_get_index_by_NID(name, nid, index)
            if index < 0 { break }
            guard let entry = X509_NAME_get_entry(name, index), let data = X509_NAME_ENTRY_get_data(entry) else { continue }
            values.append(string(from: data))
        }
        return values
    }

    private static func string(from asn1: UnsafePointer<ASN1_STRING>) -> String {
        var utf8: UnsafeMutablePointer<UInt8>?
        let length = ASN1_STRING_to_UTF8(&utf8, asn1)
        guard length >= 0, let utf8 else { return "" }
        defer { tenops_openssl_free(utf8) }
        return String(decoding: UnsafeBufferPointer(start: utf8, count: Int(length)), as: UTF8.self)
    }

    private func subjectAlternativeNames() -> (dns: [String], ip: [String]) {
        guard let raw = X509_get_ext_d2i(handle.pointer, NID_subject_alt_name, nil, nil) else { return ([], []) }
        let names = OpaquePointer(raw)
        defer { tenops_general_names_free(names) }
        var dns: [String] = []
        var ip: [String] = []
        for index in 0..<tenops_general_names_count(names) {
            guard let name = tenops_general_names_value(names, index) else { continue }
            switch name.pointee.type {
            case GEN_DNS:
                dns.append(Self.string(from: name.pointee.d.dNSName))
            case GEN_IPADD:
                let octets = name.pointee.d.iPAddress!
                let length = Int(ASN1_STRING_length(octets))
                guard let bytes = ASN1_STRING_get0_data(octets) else { continue }
                ip.append(IPAddressText.format(Array(UnsafeBufferPointer(start: bytes, count: length))))
            default:
                continue
            }
        }
        return (dns, ip)
    }

    private static func date(_ time: UnsafePointer<ASN1_TIME>?) -> Date {
        guard let time else { return .distantPast }
        var tm = tm()
        guard ASN1_TIME_to_tm(time, &tm) == 1 else { return .distantPast }
        return Date(timeIntervalSince1970: TimeInterval(timegm(&tm)))
    }
}

/// Formats the raw octets of an IP SAN as text.
enum IPAddressText {
    static func format(_ octets: [UInt8]) -> String {
        if octets.count == 4 { return octets.map(String.init).joined(separator: ".") }
        if octets.count == 16 {
            var words: [String] = []
            for index in stride(from: 0, to: 16, by: 2) {
                words.append(String(UInt16(octets[index]) << 8 | UInt16(octets[index + 1]), radix: 16))
            }
            return words.joined(separator: ":")
        }
        return octets.map { String($0, radix: 16) }.joined(separator: ":")
    }

    /// True when `text` is a literal IPv4 or IPv6 address.
    static func isAddress(_ text: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }
}

extension Certificate {
    /// Parses a DER-encoded certificate, as TLS stacks hand over a peer's certificate.
    public init(der: [UInt8]) throws {
        var pointer: UnsafePointer<UInt8>? = nil
        let parsed: OpaquePointer? = der.withUnsafeBufferPointer { buffer in
            pointer = buffer.baseAddress
            return d2i_X509(nil, &pointer, buffer.count)
        }
        guard let parsed else { throw PKIError.invalidPEM(what: "DER certificate", detail: PKIError.drainErrorQueue()) }
        self.init(handle: CertificateHandle(parsed))
    }
}
