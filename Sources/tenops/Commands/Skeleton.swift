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

struct PairArguments: ParsableArguments {
    @OptionGroup var kube: KubeOptions
    @Argument(help: "The TimesTenClassic name.") var name: String
}
