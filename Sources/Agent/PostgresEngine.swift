import Foundation
import Logging
import Subprocess
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// PostgreSQL 15 as the agent's engine, driven through its own tools: initdb, postgres, psql,
/// pg_basebackup. The agent is the postmaster's parent: it learns of a crash the moment the
/// process ends, and the postmaster dies with the agent (see ``ExecChild``).
///
/// Roles map onto TimesTen's as follows. The active is a primary; the standby is a hot standby
/// streaming from it through the physical slot `tenops_standby` as user `tenops_repl` (whose
/// password is the adminUser's, since both pods mount the same `/ttconfig`). RETURN TWOSAFE is
/// synchronous replication with `synchronous_commit = remote_apply`: a commit returns only once
/// the standby has applied it, so no acknowledged commit is lost on failover. With TWOSAFE a
/// new active blocks commits until its standby is back, which is the point; the agent's own
/// writes (scripts, the promotion probe) commit locally.
public actor PostgresEngine: DatabaseEngine {
    /// Real paths of everything the engine touches.
    struct Paths: Sendable {
        var dataDir: String
        var stagingDir: String
        var newDir: String
        var oldDir: String
        var agentDir: String
        var stateFile: String
        var pgpassFile: String
        var runDir: String
        var logFile: String
        var defaultAdminUser: String

        init(configuration: AgentConfiguration) {
            let volumes = configuration.volumes
            let tt = volumes.realPath("/tt")
            dataDir = tt + "/pgdata"
            stagingDir = tt + "/pgdata.duplicate"
            newDir = tt + "/pgdata.new"
            oldDir = tt + "/pgdata.old"
            agentDir = tt + "/agent"
            stateFile = agentDir + "/state.json"
            pgpassFile = agentDir + "/pgpass"
            let run = agentDir + "/run"
            // A Unix socket path has at most 107 bytes.
            runDir = (run + "/.s.PGSQL.\(configuration.repPort)").utf8.count < 100
                ? run : "/tmp/tenops-pg-\(configuration.listenAddress)-\(configuration.repPort)"
            logFile = Self.logPath(volumes: volumes)
            defaultAdminUser = volumes.realPath("/ttconfig/adminUser")
        }

        static func logPath(volumes: VolumeMap) -> String {
            volumes.isPresent("/ttlog") ? volumes.realPath("/ttlog/postgresql.log") : volumes.realPath("/tt/log/postgresql.log")
        }
    }

    /// What the agent keeps about the database between restarts.
    struct PersistentState: Codable, Sendable, Equatable {
        var fenced = false
        var source: DuplicateSource?
        var streaming = true
    }

    /// The running server, shared with the exit handler that runs off the actor.
    final class ServerTracking: Sendable {
        struct State {
            var pid: pid_t?
            var stopping = false
        }
        let state = Mutex(State())
    }

    public nonisolated let configuration: AgentConfiguration
    nonisolated let paths: Paths
    nonisolated let launcher: ProcessLauncher
    nonisolated let hub: StatusHub
    nonisolated let tracking = ServerTracking()
    nonisolated let logger: Logger
    private let binDir: String
    private var version: String
    private var catalog: SettingsCatalog?
    private var state = PersistentState()
    private var failedExit: String?
    private var lastError: String?
    private var duplicating = false
    /// Where `fenceAndStop` left the WAL (its shutdown checkpoint); forgotten when the server starts.
    private var cleanStopPosition: String?
    private var pollTask: Task<Void, Never>?
    private var refreshTask: Task<EngineStatus, Never>?

    public init(configuration: AgentConfiguration, logger: Logger) {
        self.configuration = configuration
        self.paths = Paths(configuration: configuration)
        self.launcher = ProcessLauncher(serverUser: configuration.serverUser, execChild: configuration.execChild)
        self.logger = logger
        self.binDir = configuration.postgresBinDirectory
        self.version = "15"
        self.hub = StatusHub(initial: EngineStatus(engine: "postgresql", version: "15"))
    }

    /// Reads the version and the saved state, publishes a first status and starts the periodic
    /// re-check. Call once before anything else.
    public func prepare() async throws(EngineError) {
        let postgres = binDir + "/postgres"
        guard FileManager.default.isExecutableFile(atPath: postgres) else {
            throw EngineError(.failed, "PostgreSQL is not installed at \(binDir) (no executable postgres)")
        }
        if let result = try? await launcher.run(postgres, ["--version"], asServerUser: false), result.succeeded {
            // "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
            let words = result.stdout.split(separator: " ")
            if words.count >= 3 { version = String(words[2]) }
        }
        if let data = FileManager.default.contents(atPath: paths.stateFile),
           let saved = try? JSONDecoder().decode(PersistentState.self, from: data) {
            state = saved
        }
        // A half-done duplicate or createDb from before a restart is garbage.
        try? removeTree(paths.stagingDir)
        try? removeTree(paths.newDir)
        try? removeTree(paths.oldDir)
        hub.publish(offlineStatus())
        let interval = configuration.statusInterval
        pollTask = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                guard let self else { return }
                _ = await self.refreshStatus()
            }
        }
    }

    // MARK: - Status

    public func currentStatus() async -> EngineStatus { hub.current }

    public func statusUpdates() async -> AsyncStream<EngineStatus> { hub.subscribe() }

    public func refreshStatus() async -> EngineStatus {
        if let refreshTask { return await refreshTask.value }
        // The task publishes and clears itself in one step on the actor, so that a caller
        // waiting it out (publishNow) never finds it still registered, or its older status
        // published after a newer one.
        let task = Task {
            let status = await self.computeStatus()
            self.refreshTask = nil
            self.hub.publish(status)
            return status
        }
        refreshTask = task
        return await task.value
    }

    private var instanceExists: Bool { FileManager.default.fileExists(atPath: paths.dataDir + "/PG_VERSION") }

    private var serverPID: pid_t? { tracking.state.withLock { $0.pid } }

    private func baseStatus() -> EngineStatus {
        var status = EngineStatus(engine: "postgresql", version: version)
        status.instanceExists = instanceExists
        status.appliedFiles = appliedFiles()
        status.lastError = lastError
        status.fenced = state.fenced
        if let scheme = repScheme() {
            status.repScheme = true
            status.twosafe = scheme.twosafe
        }
        return status
    }

    /// The status when the server is not running (no SQL needed).
    private func offlineStatus() -> EngineStatus {
        var status = baseStatus()
        if status.fenced { status.lsn = cleanStopPosition }
        status.repState = duplicating ? .recovering : (failedExit != nil ? .failed : .idle)
        if let failedExit, status.lastError == nil { status.lastError = failedExit }
        return status
    }

    private func computeStatus() async -> EngineStatus {
        // The server may die while its status is being read: a status read from a server that
        // is gone must not follow the crash report on the stream.
        while true {
            let pid = serverPID
            let status = await computeStatus(pid: pid)
            if serverPID == pid { return status }
        }
    }

    private func computeStatus(pid: pid_t?) async -> EngineStatus {
        guard let pid else { return offlineStatus() }
        var status = baseStatus()
        status.daemonUp = true
        status.pid = pid
        let query = """
            SELECT pg_is_in_recovery(),
              current_setting('default_transaction_read_only'),
              CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()::text ELSE pg_current_wal_lsn()::text END,
              CASE WHEN pg_is_in_recovery()
                THEN COALESCE((SELECT received_tli FROM pg_stat_wal_receiver), (SELECT timeline_id FROM pg_control_checkpoint()))
                ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END,
              CASE WHEN pg_is_in_recovery()
                THEN COALESCE((SELECT status FROM pg_stat_wal_receiver), 'stopped')
                ELSE COALESCE((SELECT state FROM pg_stat_replication ORDER BY (state = 'streaming') DESC LIMIT 1), 'none') END,
              CASE WHEN pg_is_in_recovery()
                THEN (SELECT greatest(0, pg_wal_lsn_diff(greatest(latest_end_lsn, flushed_lsn), pg_last_wal_replay_lsn()))::bigint FROM pg_stat_wal_receiver)
                ELSE (SELECT max(greatest(0, pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)))::bigint FROM pg_stat_replication) END,
              EXISTS (SELECT 1 FROM pg_database WHERE datname = \(SQL.literal(configuration.databaseName)));
            """
        guard let rows = try? await psql(query), let row = rows.first, row.count >= 7 else {
            // Running but not answering: starting, recovering, or shutting down.
            status.repState = .recovering
            return status
        }
        let inRecovery = row[0] == "t"
        let readOnly = row[1] == "on"
        status.lsn = row[2].isEmpty ? nil : row[2]
        status.timeline = Int(row[3])
        status.repPeerPState = row[4].isEmpty ? "none" : row[4]
        status.bytesBehind = Int64(row[5])
        status.dbLoaded = row[6] == "t"
        status.updatable = !inRecovery && !readOnly && status.dbLoaded
        if duplicating {
            status.repState = .recovering
        } else if inRecovery {
            if row[4] == "streaming" {
                status.repState = .standby
            } else {
                status.repState = state.streaming ? .recovering : .idle
            }
        } else {
            status.repState = readOnly ? .idle : .active
        }
        return status
    }

    /// Reads and publishes the status at once (after a change the agent made or saw).
    /// Publishes the status as it is after a change. A refresh already in flight began before the
    /// change and may have read the old state (appliedFiles without the file just run, say), so
    /// it is waited out rather than joined.
    private func publishNow() async {
        if let refreshTask { _ = await refreshTask.value }
        _ = await refreshStatus()
    }

    // MARK: - Verbs

    public func create(_ spec: CreateSpec) async throws(EngineError) {
        // Read and check every input before changing anything.
        let admin = try spec.adminUser.flatMap { path throws(EngineError) -> AdminUser? in
            FileManager.default.fileExists(atPath: path) ? try AdminUser.read(path) : nil
        }
        var dbIni: [ConfSetting] = []
        if let path = spec.dbIni, FileManager.default.fileExists(atPath: path) {
            let text: String
            do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
                throw EngineError(.badRequest, "cannot read \(path): \(error.localizedDescription)")
            }
            dbIni = try DbIni.parse(text, file: "db.ini", catalog: try await settingsCatalog())
        }
        var schema: String?
        if let path = spec.schema, FileManager.default.fileExists(atPath: path) {
            do { schema = try String(contentsOfFile: path, encoding: .utf8) } catch {
                throw EngineError(.badRequest, "cannot read \(path): \(error.localizedDescription)")
            }
        }

        if !instanceExists {
            try await initializeInstance(dbIni: dbIni, dbIniGiven: spec.dbIni.map { FileManager.default.fileExists(atPath: $0) } ?? false)
        }
        if serverPID == nil { try await startServer() }
        guard try await !isInRecovery() else {
            throw EngineError(.conflict, "this database is a standby; createDb runs on the active")
        }
        var applied = appliedFiles()
        if let admin {
            try await psql("""
                DO $do$ BEGIN
                  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = \(SQL.literal(admin.user))) THEN
                    CREATE ROLE \(SQL.identifier(admin.user));
                  END IF;
                END $do$;
                ALTER ROLE \(SQL.identifier(admin.user)) WITH LOGIN SUPERUSER PASSWORD \(SQL.literal(admin.password));
                """, secrets: [admin.password])
            if !applied.contains("adminUser") { applied.append("adminUser") }
        }
        let owner = admin?.user ?? configuration.serverUser.name
        try await psql("""
            SELECT 'CREATE DATABASE ' || quote_ident(\(SQL.literal(configuration.databaseName))) || ' OWNER ' || quote_ident(\(SQL.literal(owner)))
            WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = \(SQL.literal(configuration.databaseName))) \\gexec
            """)
        try saveApplied(applied)
        if let schema, !applied.contains("schema.sql") {
            let role = admin.map { "SET ROLE \(SQL.identifier($0.user));\n" } ?? ""
            try await psql(role + schema, database: configuration.databaseName, singleTransaction: true, what: "schema.sql")
            applied.append("schema.sql")
            try saveApplied(applied)
        }
        lastError = nil
        await publishNow()
    }

    private func initializeInstance(dbIni: [ConfSetting], dbIniGiven: Bool) async throws(EngineError) {
        try removeTree(paths.newDir)
        try makeServerDirectory(paths.newDir)
        let initdb = try await tool("initdb", [
            "-D", paths.newDir, "-U", configuration.serverUser.name, "-E", "UTF8", "--locale=C",
            "--auth-local=peer", "--auth-host=scram-sha-256", "--no-instructions",
        ])
        guard initdb.succeeded else {
            try? removeTree(paths.newDir)
            throw EngineError(.failed, "initdb failed (\(initdb.status))", stderr: initdb.stderr)
        }
        do {
            try appendFile(paths.newDir + "/postgresql.conf", PostgresFiles.includeLines)
            try writeServerFile(paths.newDir + "/" + PostgresFiles.dbIniConf, PostgresFiles.dbIniConf(dbIni))
            try writeServerFile(paths.newDir + "/" + PostgresFiles.agentConf, PostgresFiles.agentConf(twosafe: false, fenced: false, primaryConninfo: nil))
            try writeServerFile(paths.newDir + "/pg_hba.conf", PostgresFiles.hba(superuser: configuration.serverUser.name, replicationPeers: []))
            try writeServerFile(paths.newDir + "/pg_ident.conf", PostgresFiles.ident(superuser: configuration.serverUser.name, agentUser: Self.agentUserName))
            try writeServerFile(paths.newDir + "/" + PostgresFiles.appliedFile, Self.json(dbIniGiven ? ["db.ini"] : []))
        } catch {
            try? removeTree(paths.newDir)
            throw error
        }
        // Let PostgreSQL itself check the configuration, db.ini included, before it becomes real.
        let check = try await tool("postgres", ["-D", paths.newDir, "-C", "max_connections"])
        guard check.succeeded else {
            try? removeTree(paths.newDir)
            throw EngineError(.badRequest, "PostgreSQL refused the configuration from db.ini", stderr: check.stderr)
        }
        guard rename(paths.newDir, paths.dataDir) == 0 else {
            let reason = String(cString: strerror(errno))
            try? removeTree(paths.newDir)
            throw EngineError(.failed, "cannot move the new data directory into place: \(reason)")
        }
        state = PersistentState()
        try saveState()
        failedExit = nil
    }

    public func start() async throws(EngineError) {
        guard instanceExists else {
            throw EngineError(.conflict, "there is no database to start; run createDb or repDuplicate first")
        }
        if serverPID != nil { return }
        try await startServer()
        await publishNow()
    }

    public func stop() async throws(EngineError) {
        await stopServer()
        failedExit = nil
        await publishNow()
    }

    public func promote() async throws(EngineError) {
        guard instanceExists else { throw EngineError(.conflict, "there is no database to make active") }
        if serverPID == nil { try await startServer() }
        let wasFenced = state.fenced
        if wasFenced {
            state.fenced = false
            try saveState()
            try writeAgentConf()
        }
        let probe = """
            BEGIN;
            SET LOCAL synchronous_commit = local;
            CREATE TABLE IF NOT EXISTS tenops_probe (id int PRIMARY KEY, at timestamptz NOT NULL);
            INSERT INTO tenops_probe VALUES (1, now()) ON CONFLICT (id) DO UPDATE SET at = excluded.at;
            COMMIT;
            SELECT pg_create_physical_replication_slot(\(SQL.literal(SQL.slotName)), true)
              WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = \(SQL.literal(SQL.slotName)));
            """
        if try await isInRecovery() {
            // One session: promote, then write. A session begun in recovery writes once promotion is done.
            let reload = wasFenced ? "SELECT pg_reload_conf();\n" : ""
            do {
                try await psql(reload + "SELECT pg_promote(true, 60);\n" + probe, what: "promotion")
            } catch {
                lastError = error.description
                throw error
            }
            state.source = nil
            try saveState()
            try writeAgentConf()
            try await psql("SELECT pg_reload_conf();")
        } else if wasFenced {
            try await psql("SELECT pg_reload_conf();")
        }
        // Answer only once a new session can write (after an unfence the reload must have landed).
        let deadline = ContinuousClock.now + .seconds(60)
        while true {
            do {
                try await psql(probe, what: "write probe")
                break
            } catch {
                if ContinuousClock.now > deadline {
                    lastError = "the database does not accept writes after promotion: \(error.description)"
                    throw EngineError(.failed, "the database does not accept writes after promotion", stderr: error.stderr)
                }
                try? await Task.sleep(for: .milliseconds(5))
            }
        }
        failedExit = nil
        lastError = nil
        await publishNow()
    }

    public func duplicate(
        from source: DuplicateSource, rewind allowRewind: Bool, progress: @escaping @Sendable (DuplicateProgress) -> Void
    ) async throws(EngineError) {
        let admin = try await duplicatePreconditions(source)
        duplicating = true
        defer { duplicating = false }
        await publishNow()
        // An old copy of the same database (a fenced or crashed former active) is re-attached
        // with pg_rewind, which copies only what diverged; anything else is copied whole.
        if allowRewind, instanceExists, await rewind(from: source, password: admin.password, progress: progress) { return }
        do {
            let clock = ContinuousClock.now
            try await copy(from: source, password: admin.password, progress: progress)
            logger.info("repDuplicate: copied \(progressState.withLock { $0.done }) bytes from \(source.host):\(source.port) in \(ContinuousClock.now - clock)")
        } catch {
            lastError = "repDuplicate from \(source.host):\(source.port) failed: \(error.message)"
            await publishNow()
            throw error
        }
        let final = progressState.withLock { $0 }
        progress(DuplicateProgress(phase: "starting", bytesDone: final.done, bytesTotal: final.done, method: "basebackup"))

        // The copy is complete: only now replace the current database. Its files are about to be
        // thrown away, so an immediate shutdown does (no shutdown checkpoint to wait for).
        let switching = ContinuousClock.now
        await stopServer(immediate: true)
        try? removeTree(paths.oldDir)
        if FileManager.default.fileExists(atPath: paths.dataDir), rename(paths.dataDir, paths.oldDir) != 0 {
            throw EngineError(.failed, "cannot move the old data directory aside: \(String(cString: strerror(errno)))")
        }
        guard rename(paths.stagingDir, paths.dataDir) == 0 else {
            let reason = String(cString: strerror(errno))
            _ = rename(paths.oldDir, paths.dataDir)
            throw EngineError(.failed, "cannot move the duplicate into place: \(reason)")
        }
        try await startAsStandby(of: source)
        logger.info("repDuplicate: standby started \(ContinuousClock.now - switching) after the copy")
        // The old files go in the background, once the new standby runs.
        let old = paths.oldDir
        Task.detached(priority: .background) { try? FileManager.default.removeItem(atPath: old) }
        progress(DuplicateProgress(phase: "done", bytesDone: final.done, bytesTotal: final.done, method: "basebackup"))
        await publishNow()
    }

    /// pg_rewind of the stopped database onto `source`, then started as its standby. False (and
    /// the database left for a full copy) when pg_rewind cannot do it: another database, no
    /// wal_log_hints, a source that is not reachable.
    private func rewind(
        from source: DuplicateSource, password: String, progress: @escaping @Sendable (DuplicateProgress) -> Void
    ) async -> Bool {
        let clock = ContinuousClock.now
        progress(DuplicateProgress(phase: "rewinding", bytesDone: 0, bytesTotal: 0, method: "rewind"))
        do throws(EngineError) {
            try writePgpass(password: password)
            await stopServer()
            let conninfo = [
                "host=\(PostgresFiles.conninfoValue(source.host))", "port=\(source.port)", "dbname=postgres",
                "user=\(SQL.replicationUser)", "passfile=\(PostgresFiles.conninfoValue(paths.pgpassFile))", "connect_timeout=10",
            ].joined(separator: " ")
            // A just-promoted source records its new timeline in pg_control only at its next
            // checkpoint; until then pg_rewind would see one timeline and rewind nothing.
            let stopped = ContinuousClock.now
            let checkpoint = try await tool("psql", ["-d", conninfo, "-X", "-q", "-c", "CHECKPOINT"])
            let checkpointed = ContinuousClock.now
            guard checkpoint.succeeded else {
                logger.notice("repDuplicate: cannot checkpoint \(source.host):\(source.port) before pg_rewind: \(checkpoint.stderr.suffix(300)); copying the database whole")
                return false
            }
            let result = try await tool("pg_rewind", ["--target-pgdata", paths.dataDir, "--source-server", conninfo, "--write-recovery-conf"])
            guard result.succeeded else {
                logger.notice("repDuplicate: pg_rewind could not re-attach the database (\(result.status)); copying it whole: \(result.stderr.suffix(400))")
                return false
            }
            let rewound = ContinuousClock.now
            try await startAsStandby(of: source)
            logger.info("repDuplicate: rewind timings: stop \(stopped - clock), source checkpoint \(checkpointed - stopped), pg_rewind \(rewound - checkpointed), start as standby \(ContinuousClock.now - rewound)")
        } catch {
            logger.notice("repDuplicate: pg_rewind failed: \(error.message); copying the database whole")
            return false
        }
        logger.info("repDuplicate: re-attached to \(source.host):\(source.port) by pg_rewind in \(ContinuousClock.now - clock)")
        progress(DuplicateProgress(phase: "done", bytesDone: 0, bytesTotal: 0, method: "rewind"))
        await publishNow()
        return true
    }

    /// The database in place becomes a streaming standby of `source` and starts.
    private func startAsStandby(of source: DuplicateSource) async throws(EngineError) {
        do {
            let autoConf = paths.dataDir + "/postgresql.auto.conf"
            if let text = try? String(contentsOfFile: autoConf, encoding: .utf8) {
                try writeServerFile(autoConf, PostgresFiles.strippingStandbySettings(text))
            }
            // Replication may later run the other way: the source must be let in.
            var scheme = repScheme() ?? ReplicationScheme(peers: [], twosafe: false)
            if !scheme.peers.contains(source.host) && !scheme.peers.contains(PostgresFiles.cidr(source.host)) {
                scheme.peers.append(source.host)
            }
            try writeServerFile(paths.dataDir + "/" + PostgresFiles.repSchemeFile, Self.json(scheme))
            try writeServerFile(paths.dataDir + "/pg_hba.conf", PostgresFiles.hba(superuser: configuration.serverUser.name, replicationPeers: scheme.peers))
            try writeServerFile(paths.dataDir + "/pg_ident.conf", PostgresFiles.ident(superuser: configuration.serverUser.name, agentUser: Self.agentUserName))
        }
        state = PersistentState(fenced: false, source: source, streaming: true)
        try saveState()
        failedExit = nil
        lastError = nil
        duplicating = false
        try await startServer()
    }

    /// Refuses a duplicate that must not start: from itself, over a running active (that would
    /// lose it), or without the adminUser file whose password authenticates replication.
    public func checkDuplicate(from source: DuplicateSource) async throws(EngineError) {
        _ = try await duplicatePreconditions(source)
    }

    private func duplicatePreconditions(_ source: DuplicateSource) async throws(EngineError) -> AdminUser {
        guard source.host != configuration.listenAddress || source.port != configuration.repPort else {
            throw EngineError(.badRequest, "cannot duplicate a database from itself")
        }
        if serverPID != nil, try await !isInRecovery(), !state.fenced {
            throw EngineError(.conflict, "this database is an unfenced active; run repDeactivate before duplicating over it")
        }
        return try AdminUser.read(paths.defaultAdminUser)
    }

    /// Bytes copied so far and the estimate, from pg_basebackup's progress lines.
    private nonisolated let progressState = Locked<(done: Int64, total: Int64)>((0, 0))

    private func copy(
        from source: DuplicateSource, password: String, progress: @escaping @Sendable (DuplicateProgress) -> Void
    ) async throws(EngineError) {
        try writePgpass(password: password)
        try? removeTree(paths.stagingDir)
        try makeServerDirectory(paths.stagingDir)
        progressState.withLock { $0 = (0, 0) }
        progress(DuplicateProgress(phase: "copying", bytesDone: 0, bytesTotal: 0))
        let conninfo = [
            "host=\(PostgresFiles.conninfoValue(source.host))", "port=\(source.port)",
            "user=\(SQL.replicationUser)", "passfile=\(PostgresFiles.conninfoValue(paths.pgpassFile))",
            "application_name=\(SQL.applicationName)", "connect_timeout=10",
        ].joined(separator: " ")
        let progressState = self.progressState
        let buffer = Locked("")
        let result: ToolResult
        do {
            result = try await launcher.runStreamingStderr(binDir + "/pg_basebackup", [
                // No -S: the slot may be held by this very standby's WAL receiver while it is
                // re-duplicated. pg_basebackup streams through a temporary slot of its own, and
                // the permanent slot keeps the WAL from there until the new standby takes it over.
                "-D", paths.stagingDir, "-d", conninfo, "-R", "-X", "stream", "-P", "-c", "fast", "-w",
            ]) { chunk in
                // Progress lines end with \r on a terminal and \n otherwise: "123/4567 kB (2%), 0/1 tablespace".
                let lines: [Substring] = buffer.withLock { pending in
                    pending += chunk
                    var parts = pending.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\r" || $0 == "\n" })
                    pending = String(parts.removeLast())
                    return parts
                }
                for line in lines {
                    guard let parsed = Self.parseProgress(line) else { continue }
                    let update = progressState.withLock { state -> (Int64, Int64) in
                        state.done = max(state.done, parsed.done)
                        state.total = max(parsed.total, state.done)
                        return (state.done, state.total)
                    }
                    progress(DuplicateProgress(phase: "copying", bytesDone: update.0, bytesTotal: update.1))
                }
            }
        } catch {
            try? removeTree(paths.stagingDir)
            throw EngineError(.failed, "cannot run pg_basebackup: \(error)")
        }
        guard result.succeeded else {
            try? removeTree(paths.stagingDir)
            let stderr = result.stderr.split(omittingEmptySubsequences: true, whereSeparator: { $0 == "\r" || $0 == "\n" })
                .filter { Self.parseProgress($0) == nil }.joined(separator: "\n")
            throw EngineError(.failed, "pg_basebackup from \(source.host):\(source.port) failed (\(result.status))", stderr: stderr)
        }
        // The copy is what it is: the final figure is the truth, whatever the estimate said.
        progressState.withLock { state in
            state.total = state.done
        }
    }

    /// "  123456/1234567 kB (10%), 0/1 tablespace ..." -> bytes.
    static func parseProgress(_ line: Substring) -> (done: Int64, total: Int64)? {
        guard let kB = line.range(of: " kB") else { return nil }
        let head = line[..<kB.lowerBound].trimmingCharacters(in: .whitespaces)
        let parts = head.split(separator: "/")
        guard parts.count == 2, let done = Int64(parts[0].trimmingCharacters(in: .whitespaces)),
              let total = Int64(parts[1].trimmingCharacters(in: .whitespaces))
        else { return nil }
        return (done * 1024, total * 1024)
    }

    public func fence() async throws(EngineError) {
        state.fenced = true
        try saveState()
        try writeAgentConf()
        guard serverPID != nil, try await !isInRecovery() else {
            await publishNow()
            return
        }
        try await psql("SELECT pg_reload_conf();")
        // New sessions must see the setting before the old ones are cut off.
        let deadline = ContinuousClock.now + .seconds(10)
        while try await psql("SHOW default_transaction_read_only;").first?.first != "on" {
            guard ContinuousClock.now < deadline else {
                throw EngineError(.failed, "the server did not take the read-only setting within 10 s")
            }
            try? await Task.sleep(for: .milliseconds(2))
        }
        try await psql("""
            SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
            WHERE backend_type = 'client backend' AND pid <> pg_backend_pid();
            """)
        await publishNow()
    }

    public func fenceAndStop() async throws(EngineError) {
        state.fenced = true
        try saveState()
        try writeAgentConf()
        if serverPID != nil, try await !isInRecovery() {
            // A fast shutdown ends the sessions, writes the shutdown checkpoint, and waits for
            // the WAL senders to have everything flushed by the standby.
            let clock = ContinuousClock.now
            await stopServer()
            guard serverPID == nil else { throw EngineError(.failed, "the server did not stop") }
            cleanStopPosition = try await shutdownCheckpoint()
            logger.info("repDeactivate: stopped cleanly in \(ContinuousClock.now - clock) at \(cleanStopPosition ?? "an unknown position")")
        }
        await publishNow()
    }

    /// The shutdown checkpoint's position, when pg_controldata says the server shut down cleanly.
    private func shutdownCheckpoint() async throws(EngineError) -> String? {
        let result = try await tool("pg_controldata", ["-D", paths.dataDir])
        guard result.succeeded else {
            logger.warning("pg_controldata failed: \(result.stderr.suffix(300))")
            return nil
        }
        return PostgresFiles.shutdownCheckpoint(controlData: result.stdout)
    }

    public func destroy() async throws(EngineError) {
        await stopServer()
        for path in [paths.dataDir, paths.stagingDir, paths.newDir, paths.oldDir] { try removeTree(path) }
        state = PersistentState()
        try? FileManager.default.removeItem(atPath: paths.stateFile)
        failedExit = nil
        lastError = nil
        await publishNow()
    }

    public func createReplicationScheme(_ scheme: ReplicationScheme, adminUser: String?) async throws(EngineError) {
        let admin = try AdminUser.read(adminUser ?? paths.defaultAdminUser)
        guard serverPID != nil else { throw EngineError(.conflict, "the server is not running; createRepScheme runs on a running active") }
        guard try await !isInRecovery() else { throw EngineError(.conflict, "this database is a standby; createRepScheme runs on the active") }
        try await psql("""
            DO $do$ BEGIN
              IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = \(SQL.literal(SQL.replicationUser))) THEN
                CREATE ROLE \(SQL.identifier(SQL.replicationUser));
              END IF;
            END $do$;
            ALTER ROLE \(SQL.identifier(SQL.replicationUser)) WITH LOGIN REPLICATION PASSWORD \(SQL.literal(admin.password));
            GRANT EXECUTE ON FUNCTION pg_catalog.pg_ls_dir(text, boolean, boolean) TO \(SQL.identifier(SQL.replicationUser));
            GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_file(text, boolean) TO \(SQL.identifier(SQL.replicationUser));
            GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text) TO \(SQL.identifier(SQL.replicationUser));
            GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean) TO \(SQL.identifier(SQL.replicationUser));
            GRANT pg_checkpoint TO \(SQL.identifier(SQL.replicationUser));
            SELECT pg_create_physical_replication_slot(\(SQL.literal(SQL.slotName)), true)
              WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = \(SQL.literal(SQL.slotName)));
            """, secrets: [admin.password])
        var peers = scheme.peers
        if !peers.contains(configuration.listenAddress) { peers.append(configuration.listenAddress) }
        let stored = ReplicationScheme(peers: peers, twosafe: scheme.twosafe)
        try writeServerFile(paths.dataDir + "/" + PostgresFiles.repSchemeFile, Self.json(stored))
        try writeServerFile(paths.dataDir + "/pg_hba.conf", PostgresFiles.hba(superuser: configuration.serverUser.name, replicationPeers: peers))
        try writeAgentConf()
        try writePgpass(password: admin.password)
        try await psql("SELECT pg_reload_conf();")
        await publishNow()
    }

    public func runScriptOnce(name: String, path: String) async throws(EngineError) {
        var applied = appliedFiles()
        if applied.contains(name) { return }
        let script: String
        do { script = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw EngineError(.badRequest, "cannot read \(path): \(error.localizedDescription)")
        }
        guard serverPID != nil, try await !isInRecovery() else {
            throw EngineError(.conflict, "\(name) runs on a running active")
        }
        let admin = try? AdminUser.read(paths.defaultAdminUser)
        let role = admin.map { "SET ROLE \(SQL.identifier($0.user));\n" } ?? ""
        try await psql(role + script, database: configuration.databaseName, singleTransaction: true, what: name)
        applied.append(name)
        try saveApplied(applied)
        await publishNow()
    }

    public func setStreaming(_ on: Bool) async throws(EngineError) {
        state.streaming = on
        try saveState()
        guard instanceExists else { return }
        try writeAgentConf()
        if serverPID != nil, try await isInRecovery() {
            try await psql("SELECT pg_reload_conf();")
        }
        await publishNow()
    }

    public func shutdown() async {
        pollTask?.cancel()
        pollTask = nil
        await stopServer()
        // The socket directory outside the volume (a path too long for a Unix socket) goes with
        // the server; inside the volume it stays, like the rest of /tt.
        if paths.runDir.hasPrefix("/tmp/tenops-pg-") { try? FileManager.default.removeItem(atPath: paths.runDir) }
        hub.finishAll()
    }

    // MARK: - The server process

    private func startServer() async throws(EngineError) {
        cleanStopPosition = nil
        try prepareRunDirectory()
        try writeAgentConf()
        let logOffset = fileSize(paths.logFile)
        var attempt = 0
        while true {
            attempt += 1
            do {
                try await launchAndWait(logOffset: logOffset)
                failedExit = nil
                return
            } catch {
                // After a kill -9, orphaned backends may hold the old shared memory for a moment.
                let tail = logTail(since: logOffset)
                if attempt < 25, tail.contains("pre-existing shared memory block") || tail.contains("lock file") && tail.contains("already exists") {
                    try? await Task.sleep(for: .milliseconds(200))
                    continue
                }
                lastError = error.description
                await publishNow()
                throw error
            }
        }
    }

    private func launchAndWait(logOffset: Int64) async throws(EngineError) {
        tracking.state.withLock { $0.stopping = false }
        let tracking = self.tracking
        let hub = self.hub
        let pid: pid_t
        do {
            pid = try await launcher.startServer(binDir + "/postgres", [
                "-D", paths.dataDir,
                "-c", "listen_addresses=\(configuration.listenAddress)",
                "-c", "port=\(configuration.repPort)",
                "-c", "unix_socket_directories=\(paths.runDir)",
            ], logPath: paths.logFile, onSpawn: { pid in
                tracking.state.withLock { $0.pid = pid }
            }, onExit: { [weak self] pid, termination in
                let expected = tracking.state.withLock { state -> Bool in
                    guard state.pid == pid else { return true }
                    state.pid = nil
                    return state.stopping
                }
                if !expected {
                    // Publish first, without SQL and without waiting for the actor: this is the
                    // crash signal the status stream must carry within milliseconds.
                    var status = hub.current
                    status.daemonUp = false
                    status.dbLoaded = false
                    status.updatable = false
                    status.pid = nil
                    status.repState = .failed
                    status.repPeerPState = "none"
                    status.bytesBehind = nil
                    status.lastError = PostgresEngine.crashMessage(pid: pid, termination)
                    hub.publish(status)
                }
                await self?.serverExited(pid: pid, termination: termination, expected: expected)
            })
        } catch {
            throw EngineError(.failed, "cannot start postgres: \(error)")
        }
        // Ready when postmaster.pid says so (as pg_ctl -w does).
        let deadline = ContinuousClock.now + .seconds(120)
        while true {
            if serverPID != pid {
                throw EngineError(.failed, "postgres exited during startup", stderr: logTail(since: logOffset))
            }
            if let status = postmasterStatus(pid: pid), status == "ready" || status == "standby" { return }
            if ContinuousClock.now > deadline {
                throw EngineError(.failed, "postgres did not become ready within 120 s", stderr: logTail(since: logOffset))
            }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }
}

