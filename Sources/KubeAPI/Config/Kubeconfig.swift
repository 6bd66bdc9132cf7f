import Foundation
import Yams

/// A kubeconfig, possibly merged from several files, as kubectl reads it.
///
/// Merging follows kubectl: files are read in order; for clusters, users and contexts the first
/// file to define a name wins; `current-context` comes from the first file that sets it. Files
/// in a `KUBECONFIG` list that do not exist are skipped; if none exists, that is an error.
public struct Kubeconfig: Sendable {
    public struct Cluster: Sendable, Equatable {
        public var server: String?
        public var certificateAuthority: String?
        public var certificateAuthorityData: String?
        public var insecureSkipTLSVerify: Bool
        public var tlsServerName: String?
        /// The file this entry came from; relative paths resolve against its directory.
        public var source: String
    }

    public struct ExecConfig: Sendable, Equatable {
        public var apiVersion: String
        public var command: String
        public var args: [String]
        public var env: [(name: String, value: String)]
        public var provideClusterInfo: Bool
        public var installHint: String?
        public var source: String

        public static func == (lhs: ExecConfig, rhs: ExecConfig) -> Bool {
            lhs.apiVersion == rhs.apiVersion && lhs.command == rhs.command && lhs.args == rhs.args
                && lhs.env.map(\.name) == rhs.env.map(\.name) && lhs.env.map(\.value) == rhs.env.map(\.value)
                && lhs.provideClusterInfo == rhs.provideClusterInfo
        }
    }

    public struct User: Sendable, Equatable {
        public var clientCertificate: String?
        public var clientCertificateData: String?
        public var clientKey: String?
        public var clientKeyData: String?
        public var token: String?
        public var tokenFile: String?
        public var exec: ExecConfig?
        public var source: String
    }

    public struct Context: Sendable, Equatable {
        public var cluster: String
        public var user: String
        public var namespace: String?
        public var source: String
    }

    public var clusters: [String: Cluster] = [:]
    public var users: [String: User] = [:]
    public var contexts: [String: Context] = [:]
    public var currentContext: String?
    /// The files that were read, in order.
    public var files: [String] = []

    public init() {}

    // MARK: Loading

    /// The files kubectl would read: `KUBECONFIG` (colon-separated) or `~/.kube/config`.
    public static func defaultPaths(environment: [String: String] = ProcessInfo.processInfo.environment) -> [String] {
        if let list = environment["KUBECONFIG"], !list.isEmpty {
            return list.split(separator: ":").map(String.init).filter { !$0.isEmpty }
        }
        let home = environment["HOME"] ?? NSHomeDirectory()
        return ["\(home)/.kube/config"]
    }

    /// Loads and merges the given files.
    public static func load(paths: [String]) throws(KubeAPIError) -> Kubeconfig {
        var merged = Kubeconfig()
        for path in paths {
            guard FileManager.default.fileExists(atPath: path) else { continue }
            let text: String
            do {
                text = try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                throw .configuration("kubeconfig \(path): cannot read the file: \(error.localizedDescription)")
            }
            let file = try parse(text, source: path)
            merged.merge(file)
        }
        guard !merged.files.isEmpty else {
            throw .configuration("no kubeconfig found (looked for \(paths.joined(separator: ", ")))")
        }
        return merged
    }

    /// Loads `KUBECONFIG` or `~/.kube/config`.
    public static func loadDefault(environment: [String: String] = ProcessInfo.processInfo.environment) throws(KubeAPIError) -> Kubeconfig {
        try load(paths: defaultPaths(environment: environment))
    }

    mutating func merge(_ other: Kubeconfig) {
        for (name, value) in other.clusters where clusters[name] == nil { clusters[name] = value }
        for (name, value) in other.users where users[name] == nil { users[name] = value }
        for (name, value) in other.contexts where contexts[name] == nil { contexts[name] = value }
        if currentContext == nil || currentContext?.isEmpty == true { currentContext = other.currentContext }
        files.append(contentsOf: other.files)
    }

