import Foundation
import Logging
import Synchronization

/// List, then watch from the list's resourceVersion, keeping a cache and calling handlers.
///
/// - A watch that ends or drops is resumed from the last resourceVersion seen (events and
///   bookmarks both advance it), so nothing is missed and nothing is delivered twice.
/// - 410 Gone (a resourceVersion older than the server's window) leads to a relist, and the
///   differences are delivered as added, updated and deleted events.
/// - Other errors back off exponentially with jitter, up to `maxBackoff`.
/// - Each watch asks the server to end it after `watchTimeoutSeconds` to twice that (a random
///   length, so that many clients do not come back at once). `firstWatchTimeoutSeconds`, when
///   set, does the same for the first watch only: a process that wants every step of a watch's
///   life (its end, the resume) to have run once while it warms up asks for a short one.
public final class Informer<T: KubeObject>: Sendable {
    public typealias Handler = @Sendable (InformerEvent<T>) -> Void

    public let store: ObjectStore<T>
    private let client: KubeClient
    private let namespace: String?
    private let labelSelector: String?
    private let fieldSelector: String?
    private let watchTimeoutSeconds: Int
    private let firstWatchTimeoutSeconds: Int?
    private let maxBackoff: Duration
    private let logger: Logger

    private struct State {
        var handlers: [Handler] = []
        var synced = false
        var syncWaiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var nextWaiter: UInt64 = 0
        var resourceVersion: String?
        var lists = 0
        var watches = 0
    }
    private let state = Mutex(State())

    public init(
        client: KubeClient, namespace: String? = nil, labelSelector: String? = nil, fieldSelector: String? = nil,
        indexers: [String: IndexFunction<T>] = [:], layout: ObjectStore<T>.Layout = .parsed, transform: (@Sendable (T) -> T)? = nil,
        watchTimeoutSeconds: Int = 300, firstWatchTimeoutSeconds: Int? = nil, maxBackoff: Duration = .seconds(30), logger: Logger = Logger(label: "tenops.informer")
    ) {
        self.client = client
        self.namespace = namespace
        self.labelSelector = labelSelector
        self.fieldSelector = fieldSelector
        self.watchTimeoutSeconds = watchTimeoutSeconds
        self.firstWatchTimeoutSeconds = firstWatchTimeoutSeconds
        self.maxBackoff = maxBackoff
        self.store = ObjectStore(indexers: indexers, layout: layout, transform: transform)
        self.logger = logger
    }

    /// Registers a handler. Handlers run in event order on the informer's task and must be quick
    /// (typically: enqueue a key).
    public func addHandler(_ handler: @escaping Handler) {
        state.withLock { $0.handlers.append(handler) }
    }

    public var hasSynced: Bool { state.withLock { $0.synced } }
    /// The last resourceVersion delivered.
    public var lastResourceVersion: String? { state.withLock { $0.resourceVersion } }
    /// How many LISTs and WATCHes this informer has issued: the first is 1 and 1; more LISTs mean relists.
    public var requestCounts: (lists: Int, watches: Int) { state.withLock { ($0.lists, $0.watches) } }

    /// Suspends until the first list has been delivered, or the calling Task is cancelled.
    public func waitForSync() async {
        let id = state.withLock { state -> UInt64 in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let ready = state.withLock { state -> Bool in
                    if state.synced || Task.isCancelled { return true }
                    state.syncWaiters[id] = continuation
                    return false
                }
                if ready { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.syncWaiters.removeValue(forKey: id) }?.resume()
        }
    }

    /// Runs until the calling Task is cancelled.
    public func run() async {
        var resourceVersion: String?
        var failures = 0
        while !Task.isCancelled {
            let versionBefore = resourceVersion
            do {
                if resourceVersion == nil {
                    resourceVersion = try await relist()
                }
                try await watch(from: &resourceVersion)
                failures = 0
            } catch KubeAPIError.gone {
                logger.info("resourceVersion too old, relisting", metadata: ["resource": "\(T.resourceType)"])
                resourceVersion = nil
            } catch KubeAPIError.cancelled {
                return
            } catch {
                if Task.isCancelled { return }
                // A watch that made progress before it broke starts the backoff over: a flaky
                // connection must not push reconnects out to the cap.
                if resourceVersion != versionBefore { failures = 0 }
                failures += 1
                let delay = Self.backoff(failures: failures, cap: maxBackoff)
                logger.warning("\(T.resourceType) watch failed, retrying in \(delay)", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: delay)
            }
        }
    }

    private func relist() async throws(KubeAPIError) -> String {
        state.withLock { $0.lists += 1 }
        let page = try await client.listAll(
            T.resourceType, namespace: namespace, options: ListOptions(labelSelector: labelSelector, fieldSelector: fieldSelector))
        let events = store.replace(with: page.items.map { T(json: $0.json) })
        deliver(events)
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.resourceVersion = page.resourceVersion
            state.synced = true
            defer { state.syncWaiters = [:] }
            return Array(state.syncWaiters.values)
        }
        waiters.forEach { $0.resume() }
        return page.resourceVersion
    }

    private func watch(from resourceVersion: inout String?) async throws {
        let number = state.withLock { state -> Int in
            state.watches += 1
            return state.watches
        }
        let timeout = number == 1 ? firstWatchTimeoutSeconds ?? watchTimeoutSeconds : watchTimeoutSeconds
        let options = WatchOptions(
            resourceVersion: resourceVersion, allowBookmarks: true,
            timeoutSeconds: Int.random(in: timeout...(timeout * 2)),
            labelSelector: labelSelector, fieldSelector: fieldSelector)
        let stream = try await client.watch(T.resourceType, namespace: namespace, options: options)
        for try await event in stream {
            let object = T(json: event.object.json)
            if let version = object.metadata.resourceVersion { resourceVersion = version }
            switch event.type {
            case .bookmark:
                break
            case .added, .modified:
                let old = store.upsert(object)
                deliver([old.map { .updated(old: $0, new: object) } ?? .added(object)])
            case .deleted:
                store.remove(object.key)
                deliver([.deleted(object)])
            }
            let version = resourceVersion
            state.withLock { $0.resourceVersion = version }
        }
        // A clean end (server timeout): reconnect at once from where we are, with a little jitter.
        logger.debug("\(T.resourceType) watch \(number) ended by the server, resuming", metadata: ["resourceVersion": "\(resourceVersion ?? "")"])
        try await Task.sleep(for: .milliseconds(Int.random(in: 0...100)))
    }

    private func deliver(_ events: [InformerEvent<T>]) {
        guard !events.isEmpty else { return }
        let handlers = state.withLock { $0.handlers }
        for event in events { for handler in handlers { handler(event) } }
    }

    static func backoff(failures: Int, cap: Duration) -> Duration {
        let seconds = min(cap.inSeconds, 0.1 * pow(2, Double(min(failures, 20) - 1)))
        return .seconds(fraction: Double.random(in: seconds / 2...seconds))
    }
}
