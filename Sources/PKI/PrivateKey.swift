import COpenSSL
import Foundation

/// An ECDSA P-256 private key. P-256 keeps generation instant and is accepted by OpenSSL, Go's
/// crypto/tls (kubectl) and BoringSSL alike.
public struct PrivateKey: Sendable {
    let handle: KeyHandle

    /// Generates a fresh P-256 key.
    public static func generate() throws -> PrivateKey {
        guard let key = tenops_evp_ec_p256_keygen() else { throw PKIError.openssl("EVP_EC_gen") }
        return PrivateKey(handle: KeyHandle(key))
    }

    init(handle: KeyHandle) { self.handle = handle }

    /// Parses a PEM private key (PKCS#8, SEC1 or PKCS#1).
    public init(pem: String) throws {
        let bio = try MemoryBIO(reading: pem)
        guard let key = PEM_read_bio_PrivateKey(bio.bio, nil, nil, nil) else {
            throw PKIError.invalidPEM(what: "private key", detail: PKIError.drainErrorQueue())
        }
        self.handle = KeyHandle(key)
    }

    /// The key as unencrypted PKCS#8 PEM.
    public var pem: String {
        get throws {
            let bio = try MemoryBIO()
            guard PEM_write_bio_PrivateKey(bio.bio, handle.pointer, nil, nil, 0, nil, nil) == 1 else {
                throw PKIError.openssl("PEM_write_bio_PrivateKey")
            }
            return bio.contents()
        }
    }

    /// The public half as SubjectPublicKeyInfo PEM, for comparing keys.
    public var publicKeyPEM: String {
        get throws {
            let bio = try MemoryBIO()
            guard PEM_write_bio_PUBKEY(bio.bio, handle.pointer) == 1 else {
                throw PKIError.openssl("PEM_write_bio_PUBKEY")
            }
            return bio.contents()
        }
    }
}