// MARK: - Helpers

extension PostgresEngine {
    /// The OS user the agent (and so psql) runs as.
    static var agentUserName: String {
        getpwuid(geteuid()).map { String(cString: $0.pointee.pw_name) } ?? "root"
    }

    static func crashMessage(pid: pid_t, _ termination: TerminationStatus) -> String {
        switch termination {
        case .signaled(let signal):
            let name = signal == SIGKILL ? " (SIGKILL)" : signal == SIGSEGV ? " (SIGSEGV)" : signal == SIGTERM ? " (SIGTERM)" : ""
            return "the postmaster (pid \(pid)) was killed by signal \(signal)\(name)"
        case .exited(let code):
            return "the postmaster (pid \(pid)) exited with code \(code)"
        }
    }

    func serverExited(pid: pid_t, termination: TerminationStatus, expected: Bool) async {
        if !expected {
            let message = Self.crashMessage(pid: pid, termination)
            failedExit = message
            lastError = message
            logger.error("\(message)")
        } else {
            logger.info("the postmaster (pid \(pid)) stopped (\(termination))")
        }
        // A fresh look (the fast path above already told the watchers).
        await publishNow()
    }

    /// Stops the server: fast shutdown (or immediate when asked), then immediate, then SIGKILL.
    func stopServer(immediate: Bool = false) async {
        guard let pid = tracking.state.withLock({ state -> pid_t? in
            if state.pid != nil { state.stopping = true }
            return state.pid
        }) else { return }
        let steps: [(Int32, Int)] = immediate ? [(SIGQUIT, 10), (SIGKILL, 10)] : [(SIGINT, 60), (SIGQUIT, 10), (SIGKILL, 10)]
        for (signal, seconds) in steps {
            kill(pid, signal)
            let deadline = ContinuousClock.now + .seconds(seconds)
            while serverPIDValue == pid && ContinuousClock.now < deadline {
                try? await Task.sleep(for: .milliseconds(5))
            }
            if serverPIDValue != pid { break }
            logger.warning("the postmaster (pid \(pid)) did not stop after signal \(signal) within \(seconds) s")
        }
    }

