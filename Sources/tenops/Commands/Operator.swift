import ArgumentParser
import Foundation
import KubeAPI
import Logging
import OperatorEngine

/// `tenops operator`: the engine as a process of its own, against any cluster.
///
/// This build runs one engine without leader election: run one replica. Leader election,
/// health endpoints and metrics come with issue #7.
struct Operator: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the operator engine: reconcile TimesTenClassic pairs.",
        discussion: "Watches the namespace of -n (or the context's), or every namespace with -A. Run one replica: leader election comes with issue #7.")
    @OptionGroup var kube: KubeOptions
    @Flag(name: [.customShort("A"), .long], help: "Watch every namespace.") var allNamespaces = false
    @Flag(help: "Create or update the TimesTenClassic CRD before starting.") var installCRD = false

    func run() async throws {
        let signals = TerminationSignal.install()
        let config = try kube.clusterConfig()
        let client = KubeClient(config: config)
        let logger = Logger(label: "tenops.operator")
        if installCRD { try await ClusterSetup.install(client: client, sample: false, logger: logger) }
        let namespace = allNamespaces ? nil : config.namespace
        let engine = Task { await PairReconciler(client: client, namespace: namespace, logger: logger).run() }
        logger.info("tenops operator: watching \(namespace.map { "namespace \($0)" } ?? "every namespace") on \(config.server)")
        let signal = await signals.wait()
        logger.info("tenops operator: \(signal), stopping")
        engine.cancel()
        await engine.value
    }
}
