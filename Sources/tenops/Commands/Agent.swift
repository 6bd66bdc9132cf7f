import Agent
import ArgumentParser
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// `tenops agent`: the in-pod agent of the `tt` container, and its `daemonlog` sidecar.
/// The flags, the environment variables and the volume mapping are described on
/// `AgentConfiguration` (Sources/Agent/AgentConfiguration.swift).
struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Run the in-pod agent (HTTPS with mutual TLS) that drives the database.",
        discussion: """
            Without a subcommand, runs the agent (`serve`). Paths are container paths (/tt, /ttconfig, \
            /ttlog, /agent-tls); a node running pods as processes maps each onto a real directory with \
            TENOPS_VOLUME_TT, TENOPS_VOLUME_TTCONFIG, TENOPS_VOLUME_TTLOG and TENOPS_VOLUME_AGENT_TLS.
            """,
        subcommands: [AgentServe.self, AgentDaemonLog.self, AgentExecChild.self],
        defaultSubcommand: AgentServe.self
    )
}

struct AgentServe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Serve the agent's HTTPS endpoint and run the database server.")

    @Option(help: "The pod IP to listen on (default: $TENOPS_POD_IP, $POD_IP, 127.0.0.1).") var listen: String?
    @Option(help: "HTTPS port (default: $TENOPS_AGENT_PORT or 8443).") var port: Int?
    @Option(help: "Directory with ca.crt, tls.crt and tls.key (default: $TENOPS_TLS_DIR or /agent-tls).") var tlsDir: String?
    @Option(help: "Database name (default: $TENOPS_DATABASE, else the pod name without its ordinal).") var database: String?
    @Option(help: "PostgreSQL port, the TimesTenClassic's repPort (default: $TENOPS_REP_PORT or 5432).") var repPort: Int?
    @Option(help: "PostgreSQL binaries (default: $TENOPS_PG_BIN or /usr/lib/postgresql/15/bin).") var pgBin: String?
    @Option(help: "User that runs the database server when the agent is root (default: $TENOPS_SERVER_USER or postgres).") var serverUser: String?
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel: String = "info"

    func run() async throws {
        let env = ProcessInfo.processInfo.environment
        func int(_ flag: Int?, _ variable: String, _ fallback: Int) throws -> Int {
            if let flag { return flag }
            guard let text = env[variable], !text.isEmpty else { return fallback }
            guard let value = Int(text) else { throw ValidationError("\(variable)=\(text) is not a number") }
            return value
        }
        let pod = env["POD_NAME"] ?? env["HOSTNAME"] ?? ""
        let databaseName = database ?? env["TENOPS_DATABASE"] ?? AgentConfiguration.databaseName(forPod: pod)
        guard !databaseName.isEmpty else {
            throw ValidationError("no database name: pass --database or set TENOPS_DATABASE (or POD_NAME)")
        }
        let user: ServerUser
        do { user = try ServerUser.resolve(name: serverUser ?? env["TENOPS_SERVER_USER"]) } catch {
            throw ValidationError(error.description)
        }
        let configuration = AgentConfiguration(
            listenAddress: listen ?? env["TENOPS_POD_IP"] ?? env["POD_IP"] ?? "127.0.0.1",
            port: try int(port, "TENOPS_AGENT_PORT", 8443),
            tlsDirectory: tlsDir ?? env["TENOPS_TLS_DIR"] ?? "/agent-tls",
            volumes: VolumeMap.fromEnvironment(env),
            databaseName: databaseName,
            repPort: try int(repPort, "TENOPS_REP_PORT", 5432),
            postgresBinDirectory: pgBin ?? env["TENOPS_PG_BIN"] ?? "/usr/lib/postgresql/15/bin",
            serverUser: user,
            execChild: [Self.ownExecutable(), "agent", "exec-child"]
        )
        var logger = Logger(label: "tenops.agent") { label in StreamLogHandler.standardError(label: label) }
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info

        // SIGTERM (pod deletion) and SIGINT stop the database cleanly before exiting.
        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        signal(SIGPIPE, SIG_IGN)
        let (signals, signalContinuation) = AsyncStream<Int32>.makeStream()
        let sources = [SIGTERM, SIGINT].map { number -> any DispatchSourceSignal in
            let source = DispatchSource.makeSignalSource(signal: number)
            source.setEventHandler { signalContinuation.yield(number) }
            source.resume()
            return source
        }
        defer { sources.forEach { $0.cancel() } }

        let agent = try await Agent.start(configuration, logger: logger, onDie: {
            // Exit at once; the postmaster gets SIGKILL from the kernel (exec-child's PDEATHSIG).
            _exit(1)
        })
        for await number in signals {
            logger.notice("signal \(number): stopping the database server and exiting")
            break
        }
        await agent.stop()
    }

    static func ownExecutable() -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }
}

struct AgentDaemonLog: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daemonlog",
        abstract: "Follow the database server's log to stdout (the daemonlog sidecar); survives rotation.")

    @Option(help: "The log file (default: /ttlog/postgresql.log when /ttlog exists, else /tt/log/postgresql.log, mapped through TENOPS_VOLUME_*).")
    var file: String?
    @Option(help: "How many lines of an existing file to print first.") var lines: Int = 100

    func run() async throws {
        signal(SIGPIPE, SIG_IGN)
        let path = file ?? AgentConfiguration.logFile(volumes: VolumeMap.fromEnvironment(ProcessInfo.processInfo.environment))
        let follower = LogFollower(path: path, initialLines: max(0, lines))
        await follower.run { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = bytes[offset...].withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
                if written < 0 {
                    if errno == EINTR { continue }
                    _exit(0)  // stdout is gone
                }
                offset += written
            }
        }
    }
}

/// Hidden: the wrapper the agent launches its database server through, so that the kernel kills
/// the server when the agent dies. See `ExecChild` in the Agent module.
struct AgentExecChild: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec-child", abstract: "Run a program as another user; it dies with its parent.",
        shouldDisplay: false)

    @Option var uid: UInt32
    @Option var gid: UInt32
    @Option var parentPid: Int32
    @Argument(parsing: .postTerminator) var command: [String]

    func run() throws {
        let code = ExecChild.exec(uid: uid, gid: gid, parentPID: parentPid, command: command)
        throw ExitCode(code)
    }
}