    private var serverPIDValue: pid_t? { tracking.state.withLock { $0.pid } }

    /// The status word on line 8 of postmaster.pid (starting, stopping, ready, standby), when the
    /// file is `pid`'s: a postmaster killed with -9 leaves its own behind, saying "ready".
    func postmasterStatus(pid: pid_t) -> String? {
        guard let text = try? String(contentsOfFile: paths.dataDir + "/postmaster.pid", encoding: .utf8) else { return nil }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.count >= 8, lines[0].trimmingCharacters(in: .whitespaces) == String(pid) else { return nil }
        return lines[7].trimmingCharacters(in: .whitespaces)
    }

    func fileSize(_ path: String) -> Int64 {
        var info = stat()
        return stat(path, &info) == 0 ? Int64(info.st_size) : 0
    }

    /// The last lines the server wrote to its log since `offset`.
    func logTail(since offset: Int64, lines: Int = 20) -> String {
        guard let handle = FileHandle(forReadingAtPath: paths.logFile) else { return "" }
        defer { try? handle.close() }
        let size = fileSize(paths.logFile)
        let start = max(offset <= size ? offset : 0, size - 16_384)
        try? handle.seek(toOffset: UInt64(start))
        let data = (try? handle.readToEnd()) ?? Data()
        let text = String(decoding: data, as: UTF8.self)
        return text.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }

