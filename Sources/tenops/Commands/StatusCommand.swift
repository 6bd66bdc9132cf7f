import ArgumentParser
import Foundation
import KubeAPI
import OperatorEngine

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `tenops status NAME`: the pair, both pods, their roles, replication lag, nodes and the pair's
/// last events, in the spirit of `kubectl cnpg status`. It reads the TimesTenClassic and its
/// Events; `PairStatusReport` does the rendering.
struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a pair: state, pods, roles, lag, nodes, events.",
        discussion: """
            Reads the TimesTenClassic NAME and the Events about it. Colors only on a terminal, and \
            never when NO_COLOR is set. Exits with 1 when the pair does not exist.
            """)

    @OptionGroup var pair: PairArguments

    func run() async throws {
        let config = try pair.kube.clusterConfig()
        let client = KubeClient(config: config, retryPolicy: RetryPolicy(maxAttempts: 3), requestTimeout: .seconds(15))
        let namespace = config.namespace
        let name = pair.name

        let object: TimesTenClassic
        do {
            object = try await client.get(TimesTenClassic.self, name: name, namespace: namespace)
        } catch {
            if error.isNotFound { throw StatusFailureMessage(notFound: name, namespace: namespace, error: error) }
            throw StatusFailureMessage("cannot read timestenclassic \(namespace)/\(name): \(error)")
        }

        var events: [CoreEvent] = []
        var eventsError: String?
        do {
            let selector = "involvedObject.name=\(name),involvedObject.kind=\(TimesTenClassic.resourceType.kind)"
            let list = try await client.listAll(CoreEvent.resourceType, namespace: namespace, options: ListOptions(fieldSelector: selector))
            let uid = object.metadata.uid
            events = list.items.map { CoreEvent(json: $0.json) }.filter { event in
                // Events of an earlier object of the same name do not belong to this one.
                guard let eventUID = event.involvedObject.uid, !eventUID.isEmpty, let uid else { return true }
                return eventUID == uid
            }
        } catch {
            eventsError = "\(error)"
        }

        let terminal = TerminalInfo.standardOutput()
        let report = PairStatusReport.render(
            pair: object, events: events, now: Date(), color: terminal.color, width: terminal.width, eventsError: eventsError)
        print(report, terminator: "")
    }
}

/// A failure of `tenops status`, printed as `Error: <message>` with exit status 1.
struct StatusFailureMessage: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }

    init(notFound name: String, namespace: String, error: KubeAPIError) {
        var text = "timestenclassic \(namespace)/\(name) not found"
        // A 404 that is no Status about this object: the server does not serve the kind at all.
        if case .notFound(let failure) = error, failure.details?["name"]?.stringValue != name {
            text += " (the server does not know timestenclassics.tenops.io: is deploy/crd.yaml applied? \(failure.message))"
        }
        self.init(text)
    }
}

/// Whether standard output is a terminal, and how wide.
struct TerminalInfo {
    var color: Bool
    /// Columns; 0: no limit (a pipe or file).
    var width: Int

    static func standardOutput(environment: [String: String] = ProcessInfo.processInfo.environment) -> TerminalInfo {
        let tty = isatty(STDOUT_FILENO) == 1
        let columns = environment["COLUMNS"].flatMap(Int.init).flatMap { $0 > 0 ? $0 : nil }
        guard tty else { return TerminalInfo(color: false, width: columns ?? 0) }
        var size = winsize()
        let measured = ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0 && size.ws_col > 0 ? Int(size.ws_col) : nil
        return TerminalInfo(color: environment["NO_COLOR"] == nil, width: measured ?? columns ?? 80)
    }
}
