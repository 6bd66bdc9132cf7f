import Foundation
import KubeAPI
import Logging

/// The reconcile loop, in the controller-runtime style: informers on the TimesTenClassics and
/// everything they own feed a work queue of pair keys; each key is observed into a
/// `PairSnapshot`, planned by `PairPlanner` and acted on by `PairActor`. Level-triggered and
/// idempotent: every pair is also reconciled again after its pollingInterval.
///
/// This increment builds and keeps the Kubernetes side of a pair (Secrets, Service, StatefulSet,
/// status, edge triggers); driving the agents comes next.
public final class PairReconciler: Sendable {
    public let observer: PairObserver
    let client: KubeClient
    let actor: PairActor
    let queue: WorkQueue<ObjectKey>
    let logger: Logger

    /// `namespace` nil: every namespace.
    public init(client: KubeClient, namespace: String? = nil, logger: Logger = Logger(label: "tenops.reconciler")) {
        self.client = client
        self.logger = logger
        self.observer = PairObserver(client: client, namespace: namespace, logger: logger)
        self.actor = PairActor(client: client, recorder: EventRecorder(client: client, component: "tenops-operator", logger: logger),
                               logger: logger)
        self.queue = WorkQueue()
    }

    /// Runs until the calling Task is cancelled.
    public func run() async {
        registerHandlers()
        await withTaskCancellationHandler {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.observer.runInformers() }
                group.addTask {
                    await self.observer.waitForSync()
                    guard !Task.isCancelled else { return }
                    for key in self.observer.pairs.store.keys.sorted() { await self.queue.add(key) }
                    await self.work()
                }
                await group.waitForAll()
            }
        } onCancel: {
            let queue = self.queue
            Task { await queue.shutDown() }
        }
    }

    private func registerHandlers() {
        let queue = self.queue
        let enqueue: @Sendable (ObjectKey) -> Void = { key in Task { await queue.add(key) } }
        observer.pairs.addHandler { event in enqueue(event.object.key) }
        func owned<T: KubeObject>(_ informer: Informer<T>) {
            informer.addHandler { event in
                var keys: Set<ObjectKey> = []
                if case .updated(let old, _) = event, let key = PairObserver.pairKey(of: old) { keys.insert(key) }
                if let key = PairObserver.pairKey(of: event.object) { keys.insert(key) }
                keys.forEach(enqueue)
            }
        }
        owned(observer.statefulSets)
        owned(observer.services)
        owned(observer.secrets)
        owned(observer.pods)
        owned(observer.claims)
        let observer = self.observer
        observer.nodes.addHandler { event in
            if case .updated(let old, let new) = event, old.readyStatus == new.readyStatus { return }
            observer.pairKeys(onNode: event.object.name).forEach(enqueue)
        }
    }

    private func work() async {
        while let key = await queue.get() {
            let outcome = await reconcile(key)
            switch outcome {
            case .done:
                await queue.forget(key)
            case .requeue(let reason):
                logger.debug("requeue \(key): \(reason)")
                await queue.addRateLimited(key)
            }
            if let object = observer.pairs.store.get(key) {
                await queue.addAfter(key, .seconds(max(1, object.ttspec.pollingInterval)))
            }
            await queue.done(key)
        }
    }

    /// One reconcile of pair `key` from the informer caches.
    @discardableResult
    public func reconcile(_ key: ObjectKey) async -> PairActor.Outcome {
        guard let snapshot = observer.snapshot(key) else { return .done }
        let plan = PairPlanner.plan(snapshot)
        if !plan.actions.isEmpty {
            logger.debug("reconcile \(key): \(plan.actions.map { $0.description }.joined(separator: ", "))")
        }
        return await actor.perform(plan, on: snapshot)
    }
}
