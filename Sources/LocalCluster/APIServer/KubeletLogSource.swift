import Foundation
import KubeAPI

/// What `kubectl logs` asked for, passed on to the pod's node.
public struct PodLogOptions: Sendable, Equatable {
    public var container: String
    public var follow: Bool
    public var tailLines: Int?
    public var limitBytes: Int?
    public var previous: Bool
    public var timestamps: Bool

    public init(container: String, follow: Bool = false, tailLines: Int? = nil, limitBytes: Int? = nil,
                previous: Bool = false, timestamps: Bool = false) {
        self.container = container
        self.follow = follow
        self.tailLines = tailLines
        self.limitBytes = limitBytes
        self.previous = previous
        self.timestamps = timestamps
    }

    /// The kubelet's query string for these options.
    var kubeletQuery: String {
        var items: [String] = []
        if follow { items.append("follow=true") }
        if let tailLines { items.append("tailLines=\(tailLines)") }
        if let limitBytes { items.append("limitBytes=\(limitBytes)") }
        if previous { items.append("previous=true") }
        if timestamps { items.append("timestamps=true") }
        return items.isEmpty ? "" : "?" + items.joined(separator: "&")
    }
}

/// Where a node's kubelet endpoint is, read from its Node object as kube-apiserver reads it:
/// the first InternalIP (else Hostname) address and `status.daemonEndpoints.kubeletEndpoint.Port`.
struct KubeletEndpoint: Equatable {
    let host: String
    let port: Int

    init?(node: JSONObject) {
        let status = node["status"]
        let addresses = status?["addresses"].arrayValue ?? []
        func address(_ type: String) -> String? {
            addresses.first { $0["type"].stringValue == type }?["address"].stringValue
        }
        guard let host = address("InternalIP") ?? address("Hostname"), !host.isEmpty,
              let port = status?["daemonEndpoints"]["kubeletEndpoint"]["Port"].intValue.map(Int.init), (1...65535).contains(port)
        else { return nil }
        self.host = host
        self.port = port
    }

    func logsURL(namespace: String, pod: String, options: PodLogOptions) -> String {
        let hostPart = host.contains(":") ? "[\(host)]" : host
        let path = [namespace, pod, options.container].map { $0.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(.init(charactersIn: "-._"))) ?? $0 }
        return "https://\(hostPart):\(port)/containerLogs/\(path.joined(separator: "/"))\(options.kubeletQuery)"
    }
}

/// Pod logs from the pod's node, over HTTPS, as kube-apiserver fetches them: it presents the
/// cluster's kubelet-client certificate, and (like kube-apiserver without
/// `--kubelet-certificate-authority`) does not verify the kubelet's self-issued serving
/// certificate.
struct KubeletLogSource: PodLogSource {
    let tls: TLSSettings
    let transport: any HTTPTransport

    init(credentials: ClusterCredentials, transport: any HTTPTransport = CurlTransport.shared) throws {
        tls = TLSSettings(
            clientCertificatePEM: Data(try credentials.kubeletClient.certificatePEM.utf8),
            clientKeyPEM: Data(try credentials.kubeletClient.privateKeyPEM.utf8),
            insecureSkipVerify: true)
        self.transport = transport
    }

    func logs(pod: JSONObject, node: JSONObject?, options: PodLogOptions) async throws -> AsyncThrowingStream<Data, any Error> {
        let namespace = pod["metadata"]?["namespace"].stringValue ?? ""
        let name = pod["metadata"]?["name"].stringValue ?? ""
        guard let node, let endpoint = KubeletEndpoint(node: node) else {
            throw APIError(code: 503, reason: "ServiceUnavailable", message: "the node of pod \(name) publishes no kubelet endpoint")
        }
        let request = HTTPRequest(method: "GET", url: endpoint.logsURL(namespace: namespace, pod: name, options: options),
                                  timeout: options.follow ? nil : .seconds(60))
        let (head, body) = try await transport.stream(request, tls: tls)
        guard head.status == 200 else {
            var text = Data()
            for try await chunk in body where text.count < 4096 { text.append(chunk) }
            let message = String(decoding: text.prefix(4096), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw APIError(code: head.status == 404 ? 404 : 502, reason: head.status == 404 ? "NotFound" : "BadGateway",
                           message: "the kubelet on \(endpoint.host):\(endpoint.port) answered \(head.status): \(message)")
        }
        return body
    }
}