    // MARK: SQL and tools

    /// Runs SQL through psql as the server's superuser over the Unix socket. Rows come back split
    /// on `|`. The script is passed on stdin, never on the command line, and errors in it are not
    /// logged by the server with their statement (it may carry a password).
    @discardableResult
    func psql(
        _ sql: String, database: String = "postgres", singleTransaction: Bool = false, what: String? = nil,
        secrets: [String] = []
    ) async throws(EngineError) -> [[String]] {
        var arguments = [
            "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", paths.runDir, "-p", String(configuration.repPort),
            "-U", configuration.serverUser.name, "-d", database,
        ]
        if singleTransaction { arguments.append("-1") }
        arguments += ["-f", "-"]
        // The agent's own writes (roles, slots, scripts, the promotion probe) commit locally:
        // under RETURN TWOSAFE they must not wait for a standby that may not exist yet.
        let script = "SET log_min_error_statement = panic;\nSET log_statement = 'none';\nSET synchronous_commit = local;\n" + sql + "\n"
        let result: ToolResult
        do {
            result = try await launcher.run(binDir + "/psql", arguments, asServerUser: false, stdin: script, environment: ["PGCONNECT_TIMEOUT": "10"])
        } catch {
            throw EngineError(.failed, "cannot run psql: \(error)")
        }
        guard result.succeeded else {
            // psql quotes the failing statement, which may carry a password.
            var stderr = result.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
            for secret in secrets where !secret.isEmpty {
                for form in [secret, secret.replacingOccurrences(of: "'", with: "''")] {
                    stderr = stderr.replacingOccurrences(of: form, with: "[redacted]")
                }
            }
            throw EngineError(.failed, "\(what ?? "SQL") failed", stderr: stderr)
        }
        return result.stdout.split(separator: "\n").filter { !$0.isEmpty }.map {
            $0.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        }
    }

