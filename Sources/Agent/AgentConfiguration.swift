import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Everything the agent needs to know about its pod, as the process node (or the kubelet) passes
/// it.
///
/// ## The convention
///
/// The agent is written against *container paths*: `/tt` (the `tt-persistent` PVC), `/ttconfig`
/// (the projected `dbConfigMap`/`dbSecret` files), `/ttlog` (the optional log PVC) and the TLS
/// directory (default `/agent-tls`, the `sample-agent-tls` Secret with `ca.crt`, `tls.crt`,
/// `tls.key`). In a real container these paths exist as they are. A node that runs pods as local
/// processes maps each mount onto a real directory through the environment:
///
/// | container path | environment variable | example |
/// |---|---|---|
/// | `/tt` | `TENOPS_VOLUME_TT` | `/var/lib/tenops/pvc/tt-persistent-sample-0` |
/// | `/ttconfig` | `TENOPS_VOLUME_TTCONFIG` | `/var/lib/tenops/pods/sample-0/ttconfig` |
/// | `/ttlog` | `TENOPS_VOLUME_TTLOG` | (optional) |
/// | `/agent-tls` | `TENOPS_VOLUME_AGENT_TLS` | `/var/lib/tenops/pods/sample-0/agent-tls` |
///
/// The variable's name is `TENOPS_VOLUME_` followed by the mount path without its leading slash,
/// upper-cased, with every other character than A-Z and 0-9 turned into `_` (so
/// `/var/run/secrets` is `TENOPS_VOLUME_VAR_RUN_SECRETS`). The longest mapped prefix of a path
/// wins. A path under no mapped mount is used as it is.
///
/// The other settings come from flags of `tenops agent`, or from these variables when a flag is
/// absent:
///
/// | flag | variable | default |
/// |---|---|---|
/// | `--listen` | `TENOPS_POD_IP`, then `POD_IP` | `127.0.0.1` |
/// | `--port` | `TENOPS_AGENT_PORT` | `8443` |
/// | `--tls-dir` | `TENOPS_TLS_DIR` | `/agent-tls` |
/// | `--database` | `TENOPS_DATABASE` | the pod name (`POD_NAME`, then `HOSTNAME`) without its `-N` ordinal |
/// | `--rep-port` | `TENOPS_REP_PORT` | `5432` (each pod has its own IP) |
/// | `--pg-bin` | `TENOPS_PG_BIN` | `/usr/lib/postgresql/15/bin` |
/// | `--server-user` | `TENOPS_SERVER_USER` | `postgres` when the agent runs as root, else the agent's own user |
///
/// Files the agent keeps on `/tt`: `pgdata/` (the data directory, owned by the server user),
/// `pgdata.duplicate/` (a duplicate in progress), `agent/state.json`, `agent/pgpass`,
/// `agent/run/` (the server's Unix socket), `agent/ready` (the readiness file, present only
/// while the operator says this pod is the active: a readiness probe is `test -f /tt/agent/ready`).
/// The server's log is `/ttlog/postgresql.log` when `/ttlog` is mapped or exists, else
/// `/tt/log/postgresql.log`; `tenops agent daemonlog` follows that file.
public struct AgentConfiguration: Sendable {
    /// The pod IP. The HTTPS endpoint and PostgreSQL both listen on it.
    public var listenAddress: String
    /// The HTTPS port (8443 in a pod).
    public var port: Int
    /// A *container* path of the directory holding `ca.crt`, `tls.crt` and `tls.key`.
    public var tlsDirectory: String
    /// The mapping from container paths to real directories.
    public var volumes: VolumeMap
    /// The database, named after the TimesTenClassic.
    public var databaseName: String
    /// PostgreSQL's port (the TimesTenClassic's repPort).
    public var repPort: Int
    /// Where initdb, postgres, pg_basebackup and psql live.
    public var postgresBinDirectory: String
    /// Who runs the database server.
    public var serverUser: ServerUser
    /// The command prefix that launches a child which dies with the agent: our own binary's
    /// hidden `agent exec-child` subcommand, e.g. `["/usr/bin/tenops", "agent", "exec-child"]`.
    /// nil launches children directly; they then do not die with the agent (tests only).
    public var execChild: [String]?
    /// How often replication state and lag are re-read while nothing else happens.
    public var statusInterval: Duration

