import Foundation
import KubeAPI
import Synchronization

/// A change as watchers see it.
struct StoredEvent: Sendable {
    enum Kind: String, Sendable { case added = "ADDED", modified = "MODIFIED", deleted = "DELETED" }
    var kind: Kind
    var resource: String
    var namespace: String
    var object: JSONObject
    /// The object before a modification, so that a watch with a selector can tell an object
    /// leaving it (DELETED) from one changing inside it.
    var previous: JSONObject? = nil
    /// The object serialised once, shared by every watcher.
    var objectJSON: [UInt8]
    var resourceVersion: Int64
}

/// Objects by resource, namespace and name, with one resourceVersion counter, a window of
/// history for watches, and write-ahead durability.
///
/// Every mutation happens under one lock: the resourceVersion is taken, the log is appended,
/// the map is changed, history is extended and watchers are fed, in that order. That makes the
/// order of resourceVersions the order watchers see.
final class APIStorage: Sendable {
    struct ObjectIdentity: Hashable, Sendable {
        var namespace: String
        var name: String
    }

    final class Watcher: Sendable {
        let resource: String
        let namespace: String?
        let continuation: AsyncStream<StoredEvent>.Continuation
        init(resource: String, namespace: String?, continuation: AsyncStream<StoredEvent>.Continuation) {
            self.resource = resource
            self.namespace = namespace
            self.continuation = continuation
        }
    }

    private struct State {
        var objects: [String: [ObjectIdentity: JSONObject]] = [:]
        var resourceVersion: Int64 = 0
        var history: [StoredEvent] = []
        var historyStart = 0
        var oldestRetained: Int64 = 1
        var watchers: [UUID: Watcher] = [:]
    }

    private let state = Mutex(State())
    /// Events a watcher may fall behind by before it is closed.
    static let watcherBuffer = 50_000
    private let log: WriteAheadLog?
    let historyWindow: Int

    /// `directory` nil keeps everything in memory (for benchmarks that measure the API alone).
    init(directory: String?, historyWindow: Int = 20_000) throws {
        self.historyWindow = historyWindow
        guard let directory else {
            log = nil
            return
        }
        let log = try WriteAheadLog(directory: directory)
        let recovered = try log.recover()
        if recovered.tornTail { try log.dropTornTail() }
        try log.open()
        self.log = log
        state.withLock { state in
            for mutation in recovered.objects {
                state.objects[mutation.resource, default: [:]][ObjectIdentity(namespace: mutation.namespace, name: mutation.name)] = mutation.object
            }
            state.resourceVersion = recovered.resourceVersion
            // Watchers may resume across a restart from anything still in the log.
            for mutation in recovered.logged.suffix(historyWindow) {
                let kind: StoredEvent.Kind = mutation.operation == .delete ? .deleted : .modified
                state.history.append(StoredEvent(
                    kind: kind, resource: mutation.resource, namespace: mutation.namespace, object: mutation.object,
                    objectJSON: Array(JSONWriter.data(mutation.object)), resourceVersion: mutation.resourceVersion))
            }
            state.oldestRetained = (recovered.logged.suffix(historyWindow).first?.resourceVersion ?? recovered.resourceVersion + 1)
        }
    }

    var resourceVersion: Int64 { state.withLock { $0.resourceVersion } }

    func get(_ resource: String, namespace: String, name: String) -> JSONObject? {
        state.withLock { $0.objects[resource]?[ObjectIdentity(namespace: namespace, name: name)] }
    }

    /// Every object of a resource (in one namespace, or all), sorted by namespace and name, and
    /// the resourceVersion the list is consistent with.
    func list(_ resource: String, namespace: String?) -> (objects: [JSONObject], resourceVersion: Int64) {
        state.withLock { state in
            let all = state.objects[resource] ?? [:]
            let keys = all.keys.filter { namespace == nil || $0.namespace == namespace }
                .sorted { ($0.namespace, $0.name) < ($1.namespace, $1.name) }
            return (keys.map { all[$0]! }, state.resourceVersion)
        }
    }

    func count(_ resource: String) -> Int { state.withLock { $0.objects[resource]?.count ?? 0 } }

    enum Change {
        case create
        case update(expectedResourceVersion: String?)
        case delete(expectedResourceVersion: String?)
    }

    enum StorageError: Error {
        case alreadyExists
        case notFound
        case conflict
    }