    func tool(_ name: String, _ arguments: [String]) async throws(EngineError) -> ToolResult {
        do {
            return try await launcher.run(binDir + "/" + name, arguments, asServerUser: true)
        } catch {
            throw EngineError(.failed, "cannot run \(name): \(error)")
        }
    }

    func isInRecovery() async throws(EngineError) -> Bool {
        try await psql("SELECT pg_is_in_recovery();").first?.first == "t"
    }

    func settingsCatalog() async throws(EngineError) -> SettingsCatalog {
        if let catalog { return catalog }
        let result = try await tool("postgres", ["--describe-config"])
        guard result.succeeded else {
            throw EngineError(.failed, "postgres --describe-config failed", stderr: result.stderr)
        }
        let parsed = SettingsCatalog(describeConfigOutput: result.stdout)
        catalog = parsed
        return parsed
    }

    // MARK: Files

    func appliedFiles() -> [String] {
        guard let data = FileManager.default.contents(atPath: paths.dataDir + "/" + PostgresFiles.appliedFile),
              let files = try? JSONDecoder().decode([String].self, from: data)
        else { return [] }
        return files
    }

    func saveApplied(_ files: [String]) throws(EngineError) {
        try writeServerFile(paths.dataDir + "/" + PostgresFiles.appliedFile, Self.json(files))
    }