    public init(
        listenAddress: String, port: Int = 8443, tlsDirectory: String = "/agent-tls",
        volumes: VolumeMap, databaseName: String, repPort: Int = 5432,
        postgresBinDirectory: String = "/usr/lib/postgresql/15/bin",
        serverUser: ServerUser, execChild: [String]?, statusInterval: Duration = .seconds(1)
    ) {
        self.listenAddress = listenAddress
        self.port = port
        self.tlsDirectory = tlsDirectory
        self.volumes = volumes
        self.databaseName = databaseName
        self.repPort = repPort
        self.postgresBinDirectory = postgresBinDirectory
        self.serverUser = serverUser
        self.execChild = execChild
        self.statusInterval = statusInterval
    }

    /// The server's log file, which `tenops agent daemonlog` follows.
    public static func logFile(volumes: VolumeMap) -> String {
        PostgresEngine.Paths.logPath(volumes: volumes)
    }

    /// Checks what can be checked before anything starts.
    public func validate() throws(AgentConfigurationError) {
        guard Self.isIPAddress(listenAddress) else {
            throw .invalid("the listen address must be an IP address (the pod IP), got \(listenAddress.debugDescription)")
        }
        guard (1...65535).contains(port) else { throw .invalid("--port must be 1...65535, got \(port)") }
        guard (1...65535).contains(repPort) else { throw .invalid("--rep-port must be 1...65535, got \(repPort)") }
        guard Self.isValidDatabaseName(databaseName) else {
            throw .invalid("the database name must be 1 to 63 characters of a-z, 0-9, _ and -, starting with a letter; got \(databaseName.debugDescription)")
        }
    }

    /// The database name for a pod: `sample-0` gives `sample`.
    public static func databaseName(forPod pod: String) -> String {
        guard let dash = pod.lastIndex(of: "-"), pod[pod.index(after: dash)...].allSatisfy(\.isNumber),
              pod.index(after: dash) < pod.endIndex
        else { return pod }
        return String(pod[..<dash])
    }

    static func isValidDatabaseName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, name.utf8.count <= 63, ("a"..."z").contains(first) else { return false }
        return name.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" || $0 == "-" }
    }

    static func isIPAddress(_ text: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }
}

public enum AgentConfigurationError: Error, CustomStringConvertible, Equatable {
    case invalid(String)
    public var description: String {
        switch self {
        case .invalid(let message): return message
        }
    }
}

/// The unprivileged account that runs the database server. PostgreSQL refuses to run as root.
public struct ServerUser: Sendable, Equatable {
    public var name: String
    public var uid: UInt32
    public var gid: UInt32

    public init(name: String, uid: UInt32, gid: UInt32) {
        self.name = name
        self.uid = uid
        self.gid = gid
    }

    /// `postgres` (or `name`) when we are root; our own account otherwise.
    public static func resolve(name: String? = nil) throws(AgentConfigurationError) -> ServerUser {
        if getuid() != 0 {
            let uid = getuid()
            let gid = getgid()
            let own = getpwuid(uid).map { String(cString: $0.pointee.pw_name) } ?? "uid\(uid)"
            if let name, name != own {
                throw .invalid("the agent runs as \(own), not root, so it can only run the server as itself, not as \(name)")
            }
            return ServerUser(name: own, uid: uid, gid: gid)
        }
        let wanted = name ?? "postgres"
        guard wanted != "root", let entry = getpwnam(wanted) else {
            throw .invalid("the database server must run as an unprivileged user; user \(wanted.debugDescription) does not exist")
        }
        guard entry.pointee.pw_uid != 0 else { throw .invalid("user \(wanted) has uid 0; PostgreSQL refuses to run as root") }
        return ServerUser(name: wanted, uid: entry.pointee.pw_uid, gid: entry.pointee.pw_gid)
    }

    /// True when the agent must switch users to run the server.
    var needsSwitch: Bool { getuid() != uid }
}

/// Container paths and the real directories behind them. See ``AgentConfiguration``.
public struct VolumeMap: Sendable, Equatable {
    /// Mount path (absolute, no trailing slash) to real directory.
    public private(set) var mounts: [String: String]

    public init(_ mounts: [String: String] = [:]) {
        var normalized: [String: String] = [:]
        for (mount, real) in mounts {
            var key = mount
            while key.count > 1 && key.hasSuffix("/") { key.removeLast() }
            normalized[key] = real
        }
        self.mounts = normalized
    }

