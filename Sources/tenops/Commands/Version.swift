import ArgumentParser
import Foundation
import KubeAPI

struct Version: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the tenops version and, with --server, the API server's version.")

    @OptionGroup var kube: KubeOptions

    @Flag(name: .long, help: "Also ask the API server for its version.")
    var server = false

    func run() async throws {
        print("Client Version: tenops \(BuildInfo.version)")
        guard server else { return }
        let client = KubeClient(config: try kube.clusterConfig(), retryPolicy: RetryPolicy(maxAttempts: 2), requestTimeout: .seconds(10))
        let data = try await client.send(method: "GET", path: "/version")
        let info = try JSONParser.parseObject(data)
        let gitVersion = info["gitVersion"]?.stringValue ?? "unknown"
        print("Server Version: \(gitVersion) (\(client.config.server))")
    }
}