    func repScheme() -> ReplicationScheme? {
        guard let data = FileManager.default.contents(atPath: paths.dataDir + "/" + PostgresFiles.repSchemeFile) else { return nil }
        return try? JSONDecoder().decode(ReplicationScheme.self, from: data)
    }

    func primaryConninfo() -> String? {
        guard let source = state.source, state.streaming else { return nil }
        return [
            "host=\(PostgresFiles.conninfoValue(source.host))", "port=\(source.port)", "user=\(SQL.replicationUser)",
            "passfile=\(PostgresFiles.conninfoValue(paths.pgpassFile))", "application_name=\(SQL.applicationName)",
            "connect_timeout=5",
        ].joined(separator: " ")
    }

    func writeAgentConf() throws(EngineError) {
        guard FileManager.default.fileExists(atPath: paths.dataDir) else { return }
        let conf = PostgresFiles.agentConf(
            twosafe: repScheme()?.twosafe ?? false, fenced: state.fenced, primaryConninfo: primaryConninfo())
        try writeServerFile(paths.dataDir + "/" + PostgresFiles.agentConf, conf)
    }

    func saveState() throws(EngineError) {
        try makeDirectory(paths.agentDir, owner: nil, mode: 0o755)
        let data: Data
        do { data = try JSONEncoder().encode(state) } catch { throw EngineError(.failed, "cannot encode the agent state: \(error)") }
        try writeFile(paths.stateFile, data, owner: nil, mode: 0o600)
    }

