import ArgumentParser
import KubeAPI

/// kubectl's connection flags, shared by every command that talks to a cluster.
struct KubeOptions: ParsableArguments {
    @Option(name: .long, help: "Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).")
    var kubeconfig: String?

    @Option(name: .long, help: "The kubeconfig context to use (default: its current-context).")
    var context: String?

    @Option(name: [.customShort("n"), .long], help: "Namespace (default: the context's namespace).")
    var namespace: String?

    /// Resolves the cluster the way kubectl does; errors name the file, context and field.
    func clusterConfig() throws -> ClusterConfig {
        var config = try ClusterConfig.load(kubeconfig: kubeconfig, context: context)
        if let namespace { config.namespace = namespace }
        return config
    }
}
