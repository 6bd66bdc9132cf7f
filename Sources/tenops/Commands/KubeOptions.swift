import ArgumentParser
import Foundation
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
    ///
    /// Inside a pod (KUBERNETES_SERVICE_HOST set) with no kubeconfig at all (no --kubeconfig, no
    /// --context, no KUBECONFIG, no ~/.kube/config), it is the pod's service account: its token,
    /// CA and namespace, as client-go does.
    func clusterConfig(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ClusterConfig {
        var config: ClusterConfig
        if usesInClusterConfig(environment: environment) {
            config = try ClusterConfig.inCluster(environment: environment)
        } else {
            config = try ClusterConfig.load(kubeconfig: kubeconfig, context: context)
        }
        if let namespace { config.namespace = namespace }
        return config
    }

    func usesInClusterConfig(environment: [String: String]) -> Bool {
        guard kubeconfig == nil, context == nil, environment["KUBECONFIG"].map({ $0.isEmpty }) ?? true,
              let host = environment["KUBERNETES_SERVICE_HOST"], !host.isEmpty
        else { return false }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return !FileManager.default.fileExists(atPath: "\(home)/.kube/config")
    }
}
