import AgentTestSupport
import Foundation
import KubeAPI
import PKI
import Testing
@testable import Agent

#if canImport(Glibc)
import Glibc
#endif

/// A real `tenops agent` process, started the way a node starts the `tt` container.
final class AgentProcess: @unchecked Sendable {
    let process = Process()
    let output = Pipe()
    /// Everything the process wrote, collected by a thread of its own (a blocking read must not
    /// hold one of the few threads of Swift's cooperative pool).
    let collected = Locked("")

    init(_ arguments: [String], environment: [String: String]) throws {
        process.executableURL = URL(fileURLWithPath: try tenopsBinary())
        process.arguments = arguments
        process.environment = environment
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let reader = output.fileHandleForReading
        let collected = self.collected
        Thread.detachNewThread {
            while true {
                let data = reader.availableData
                if data.isEmpty { return }
                collected.withLock { $0 += String(decoding: data, as: UTF8.self) }
            }
        }
    }

    var text: String { collected.withLock { $0 } }

    var pid: Int32 { process.processIdentifier }

    /// Stops the process by its pid (SIGKILL) and reaps it.
    func kill9() {
        if process.isRunning { _ = kill(pid, SIGKILL) }
        process.waitUntilExit()
    }
}

@Suite("Agent processes", .timeLimit(.minutes(5)))
struct AgentProcessTests {
    @Test("the agent's death takes its postmaster with it: kill -9 of tenops agent, and the die verb")
    func postmasterDiesWithAgent() async throws {
        let pki = try TestPKI()
        let pod = try PodDirectory(address: "127.0.5.8", pki: pki, epilog: nil)
        defer { pod.remove() }
        let client = try RawAgentClient(address: pod.address, pki: pki, identity: pki.client)

        let first = try AgentProcess(["agent", "--log-level", "warning"], environment: pod.environment)
        defer { first.kill9() }
        #expect(await eventually(.seconds(20)) { (try? await client.status()) != nil }, "the agent did not come up")
        let created = try await client.action("createDb")
        #expect(created.status == 200, "\(created.text)")
        let postmaster = try #require(try await client.status().pid)
        #expect(processExists(postmaster))
        // The postmaster runs as the unprivileged server user, as a child of the agent.
        let status = try String(contentsOfFile: "/proc/\(postmaster)/status", encoding: .utf8)
        let server = try ServerUser.resolve()
        #expect(status.contains("Uid:\t\(server.uid)\t"), "\(status)")
        #expect(status.contains("PPid:\t\(first.pid)\n"))

        first.kill9()
        #expect(await eventually(.seconds(5)) { !processExists(postmaster) }, "the postmaster outlived its agent")
        #expect(await eventually(.seconds(5)) { postgresProcesses(using: pod.root).isEmpty })

        // A restarted agent finds the database, not running, and starts it on request.
        let second = try AgentProcess(["agent"], environment: pod.environment)
        defer { second.kill9() }
        #expect(await eventually(.seconds(20)) { (try? await client.status()) != nil })
        let restarted = try await client.status()
        #expect(restarted.instanceExists && !restarted.daemonUp && restarted.repState == .idle)
        #expect(try await client.action("startDaemon").status == 200)
        let running = try await client.status()
        let secondPostmaster = try #require(running.pid)
        #expect(running.updatable && running.appliedFiles.contains("schema.sql"), "\(AgentService.encode(running))")

        // die: the agent exits at once, and its postmaster with it.
        let died = try await client.action("die")
        #expect(died.status == 200)
        #expect(await eventually(.seconds(5)) { !second.process.isRunning })
        #expect(await eventually(.seconds(5)) { !processExists(secondPostmaster) }, "the postmaster outlived its agent")
        #expect(!second.text.contains(PodDirectory.adminPassword) && !first.text.contains(PodDirectory.adminPassword))
    }

    @Test("daemonlog follows the log through rename and truncate rotation")
    func daemonlog() async throws {
        let directory = "/tmp/tenops-daemonlog-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory + "/tt/log", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = directory + "/tt/log/postgresql.log"
        try Data("old line 1\nold line 2\nlast old line\n".utf8).write(to: URL(fileURLWithPath: log))

        let follower = try AgentProcess(["agent", "daemonlog", "--lines", "1"], environment: ["TENOPS_VOLUME_TT": directory + "/tt"])
        defer { follower.kill9() }
        let collected = follower.collected
        func append(_ path: String, _ text: String) throws {
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(text.utf8))
            try handle.close()
        }
        func shows(_ text: String) async -> Bool {
            await eventually(.seconds(5)) { collected.withLock { $0.contains(text) } }
        }