    /// The variable that maps `mountPath`: `/ttconfig` -> `TENOPS_VOLUME_TTCONFIG`.
    public static func environmentVariable(for mountPath: String) -> String {
        let body = mountPath.drop(while: { $0 == "/" }).uppercased().map { ch -> Character in
            (ch.isASCII && (ch.isLetter || ch.isNumber)) ? ch : "_"
        }
        return "TENOPS_VOLUME_" + String(body)
    }

    /// The mapping for the pod's well-known mounts, read from `environment`.
    public static func fromEnvironment(
        _ environment: [String: String], mountPaths: [String] = ["/tt", "/ttconfig", "/ttlog", "/agent-tls"]
    ) -> VolumeMap {
        var mounts: [String: String] = [:]
        for mount in mountPaths {
            if let real = environment[environmentVariable(for: mount)], !real.isEmpty { mounts[mount] = real }
        }
        return VolumeMap(mounts)
    }

    /// The real path of a container path (no confinement; for configuration).
    public func realPath(_ containerPath: String) -> String {
        var best: (mount: String, real: String)?
        for (mount, real) in mounts where containerPath == mount || containerPath.hasPrefix(mount + "/") {
            if best == nil || mount.count > best!.mount.count { best = (mount, real) }
        }
        guard let best else { return containerPath }
        return best.real + containerPath.dropFirst(best.mount.count)
    }

    /// Whether `mount` is mapped, or exists as a real directory.
    public func isPresent(_ mount: String) -> Bool {
        if mounts[mount] != nil { return true }
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: mount, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    /// The real path for a path that came in a request, confined to `allowedMounts`. Refuses
    /// relative paths, `.` and `..` components, paths under no allowed mount, and symbolic links
    /// that lead out of the mount.
    public func confinedRealPath(_ containerPath: String, allowedMounts: [String]) throws(PathError) -> String {
        guard containerPath.hasPrefix("/") else { throw .notAbsolute(containerPath) }
        guard !containerPath.contains("\0") else { throw .invalidCharacters(containerPath) }
        let components = containerPath.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        if components.contains(where: { $0 == ".." || $0 == "." }) { throw .traversal(containerPath) }
        guard let mount = allowedMounts.filter({ containerPath == $0 || containerPath.hasPrefix($0 + "/") })
            .max(by: { $0.count < $1.count })
        else { throw .outsideVolumes(containerPath, allowed: allowedMounts) }
        let rootReal = realPath(mount)
        let real = realPath(containerPath)
        // Resolve symbolic links of whatever part exists, and check it stays under the mount.
        let resolvedRoot = Self.resolve(rootReal)
        let resolved = Self.resolve(real)
        guard resolved == resolvedRoot || resolved.hasPrefix(resolvedRoot.hasSuffix("/") ? resolvedRoot : resolvedRoot + "/") else {
            throw .outsideVolumes(containerPath, allowed: allowedMounts)
        }
        return real
    }

    /// realpath(3) of the longest existing prefix, with the rest appended.
    static func resolve(_ path: String) -> String {
        var existing = path
        var rest: [String] = []
        while !existing.isEmpty && existing != "/" {
            if let resolved = realpath(existing, nil) {
                defer { free(resolved) }
                let base = String(cString: resolved)
                return rest.isEmpty ? base : (base == "/" ? "" : base) + "/" + rest.reversed().joined(separator: "/")
            }
            let url = URL(fileURLWithPath: existing)
            rest.append(url.lastPathComponent)
            existing = url.deletingLastPathComponent().path
        }
        return "/" + rest.reversed().joined(separator: "/")
    }
}

/// Why a path from a request was refused.
public enum PathError: Error, CustomStringConvertible, Equatable {
    case notAbsolute(String)
    case traversal(String)
    case invalidCharacters(String)
    case outsideVolumes(String, allowed: [String])

    public var description: String {
        switch self {
        case .notAbsolute(let path): return "path \(path.debugDescription) is not absolute"
        case .traversal(let path): return "path \(path.debugDescription) contains a '.' or '..' component"
        case .invalidCharacters(let path): return "path \(path.debugDescription) contains a NUL character"
        case .outsideVolumes(let path, let allowed):
            return "path \(path.debugDescription) is outside the pod's volumes (\(allowed.joined(separator: ", ")))"
        }
    }
}
