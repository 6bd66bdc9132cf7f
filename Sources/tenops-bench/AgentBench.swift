import Agent
import Foundation
import KubeAPI
import OperatorEngine
import PKI
import PostgresNIO

#if canImport(Glibc)
import Glibc
#endif

/// Issue #5's figures, with two in-process agents on 127.0.6.1 and 127.0.6.2, each running a real
/// PostgreSQL 15 server, driven over HTTPS with mutual TLS exactly as the operator drives them:
/// - repStateSetActive, from the request to the first successful write through a client session
///   opened on the standby beforehand, p50 and p99 over 20 switchovers (each: fence the active,
///   promote the standby, re-duplicate the old active from it);
/// - detection of a postmaster crash (kill -9) through `GET /v1/status?watch=true`, p50 over 20;
/// - repDuplicate of a 1 GB database against a bare `pg_basebackup -X stream -c fast` of the same
///   database in the same run, throughput ratio.
enum AgentBench {
    static let execChildCommand = "exec-child"

    /// `tenops-bench exec-child ...`: the wrapper the agents start PostgreSQL through.
    static func execChild() -> Never {
        exit(ExecChild.main(arguments: Array(CommandLine.arguments.dropFirst(2))))
    }

    static func run() async throws {
        print("agent")
        let world = try await World.start()
        do {
            try await world.setUpPair()
            try await promotion(world)
            try await crashDetection(world)
            try await duplicateThroughput(world)
        } catch {
            await world.stop()
            throw error
        }
        await world.stop()
    }

    // MARK: - Figures

    static func promotion(_ world: World) async throws {
        var toWrite = Samples()
        var toAnswer = Samples()
        for _ in 0..<20 {
            let (active, standby) = try await world.roles()
            let session = try await world.sql(standby.address)
            // The old active is fenced first, as in a switchover; then the clock starts.
            _ = try await active.client.perform(.repDeactivate())
            let start = ContinuousClock.now
            _ = try await standby.client.perform(.repStateSetActive)
            let answered = ContinuousClock.now
            var attempt = 0
            while true {
                attempt += 1
                do {
                    try await session.query("INSERT INTO bench_writes (at) VALUES (now())", logger: world.logger)
                    break
                } catch {
                    if attempt > 10_000 { throw BenchError("no write succeeded after promotion: \(String(reflecting: error))") }
                    try await Task.sleep(for: .milliseconds(1))
                }
            }
            let wrote = ContinuousClock.now
            toWrite.add((wrote - start).inMilliseconds)
            toAnswer.add((answered - start).inMilliseconds)
            try? await session.close()
            // The old active follows the new one again.
            _ = try await active.client.duplicate(from: standby.address, pollInterval: .milliseconds(5))
            try await active.client.waitFor("standby") { $0.repState == .standby }
        }
        figure("repStateSetActive, request to first write, p50", ms(toWrite.percentile(50)), target: "<= 300 ms")
        figure("repStateSetActive, request to first write, p99", ms(toWrite.percentile(99)))
        figure("repStateSetActive, request to the verb's answer, p50", ms(toAnswer.percentile(50)))
    }

    static func crashDetection(_ world: World) async throws {
        var samples = Samples()
        let (active, _) = try await world.roles()
        for _ in 0..<20 {
            let pid = try requireValue(try await active.client.status().pid, "the active's postmaster pid")
            let stream = try await active.client.watchStatus()
            var lines = stream.makeAsyncIterator()
            _ = try await lines.next()
            let killed = ContinuousClock.now
            guard kill(pid, SIGKILL) == 0 else { throw BenchError("kill(\(pid)): \(String(cString: strerror(errno)))") }
            var detected: ContinuousClock.Instant?
            while let status = try await lines.next() {
                if status.repState == .failed { detected = .now; break }
            }
            guard let detected else { throw BenchError("the status stream ended without reporting the crash") }
            samples.add((detected - killed).inMilliseconds)
            _ = try await active.client.perform(.startDaemon)
            try await active.client.waitFor("active again") { $0.repState == .active }
        }
        figure("postmaster crash seen on the status stream, p50", ms(samples.percentile(50)), target: "<= 50 ms")
        figure("postmaster crash seen on the status stream, max", ms(samples.percentile(100)))
    }

