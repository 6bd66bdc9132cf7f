import Foundation
import KubeAPI
import Logging

/// `tenops local`'s cluster in one process: the API server, the controllers and three process
/// nodes. Each component talks to the API server over HTTPS with a bearer token of its own,
/// exactly as it would to a remote one.
public final class LocalControlPlane: Sendable {
    public struct Options: Sendable {
        public var stateDirectory: String
        public var port: Int
        public var nodeNames: [String]
        /// How long a node may miss heartbeats before it is NotReady (Kubernetes: 40 s).
        public var nodeMonitorGracePeriod: Duration
        public var heartbeatInterval: Duration

        public init(stateDirectory: String, port: Int = 0, nodeNames: [String] = ["node-a", "node-b", "node-c"],
                    nodeMonitorGracePeriod: Duration = .seconds(40), heartbeatInterval: Duration = .seconds(10)) {
            self.stateDirectory = stateDirectory
            self.port = port
            self.nodeNames = nodeNames
            self.nodeMonitorGracePeriod = nodeMonitorGracePeriod
            self.heartbeatInterval = heartbeatInterval
        }
    }

    public let server: LocalAPIServer
    public let nodes: [ProcessNode]
    private let controllers: Task<Void, Never>

    private init(server: LocalAPIServer, nodes: [ProcessNode], controllers: Task<Void, Never>) {
        self.server = server
        self.nodes = nodes
        self.controllers = controllers
    }

    /// The address of the Nth node (from 0): 127.(N+1).0.1; its pods take the addresses after it.
    public static func nodeAddress(_ index: Int) -> String { "127.\(index + 1).0.1" }

    public static func start(_ options: Options, logger: Logger = Logger(label: "tenops.local")) async throws -> LocalControlPlane {
        let server = try await LocalAPIServer.start(LocalAPIServer.Options(stateDirectory: options.stateDirectory, port: options.port))
        do {
            let controllerClient = try server.componentClient(user: "system:kube-controller-manager", groups: [])
            let controllers = Task {
                await ControllerManager(client: controllerClient, options: .init(nodeMonitorGracePeriod: options.nodeMonitorGracePeriod)).run()
            }
            var nodes: [ProcessNode] = []
            do {
                for (index, name) in options.nodeNames.enumerated() {
                    var nodeOptions = ProcessNode.Options(
                        name: name, stateDirectory: "\(options.stateDirectory)/nodes/\(name)", address: Self.nodeAddress(index))
                    // Several heartbeats fit in the grace period, as in Kubernetes (10 s in 40 s).
                    nodeOptions.heartbeatInterval = min(options.heartbeatInterval, options.nodeMonitorGracePeriod / 4)
                    let client = try server.componentClient(user: "system:node:\(name)", groups: ["system:nodes"])
                    nodes.append(try await ProcessNode.start(nodeOptions, client: client, logger: logger))
                }
            } catch {
                for node in nodes { await node.stop() }
                controllers.cancel()
                throw error
            }
            return LocalControlPlane(server: server, nodes: nodes, controllers: controllers)
        } catch {
            await server.stop()
            throw error
        }
    }

    /// Stops the nodes (their pods' processes end; the pod objects stay, so the next start runs
    /// them again), the controllers and the API server.
    public func stop() async {
        await withTaskGroup(of: Void.self) { group in
            for node in nodes { group.addTask { await node.stop() } }
        }
        controllers.cancel()
        await server.stop()
    }
}

extension LocalAPIServer {
    /// A client for an in-process component, authenticated by its own bearer token.
    public func componentClient(user: String, groups: [String]) throws -> KubeClient {
        let token = try credentials.componentToken(for: user, groups: groups)
        let config = ClusterConfig(
            server: url, tls: TLSSettings(certificateAuthorityPEM: Data(try credentials.ca.certificate.pem.utf8)),
            namespace: "default", credentials: .init(token: token))
        return KubeClient(config: config)
    }
}
