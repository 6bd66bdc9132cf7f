import ArgumentParser
import LocalCluster

/// `tenops node-reaper`: started by a node, never by hand. It waits for the node to end (its
/// stdin reads end-of-file) and then kills the processes the node's pods left behind.
struct NodeReaperCommandLine: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: NodeReaperCommand.name, abstract: "Ends a node's pod processes when the node dies (started by the node).",
        shouldDisplay: false)

    @Option(help: "The node's state directory.") var nodeDirectory: String

    func run() async throws {
        let killed = await NodeReaperCommand.run(nodeDirectory: nodeDirectory)
        if killed > 0 { print("tenops node-reaper: the node at \(nodeDirectory) ended; killed \(killed) processes of its pods") }
    }
}
