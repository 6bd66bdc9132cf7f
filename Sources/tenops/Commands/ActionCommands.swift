import ArgumentParser
import Foundation
import KubeAPI
import OperatorEngine

#if canImport(Glibc)
import Glibc
#endif

/// What the action commands share: submitting through the `tenops.io/action` annotation (the
/// only path the engine takes actions from) and waiting for `status.lastAction`.
struct ActionOptions: ParsableArguments {
    @Flag(help: "Submit the action and return without waiting for its result.") var noWait = false
    @Option(help: "Seconds to wait for the result.") var timeout = 600
}

struct ActionFailed: Error, CustomStringConvertible {
    let description: String
}

enum ActionSubmitter {
    /// Writes the request onto the pair and, unless told not to, follows it to its end.
    static func run(_ request: ManualActionRequest, pair: PairArguments, options: ActionOptions) async throws {
        let config = try pair.kube.clusterConfig()
        let client = KubeClient(config: config)
        let namespace = config.namespace
        // The pair must exist: say so plainly rather than with an API error.
        do {
            _ = try await client.get(TimesTenClassic.self, name: pair.name, namespace: namespace)
        } catch {
            if error.isNotFound { throw ActionFailed(description: "timestenclassic \(namespace)/\(pair.name) not found") }
            throw error
        }
        _ = try await client.patch(TimesTenClassic.self, name: pair.name, namespace: namespace, patchType: .merge, patch: request.mergePatch)
        print("\(request.verb.rawValue) \(request.id) submitted to \(namespace)/\(pair.name)")
        guard !options.noWait else { return }
        let record = try await follow(request.id, pair: pair.name, namespace: namespace, client: client, timeout: .seconds(options.timeout))
        if record.state != ActionState.succeeded {
            throw ActionFailed(description: "\(record.verb ?? request.verb.rawValue) \(record.id) failed: \(record.message ?? "no reason given")")
        }
    }

    /// Polls the pair until `status.lastAction` of `id` ends, drawing its progress.
    static func follow(_ id: String, pair: String, namespace: String, client: KubeClient, timeout: Duration) async throws -> ActionRecord {
        let terminal = isatty(STDOUT_FILENO) == 1
        let unicode = (ProcessInfo.processInfo.environment["LANG"] ?? "").uppercased().contains("UTF-8")
        let deadline = ContinuousClock.now + timeout
        var shown = ""
        while ContinuousClock.now < deadline {
            let object = try await client.get(TimesTenClassic.self, name: pair, namespace: namespace)
            if let record = object.status.lastAction, record.id == id {
                let line = ActionProgress.line(record, width: terminal ? 100 : 1000, unicode: unicode)
                if line != shown {
                    if terminal { print("\r\u{1B}[2K" + line, terminator: record.isRunning ? "" : "\n") } else { print(line) }
                    fflush(nil)
                    shown = line
                }
                if !record.isRunning && record.state != nil { return record }
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        if terminal { print("") }
        throw ActionFailed(description: "no result for action \(id) within \(timeout); it may still run: tenops status \(pair) -n \(namespace)")
    }

    static func newID() -> String { ManualActionRequest.newID() }
}

struct Switchover: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Move the active role to the standby, losing nothing.",
        discussion: "Fences the active, waits until the standby has replayed everything, promotes it, and re-attaches the old active as its standby (pg_rewind, or a new copy).")
    @OptionGroup var pair: PairArguments
    @OptionGroup var options: ActionOptions
    func run() async throws {
        try await ActionSubmitter.run(ManualActionRequest(id: ActionSubmitter.newID(), verb: .switchover), pair: pair, options: options)
    }
}

struct Failover: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Force the standby to become active.",
        discussion: "The old active is fenced when it can be reached; the standby is promoted once the old active cannot write.")
    @OptionGroup var pair: PairArguments
    @OptionGroup var options: ActionOptions
    func run() async throws {
        try await ActionSubmitter.run(ManualActionRequest(id: ActionSubmitter.newID(), verb: .failover), pair: pair, options: options)
    }
}

struct Reduplicate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Destroy the standby's database and duplicate it again from the active.")
    @OptionGroup var pair: PairArguments
    @Argument(help: "The pod to re-duplicate: the standby.") var pod: String
    @OptionGroup var options: ActionOptions
    func run() async throws {
        try await ActionSubmitter.run(ManualActionRequest(id: ActionSubmitter.newID(), verb: .reduplicate, pod: pod), pair: pair, options: options)
    }
}

struct Reexamine: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ask the operator to examine a pair again (Oracle's reexamine: any change of spec.ttspec.reexamine).")
    @OptionGroup var pair: PairArguments
    @OptionGroup var options: ActionOptions
    func run() async throws {
        let config = try pair.kube.clusterConfig()
        let client = KubeClient(config: config)
        let value = EdgeTrigger.freshValue()
        let patch = EdgeTrigger.reexamine.mergePatch(value: value)
        do {
            _ = try await client.patch(TimesTenClassic.self, name: pair.name, namespace: config.namespace, patchType: .merge, patch: patch)
        } catch {
            if error.isNotFound { throw ActionFailed(description: "timestenclassic \(config.namespace)/\(pair.name) not found") }
            throw error
        }
        print("reexamine requested on \(config.namespace)/\(pair.name)")
        guard !options.noWait else { return }
        let deadline = ContinuousClock.now + .seconds(options.timeout)
        while ContinuousClock.now < deadline {
            let object = try await client.get(TimesTenClassic.self, name: pair.name, namespace: config.namespace)
            let state = object.status.highLevelState ?? "?"
            if object.status.prevReexamine == value && state != "Reexamine" {
                print("\(pair.name) is \(state)")
                return
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw ActionFailed(description: "the operator did not act on reexamine within \(options.timeout) s")
    }
}