    func writePgpass(password: String) throws(EngineError) {
        try makeDirectory(paths.agentDir, owner: nil, mode: 0o755)
        try writeFile(paths.pgpassFile, Data(PostgresFiles.pgpassLine(password: password).utf8), owner: configuration.serverUser, mode: 0o600)
    }

    func prepareRunDirectory() throws(EngineError) {
        try makeDirectory(paths.agentDir, owner: nil, mode: 0o755)
        try makeDirectory(paths.runDir, owner: configuration.serverUser, mode: 0o700)
        let logDir = (paths.logFile as NSString).deletingLastPathComponent
        try makeDirectory(logDir, owner: nil, mode: 0o755)
    }

    func makeServerDirectory(_ path: String) throws(EngineError) {
        let parent = (path as NSString).deletingLastPathComponent
        try makeDirectory(parent, owner: nil, mode: 0o755)
        try makeDirectory(path, owner: configuration.serverUser, mode: 0o700)
        // The server user must be able to reach it.
        if configuration.serverUser.needsSwitch, !Self.traversable(parent, by: configuration.serverUser) {
            throw EngineError(.failed, "user \(configuration.serverUser.name) cannot reach \(parent): a directory on the way is not searchable by it")
        }
    }

    static func traversable(_ path: String, by user: ServerUser) -> Bool {
        var current = path
        while !current.isEmpty && current != "/" {
            var info = stat()
            guard stat(current, &info) == 0 else { return false }
            let mode = info.st_mode
            let ok = info.st_uid == user.uid ? mode & 0o100 != 0 : info.st_gid == user.gid ? mode & 0o010 != 0 : mode & 0o001 != 0
            if !ok { return false }
            current = (current as NSString).deletingLastPathComponent
        }
        return true
    }

