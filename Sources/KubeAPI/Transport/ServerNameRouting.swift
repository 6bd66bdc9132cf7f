import Foundation

/// How a request reaches one address while its TLS certificate is checked against another name
/// (kubeconfig's `tls-server-name`, or the operator reaching an agent by pod IP while checking the
/// pair's service name): the URL names `serverName`, so curl sends it as SNI and verifies the
/// certificate against it, and `CURLOPT_CONNECT_TO` sends the connection to the real host.
struct ServerNameRouting: Equatable {
    let url: String
    /// `serverName:port:host:port`, as CURLOPT_CONNECT_TO takes it.
    let connectTo: String

    /// nil when there is nothing to reroute: no server name, the same host already, or a URL
    /// that is not https with a host.
    init?(url: String, serverName: String?) {
        guard let serverName, !serverName.isEmpty, !serverName.contains(where: { ":/[]@ ".contains($0) }),
              var components = URLComponents(string: url), components.scheme?.lowercased() == "https",
              let host = components.host, !host.isEmpty, host.lowercased() != serverName.lowercased()
        else { return nil }
        let port = components.port ?? 443
        // CONNECT_TO wants an IPv6 host in brackets (URLComponents may or may not keep them).
        let connectHost = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        components.host = serverName
        guard let rewritten = components.string else { return nil }
        self.url = rewritten
        self.connectTo = "\(serverName):\(port):\(connectHost):\(port)"
    }
}
