import Agent
import Foundation
import Synchronization

/// SIMULATED: a database with no process behind it, for the scale benchmark only (DESIGN.md
/// allows simulated pods there and nowhere else). It answers the agent's verbs at once with the
/// states a PostgreSQL pair would go through, so that the real agent endpoint in front of it,
/// and the operator behind that, walk a pair from Initializing to Normal for real:
/// - createDb makes a writable ACTIVE; createRepScheme records the scheme;
/// - repDuplicate from another simulated database makes this one its streaming STANDBY and tells
///   the source that a standby streams from it (`repPeerPState` streaming);
/// - repDeactivate fences, repStateSetActive promotes, destroyDb forgets everything.
///
/// Databases find each other by address through `SimulatedDatabases`, as a real standby finds
/// its active over the network.
actor SimulatedDatabase: DatabaseEngine {
    static let engineName = "simulated"

    nonisolated let address: String
    nonisolated let registry: SimulatedDatabases
    private nonisolated let hub: SimulatedStatusHub
    private var status: EngineStatus
    /// The address this database streams from, while it is a standby.
    private var upstream: String?
    /// The addresses of the standbys that stream from this database.
    private var downstream: Set<String> = []

    init(address: String, registry: SimulatedDatabases) {
        self.address = address
        self.registry = registry
        let initial = EngineStatus(engine: Self.engineName, version: "0")
        status = initial
        hub = SimulatedStatusHub(initial: initial)
    }

    // MARK: Status

    func currentStatus() async -> EngineStatus { status }
    func refreshStatus() async -> EngineStatus { status }
    func statusUpdates() async -> AsyncStream<EngineStatus> { hub.subscribe() }

    private func change(_ edit: (inout EngineStatus) -> Void) {
        edit(&status)
        hub.publish(status)
    }

    // MARK: Verbs

    func create(_ spec: CreateSpec) async throws(EngineError) {
        guard !status.instanceExists else { return }
        let files = [("db.ini", spec.dbIni), ("adminUser", spec.adminUser), ("schema.sql", spec.schema)]
            .filter { $0.1.map { FileManager.default.fileExists(atPath: $0) } ?? false }.map(\.0)
        change { status in
            status.instanceExists = true
            status.daemonUp = true
            status.dbLoaded = true
            status.updatable = true
            status.repState = .active
            status.repPeerPState = "none"
            status.appliedFiles = files
            status.lsn = "0/3000060"
            status.timeline = 1
            status.pid = 1
        }
    }

    func start() async throws(EngineError) {
        guard status.instanceExists else { throw EngineError(.conflict, "there is no database to start") }
        change { status in
            status.daemonUp = true
            status.dbLoaded = true
            status.pid = 1
            if upstream != nil {
                status.repState = .standby
                status.repPeerPState = "streaming"
            } else {
                status.updatable = !status.fenced
                status.repState = status.fenced ? .idle : .active
            }
        }
    }

    func stop() async throws(EngineError) {
        await detachFromUpstream()
        change { status in
            status.daemonUp = false
            status.dbLoaded = false
            status.updatable = false
            status.repState = .idle
            status.repPeerPState = "none"
            status.pid = nil
        }
    }

    func promote() async throws(EngineError) {
        guard status.instanceExists, status.daemonUp else { throw EngineError(.conflict, "the database is not running") }
        await detachFromUpstream()
        change { status in
            status.updatable = true
            status.fenced = false
            status.repState = .active
            status.repPeerPState = downstream.isEmpty ? "none" : "streaming"
            status.timeline = (status.timeline ?? 1) + 1
        }
    }

    func checkDuplicate(from source: DuplicateSource) async throws(EngineError) {
        guard source.host != address else { throw EngineError(.badRequest, "cannot duplicate a database from itself") }
        if status.daemonUp, status.repState == .active, !status.fenced {
            throw EngineError(.conflict, "this database is an unfenced active; run repDeactivate before duplicating over it")
        }
    }

    func duplicate(from source: DuplicateSource, rewind: Bool, progress: @escaping @Sendable (DuplicateProgress) -> Void)
        async throws(EngineError)
    {
        try await checkDuplicate(from: source)
        guard let active = registry.database(at: source.host) else {
            throw EngineError(.failed, "no database answers at \(source.host):\(source.port)")
        }
        let copied = await active.attach(standby: address)
        guard let copied else { throw EngineError(.failed, "the database at \(source.host) is not running") }
        await detachFromUpstream()
        let total: Int64 = 16 << 20
        progress(DuplicateProgress(phase: "copying", bytesDone: total, bytesTotal: total, method: "basebackup"))
        upstream = source.host
        change { status in
            status.instanceExists = true
            status.daemonUp = true
            status.dbLoaded = true
            status.updatable = false
            status.fenced = false
            status.repState = .standby
            status.repPeerPState = "streaming"
            status.bytesBehind = 0
            status.lsn = copied.lsn
            status.timeline = copied.timeline
            status.appliedFiles = copied.appliedFiles
            status.repScheme = copied.repScheme
            status.twosafe = copied.twosafe
            status.pid = 1
        }
    }

    func fence() async throws(EngineError) {
        change { status in
            status.fenced = true
            status.updatable = false
            if status.repState == .active { status.repState = .idle }
        }
    }

    /// The standbys have everything at once here: fenced, then stopped.
    func fenceAndStop() async throws(EngineError) {
        try await fence()
        guard status.daemonUp else { return }
        change { status in
            status.daemonUp = false
            status.dbLoaded = false
            status.pid = nil
        }
    }

    func destroy() async throws(EngineError) {
        await detachFromUpstream()
        for standby in downstream { await registry.database(at: standby)?.lostUpstream() }
        downstream = []
        change { status in status = EngineStatus(engine: Self.engineName, version: "0") }
    }

    func createReplicationScheme(_ scheme: ReplicationScheme, adminUser: String?) async throws(EngineError) {
        guard status.instanceExists else { throw EngineError(.conflict, "there is no database") }
        change { status in
            status.repScheme = true
            status.twosafe = scheme.twosafe
        }
    }

    func runScriptOnce(name: String, path: String) async throws(EngineError) {
        guard !status.appliedFiles.contains(name) else { return }
        change { $0.appliedFiles.append(name) }
    }

    func setStreaming(_ on: Bool) async throws(EngineError) {
        guard let upstream else { return }
        let active = registry.database(at: upstream)
        if on { _ = await active?.attach(standby: address) } else { await active?.detach(standby: address) }
        change { status in
            status.repState = on ? .standby : .idle
            status.repPeerPState = on ? "streaming" : "stopped"
        }
    }

    func shutdown() async {
        hub.finish()
    }

    // MARK: Between databases

    /// A standby starts streaming from this database; returns what it copies (nil when this
    /// database is not running).
    func attach(standby: String) -> EngineStatus? {
        guard status.instanceExists, status.daemonUp else { return nil }
        downstream.insert(standby)
        change { status in
            status.repPeerPState = "streaming"
            status.bytesBehind = 0
        }
        return status
    }

    func detach(standby: String) {
        guard downstream.remove(standby) != nil else { return }
        if downstream.isEmpty {
            change { status in
                status.repPeerPState = "none"
                status.bytesBehind = nil
            }
        }
    }

    /// The active this standby streamed from is gone.
    func lostUpstream() {
        upstream = nil
        guard status.repState == .standby else { return }
        change { status in
            status.repPeerPState = "waiting"
            status.repState = .recovering
        }
    }

    private func detachFromUpstream() async {
        guard let upstream else { return }
        self.upstream = nil
        await registry.database(at: upstream)?.detach(standby: address)
    }
}

