import ArgumentParser
import Dispatch
import Foundation
import LocalCluster

struct Local: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a local control plane on loopback: API server, nodes, the operator and the console.",
        discussion: """
            State lives under --dir: objects, certificates and data survive a restart. \
            DIR/kubeconfig is written once the API server serves; point kubectl at it.
            """)

    @Option(help: "State directory; a restart keeps objects and data.") var dir = "tenops-state"
    @Flag(help: "Run without the console.") var headless = false
    @Flag(help: "Do not create the sample pair.") var noSample = false
    @Option(help: "API server port (0: a free one, remembered across restarts).") var port = 0

    func run() async throws {
        let server = try await LocalAPIServer.start(LocalAPIServer.Options(stateDirectory: dir, port: port))
        let kubeconfig = URL(fileURLWithPath: dir).appendingPathComponent("kubeconfig").standardizedFileURL.path
        print("tenops local: API server at \(server.url)")
        print("tenops local: kubeconfig \(kubeconfig)")
        print("tenops local: try  kubectl --kubeconfig \(kubeconfig) api-resources")
        if !headless {
            print("tenops local: the console is not in this build yet (issue #8); running headless. Ctrl-C stops.")
        }
        fflush(nil)  // a pipe or log file sees these lines now
        let signal = await TerminationSignal.wait()
        print("tenops local: \(signal), stopping")
        await server.stop()
    }
}

/// Waits for SIGINT or SIGTERM.
enum TerminationSignal {
    static func wait() async -> String {
        await withCheckedContinuation { (continuation: CheckedContinuation<String, Never>) in
            let once = OnceFlag()
            var sources: [any DispatchSourceSignal] = []
            for (number, name) in [(SIGINT, "SIGINT"), (SIGTERM, "SIGTERM")] {
                Foundation.signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler {
                    if once.take() { continuation.resume(returning: name) }
                }
                source.resume()
                sources.append(source)
            }
            Holder.sources = sources
        }
    }

    /// Keeps the signal sources alive for the life of the process.
    private enum Holder { nonisolated(unsafe) static var sources: [any DispatchSourceSignal] = [] }
}

final class OnceFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var taken = false
    func take() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if taken { return false }
        taken = true
        return true
    }
}
