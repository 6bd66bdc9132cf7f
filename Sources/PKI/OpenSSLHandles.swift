import COpenSSL
import Foundation

/// Errors raised by the PKI module. Each carries OpenSSL's own error queue text when there is one.
public enum PKIError: Error, CustomStringConvertible, Equatable {
    case openssl(operation: String, detail: String)
    case invalidPEM(what: String, detail: String)
    case invalidArgument(String)
    case io(path: String, detail: String)

    public var description: String {
        switch self {
        case .openssl(let op, let detail): return "openssl: \(op) failed: \(detail)"
        case .invalidPEM(let what, let detail): return "invalid PEM \(what): \(detail)"
        case .invalidArgument(let message): return message
        case .io(let path, let detail): return "\(path): \(detail)"
        }
    }

    /// Drains OpenSSL's thread-local error queue into a readable string.
    static func drainErrorQueue() -> String {
        var messages: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            messages.append(String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return messages.isEmpty ? "no detail from OpenSSL" : messages.joined(separator: "; ")
    }

    static func openssl(_ operation: String) -> PKIError {
        .openssl(operation: operation, detail: drainErrorQueue())
    }
}

/// Owns an `EVP_PKEY`. OpenSSL objects are reference counted; this class frees its reference.
final class KeyHandle: @unchecked Sendable {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
    deinit { EVP_PKEY_free(pointer) }
}

/// Owns an `X509`.
final class CertificateHandle: @unchecked Sendable {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
    deinit { X509_free(pointer) }
}

/// A memory BIO, for PEM in and out.
struct MemoryBIO: ~Copyable {
    let bio: OpaquePointer

    init() throws {
        guard let bio = BIO_new(BIO_s_mem()) else { throw PKIError.openssl("BIO_new") }
        self.bio = bio
    }

    init(reading text: String) throws {
        let bytes = Array(text.utf8)
        guard let bio = bytes.withUnsafeBytes({ BIO_new_mem_buf($0.baseAddress, Int32($0.count)) }) else {
            throw PKIError.openssl("BIO_new_mem_buf")
        }
        // BIO_new_mem_buf does not copy; copy into a regular memory BIO so `bytes` may go.
        guard let owned = BIO_new(BIO_s_mem()) else { BIO_free(bio); throw PKIError.openssl("BIO_new") }
        _ = bytes.withUnsafeBytes { BIO_write(owned, $0.baseAddress, Int32($0.count)) }
        BIO_free(bio)
        self.bio = owned
    }

    func contents() -> String {
        var pointer: UnsafeMutablePointer<CChar>?
        let length = tenops_bio_mem_contents(bio, &pointer)
        guard let pointer, length > 0 else { return "" }
        return pointer.withMemoryRebound(to: UInt8.self, capacity: length) {
            String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self)
        }
    }

    deinit { BIO_free(bio) }
}
