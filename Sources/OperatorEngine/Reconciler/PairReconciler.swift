import Foundation
import KubeAPI
import Logging
import Synchronization

/// The reconcile loop, in the controller-runtime style: informers on the TimesTenClassics and
/// everything they own, and each agent's status stream, feed a work queue of pair keys. Each
/// key is observed (a `PairSnapshot` and the agents' views), decided (`PairPlanner` for the
/// Kubernetes side, `PairStateMachine` for the pair) and acted on (`PairActor` through the API,
/// `PairAgentActor` through the agents). Level-triggered and idempotent: a pair is reconciled
/// on every event, at the time its next timeout falls due, once per pollingInterval while its
/// agents report drift (lag), and every `fullResync` whatever happened (`ResyncSchedule`).
public final class PairReconciler: Sendable {
    public let observer: PairObserver
    public let agents: PairAgents
    let client: KubeClient
    let actor: PairActor
    let agentActor: PairAgentActor
    let queue: WorkQueue<ObjectKey>
    let written: WrittenStatuses
    let resync: SharedResyncSchedule
    let logger: Logger

    /// The default period of a full reconcile of every pair, events or not.
    public static let defaultFullResync: TimeInterval = 300

    /// `namespace` nil: every namespace.
    public init(
        client: KubeClient, namespace: String? = nil, fullResync: TimeInterval = PairReconciler.defaultFullResync,
        logger: Logger = Logger(label: "tenops.reconciler")
    ) {
        self.client = client
        self.logger = logger
        self.observer = PairObserver(client: client, namespace: namespace, logger: logger)
        let queue = WorkQueue<ObjectKey>(rateLimiter: RateLimiter(baseDelay: .milliseconds(50), maxDelay: .seconds(5)))
        self.queue = queue
        let resync = SharedResyncSchedule(fullResync: fullResync)
        self.resync = resync
        self.agents = PairAgents(logger: logger, onDrift: { pair in resync.drifted(pair) }) { pair in
            Task { await queue.add(pair) }
        }
        let written = WrittenStatuses()
        self.written = written
        let recorder = EventRecorder(client: client, component: "tenops-operator", logger: logger)
        self.actor = PairActor(client: client, recorder: recorder, logger: logger) { object, replaced in
            written.remember(object, replacing: replaced)
        }
        self.agentActor = PairAgentActor(client: client, agents: agents, recorder: recorder, logger: logger)
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
                group.addTask { await self.resyncWhenDue() }
                await group.waitForAll()
            }
        } onCancel: {
            let queue = self.queue
            Task { await queue.shutDown() }
        }
        agents.stopAll(except: []) { _ in true }
    }

    private func registerHandlers() {
        let queue = self.queue
        let enqueue: @Sendable (ObjectKey) -> Void = { key in Task { await queue.add(key) } }
        let written = self.written
        observer.pairs.addHandler { event in
            // Once the cache holds what we wrote (or newer), the copy kept for it can go.
            if case .deleted = event { written.forget(event.object.key) } else { _ = written.fresher(event.object) }
            enqueue(event.object.key)
        }
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
            let reconcileStarted = ContinuousClock.now
            let outcome = await reconcile(key)
            EngineMetrics.reconciled(since: reconcileStarted)
            switch outcome {
            case .done:
                await queue.forget(key)
            case .requeue(let reason):
                logger.debug("requeue \(key): \(reason)")
                await queue.addRateLimited(key)
            }
            if let cached = observer.pairs.store.get(key) {
                let object = written.fresher(cached)
                let settled = outcome == .done && object.status.highLevelState == PairState.normal.rawValue
                    && object.status.lastAction?.isRunning != true
                let interval = TimeInterval(object.ttspec.pollingInterval)
                resync.reconciled(key, interval: interval, settled: settled, at: Date())
            }
            await queue.done(key)
        }
    }

    /// Hands the queue the pairs that `ResyncSchedule` says are due, until cancelled.
    private func resyncWhenDue() async {
        while !Task.isCancelled {
            let now = Date()
            let (due, wait) = resync.takeDue(at: now)
            for key in due { await queue.add(key) }
            do { try await Task.sleep(for: .milliseconds(Int64(wait * 1000))) } catch { return }
        }
    }

    /// One reconcile of pair `key` from the informer caches and the agents' views.
    @discardableResult
    public func reconcile(_ key: ObjectKey) async -> PairActor.Outcome {
        guard var snapshot = observer.snapshot(key) else {
            forget(key)
            return .done
        }
        snapshot.object = written.fresher(snapshot.object)
        let plan = PairPlanner.plan(snapshot)
        guard plan.agentsMayProceed else {
            if !plan.actions.isEmpty {
                logger.debug("reconcile \(key): \(plan.actions.map { $0.description }.joined(separator: ", "))")
            }
            wakeStreams(of: snapshot)
            return await actor.perform(plan, on: snapshot)
        }
        // A manual action is judged on fresh word from both agents, not on a resting stream.
        if Self.manualActionPending(snapshot.object) { wakeStreams(of: snapshot) }
        let views = watchAgents(of: snapshot)
        let object = snapshot.object
        let now = snapshot.now
        var status = plan.status ?? object.status
        var kubeActions = plan.actions.filter { if case .updateStatus = $0 { false } else { true } }

        // Before the first database exists: the metadata must be there to build it from.
        var hasEpilog = false
        if PairState(statusValue: status.highLevelState) == .initializing {
            let metadata = await PairMetadata.check(object, client: client)
            hasEpilog = metadata.hasEpilog
            let (changed, message) = PairMetadata.record(metadata, in: &status, now: now)
            if changed, let message { kubeActions.append(.event(PlannedEvent(.warning, PlannedEvent.Reason.error, message))) }
            if metadata.problem != nil {
                if status != object.status { kubeActions.insert(.updateStatus(PairPlanner.stamped(status, now: now)), at: 0) }
                return await actor.perform(PairPlan(actions: kubeActions), on: snapshot)
            }
        }

        let settings = PairObservationBuilder.settings(object.ttspec, hasEpilog: hasEpilog)
        let observation: PairObservation
        do {
            observation = try PairObservationBuilder.observe(snapshot, status: status, views: views, settings: settings, now: now)
        } catch {
            logger.debug("reconcile \(key): \(error)")
            wakeStreams(of: snapshot)
            if status != object.status { kubeActions.insert(.updateStatus(PairPlanner.stamped(status, now: now)), at: 0) }
            _ = await actor.perform(PairPlan(actions: kubeActions), on: snapshot)
            await queue.addAfter(key, .milliseconds(200))
            return .done
        }
        let step = manualActionStep(object: object, status: status, observation: observation, views: views)
        let decision = step.decision
        status = PairStatusRecorder.apply(decision, to: status, snapshot: snapshot, views: views, now: now)
        if let record = step.record { status.lastAction = record }
        if let rejected = step.rejectedID { status.rejectedActionId = rejected }
        if let poll = step.pollAfter { await queue.addAfter(key, .milliseconds(max(10, Int64(poll * 1000)))) }
        if status != object.status { kubeActions.insert(.updateStatus(PairPlanner.stamped(status, now: now)), at: 0) }
        kubeActions += decision.events.map { event in
            .event(PlannedEvent(event.kind == .warning ? .warning : .normal, event.reason, event.message))
        }
        // Readiness and status reads change no database: no log line, no immediate re-decision
        // (a catchup paces its reads with pollAfter).
        let readinessOnly = decision.actions.allSatisfy { action in
            switch action {
            case .setActive, .clearActive, .readStatus: true
            default: false
            }
        }
        if decision.status.stateChanged || !readinessOnly {
            let actions = decision.actions.isEmpty ? "" : "; actions: " + decision.actions.map(\.description).joined(separator: ", ")
            let transition = decision.status.stateChanged ? "\(observation.state.rawValue) -> \(decision.state.rawValue)" : decision.state.rawValue
            logger.info("\(key) \(transition): \(decision.note.isEmpty ? "acting" : decision.note)\(actions)")
        }
        let outcome = await actor.perform(PairPlan(actions: kubeActions), on: snapshot)
        let (active, standby) = (decision.status.intendedActive, decision.status.intendedStandby)
        let atRest = outcome == .done && StandbyRest.mayRest(StandbyRest.Inputs(
            observed: observation.state, decided: decision.state, decisionActions: decision.actions,
            manualAction: status.lastAction?.isRunning == true, active: views[active], standby: views[standby],
            standbyRestarts: snapshot.pods[standby].flatMap(Self.restarts)))
        if atRest { restStandby(standby, on: active, of: snapshot) } else { wakeStreams(of: snapshot) }
        guard outcome == .done else { return outcome }
        EngineMetrics.recorded(key, status: status, previous: object.status, events: decision.events)
        if let recheck = decision.recheckAt {
            await queue.addAfter(key, .milliseconds(max(10, Int64(recheck.timeIntervalSince(now) * 1000) + 10)))
        }
        if !decision.actions.isEmpty {
            let context = PairAgentActor.Context(pair: object, snapshot: snapshot)
            if let failure = await agentActor.perform(decision.actions, context: context) {
                return .requeue("\(failure)")
            }
        }
        if decision.status.stateChanged || !readinessOnly {
            // Decide again at once on what the actions left (the next step of a failover).
            await queue.add(key)
        }
        return .done
    }

    /// The state machine's decision, and what a manual action (annotation `tenops.io/action`)
    /// makes of it.
    private func manualActionStep(
        object: TimesTenClassic, status: TimesTenClassicStatus, observation: PairObservation, views: [String: AgentView]
    ) -> ManualActionStep {
        let machine = PairStateMachine.decide(observation)
        let request = object.metadata.annotations[ManualActionRequest.annotation].map {
            ManualActionRequest.parse($0, pods: PairNames(object).pods)
        }
        let last = status.lastAction
        guard request != nil || last?.isRunning == true else { return ManualActionStep(decision: machine) }
        // The copy or re-attachment the action waits for is on the pod that is (or is becoming) the standby.
        let view = views[machine.status.intendedStandby]
        let started = last?.isRunning == true ? last?.startTime : nil
        let job = view?.job.flatMap { job -> AgentJobStatus? in
            guard let started, let jobStart = job.startedAt else { return job }
            return jobStart >= started.addingTimeInterval(-1) ? job : nil
        }
        return ManualActionPlanner.step(
            request: request, last: last, observation: observation, machine: machine, job: job,
            jobError: job == nil ? nil : view?.jobError, rejected: status.rejectedActionId)
    }

    /// Watches the agent of each of the pair's pods that has an address; returns the views by pod name.
    private func watchAgents(of snapshot: PairSnapshot) -> [String: AgentView] {
        let names = snapshot.names
        var keep: Set<ObjectKey> = []
        var views: [String: AgentView] = [:]
        let tls: TLSSettings?
        do {
            let certificates = try PairCertificates.load(caSecret: snapshot.caSecret, for: names).0
            tls = try agents.tls(for: snapshot.object.key, certificates: certificates)
        } catch {
            logger.warning("\(snapshot.object.key): no client identity for the agents: \(error)")
            tls = nil
        }
        let spec = snapshot.object.ttspec
        let timeouts = AgentClient.Timeouts(
            getSeconds: spec.agentGetTimeout, postSeconds: spec.agentPostTimeout, asyncSeconds: spec.agentAsyncTimeout, connect: .seconds(2))
        for podName in names.pods {
            let key = ObjectKey(namespace: names.namespace, name: podName)
            guard let pod = snapshot.pods[podName], let uid = pod.uid else { continue }
            keep.insert(key)
            if let tls, let address = pod.status.podIP {
                agents.watch(key, of: snapshot.object.key, uid: uid, client: AgentClient(host: address, port: PairNames.agentPort, tls: tls, timeouts: timeouts))
            }
            agents.observeRestarts(key, uid: uid, count: Self.restarts(pod))
            if let view = agents.view(key), view.podUID == uid { views[podName] = view }
        }
        agents.stopAll(except: keep) { $0.namespace == names.namespace && names.pods.contains($0.name) }
        return views
    }

    /// The pair's `tenops.io/action` asks for an action not yet taken up or refused.
    static func manualActionPending(_ object: TimesTenClassic) -> Bool {
        guard let text = object.metadata.annotations[ManualActionRequest.annotation] else { return false }
        guard case .success(let asked) = ManualActionRequest.parse(text, pods: PairNames(object).pods) else { return false }
        return asked.id != object.status.lastAction?.id && asked.id != object.status.rejectedActionId
    }

    static func restarts(_ pod: Pod) -> Int? { pod.status.containerStatuses.first { $0.name == "tt" }?.restartCount }

    /// Lets the standby's stream rest on the active's (``StandbyRest``); the active's stays open.
    private func restStandby(_ standby: String, on active: String, of snapshot: PairSnapshot) {
        let namespace = snapshot.names.namespace
        agents.rest(ObjectKey(namespace: namespace, name: standby), vouchedBy: ObjectKey(namespace: namespace, name: active))
        agents.wake(ObjectKey(namespace: namespace, name: active), why: "it is the active")
    }

    /// Wakes every resting stream of the pair: it is not at rest.
    private func wakeStreams(of snapshot: PairSnapshot) {
        let names = snapshot.names
        for pod in names.pods { agents.wake(ObjectKey(namespace: names.namespace, name: pod), why: "\(snapshot.object.key) is not at rest") }
    }

    private func forget(_ key: ObjectKey) {
        let names = PairNames(name: key.name, namespace: key.namespace ?? "default")
        agents.stopAll(except: []) { $0.namespace == names.namespace && names.pods.contains($0.name) }
        agents.forget(pair: key)
        resync.forget(key)
        written.forget(key)
        EngineMetrics.forget(key)
    }
}