        #expect(await shows("last old line\n"))
        #expect(!collected.withLock { $0.contains("old line 1") })
        try append(log, "appended A\n")
        #expect(await shows("appended A\n"))
        // Rotation by rename: the rest of the old file, then the new file from its start.
        try append(log, "tail of the old file\n")
        #expect(rename(log, log + ".1") == 0)
        try Data("first line of the new file\n".utf8).write(to: URL(fileURLWithPath: log))
        #expect(await shows("tail of the old file\n"))
        #expect(await shows("first line of the new file\n"))
        try append(log + ".1", "written to the rotated file late\n")
        // Rotation by copy and truncate: the file shrinks, reading starts over.
        try await Task.sleep(for: .milliseconds(300))
        #expect(truncate(log, 0) == 0)
        try await Task.sleep(for: .milliseconds(300))
        try append(log, "after truncate\n")
        #expect(await shows("after truncate\n"))
        follower.kill9()
        let text = collected.withLock { $0 }
        #expect(text.components(separatedBy: "first line of the new file").count == 2, "a line was printed twice: \(text)")
    }
}

@Suite("Agent pieces", .timeLimit(.minutes(5)))
struct AgentPieceTests {
    @Test("the status stream repeats the latest status when nothing changes, and passes changes at once")
    func statusHeartbeat() async {
        let (updates, source) = AsyncStream<EngineStatus>.makeStream()
        var first = EngineStatus(engine: "postgresql", version: "15")
        first.daemonUp = true
        source.yield(first)
        var iterator = StatusHeartbeat.lines(updates, every: .milliseconds(100)).makeAsyncIterator()
        let start = ContinuousClock.now
        let lines = [await iterator.next(), await iterator.next(), await iterator.next()]
        #expect(lines == [first, first, first])
        #expect(start.duration(to: .now) >= .milliseconds(180), "two beats of 100 ms")
        var changed = first
        changed.daemonUp = false
        source.yield(changed)
        #expect(await iterator.next() == changed)
        source.finish()
        #expect(await iterator.next() == nil)
    }

