import Foundation

/// Reads and writes PEM files. Writes are atomic (a temporary file renamed into place), and
/// private keys are written readable by their owner only.
public enum PEMFile {
    public static func read(_ path: String) throws -> String {
        do {
            return try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw PKIError.io(path: path, detail: "cannot read: \(error.localizedDescription)")
        }
    }

    public static func write(_ pem: String, to path: String, privateKey: Bool = false) throws {
        let url = URL(fileURLWithPath: path)
        let temporary = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).tmp")
        let mode: Int = privateKey ? 0o600 : 0o644
        guard FileManager.default.createFile(
            atPath: temporary.path, contents: Data(pem.utf8), attributes: [.posixPermissions: mode])
        else {
            throw PKIError.io(path: path, detail: "cannot create \(temporary.path)")
        }
        if rename(temporary.path, path) != 0 {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: temporary)
            throw PKIError.io(path: path, detail: "cannot rename into place: \(reason)")
        }
    }

    public static func readCertificate(_ path: String) throws -> Certificate { try Certificate(pem: read(path)) }
    public static func readPrivateKey(_ path: String) throws -> PrivateKey { try PrivateKey(pem: read(path)) }

    public static func write(_ issued: IssuedCertificate, certificatePath: String, keyPath: String) throws {
        try write(issued.certificatePEM, to: certificatePath)
        try write(issued.privateKeyPEM, to: keyPath, privateKey: true)
    }
}
