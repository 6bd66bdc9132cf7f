import Foundation
import Subprocess

/// What an exec credential plugin returned.
public struct ExecCredential: Sendable, Equatable {
    public var token: String?
    public var clientCertificatePEM: Data?
    public var clientKeyPEM: Data?
    public var expiration: Date?
}

/// Runs a `client.authentication.k8s.io` exec plugin as kubectl does: the plugin gets
/// `KUBERNETES_EXEC_INFO` and the configured env and args, and prints an ExecCredential.
public enum ExecCredentialPlugin {
    public static let supportedVersions = ["client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"]

    public static func run(_ config: Kubeconfig.ExecConfig, server: String?, caPEM: Data?) async throws(KubeAPIError) -> ExecCredential {
        var spec: JSONObject = ["interactive": false]
        if config.provideClusterInfo, let server {
            var cluster: JSONObject = ["server": .string(server)]
            if let caPEM { cluster["certificate-authority-data"] = .string(caPEM.base64EncodedString()) }
            spec["cluster"] = .object(cluster)
        }
        let info: JSONValue = ["apiVersion": .string(config.apiVersion), "kind": "ExecCredential", "spec": .object(spec)]

        var updates: [Environment.Key: String?] = [:]
        for (name, value) in config.env {
            guard let key = Environment.Key(rawValue: name) else { continue }
            updates[key] = value
        }
        updates["KUBERNETES_EXEC_INFO"] = info.description

        // A command with a path separator is relative to the kubeconfig's directory, as in kubectl.
        let executable: Executable
        if config.command.contains("/") {
            executable = .path(.init(ClusterConfig.resolve(config.command, relativeTo: config.source)))
        } else {
            executable = .name(config.command)
        }

        let result: ExecutionResult<Void, StringOutput<UTF8>, StringOutput<UTF8>>
        do {
            result = try await Subprocess.run(
                executable, arguments: Arguments(config.args), environment: .inherit.updating(updates),
                output: .string(limit: 1 << 20), error: .string(limit: 64 << 10))
        } catch {
            let hint = config.installHint.map { "\n\($0)" } ?? ""
            throw .configuration("exec credential plugin \(config.command) (kubeconfig \(config.source)) could not run: \(error)\(hint)")
        }
        guard case .exited(0) = result.terminationStatus else {
            let stderr = result.standardError.trimmingCharacters(in: .whitespacesAndNewlines)
            throw .configuration(
                "exec credential plugin \(config.command) failed (\(result.terminationStatus)): \(stderr.prefix(500))")
        }
        return try parse(result.standardOutput, expectedVersion: config.apiVersion, command: config.command)
    }

    /// Parses the plugin's standard output. Errors never include the credential itself.
    static func parse(_ output: String, expectedVersion: String, command: String) throws(KubeAPIError) -> ExecCredential {
        let object: JSONObject
        do {
            object = try JSONParser.parseObject(Data(output.utf8))
        } catch {
            throw .configuration("exec credential plugin \(command) printed something that is not an ExecCredential: \(error)")
        }
        guard object["kind"]?.stringValue == "ExecCredential" else {
            throw .configuration("exec credential plugin \(command): output kind must be ExecCredential")
        }
        guard object["apiVersion"]?.stringValue == expectedVersion else {
            throw .configuration(
                "exec credential plugin \(command): output apiVersion \(object["apiVersion"]?.stringValue ?? "none") does not match \(expectedVersion)")
        }
        guard let status = object["status"]?.objectValue else {
            throw .configuration("exec credential plugin \(command): output has no status")
        }
        var credential = ExecCredential()
        credential.token = status["token"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
        credential.clientCertificatePEM = status["clientCertificateData"]?.stringValue.map { Data($0.utf8) }
        credential.clientKeyPEM = status["clientKeyData"]?.stringValue.map { Data($0.utf8) }
        if let expiration = status["expirationTimestamp"]?.stringValue {
            guard let date = KubeTime.parse(expiration) else {
                throw .configuration("exec credential plugin \(command): expirationTimestamp is not RFC 3339: \(expiration)")
            }
            credential.expiration = date
        }
        if (credential.clientCertificatePEM == nil) != (credential.clientKeyPEM == nil) {
            throw .configuration("exec credential plugin \(command): clientCertificateData and clientKeyData must come together")
        }
        if credential.token == nil && credential.clientCertificatePEM == nil {
            throw .configuration("exec credential plugin \(command): status has neither a token nor a client certificate")
        }
        return credential
    }
}
