import Foundation

/// Replication state of one database, with Oracle's names.
public enum RepState: String, Codable, Sendable, CaseIterable {
    /// Accepts writes; the source of replication.
    case active = "ACTIVE"
    /// A streaming standby: replays the active's changes.
    case standby = "STANDBY"
    /// Neither: no server, a fenced former active, or a standby whose streaming is off.
    case idle = "IDLE"
    /// The server died without being asked to, or could not start.
    case failed = "FAILED"
    /// Being duplicated, starting up, or a standby not (yet) connected to its active.
    case recovering = "RECOVERING"
}

/// What `GET /v1/status` answers.
public struct EngineStatus: Codable, Sendable, Equatable {
    public var engine: String
    public var version: String
    /// The database server process is running.
    public var daemonUp: Bool
    /// A data directory exists.
    public var instanceExists: Bool
    /// The server accepts connections and the pair's database exists.
    public var dbLoaded: Bool
    /// The database accepts writes.
    public var updatable: Bool
    public var repState: RepState
    /// The peer's replication state as this side sees it: on an active the standby's WAL sender
    /// state (`streaming`, `catchup`, `startup`, or `none`); on a standby the WAL receiver's
    /// (`streaming`, `waiting`, ..., or `stopped`).
    public var repPeerPState: String
    /// On an active, how far the standby's replay is behind; on a standby, how far its replay is
    /// behind what the active has reported. nil when unknown (no standby connected, server down).
    public var bytesBehind: Int64?
    /// The current WAL position (the insert position on an active, the replay position on a
    /// standby). On a database fenced and stopped cleanly (`fenceAndStop`), the position of its
    /// shutdown checkpoint: a standby has everything once its replay position is past it.
    public var lsn: String?
    public var timeline: Int?
    /// Metadata files applied to this database, in order: `db.ini`, `adminUser`, `schema.sql`, `epilog.sql`.
    public var appliedFiles: [String]
    public var lastError: String?
    /// The server process id, when running.
    public var pid: Int32?
    /// repDeactivate was applied and not undone by repStateSetActive.
    public var fenced: Bool
    /// createRepScheme ran with RETURN TWOSAFE.
    public var twosafe: Bool
    /// createRepScheme ran (here, or on the active this database was duplicated from).
    public var repScheme: Bool

    public init(engine: String, version: String) {
        self.engine = engine
        self.version = version
        self.daemonUp = false
        self.instanceExists = false
        self.dbLoaded = false
        self.updatable = false
        self.repState = .idle
        self.repPeerPState = "none"
        self.bytesBehind = nil
        self.lsn = nil
        self.timeline = nil
        self.appliedFiles = []
        self.lastError = nil
        self.pid = nil
        self.fenced = false
        self.twosafe = false
        self.repScheme = false
    }

    enum CodingKeys: String, CodingKey {
        case engine, version, daemonUp, instanceExists, dbLoaded, updatable, repState, repPeerPState, bytesBehind
        case lsn, timeline, appliedFiles, lastError, pid, fenced, twosafe, repScheme
    }

    /// Every field is written, unknown ones as null, so that clients see the whole shape.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(engine, forKey: .engine)
        try container.encode(version, forKey: .version)
        try container.encode(daemonUp, forKey: .daemonUp)
        try container.encode(instanceExists, forKey: .instanceExists)
        try container.encode(dbLoaded, forKey: .dbLoaded)
        try container.encode(updatable, forKey: .updatable)
        try container.encode(repState, forKey: .repState)
        try container.encode(repPeerPState, forKey: .repPeerPState)
        try container.encode(bytesBehind, forKey: .bytesBehind)
        try container.encode(lsn, forKey: .lsn)
        try container.encode(timeline, forKey: .timeline)
        try container.encode(appliedFiles, forKey: .appliedFiles)
        try container.encode(lastError, forKey: .lastError)
        try container.encode(pid, forKey: .pid)
        try container.encode(fenced, forKey: .fenced)
        try container.encode(twosafe, forKey: .twosafe)
        try container.encode(repScheme, forKey: .repScheme)
    }
}

/// The metadata files for createDb, as real paths. Missing files are skipped, except that
/// `adminUser` is needed by createRepScheme and repDuplicate (it also authenticates replication).
public struct CreateSpec: Sendable, Equatable {
    public var dbIni: String?
    public var adminUser: String?
    public var schema: String?

