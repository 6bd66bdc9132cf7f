import Foundation
import KubeTestDouble
import PKI

/// A directory under the system temp dir, removed by `remove()`.
struct TemporaryDirectory: Sendable {
    let path: String

    init(_ label: String = "pki") throws {
        path = FileManager.default.temporaryDirectory
            .appendingPathComponent("tenops-\(label)-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { "\(path)/\(name)" }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// Runs `body` with a fresh temp dir that is removed afterwards, whatever happens.
func withTemporaryDirectory<T>(_ label: String = "pki", _ body: (TemporaryDirectory) async throws -> T) async throws -> T {
    let directory = try TemporaryDirectory(label)
    do {
        let result = try await body(directory)
        directory.remove()
        return result
    } catch {
        directory.remove()
        throw error
    }
}

/// Runs `body` with a started test double that is stopped afterwards, whatever happens.
func withDouble<T>(_ options: KubeTestDoubleOptions, _ body: (KubeTestDouble) async throws -> T) async throws -> T {
    let double = try await KubeTestDouble.start(options)
    do {
        let result = try await body(double)
        await double.stop()
        return result
    } catch {
        await double.stop()
        throw error
    }
}

struct ProcessResult: Sendable, CustomStringConvertible {
    var status: Int32
    var stdout: String
    var stderr: String

    var succeeded: Bool { status == 0 }
    var description: String { "exit \(status)\nstdout: \(stdout)\nstderr: \(stderr)" }
}

/// Runs a real program to completion without blocking a Swift concurrency thread. Output goes to
/// files in `directory` (pipes could fill up and stall the child).
func runProcess(_ executable: String, _ arguments: [String], in directory: TemporaryDirectory) async throws -> ProcessResult {
    let id = UUID().uuidString
    let outPath = directory.file(".out-\(id)")
    let errPath = directory.file(".err-\(id)")
    _ = FileManager.default.createFile(atPath: outPath, contents: nil)
    _ = FileManager.default.createFile(atPath: errPath, contents: nil)
    defer {
        try? FileManager.default.removeItem(atPath: outPath)
        try? FileManager.default.removeItem(atPath: errPath)
    }
    guard let out = FileHandle(forWritingAtPath: outPath), let err = FileHandle(forWritingAtPath: errPath) else {
        throw CocoaError(.fileWriteUnknown)
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    let status: Int32 = try await withCheckedThrowingContinuation { continuation in
        process.terminationHandler = { finished in continuation.resume(returning: finished.terminationStatus) }
        do {
            try process.run()
        } catch {
            process.terminationHandler = nil
            continuation.resume(throwing: error)
        }
    }
    try? out.close()
    try? err.close()
    return ProcessResult(
        status: status,
        stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
        stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
}

func openssl(_ arguments: [String], in directory: TemporaryDirectory) async throws -> ProcessResult {
    try await runProcess("/usr/bin/openssl", arguments, in: directory)
}

func curl(_ arguments: [String], in directory: TemporaryDirectory) async throws -> ProcessResult {
    try await runProcess("/usr/bin/curl", ["-sS", "--max-time", "20"] + arguments, in: directory)
}

/// A CA, a server certificate for localhost/127.0.0.1 and a client certificate, written out.
struct TLSFiles: Sendable {
    let ca: CertificateAuthority
    let server: IssuedCertificate
    let client: IssuedCertificate
    let caPath: String
    let clientCertPath: String
    let clientKeyPath: String

    init(in directory: TemporaryDirectory, prefix: String = "", serverIPs: [String] = ["127.0.0.1", "::1"]) throws {
        ca = try CertificateAuthority.create(commonName: "\(prefix)test-ca")
        server = try ca.issueServer(commonName: "kube-apiserver", dnsNames: ["localhost", "kubernetes.default.svc"], ipAddresses: serverIPs)
        client = try ca.issueClient(commonName: "tester", organizations: ["system:masters"])
        caPath = directory.file("\(prefix)ca.pem")
        clientCertPath = directory.file("\(prefix)client.crt")
        clientKeyPath = directory.file("\(prefix)client.key")
        try PEMFile.write(ca.certificate.pem, to: caPath)
        try PEMFile.write(client, certificatePath: clientCertPath, keyPath: clientKeyPath)
    }

    func options(mutualTLS: Bool = true, bearerTokens: Set<String> = [], historyWindow: Int = 1000) throws -> KubeTestDoubleOptions {
        KubeTestDoubleOptions(
            serverCertificatePEM: try server.certificatePEM, serverKeyPEM: try server.privateKeyPEM,
            clientCAPEM: mutualTLS ? try ca.certificate.pem : nil, bearerTokens: bearerTokens, historyWindow: historyWindow)
    }

    /// curl arguments that trust the CA and present the client certificate.
    var clientArguments: [String] { ["--cacert", caPath, "--cert", clientCertPath, "--key", clientKeyPath] }
}