    @Test("container paths map through TENOPS_VOLUME_* and requests stay inside the volumes")
    func volumes() throws {
        let map = VolumeMap.fromEnvironment([
            "TENOPS_VOLUME_TT": "/data/pvc-0", "TENOPS_VOLUME_TTCONFIG": "/data/cfg", "TENOPS_VOLUME_AGENT_TLS": "/data/tls",
        ])
        #expect(map.realPath("/tt/pgdata") == "/data/pvc-0/pgdata")
        #expect(map.realPath("/ttconfig/db.ini") == "/data/cfg/db.ini")
        #expect(map.realPath("/agent-tls") == "/data/tls")
        #expect(map.realPath("/ttx/file") == "/ttx/file")
        #expect(VolumeMap.environmentVariable(for: "/var/run/secrets") == "TENOPS_VOLUME_VAR_RUN_SECRETS")
        let mounts = ["/tt", "/ttconfig"]
        #expect(try map.confinedRealPath("/ttconfig/epilog.sql", allowedMounts: mounts) == "/data/cfg/epilog.sql")
        #expect(throws: PathError.traversal("/ttconfig/../etc/passwd")) {
            try map.confinedRealPath("/ttconfig/../etc/passwd", allowedMounts: mounts)
        }
        #expect(throws: PathError.self) { try map.confinedRealPath("ttconfig/x", allowedMounts: mounts) }
        #expect(throws: PathError.self) { try map.confinedRealPath("/ttconfigx/x", allowedMounts: mounts) }
        #expect(throws: PathError.self) { try map.confinedRealPath("/etc/passwd", allowedMounts: mounts) }
        #expect(AgentConfiguration.databaseName(forPod: "sample-0") == "sample")
        #expect(AgentConfiguration.databaseName(forPod: "orders-db-12") == "orders-db")
        #expect(AgentConfiguration.databaseName(forPod: "solo") == "solo")
    }

    @Test("db.ini: key=value lines, checked against PostgreSQL's own list of settings")
    func dbIni() throws {
        let catalog = SettingsCatalog(describeConfigOutput: """
            shared_buffers\tpostmaster\tResource Usage / Memory\tINTEGER\t1024\t16\t1073741823\tSets the number of shared memory buffers.\t
            fsync\tsighup\tWrite-Ahead Log / Settings\tBOOLEAN\ton\t\t\tForces synchronization.\t
            search_path\tuser\tClient Connection Defaults\tSTRING\t"$user", public\t\t\tSets the schema search order.\t
            """)
        let settings = try DbIni.parse("# comment\n; also a comment\n\nshared_buffers = 128MB\nFSYNC=off\nsearch_path='app, public'\n", file: "db.ini", catalog: catalog)
        #expect(settings == [
            ConfSetting(key: "shared_buffers", value: "128MB"), ConfSetting(key: "fsync", value: "off"),
            ConfSetting(key: "search_path", value: "app, public"),
        ])
        #expect(settings[2].line == "search_path = 'app, public'")
        #expect(ConfSetting(key: "search_path", value: #"it's a \ path"#).line == #"search_path = 'it''s a \\ path'"#)
        #expect(throws: EngineError.self) { try DbIni.parse("no_equals_sign\n", file: "db.ini", catalog: catalog) }
        #expect(throws: EngineError.self) { try DbIni.parse("unknown_thing = 1\n", file: "db.ini", catalog: catalog) }
        #expect(throws: EngineError.self) { try DbIni.parse("fsync = maybe\n", file: "db.ini", catalog: catalog) }
        #expect(throws: EngineError.self) { try DbIni.parse("shared_buffers = lots\n", file: "db.ini", catalog: catalog) }
        #expect(throws: EngineError.self) { try DbIni.parse("shared_buffers = 1\n", file: "db.ini", catalog: catalog) }
        #expect(throws: EngineError.self) { try DbIni.parse("fsync=on\nfsync=off\n", file: "db.ini", catalog: catalog) }
        #expect(throws: EngineError.self) { try DbIni.parse("listen_addresses = '*'\n", file: "db.ini", catalog: catalog) }
    }

    @Test("adminUser, pg_basebackup progress lines, pgpass escaping")
    func parsing() throws {
        let admin = try AdminUser.parse("appadmin/pa/ss:word\n", file: "adminUser")
        #expect(admin == AdminUser(user: "appadmin", password: "pa/ss:word"))
        #expect(throws: EngineError.self) { try AdminUser.parse("no-slash", file: "adminUser") }
        #expect(throws: EngineError.self) { try AdminUser.parse("bad name/pw", file: "adminUser") }
        #expect(throws: EngineError.self) { try AdminUser.parse("postgres/pw", file: "adminUser") }
        do {
            _ = try AdminUser.parse("a/b\nc/d", file: "adminUser")
            Issue.record("two lines were accepted")
        } catch {
            #expect(!error.description.contains("b"), "the error shows the password")
        }
        let progress = PostgresEngine.parseProgress("  12345/67890 kB (18%), 0/1 tablespace (/tmp/x/base/1/123)")
        #expect(progress?.done == 12345 * 1024 && progress?.total == 67890 * 1024)
        #expect(PostgresEngine.parseProgress("pg_basebackup: error: connection refused") == nil)
        #expect(PostgresFiles.pgpassLine(password: #"a:b\c"#) == #"*:*:*:tenops_repl:a\:b\\c"# + "\n")
        #expect(PostgresFiles.isAddressOrRange("10.0.0.0/8") && PostgresFiles.isAddressOrRange("127.0.5.2"))
        #expect(!PostgresFiles.isAddressOrRange("10.0.0.0/33") && !PostgresFiles.isAddressOrRange("example.com"))
        #expect(SQL.literal("it's") == "'it''s'" && SQL.identifier(#"a"b"#) == #""a""b""#)
    }

    @Test("the shutdown checkpoint is read only from a cleanly shut down cluster", arguments: [
        ("shut down", "0/3000060", "0/3000060" as String?),
        ("shut down", "16/B374D848", "16/B374D848"),
        ("in production", "0/3000060", nil),
        ("shut down in recovery", "0/3000060", nil),
        ("in crash recovery", "0/3000060", nil),
        ("shut down", "garbage", nil),
    ])
    func shutdownCheckpoint(state: String, location: String, expected: String?) {
        let output = """
            pg_control version number:            1300
            Database cluster state:               \(state)
            pg_control last modified:             Wed 02 Dec 2026 08:00:00 AM UTC
            Latest checkpoint location:           \(location)
            Latest checkpoint's REDO location:    0/3000028
            """
        #expect(PostgresFiles.shutdownCheckpoint(controlData: output) == expected)
        #expect(PostgresFiles.shutdownCheckpoint(controlData: "") == nil)
    }
}