    public init(dbIni: String?, adminUser: String?, schema: String?) {
        self.dbIni = dbIni
        self.adminUser = adminUser
        self.schema = schema
    }
}

/// What createRepScheme sets up.
public struct ReplicationScheme: Sendable, Equatable, Codable {
    /// Addresses (or CIDR ranges) allowed to replicate from this database: the pair's pods.
    public var peers: [String]
    /// RETURN TWOSAFE: a commit returns only once the standby has applied it.
    public var twosafe: Bool

    public init(peers: [String], twosafe: Bool) {
        self.peers = peers
        self.twosafe = twosafe
    }
}

/// Where to duplicate from.
public struct DuplicateSource: Sendable, Equatable, Codable {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }
}

/// Progress of a duplicate.
public struct DuplicateProgress: Sendable, Equatable {
    public var phase: String
    public var bytesDone: Int64
    public var bytesTotal: Int64
    /// How the database is being made: "rewind" (pg_rewind of the old copy) or "basebackup".
    public var method: String?

    public init(phase: String, bytesDone: Int64, bytesTotal: Int64, method: String? = nil) {
        self.phase = phase
        self.bytesDone = bytesDone
        self.bytesTotal = bytesTotal
        self.method = method
    }
}

/// A refused or failed engine operation. `stderr` carries the engine tool's own words.
public struct EngineError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: String, Sendable, Codable {
        /// The request is wrong; nothing was changed.
        case badRequest
        /// The request conflicts with the database's role or with a running operation.
        case conflict
        /// The engine failed.
        case failed
    }

    public var kind: Kind
    public var message: String
    public var stderr: String?

    public init(_ kind: Kind, _ message: String, stderr: String? = nil) {
        self.kind = kind
        self.message = message
        self.stderr = stderr
    }

    public var description: String {
        if let stderr, !stderr.isEmpty { return "\(message): \(stderr)" }
        return message
    }
}

/// A database engine under the agent's control. Every operation is idempotent: asking for a state
/// the database is already in succeeds without doing anything.
public protocol DatabaseEngine: Sendable {
    /// The last status published, without asking the server.
    func currentStatus() async -> EngineStatus
    /// Asks the server and publishes the result when it changed.
    func refreshStatus() async -> EngineStatus
    /// A stream of statuses: the current one at once, then one each time it changes.
    func statusUpdates() async -> AsyncStream<EngineStatus>

    /// Creates the instance and the database, applies the metadata files and starts the server.
    func create(_ spec: CreateSpec) async throws(EngineError)
    /// Starts the server in whatever role its data says (primary, or standby after a duplicate).
    func start() async throws(EngineError)
    /// Stops the server cleanly.
    func stop() async throws(EngineError)
    /// Makes this database the active, and returns once it accepts writes.
    func promote() async throws(EngineError)
    /// Replaces this database with a copy of `source` and starts it as a streaming standby.
    /// The current database is left as it was when the copy fails.
    /// `rewind`: re-attach an old copy of the same database with the engine's rewind tool when
    /// it can; false always copies the whole database.
    func duplicate(from source: DuplicateSource, rewind: Bool, progress: @escaping @Sendable (DuplicateProgress) -> Void) async throws(EngineError)
    /// Refuses a duplicate from `source` before it starts, when it could not succeed (a copy from
    /// itself, over an unfenced active), so that the verb answers at once.
    func checkDuplicate(from source: DuplicateSource) async throws(EngineError)
    /// Makes the database refuse writes from now on.
    func fence() async throws(EngineError)
    /// Fences the database and shuts its server down cleanly, so that everything it wrote (its
    /// shutdown checkpoint included) has reached a streaming standby when this returns. The
    /// standby promoted next continues this database's history, and this database can follow
    /// it as a standby without a rewind. The status then reports the position the standby must
    /// pass.
    func fenceAndStop() async throws(EngineError)
    /// Stops the server and removes the database.
    func destroy() async throws(EngineError)
    /// Sets up replication from this database (user, slot, access, RETURN TWOSAFE).
    func createReplicationScheme(_ scheme: ReplicationScheme, adminUser: String?) async throws(EngineError)
    /// Runs a SQL file once in the pair's database, recorded under `name` in appliedFiles.
    func runScriptOnce(name: String, path: String) async throws(EngineError)
    /// Turns the standby's streaming from the active on or off.
    func setStreaming(_ on: Bool) async throws(EngineError)
    /// Stops background work and the server (when the agent shuts down cleanly).
    func shutdown() async
}
