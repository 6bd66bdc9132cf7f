import Foundation
import KubeAPI
import LocalCluster
import OperatorEngine
@_exported import TestSupport

/// The package's root, found from this file's path, for deploy/*.yaml.
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

let sampleUID = "6f1c2d3e-0000-4000-8000-000000000001"

/// A TimesTenClassic as the API server would hand it out: with a uid.
func sampleObject(name: String = "sample", namespace: String = "ns", ttspec: JSONObject = ["image": "tenops:latest"]) -> TimesTenClassic {
    var object = TimesTenClassic(name: name, namespace: namespace)
    object.metadata.uid = sampleUID
    object.json["spec"] = ["ttspec": .object(ttspec)]
    return object
}

/// A directory under the system temp dir, removed when the body is done with it.
func withScratchDirectory<T>(_ body: (String) async throws -> T) async throws -> T {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("tenops-oe-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try await body(path)
}

/// A real local API server in this process, on 127.0.0.1, stopped whatever the body does.
func withLocalServer<T>(_ body: (_ kubectl: @Sendable ([String], String?) async throws -> ProcessOutput) async throws -> T) async throws -> T {
    try await withScratchDirectory { directory in
        let state = "\(directory)/state"
        let server = try await LocalAPIServer.start(.init(stateDirectory: state))
        let kubeconfig = "\(state)/kubeconfig"
        let kubectl: @Sendable ([String], String?) async throws -> ProcessOutput = { arguments, input in
            var environment = ProcessInfo.processInfo.environment
            environment["KUBECONFIG"] = nil
            environment["HOME"] = directory  // no user configuration or cache
            environment["KUBECACHEDIR"] = "\(directory)/kubectl-cache"
            return try await ChildProcess.run("/usr/bin/kubectl", ["--kubeconfig", kubeconfig] + arguments, environment: environment, input: input)
        }
        do {
            let result = try await body(kubectl)
            await server.stop()
            return result
        } catch {
            await server.stop()
            throw error
        }
    }
}

extension ProcessOutput: CustomStringConvertible {
    public var description: String { "status \(status)\(timedOut ? " (timed out)" : "")\nstdout: \(out)\nstderr: \(err)" }
}
