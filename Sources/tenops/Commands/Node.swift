import ArgumentParser
import Foundation
import KubeAPI
import LocalCluster
import Logging

/// `tenops node`: a kubelet that runs the pods bound to it as local processes, for any API
/// server the kubeconfig reaches.
struct NodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node", abstract: "Run a node that runs pods as local processes.",
        discussion: """
            The node registers itself, heartbeats through a Lease in kube-node-lease, and runs each \
            container's command and args as a process group, with its volumes as directories under \
            --dir and a loopback IP of its own. Logs are served at the kubelet endpoint \
            (https://ADDRESS:PORT/containerLogs/...) to clients with a certificate from the cluster CA. \
            SIGINT or SIGTERM stops the node and its processes; the pods stay bound to it and start \
            again when it comes back on the same --dir.
            """)

    @OptionGroup var kube: KubeOptions
    @Option(help: "The node name.") var name: String
    @Option(help: "The node's state directory: pod files, claims, logs, certificates.") var dir: String
    @Option(help: "The node's loopback IPv4 address; pods get the following addresses.") var address = "127.0.0.1"
    @Option(help: "The kubelet endpoint's port (0: a free one, remembered across restarts).") var kubeletPort = 0
    @Option(help: "Seconds between heartbeats.") var heartbeatSeconds = 10
    @Option(help: "An extra node label KEY=VALUE (repeatable).") var label: [String] = []

    func run() async throws {
        let signals = TerminationSignal.install()
        var labels: [String: String] = [:]
        for text in label {
            let parts = text.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, !parts[0].isEmpty else { throw ValidationError("--label needs KEY=VALUE, not \(text)") }
            labels[String(parts[0])] = String(parts[1])
        }
        guard heartbeatSeconds > 0 else { throw ValidationError("--heartbeat-seconds must be positive") }
        let client = KubeClient(config: try kube.clusterConfig())
        var logger = Logger(label: "tenops.node")
        logger.logLevel = .info
        let options = ProcessNode.Options(
            name: name, stateDirectory: dir, address: address, kubeletPort: kubeletPort,
            heartbeatInterval: .seconds(heartbeatSeconds), labels: labels)
        let node = try await ProcessNode.start(options, client: client, logger: logger)
        print("tenops node \(name): registered with \(client.config.server); kubelet endpoint \(node.kubeletURL)")
        fflush(nil)
        let signal = await signals.wait()
        print("tenops node \(name): \(signal), stopping its pods")
        await node.stop()
    }
}