    /// Parses one kubeconfig document. `source` names the file in errors.
    public static func parse(_ text: String, source: String) throws(KubeAPIError) -> Kubeconfig {
        let root: Yams.Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw .configuration("kubeconfig \(source): not valid YAML\(yamlErrorPosition(error))")
        }
        var config = Kubeconfig()
        config.files = [source]
        guard let root else { return config }  // an empty file is an empty config
        guard root.mapping != nil else {
            throw .configuration("kubeconfig \(source): the document must be a mapping")
        }
        let reader = NodeReader(source: source)
        config.currentContext = try reader.string(root, "current-context", at: "")
        for (name, entry) in try reader.namedList(root, "clusters", inner: "cluster") {
            let at = "clusters[\(name)].cluster"
            config.clusters[name] = Cluster(
                server: try reader.string(entry, "server", at: at),
                certificateAuthority: try reader.string(entry, "certificate-authority", at: at),
                certificateAuthorityData: try reader.string(entry, "certificate-authority-data", at: at),
                insecureSkipTLSVerify: try reader.bool(entry, "insecure-skip-tls-verify", at: at) ?? false,
                tlsServerName: try reader.string(entry, "tls-server-name", at: at),
                source: source)
        }
        for (name, entry) in try reader.namedList(root, "users", inner: "user") {
            let at = "users[\(name)].user"
            var user = User(
                clientCertificate: try reader.string(entry, "client-certificate", at: at),
                clientCertificateData: try reader.string(entry, "client-certificate-data", at: at),
                clientKey: try reader.string(entry, "client-key", at: at),
                clientKeyData: try reader.string(entry, "client-key-data", at: at),
                token: try reader.string(entry, "token", at: at),
                tokenFile: try reader.string(entry, "tokenFile", at: at),
                exec: nil, source: source)
            if let exec = entry["exec"] {
                user.exec = try reader.exec(exec, at: "\(at).exec")
            }
            config.users[name] = user
        }
        for (name, entry) in try reader.namedList(root, "contexts", inner: "context") {
            let at = "contexts[\(name)].context"
            guard let cluster = try reader.string(entry, "cluster", at: at), !cluster.isEmpty else {
                throw .configuration("kubeconfig \(source): \(at): field \"cluster\" is missing")
            }
            config.contexts[name] = Context(
                cluster: cluster, user: try reader.string(entry, "user", at: at) ?? "",
                namespace: try reader.string(entry, "namespace", at: at), source: source)
        }
        return config
    }
}

/// Reads typed values out of a YAML node tree with errors that name the file and the field.
struct NodeReader {
    let source: String

    func fail(_ at: String, _ message: String) -> KubeAPIError {
        .configuration("kubeconfig \(source): \(at.isEmpty ? "" : "\(at): ")\(message)")
    }

    func string(_ node: Yams.Node, _ key: String, at: String) throws(KubeAPIError) -> String? {
        guard let value = node[key] else { return nil }
        if value.null != nil { return nil }
        guard let scalar = value.scalar else { throw fail(at, "field \"\(key)\" must be a string") }
        return scalar.string
    }

    func bool(_ node: Yams.Node, _ key: String, at: String) throws(KubeAPIError) -> Bool? {
        guard let value = node[key] else { return nil }
        guard let scalar = value.scalar else { throw fail(at, "field \"\(key)\" must be true or false") }
        switch scalar.string.lowercased() {
        case "true": return true
        case "false": return false
        default: throw fail(at, "field \"\(key)\" must be true or false, not \"\(scalar.string)\"")
        }
    }

    /// Reads `key: [{name: N, inner: {...}}]` into (N, inner node) pairs.
    func namedList(_ root: Yams.Node, _ key: String, inner: String) throws(KubeAPIError) -> [(String, Yams.Node)] {
        guard let list = root[key] else { return [] }
        if list.null != nil { return [] }
        guard let sequence = list.sequence else { throw fail(key, "must be a list") }
        var result: [(String, Yams.Node)] = []
        for (index, item) in sequence.enumerated() {
            guard item.mapping != nil else { throw fail("\(key)[\(index)]", "must be a mapping") }
            guard let name = try string(item, "name", at: "\(key)[\(index)]"), !name.isEmpty else {
                throw fail("\(key)[\(index)]", "field \"name\" is missing")
            }
            guard let body = item[inner], body.mapping != nil else {
                throw fail("\(key)[\(name)]", "field \"\(inner)\" is missing or not a mapping")
            }
            result.append((name, body))
        }
        return result
    }

    func exec(_ node: Yams.Node, at: String) throws(KubeAPIError) -> Kubeconfig.ExecConfig {
        guard node.mapping != nil else { throw fail(at, "must be a mapping") }
        guard let command = try string(node, "command", at: at), !command.isEmpty else {
            throw fail(at, "field \"command\" is missing")
        }
        guard let apiVersion = try string(node, "apiVersion", at: at) else {
            throw fail(at, "field \"apiVersion\" is missing")
        }
        guard ExecCredentialPlugin.supportedVersions.contains(apiVersion) else {
            throw fail(at, "apiVersion \"\(apiVersion)\" is not supported (use \(ExecCredentialPlugin.supportedVersions.joined(separator: " or ")))")
        }
        var args: [String] = []
        if let list = node["args"], list.null == nil {
            guard let sequence = list.sequence else { throw fail(at, "field \"args\" must be a list") }
            for item in sequence {
                guard let scalar = item.scalar else { throw fail(at, "field \"args\" must be a list of strings") }
                args.append(scalar.string)
            }
        }
        var env: [(name: String, value: String)] = []
        if let list = node["env"], list.null == nil {
            guard let sequence = list.sequence else { throw fail(at, "field \"env\" must be a list") }
            for (index, item) in sequence.enumerated() {
                guard let name = try string(item, "name", at: "\(at).env[\(index)]"),
                      let value = try string(item, "value", at: "\(at).env[\(index)]")
                else { throw fail("\(at).env[\(index)]", "needs both \"name\" and \"value\"") }
                env.append((name, value))
            }
        }
        return Kubeconfig.ExecConfig(
            apiVersion: apiVersion, command: command, args: args, env: env,
            provideClusterInfo: try bool(node, "provideClusterInfo", at: at) ?? false,
            installHint: try string(node, "installHint", at: at), source: source)
    }
}
