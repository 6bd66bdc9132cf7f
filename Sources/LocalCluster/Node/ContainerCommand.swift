import Foundation
import KubeAPI

#if canImport(Glibc)
import Glibc
#endif

/// Finds the program a container runs. There are no images: `command` + `args`, with `$(VAR)`
/// expanded, is the argv, and a bare program name is looked up in the container's PATH, whose
/// first entry is the directory of the running tenops executable (so `["tenops", "agent"]`
/// runs this very build).
enum ContainerCommand {
    /// The argv of a container: `command` followed by `args`, expanded against its environment.
    static func argv(of container: Container, environment: ProcessEnvironment) -> [String] {
        (container.command + container.args).map(environment.expand)
    }

    /// The absolute path of `program`: as given when it holds a `/` (relative to
    /// `workingDirectory`), else the first executable file of that name on `searchPath`.
    static func resolve(_ program: String, searchPath: String, workingDirectory: String) -> String? {
        guard !program.isEmpty else { return nil }
        if program.contains("/") {
            let path = program.hasPrefix("/") ? program : "\(workingDirectory)/\(program)"
            return isExecutableFile(path) ? path : nil
        }
        for directory in searchPath.split(separator: ":") where !directory.isEmpty {
            let candidate = "\(directory)/\(program)"
            if isExecutableFile(candidate) { return candidate }
        }
        return nil
    }

    static func isExecutableFile(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG && access(path, X_OK) == 0
    }

    /// The directory of the running executable (`/proc/self/exe`).
    static let executableDirectory: String = {
        let resolved = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: resolved).deletingLastPathComponent().path
    }()

    /// The node's part of every container's environment: PATH with the tenops directory first,
    /// and the few variables of the node's own that programs expect (HOME, LANG, ...). Nothing
    /// else of the node's environment (its kubeconfig, tokens) reaches a container.
    static func baseEnvironment(_ node: [String: String] = ProcessInfo.processInfo.environment) -> [(String, String)] {
        let path = [executableDirectory, node["PATH"] ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
        var base: [(String, String)] = [("PATH", path.joined(separator: ":"))]
        for name in ["HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER", "LOGNAME"] {
            if let value = node[name] { base.append((name, value)) }
        }
        return base
    }
}