    static func duplicateThroughput(_ world: World) async throws {
        let (active, standby) = try await world.roles()
        let session = try await world.sql(active.address)
        try await session.query("DROP TABLE IF EXISTS big", logger: world.logger)
        try await session.query(
            "CREATE TABLE big AS SELECT g AS id, repeat(md5(g::text), 28) AS pad FROM generate_series(1, 1100000) g",
            logger: world.logger)
        try await session.query("CHECKPOINT", logger: world.logger)
        var size: Int64 = 0
        for try await row in try await session.query("SELECT sum(pg_database_size(datname))::bigint FROM pg_database", logger: world.logger) {
            size = try row.decode(Int64.self)
        }
        try? await session.close()
        try await standby.client.waitFor("the standby caught up", timeout: .seconds(300)) { $0.bytesBehind == 0 }

        // Interleaved rounds, alternating which goes first, each starting with the page cache's
        // dirty data written back, so that neither side pays for the other's writes.
        var bare = Samples()
        var agent = Samples()
        var copied: Int64 = 0
        for round in 0..<4 {
            for side in round % 2 == 0 ? [0, 1] : [1, 0] {
                sync()
                if side == 0 {
                    let target = world.root + "/bare-\(UUID().uuidString.prefix(6))"
                    try world.makeServerDirectory(target)
                    bare.add(try world.bareBasebackup(from: active, into: target).inSeconds)
                    try? FileManager.default.removeItem(atPath: target)
                } else {
                    let start = ContinuousClock.now
                    let job = try await standby.client.duplicate(from: active.address, pollInterval: .milliseconds(5))
                    agent.add((ContinuousClock.now - start).inSeconds)
                    copied = job.bytesTotal
                    try await standby.client.waitFor("standby") { $0.repState == .standby }
                    // The agent removes the replaced copy in the background; let it finish first.
                    while FileManager.default.fileExists(atPath: standby.root + "/tt/pgdata.old") {
                        try await Task.sleep(for: .milliseconds(20))
                    }
                }
            }
        }
        let bareRate = Double(copied) / bare.percentile(50)
        let agentRate = Double(copied) / agent.percentile(50)
        let mb = 1_048_576.0
        figure("database size", String(format: "%.2f GB", Double(size) / 1_073_741_824))
        figure("bare pg_basebackup (-X stream -c fast), median of 4",
               String(format: "%.2f s, %.0f MB/s", bare.percentile(50), bareRate / mb))
        figure("repDuplicate, request to streaming standby, median of 4",
               String(format: "%.2f s, %.0f MB/s", agent.percentile(50), agentRate / mb))
        figure("repDuplicate / pg_basebackup throughput", String(format: "%.2f", agentRate / bareRate), target: ">= 0.9")
    }

    static func ms(_ value: Double) -> String { String(format: "%.1f ms", value) }
}

func requireValue<T>(_ value: T?, _ what: String) throws -> T {
    guard let value else { throw BenchError("missing \(what)") }
    return value
}

extension Duration {
    var inMilliseconds: Double { inSeconds * 1000 }
}

/// The two pods, their agents and an HTTPS client for each.
final class World: @unchecked Sendable {
    struct Pod {
        let address: String
        let root: String
        let agent: Agent
        let client: AgentClient
    }

    let root: String
    let pods: [Pod]
    let logger = Logger(label: "tenops-bench.agent")
    private var connectionID = 0

    private init(root: String, pods: [Pod]) {
        self.root = root
        self.pods = pods
    }