/// The statuses this engine wrote, until the informer catches up: a reconcile that follows its
/// own write at once must decide from what it wrote, not from the cache's older copy.
final class WrittenStatuses: Sendable {
    /// Per pair: the versions that our latest write supersedes (the one it replaced, and our
    /// own earlier writes on top of it), and that write.
    private let entries = Mutex<[ObjectKey: (superseded: Set<String>, object: TimesTenClassic)]>([:])

    func remember(_ object: TimesTenClassic, replacing resourceVersion: String?) {
        guard let resourceVersion else { return }
        entries.withLock { entries in
            var superseded: Set<String> = [resourceVersion]
            if let previous = entries[object.key], previous.object.resourceVersion == resourceVersion {
                superseded.formUnion(previous.superseded)
            }
            entries[object.key] = (superseded, object)
        }
    }

    /// The written object while the cache holds a version it supersedes; else the cache's.
    func fresher(_ cached: TimesTenClassic) -> TimesTenClassic {
        entries.withLock { entries in
            guard let entry = entries[cached.key] else { return cached }
            if let version = cached.resourceVersion, entry.superseded.contains(version) { return entry.object }
            entries[cached.key] = nil
            return cached
        }
    }

    func forget(_ key: ObjectKey) { _ = entries.withLock { $0.removeValue(forKey: key) } }
}