/// The simulated databases by address.
final class SimulatedDatabases: Sendable {
    private let byAddress = Mutex<[String: SimulatedDatabase]>([:])

    func database(at address: String) -> SimulatedDatabase? { byAddress.withLock { $0[address] } }

    /// The database at `address`, made when there is none (a pod's volume outlives its agent).
    func database(for address: String) -> SimulatedDatabase {
        byAddress.withLock { databases in
            if let existing = databases[address] { return existing }
            let database = SimulatedDatabase(address: address, registry: self)
            databases[address] = database
            return database
        }
    }

    func remove(_ address: String) { _ = byAddress.withLock { $0.removeValue(forKey: address) } }
}

/// The current status at once, then every change, to each subscriber (the agent's status streams).
final class SimulatedStatusHub: Sendable {
    private struct State {
        var current: EngineStatus
        var subscribers: [Int: AsyncStream<EngineStatus>.Continuation] = [:]
        var nextID = 0
        var finished = false
    }
    private let state: Mutex<State>

    init(initial: EngineStatus) { state = Mutex(State(current: initial)) }

    func publish(_ status: EngineStatus) {
        state.withLock { state in
            guard status != state.current else { return }
            state.current = status
            for continuation in state.subscribers.values { continuation.yield(status) }
        }
    }

    func subscribe() -> AsyncStream<EngineStatus> {
        let (stream, continuation) = AsyncStream<EngineStatus>.makeStream(bufferingPolicy: .bufferingNewest(16))
        let id: Int? = state.withLock { state in
            continuation.yield(state.current)
            guard !state.finished else { return nil }
            state.nextID += 1
            state.subscribers[state.nextID] = continuation
            return state.nextID
        }
        guard let id else {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [weak self] _ in _ = self?.state.withLock { $0.subscribers.removeValue(forKey: id) } }
        return stream
    }

    func finish() {
        let continuations = state.withLock { state -> [AsyncStream<EngineStatus>.Continuation] in
            state.finished = true
            defer { state.subscribers = [:] }
            return Array(state.subscribers.values)
        }
        continuations.forEach { $0.finish() }
    }
}