    static func start() async throws -> World {
        let root = "/tmp/tenops-bench-agent-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        chmod(root, 0o755)
        let ca = try CertificateAuthority.create(commonName: "bench-pair-ca")
        let operatorIdentity = try ca.issueClient(commonName: "bench-operator")
        let user = try ServerUser.resolve()
        let ownBinary = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var pods: [Pod] = []
        do {
            for (index, address) in ["127.0.6.1", "127.0.6.2"].enumerated() {
                let podRoot = "\(root)/pod-\(index)"
                for sub in ["tt", "ttconfig", "agent-tls"] {
                    try FileManager.default.createDirectory(atPath: "\(podRoot)/\(sub)", withIntermediateDirectories: true)
                }
                chmod(podRoot, 0o755)
                chmod("\(podRoot)/tt", 0o755)
                let server = try ca.issueServer(commonName: "bench-agent-\(index)", ipAddresses: [address])
                try PEMFile.write(try ca.certificate.pem, to: "\(podRoot)/agent-tls/ca.crt")
                try PEMFile.write(server, certificatePath: "\(podRoot)/agent-tls/tls.crt", keyPath: "\(podRoot)/agent-tls/tls.key")
                try PEMFile.write("benchadmin/bench-password\n", to: "\(podRoot)/ttconfig/adminUser", privateKey: true)
                try PEMFile.write("shared_buffers = 256MB\nmax_wal_size = 4GB\n", to: "\(podRoot)/ttconfig/db.ini")
                try PEMFile.write("CREATE TABLE bench_writes (id bigserial PRIMARY KEY, at timestamptz NOT NULL);\n", to: "\(podRoot)/ttconfig/schema.sql")
                let configuration = AgentConfiguration(
                    listenAddress: address, volumes: VolumeMap([
                        "/tt": "\(podRoot)/tt", "/ttconfig": "\(podRoot)/ttconfig", "/agent-tls": "\(podRoot)/agent-tls",
                    ]),
                    databaseName: "bench", serverUser: user, execChild: [ownBinary, AgentBench.execChildCommand])
                var logger = Logger(label: "tenops-bench.agent.\(index)")
                logger.logLevel = ProcessInfo.processInfo.environment["TENOPS_BENCH_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
                let agent = try await Agent.start(configuration, logger: logger, onDie: {})
                let client = AgentClient(baseURL: agent.baseURL, tls: AgentClient.tlsSettings(
                    caPEM: try ca.certificate.pem, clientCertificatePEM: try operatorIdentity.certificatePEM,
                    clientKeyPEM: try operatorIdentity.privateKeyPEM))
                pods.append(Pod(address: address, root: podRoot, agent: agent, client: client))
            }
        } catch {
            for pod in pods { await pod.agent.stop() }
            try? FileManager.default.removeItem(atPath: root)
            throw error
        }
        return World(root: root, pods: pods)
    }

    func setUpPair() async throws {
        let a = pods[0], b = pods[1]
        _ = try await a.client.perform(.createDb())
        _ = try await a.client.perform(.createRepScheme(peers: [b.address], twoSafe: false))
        _ = try await b.client.duplicate(from: a.address, pollInterval: .milliseconds(5))
        try await b.client.waitFor("standby") { $0.repState == .standby }
    }

    /// (active, standby) as the agents report them now.
    func roles() async throws -> (Pod, Pod) {
        let first = try await pods[0].client.status()
        return first.repState == .active ? (pods[0], pods[1]) : (pods[1], pods[0])
    }

    func sql(_ address: String) async throws -> PostgresConnection {
        connectionID += 1
        var configuration = PostgresConnection.Configuration(
            host: address, port: 5432, username: "benchadmin", password: "bench-password", database: "bench", tls: .disable)
        configuration.options.connectTimeout = .seconds(10)
        return try await PostgresConnection.connect(configuration: configuration, id: connectionID, logger: logger)
    }

    func makeServerDirectory(_ path: String) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let user = try ServerUser.resolve()
        guard chown(path, user.uid, user.gid) == 0, chmod(path, 0o700) == 0 else {
            throw BenchError("cannot prepare \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// A bare pg_basebackup of `source` into `target`, as the server user, with the replication
    /// credentials the agents set up; returns how long it took.
    func bareBasebackup(from source: Pod, into target: String) throws -> Duration {
        let user = try ServerUser.resolve()
        let ownBinary = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ownBinary)
        process.arguments = [
            AgentBench.execChildCommand, "--uid", String(user.uid), "--gid", String(user.gid), "--parent-pid", String(getpid()), "--",
            "/usr/lib/postgresql/15/bin/pg_basebackup", "-D", target, "-X", "stream", "-c", "fast", "-w",
            "-d", "host=\(source.address) port=5432 user=tenops_repl passfile=\(source.root)/tt/agent/pgpass",
        ]
        process.environment = ["PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"]
        let errors = Pipe()
        process.standardError = errors
        let start = ContinuousClock.now
        try process.run()
        process.waitUntilExit()
        let elapsed = ContinuousClock.now - start
        guard process.terminationStatus == 0 else {
            let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            throw BenchError("pg_basebackup failed: \(text)")
        }
        return elapsed
    }

    func stop() async {
        for pod in pods { await pod.agent.stop() }
        try? FileManager.default.removeItem(atPath: root)
    }
}

extension AgentClient {
    /// Polls the status until `condition` holds.
    func waitFor(_ what: String, timeout: Duration = .seconds(120), _ condition: (AgentStatus) -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if condition(try await status()) { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw BenchError("timed out waiting for \(what)")
    }
}
