// Shared by the agent's tests and the operator engine's: a pair's PKI, a pod's directories
// (/tt, /ttconfig, /agent-tls as real directories) and an in-process agent over them.

import Agent
import Foundation
import KubeAPI
import Logging
import PKI

#if canImport(Glibc)
import Glibc
#endif

/// The pair's PKI: a CA, server certificates for the agents, and client certificates.
public struct TestPKI: Sendable {
    public let ca: CertificateAuthority
    public let client: IssuedCertificate

    public init() throws {
        ca = try CertificateAuthority.create(commonName: "sample-ca")
        client = try ca.issueClient(commonName: "tenops-operator")
    }

    public func server(for address: String) throws -> IssuedCertificate {
        try ca.issueServer(commonName: "sample-agent", dnsNames: ["sample-0.sample.ns.svc.cluster.local"], ipAddresses: [address])
    }

    public var caPEM: String { get throws { try ca.certificate.pem } }

    public func tls(_ identity: IssuedCertificate?) throws -> TLSSettings {
        TLSSettings(
            certificateAuthorityPEM: Data(try caPEM.utf8),
            clientCertificatePEM: try identity.map { Data(try $0.certificatePEM.utf8) },
            clientKeyPEM: try identity.map { Data(try $0.privateKeyPEM.utf8) })
    }
}

/// The tenops binary next to the test bundle (built by `swift build --build-tests`).
public func tenopsBinary() throws -> String {
    let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let own = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    let candidates = [
        URL(fileURLWithPath: own).deletingLastPathComponent().appendingPathComponent("tenops").path,
        Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("tenops").path,
        packageRoot.appendingPathComponent(".build/debug/tenops").path,
    ]
    guard let binary = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
        throw HarnessError("the tenops binary is not built (looked in \(candidates))")
    }
    return binary
}

public struct HarnessError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// One pod's world on disk: /tt, /ttconfig and /agent-tls as real directories under a temporary
/// root that the test removes.
public final class PodDirectory: @unchecked Sendable {
    public let root: String
    public let address: String
    public let pki: TestPKI
    public let serverCertificate: IssuedCertificate

    public static let adminUser = "appadmin"
    public static let adminPassword = "s3cret-pa55:word'"

    public init(address: String, pki: TestPKI, dbIni: String = "shared_buffers=32MB\nmax_connections = 40\n# a comment\n",
         schema: String? = "CREATE TABLE items (id int PRIMARY KEY, note text NOT NULL);\n",
         epilog: String? = "CREATE TABLE epilog_marker (x int); INSERT INTO epilog_marker VALUES (1);\n") throws {
        self.address = address
        self.pki = pki
        root = "/tmp/tenops-agent-\(UUID().uuidString.prefix(8))"
        let manager = FileManager.default
        for sub in ["tt", "ttconfig", "agent-tls"] {
            try manager.createDirectory(atPath: "\(root)/\(sub)", withIntermediateDirectories: true)
        }
        // The server user must be able to reach /tt.
        chmod(root, 0o755)
        chmod("\(root)/tt", 0o755)
        serverCertificate = try pki.server(for: address)
        try write("agent-tls/ca.crt", try pki.caPEM)
        try write("agent-tls/tls.crt", try serverCertificate.certificatePEM)
        try write("agent-tls/tls.key", try serverCertificate.privateKeyPEM, mode: 0o600)
        try write("ttconfig/adminUser", "\(Self.adminUser)/\(Self.adminPassword)\n", mode: 0o600)
        try write("ttconfig/db.ini", dbIni)
        if let schema { try write("ttconfig/schema.sql", schema) }
        if let epilog { try write("ttconfig/epilog.sql", epilog) }
    }

    public func write(_ relative: String, _ text: String, mode: Int = 0o644) throws {
        let path = "\(root)/\(relative)"
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
    }

    public var volumes: VolumeMap {
        VolumeMap(["/tt": "\(root)/tt", "/ttconfig": "\(root)/ttconfig", "/agent-tls": "\(root)/agent-tls"])
    }

    /// The environment a node passes to a real `tenops agent` process.
    public var environment: [String: String] {
        [
            "TENOPS_VOLUME_TT": "\(root)/tt", "TENOPS_VOLUME_TTCONFIG": "\(root)/ttconfig",
            "TENOPS_VOLUME_AGENT_TLS": "\(root)/agent-tls", "TENOPS_POD_IP": address, "POD_NAME": "sample-0",
            "PATH": "/usr/bin:/bin",
        ]
    }

    public func configuration() throws -> AgentConfiguration {
        AgentConfiguration(
            listenAddress: address, port: 8443, tlsDirectory: "/agent-tls", volumes: volumes, databaseName: "sample",
            repPort: 5432, serverUser: try ServerUser.resolve(), execChild: [try tenopsBinary(), "agent", "exec-child"])
    }

    public func remove() {
        try? FileManager.default.removeItem(atPath: root)
    }
}

/// Starts an in-process agent for a pod directory.
public func startAgent(_ pod: PodDirectory) async throws -> Agent {
    var logger = Logger(label: "agent-tests.\(pod.address)")
    // The agents' own log lines (refusals, expected failures) only with AGENT_TEST_LOG=debug etc.
    logger.logLevel = ProcessInfo.processInfo.environment["AGENT_TEST_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
    return try await Agent.start(try pod.configuration(), logger: logger, onDie: {})
}