    /// Applies one change atomically. `object` must already carry its final metadata except the
    /// resourceVersion, which is assigned here. Returns the stored object.
    @discardableResult
    func commit(_ change: Change, resource: String, namespace: String, name: String, object: JSONObject, dryRun: Bool = false) throws -> JSONObject {
        try state.withLock { state in
            let identity = ObjectIdentity(namespace: namespace, name: name)
            let existing = state.objects[resource]?[identity]
            switch change {
            case .create:
                if existing != nil { throw StorageError.alreadyExists }
            case .update(let expected), .delete(let expected):
                guard let existing else { throw StorageError.notFound }
                if let expected, !expected.isEmpty, existing["metadata"]?["resourceVersion"].stringValue != expected {
                    throw StorageError.conflict
                }
            }
            let version = state.resourceVersion + 1
            var stored = object
            var metadata = stored["metadata"]?.objectValue ?? [:]
            metadata["resourceVersion"] = .string(String(version))
            stored["metadata"] = .object(metadata)
            if dryRun { return stored }

            let isDelete: Bool
            if case .delete = change { isDelete = true } else { isDelete = false }
            let json = Array(JSONWriter.data(stored))
            let mutation = StoredMutation(
                resourceVersion: version, operation: isDelete ? .delete : .put, resource: resource, namespace: namespace,
                name: name, object: stored)
            do {
                try log?.append(mutation, objectJSON: json)
            } catch {
                throw error  // not acknowledged, nothing changed in memory
            }
            state.resourceVersion = version
            if isDelete {
                state.objects[resource]?[identity] = nil
            } else {
                state.objects[resource, default: [:]][identity] = stored
            }
            let kind: StoredEvent.Kind
            switch change {
            case .create: kind = .added
            case .update: kind = .modified
            case .delete: kind = .deleted
            }
            var event = StoredEvent(kind: kind, resource: resource, namespace: namespace, object: stored, objectJSON: json, resourceVersion: version)
            if kind == .modified { event.previous = existing }
            Self.appendHistory(event, to: &state, window: historyWindow)
            for (id, watcher) in state.watchers where watcher.resource == resource && (watcher.namespace == nil || watcher.namespace == namespace) {
                if case .dropped = watcher.continuation.yield(event) {
                    // Too far behind: close it; the client resumes from its last version.
                    state.watchers[id] = nil
                    watcher.continuation.finish()
                }
            }
            return stored
        }
    }

    private static func appendHistory(_ event: StoredEvent, to state: inout State, window: Int) {
        state.history.append(event)
        if state.history.count - state.historyStart > window {
            state.historyStart += 1
            state.oldestRetained = state.history[state.historyStart].resourceVersion
            if state.historyStart > window {
                state.history.removeFirst(state.historyStart)
                state.historyStart = 0
            }
        }
    }

    enum WatchStart {
        /// The events after this resourceVersion, then live ones.
        case after(Int64)
        /// The current objects as ADDED, then live ones.
        case current
    }

    /// Opens a watch. Returns nil when `after` is older than the history window (410 Gone).
    func watch(_ resource: String, namespace: String?, from start: WatchStart) -> (id: UUID, replay: [StoredEvent], stream: AsyncStream<StoredEvent>)? {
        let (stream, continuation) = AsyncStream<StoredEvent>.makeStream(bufferingPolicy: .bufferingOldest(Self.watcherBuffer))
        let id = UUID()
        let replay: [StoredEvent]? = state.withLock { state in
            var replay: [StoredEvent] = []
            switch start {
            case .after(let version):
                if version < state.oldestRetained - 1 && version < state.resourceVersion { return nil }
                for event in state.history[state.historyStart...] where event.resourceVersion > version && event.resource == resource
                    && (namespace == nil || event.namespace == namespace) {
                    replay.append(event)
                }
            case .current:
                let all = state.objects[resource] ?? [:]
                for (key, object) in all where namespace == nil || key.namespace == namespace {
                    let version = Int64(object["metadata"]?["resourceVersion"].stringValue ?? "") ?? 0
                    replay.append(StoredEvent(kind: .added, resource: resource, namespace: key.namespace, object: object,
                                              objectJSON: Array(JSONWriter.data(object)), resourceVersion: version))
                }
                replay.sort { $0.resourceVersion < $1.resourceVersion }
            }
            state.watchers[id] = Watcher(resource: resource, namespace: namespace, continuation: continuation)
            return replay
        }
        guard let replay else { return nil }
        return (id, replay, stream)
    }

    func stopWatching(_ id: UUID) {
        let watcher = state.withLock { $0.watchers.removeValue(forKey: id) }
        watcher?.continuation.finish()
    }

    func stopAllWatches() {
        let all = state.withLock { state -> [Watcher] in
            defer { state.watchers = [:] }
            return Array(state.watchers.values)
        }
        all.forEach { $0.continuation.finish() }
    }

    var watcherCount: Int { state.withLock { $0.watchers.count } }

    /// Syncs the log to disk; compacts it into a snapshot when it has grown large.
    func maintain() throws {
        guard let log else { return }
        log.syncIfDirty()  // fdatasync runs beside writers, not under their lock
        guard log.needsCompaction else { return }
        try state.withLock { state in
            guard log.needsCompaction else { return }
            var objects: [StoredMutation] = []
            for (resource, entries) in state.objects {
                for (identity, object) in entries {
                    let version = Int64(object["metadata"]?["resourceVersion"].stringValue ?? "") ?? 0
                    objects.append(StoredMutation(resourceVersion: version, operation: .put, resource: resource,
                                                  namespace: identity.namespace, name: identity.name, object: object))
                }
            }
            try log.compact(objects: objects, resourceVersion: state.resourceVersion)
        }
    }
}
