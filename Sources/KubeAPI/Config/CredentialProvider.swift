import Foundation

/// The credentials for one request: a TLS client certificate and/or a bearer token.
struct RequestCredentials: Sendable {
    var tls: TLSSettings
    var bearerToken: String?
}

/// Produces request credentials from a `ClusterConfig`: static certificates and tokens, token
/// files that rotate, and exec plugins whose output is cached until it expires or the server
/// answers 401.
actor CredentialProvider {
    private let config: ClusterConfig
    private var cachedExec: ExecCredential?
    private var execInFlight: Task<ExecCredential, any Error>?
    private var tokenFileCache: (modified: Date, size: Int, token: String)?

    init(config: ClusterConfig) {
        self.config = config
    }

    func current(now: Date = Date()) async throws(KubeAPIError) -> RequestCredentials {
        var tls = config.tls
        tls.clientCertificatePEM = config.credentials.clientCertificatePEM
        tls.clientKeyPEM = config.credentials.clientKeyPEM
        var token = config.credentials.token
        if let file = config.credentials.tokenFile {
            token = try readTokenFile(file)
        }
        if let exec = config.credentials.exec {
            let credential = try await execCredential(exec, now: now)
            if let execToken = credential.token { token = execToken }
            if let certificate = credential.clientCertificatePEM, let key = credential.clientKeyPEM {
                tls.clientCertificatePEM = certificate
                tls.clientKeyPEM = key
            }
        }
        return RequestCredentials(tls: tls, bearerToken: token)
    }

    /// Called after a 401: drop cached plugin output so the next request runs the plugin again.
    /// Returns true when a retry could succeed with fresh credentials.
    func invalidate() -> Bool {
        let refreshable = config.credentials.exec != nil || config.credentials.tokenFile != nil
        cachedExec = nil
        tokenFileCache = nil
        return refreshable
    }

    private func execCredential(_ exec: Kubeconfig.ExecConfig, now: Date) async throws(KubeAPIError) -> ExecCredential {
        if let cached = cachedExec, cached.expiration.map({ $0 > now.addingTimeInterval(10) }) ?? true {
            return cached
        }
        // One plugin run at a time, shared by every waiting request.
        let task: Task<ExecCredential, any Error>
        if let running = execInFlight {
            task = running
        } else {
            let server = config.server
            let ca = config.tls.certificateAuthorityPEM
            task = Task { try await ExecCredentialPlugin.run(exec, server: server, caPEM: ca) }
            execInFlight = task
        }
        do {
            let credential = try await task.value
            execInFlight = nil
            cachedExec = credential
            return credential
        } catch let error as KubeAPIError {
            execInFlight = nil
            throw error
        } catch {
            execInFlight = nil
            throw .configuration("exec credential plugin: \(error)")
        }
    }

    private func readTokenFile(_ path: String) throws(KubeAPIError) -> String {
        // Projected tokens are symlinks that the kubelet swaps: look at what they point to.
        let attributes = try? FileManager.default.attributesOfItem(atPath: URL(fileURLWithPath: path).resolvingSymlinksInPath().path)
        let modified = attributes?[.modificationDate] as? Date ?? .distantPast
        let size = (attributes?[.size] as? NSNumber)?.intValue ?? -1
        if let cache = tokenFileCache, cache.modified == modified, cache.size == size {
            return cache.token
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .configuration("cannot read the token file \(path)")
        }
        let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty else { throw .configuration("the token file \(path) is empty") }
        tokenFileCache = (modified, size, token)
        return token
    }
}
