import ArgumentParser

/// A role that this build does not carry yet. It says which issue brings it and exits with 2,
/// so scripts never mistake it for success.
struct NotYetAvailable: Error, CustomStringConvertible {
    let command: String
    let issue: Int
    let what: String
    var description: String { "tenops \(command): \(what) is not in this build yet (issue #\(issue))." }
}

extension ParsableCommand {
    func unavailable(_ command: String, issue: Int, _ what: String) throws -> Never {
        throw NotYetAvailable(command: command, issue: issue, what: what)
    }
}

struct Console: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Open the operations console on a cluster.")
    @OptionGroup var kube: KubeOptions
    @Option(help: "auto, embedded or observe.") var engine = "auto"
    @Option(help: "Theme name from themes/.") var theme = "default"
    func run() async throws { try unavailable("console", issue: 8, "the console") }
}

struct PairArguments: ParsableArguments {
    @OptionGroup var kube: KubeOptions
    @Argument(help: "The TimesTenClassic name.") var name: String
}

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show a pair: state, pods, roles, lag, nodes, events.")
    @OptionGroup var pair: PairArguments
    func run() async throws { try unavailable("status", issue: 7, "pair status") }
}

struct Switchover: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Move the active role to the standby, losing nothing.")
    @OptionGroup var pair: PairArguments
    func run() async throws { try unavailable("switchover", issue: 7, "switchover") }
}

struct Failover: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Force the standby to become active.")
    @OptionGroup var pair: PairArguments
    func run() async throws { try unavailable("failover", issue: 7, "failover") }
}

struct Reduplicate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Destroy a pod's database and duplicate it again from the active.")
    @OptionGroup var pair: PairArguments
    @Argument(help: "The pod to re-duplicate.") var pod: String?
    func run() async throws { try unavailable("reduplicate", issue: 7, "re-duplication") }
}

struct Reexamine: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Ask the operator to examine a pair again.")
    @OptionGroup var pair: PairArguments
    func run() async throws { try unavailable("reexamine", issue: 7, "reexamine") }
}