    func makeDirectory(_ path: String, owner: ServerUser?, mode: mode_t) throws(EngineError) {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw EngineError(.failed, "cannot create \(path): \(error.localizedDescription)")
        }
        if let owner, getuid() == 0, chown(path, owner.uid, owner.gid) != 0 {
            throw EngineError(.failed, "cannot give \(path) to \(owner.name): \(String(cString: strerror(errno)))")
        }
        if owner != nil { chmod(path, mode) }
    }

    /// Writes a file that the server reads, owned by the server user.
    func writeServerFile(_ path: String, _ text: String) throws(EngineError) {
        try writeFile(path, Data(text.utf8), owner: configuration.serverUser, mode: 0o600)
    }

    func appendFile(_ path: String, _ text: String) throws(EngineError) {
        guard let handle = FileHandle(forWritingAtPath: path) else { throw EngineError(.failed, "cannot open \(path)") }
        defer { try? handle.close() }
        do {
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(text.utf8))
        } catch {
            throw EngineError(.failed, "cannot append to \(path): \(error.localizedDescription)")
        }
    }

    /// Atomic write: a temporary file, owned and moded, renamed into place.
    func writeFile(_ path: String, _ data: Data, owner: ServerUser?, mode: mode_t) throws(EngineError) {
        let temporary = path + ".tmp-\(getpid())"
        guard FileManager.default.createFile(atPath: temporary, contents: data, attributes: [.posixPermissions: Int(mode)]) else {
            throw EngineError(.failed, "cannot write \(temporary)")
        }
        if let owner, getuid() == 0, chown(temporary, owner.uid, owner.gid) != 0 {
            unlink(temporary)
            throw EngineError(.failed, "cannot give \(path) to \(owner.name): \(String(cString: strerror(errno)))")
        }
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw EngineError(.failed, "cannot write \(path): \(reason)")
        }
    }

    func removeTree(_ path: String) throws(EngineError) {
        guard FileManager.default.fileExists(atPath: path) else { return }
        do { try FileManager.default.removeItem(atPath: path) } catch {
            throw EngineError(.failed, "cannot remove \(path): \(error.localizedDescription)")
        }
    }

    static func json(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "null"
    }
}
