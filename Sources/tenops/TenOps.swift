import ArgumentParser

/// `tenops`: one binary, every role. Subcommands only wire pieces together.
@main
struct TenOps: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tenops",
        abstract: "Highly available active/standby database pairs on Kubernetes.",
        discussion: "Write one TimesTenClassic object and get a replicated pair that fails over by itself.",
        version: BuildInfo.version,
        subcommands: [
            Version.self,
            Local.self, Console.self, Operator.self, AgentCommand.self, NodeCommand.self, NodeReaperCommandLine.self,
            Status.self, Switchover.self, Failover.self, Reduplicate.self, Reexamine.self,
        ]
    )

    /// Sets up the heap for the command named first, then parses and runs as usual. This runs on
    /// the main thread before any other thread exists, which some of malloc's settings need.
    static func main() async {
        if CommandLine.arguments.dropFirst().first == "console" {
            Console.tuneHeap()
        }
        await main(nil)
    }
}

enum BuildInfo {
    static let version = "0.1.0"
}
