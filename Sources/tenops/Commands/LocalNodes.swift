import ArgumentParser
import Foundation
import KubeAPI
import LocalCluster

/// The state directory, shared by `tenops local` and its subcommands (ArgumentParser hands the
/// same group to both, so `--dir` works before or after the subcommand's name).
struct LocalStateOptions: ParsableArguments {
    @Option(help: "State directory; a restart keeps objects and data.") var dir = "tenops-state"
}

/// Where a `tenops local` subcommand finds its cluster: `--kubeconfig`, else DIR/kubeconfig.
struct LocalClusterOptions: ParsableArguments {
    @OptionGroup var state: LocalStateOptions
    @Option(help: "A kubeconfig to use instead of DIR/kubeconfig.") var kubeconfig: String?

    func client() throws -> KubeClient {
        let dir = state.dir
        let path = kubeconfig ?? URL(fileURLWithPath: dir).appendingPathComponent("kubeconfig").path
        guard FileManager.default.fileExists(atPath: path) else {
            throw CommandFailure("no kubeconfig at \(path): is `tenops local --dir \(dir)` running?")
        }
        return KubeClient(config: try ClusterConfig.load(kubeconfig: path))
    }
}

/// Patches a node's simulation annotation and says what it will do.
enum NodeSimulationRequest {
    static func send(_ patch: JSONValue, node: String, client: KubeClient) async throws {
        do {
            _ = try await client.patch(Node.self, name: node, patchType: .merge, patch: patch)
        } catch {
            if error.isNotFound { throw CommandFailure("there is no node \(node); try `kubectl get nodes`") }
            throw error
        }
    }
}

struct LocalNodeDown: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node-down", abstract: "Take a local node down: power it off or cut it off from the API server.",
        discussion: """
            poweroff kills every process on the node and stops its heartbeats; partition stops the \
            heartbeats and leaves the processes running. Either way the node turns NotReady once the \
            node monitor grace period has passed. `tenops local node-up NAME` brings it back.
            """)
    @OptionGroup var cluster: LocalClusterOptions
    @Argument(help: "The node, e.g. node-a.") var name: String
    @Option(help: "poweroff or partition.") var mode: NodeSimulation = .poweroff

    func run() async throws {
        try await NodeSimulationRequest.send(mode.patch, node: name, client: try cluster.client())
        print("node/\(name) \(mode == .poweroff ? "powered off: its processes are killed and" : "partitioned:") its heartbeats stop")
    }
}

struct LocalNodeUp: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node-up", abstract: "Bring a local node back: heartbeats resume and its pods start again.")
    @OptionGroup var cluster: LocalClusterOptions
    @Argument(help: "The node, e.g. node-a.") var name: String

    func run() async throws {
        try await NodeSimulationRequest.send(NodeSimulation.clearPatch, node: name, client: try cluster.client())
        print("node/\(name) up: heartbeats resume")
    }
}

extension NodeSimulation: ExpressibleByArgument {}

/// A failure the user can act on: printed as it is, without the usage text.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
