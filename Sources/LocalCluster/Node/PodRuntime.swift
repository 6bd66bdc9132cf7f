import Foundation
import KubeAPI
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Whether the node talks to the API server, or plays a failure (see `NodeSimulation`).
enum NodeMode: Sendable, Equatable {
    case online
    /// Heartbeats and every API write stop; processes keep running.
    case partitioned
    /// Every process is killed and heartbeats stop.
    case poweredOff

    init(_ simulation: NodeSimulation?) {
        switch simulation {
        case nil: self = .online
        case .partition: self = .partitioned
        case .poweroff: self = .poweredOff
        }
    }
}

/// The node's mode, read by everything that writes to the API.
final class NodeConnectivity: Sendable {
    private let current = Mutex(NodeMode.online)
    var mode: NodeMode {
        get { current.withLock { $0 } }
        set { current.withLock { $0 = newValue } }
    }
    var canWrite: Bool { mode == .online }
}

/// Everything a pod's runtime needs from its node.
struct NodeContext: Sendable {
    let nodeName: String
    let nodeAddress: String
    let client: KubeClient
    let layout: NodeLayout
    let addresses: PodAddressBook
    let running: RunningInstances
    let connectivity: NodeConnectivity
    let restartBackoff: RestartBackoff
    /// The longest a node that stops waits for SIGTERM to work before it sends SIGKILL.
    let shutdownGracePeriod: Duration
    let baseEnvironment: [(String, String)]
    let objects: any ReferencedObjects
    let logger: Logger
}

/// What happens to a pod's runtime.
enum PodEvent: Sendable {
    /// The pod as the API has it now.
    case updated(Pod)
    /// The pod object is gone (or another pod took its name): stop it and forget it. The pod is
    /// its last state, when known.
    case removedFromAPI(Pod?)
    /// The node stops or loses power: stop the processes (at once with `kill`), write nothing.
    case shutdown(kill: Bool)
    /// Write the status again even if it did not change (the API was unreachable).
    case resync
    case exited(container: String, generation: Int, status: ExitStatus, at: Date)
    case probe(container: String, generation: Int, kind: ProbeKind, success: Bool)
    case startDue(container: String, generation: Int)
    case prepareDue
    case graceExpired
    case reportDue
}

/// One pod's runtime, on a task of its own; `send` hands it events in order.
final class PodWorker: Sendable {
    let key: ObjectKey
    let uid: String
    /// Tells this worker apart from a later one for the same pod.
    let serial: Int
    private let inbox: AsyncStream<PodEvent>.Continuation
    private let task: Task<Void, Never>

    init(pod: Pod, serial: Int, context: NodeContext, onEnd: @escaping @Sendable () -> Void) {
        self.serial = serial
        key = pod.key
        uid = pod.metadata.uid ?? ""
        let (events, inbox) = AsyncStream.makeStream(of: PodEvent.self)
        self.inbox = inbox
        let runtime = PodRuntime(pod: pod, context: context, inbox: inbox)
        task = Task {
            var runtime = runtime
            await runtime.run(events)
            inbox.finish()
            onEnd()
        }
    }

    func send(_ event: PodEvent) { inbox.yield(event) }
    func wait() async { await task.value }
}

/// The life of one pod on this node, driven by one event at a time: it prepares the pod (its
/// IP, claims and volumes), starts every container as a process group, restarts them by the
/// restart policy with crash-loop backoff, runs their probes, reports the pod's status after
/// every change, and on deletion stops the processes (SIGTERM, the grace period, SIGKILL)
/// before it removes the pod object.
struct PodRuntime: Sendable {
    private enum Ending: Equatable {
        /// The pod is being deleted: remove the object once its processes are gone.
        case deleting
        /// The object is gone already.
        case forgetting
        /// The node stops: keep the pod and its files.
        case shuttingDown
    }

    let context: NodeContext
    let inbox: AsyncStream<PodEvent>.Continuation
    let key: ObjectKey
    let uid: String
    private var pod: Pod
    private var slots: [ContainerSlot]
    private let podDirectory: String
    private var podIP: String?
    private var volumes: [String: String]?
    private var setupRetry = RestartBackoff.setupRetry
    private var startTime: Date?
    /// A pod that had ended (Succeeded or Failed) before this node took it up: left as it is.
    private var dormant = false
    private var ending: Ending?
    /// Pending retries of the pod's preparation and of its status write.
    private var timers: [PodTimer: Task<Void, Never>] = [:]
    private enum PodTimer { case prepare, report }
    private var lastWritten: JSONObject?

    init(pod: Pod, context: NodeContext, inbox: AsyncStream<PodEvent>.Continuation) {
        self.context = context
        self.inbox = inbox
        self.pod = pod
        key = pod.key
        uid = pod.metadata.uid ?? ""
        podDirectory = context.layout.podDirectory(namespace: pod.metadata.namespace ?? "", pod: pod.metadata.name ?? "") ?? ""
        let previous = pod.status.containerStatuses
        let policy = pod.spec.restartPolicy ?? "Always"
        let now = Date()
        slots = pod.spec.containers.map { spec in
            ContainerSlot(spec: spec, previous: previous.first { $0.name == spec.name }, restartPolicy: policy,
                          backoff: context.restartBackoff, now: now)
        }
        startTime = pod.status.startTime
    }

    private var namespace: String { pod.metadata.namespace ?? "default" }
    private var podName: String { pod.metadata.name ?? "" }
    private var restartPolicy: String { pod.spec.restartPolicy ?? "Always" }
    private var logger: Logger {
        var logger = context.logger
        logger[metadataKey: "pod"] = "\(key)"
        return logger
    }

    mutating func run(_ events: AsyncStream<PodEvent>) async {
        await begin()
        if await !finishIfStopped() {
            for await event in events {
                await handle(event)
                if await finishIfStopped() { break }
                await reportStatus()
            }
        }
        timers.values.forEach { $0.cancel() }
        for index in slots.indices {
            slots[index].stopProbes()
            slots[index].cancelTimer()
        }
    }

    // MARK: Events

    private mutating func begin() async {
        guard !podDirectory.isEmpty else {
            logger.warning("a pod name that cannot be a directory name; not running it")
            dormant = true
            return
        }
        if pod.metadata.deletionTimestamp != nil {
            beginEnding(.deleting, kill: false)
            return
        }
        if ["Succeeded", "Failed"].contains(pod.status.phase ?? "") {
            dormant = true
            return
        }
        await prepareAndStart()
        await reportStatus()
    }

    private mutating func handle(_ event: PodEvent) async {
        switch event {
        case .updated(let updated):
            pod = updated
            if updated.metadata.deletionTimestamp != nil { beginEnding(.deleting, kill: false) }
        case .removedFromAPI(let removed):
            if let removed, removed.metadata.uid == uid { pod = removed }
            beginEnding(.forgetting, kill: false)
        case .shutdown(let kill):
            beginEnding(.shuttingDown, kill: kill)
        case .resync:
            lastWritten = nil
        case .exited(let name, let generation, let status, let at):
            guard let index = slotIndex(name, generation) else { return }
            await containerEnded(index, Termination(status, startedAt: slots[index].startedAt, finishedAt: at))
        case .probe(let name, let generation, let kind, let success):
            guard ending == nil, let index = slotIndex(name, generation), slots[index].leader != nil else { return }
            probeResult(index, kind: kind, success: success)
        case .startDue(let name, let generation):
            guard ending == nil, let index = slotIndex(name, generation), slots[index].leader == nil, !slots[index].finished else { return }
            await startContainer(index)
        case .prepareDue:
            guard ending == nil, volumes == nil else { return }
            await prepareAndStart()
        case .graceExpired:
            for slot in slots { slot.leader?.signalGroup(SIGKILL) }
        case .reportDue:
            break
        }
    }

    private func slotIndex(_ name: String, _ generation: Int) -> Int? {
        slots.firstIndex { $0.name == name && $0.generation == generation }
    }

    private func schedule(_ event: PodEvent, after delay: Duration) -> Task<Void, Never> {
        let inbox = inbox
        return Task {
            try? await Task.sleep(for: delay)
            if !Task.isCancelled { inbox.yield(event) }
        }
    }

    // MARK: Starting

    /// The pod IP, the pod's directory, its claims and volumes; then every container.
    private mutating func prepareAndStart() async {
        do {
            podIP = try context.addresses.address(for: key)
            try NodeLayout.makeDirectory(podDirectory)
            if context.connectivity.canWrite {
                let binder = ClaimBinder(client: context.client, nodeName: context.nodeName)
                for claim in pod.spec.volumes.compactMap(\.persistentVolumeClaimName) {
                    try await binder.bind(namespace: namespace, claim: claim)
                }
            }
            let facts = PodFacts(pod: pod, podIP: podIP ?? "", hostIP: context.nodeAddress, nodeName: context.nodeName)
            volumes = try await PodVolumes(layout: context.layout, podDirectory: podDirectory, facts: facts, objects: context.objects).prepare()
        } catch {
            logger.info("the pod cannot start yet: \(error)")
            for index in slots.indices where !slots[index].finished {
                slots[index].report.state = .waiting(reason: "ContainerCreating", message: "\(error)")
            }
            timers[.prepare] = schedule(.prepareDue, after: max(setupRetry.delay(afterRunning: .zero), .seconds(1)))
            return
        }
        setupRetry = .setupRetry
        startTime = startTime ?? Date()
        for index in slots.indices where !slots[index].finished && slots[index].leader == nil {
            await startContainer(index)
        }
    }

    private mutating func startContainer(_ index: Int) async {
        guard let volumes, let podIP else { return }
        slots[index].generation += 1
        slots[index].cancelTimer()
        let spec = slots[index].spec
        let facts = PodFacts(pod: pod, podIP: podIP, hostIP: context.nodeAddress, nodeName: context.nodeName)
        let environment: ProcessEnvironment
        let mounts: [String: String]
        do {
            mounts = try PodVolumes.mounts(of: spec, volumes: volumes)
            environment = try await ContainerEnvironment.build(container: spec, facts: facts, base: context.baseEnvironment,
                                                               mounts: mounts, objects: context.objects)
        } catch {
            let reason = error is VolumeSetupError ? "ContainerCreating" : "CreateContainerConfigError"
            logger.info("container \(spec.name): \(reason): \(error)")
            slots[index].report.state = .waiting(reason: reason, message: "\(error)")
            let delay = max(slots[index].setupRetry.delay(afterRunning: .zero), .seconds(1))
            slots[index].timer = schedule(.startDue(container: spec.name, generation: slots[index].generation), after: delay)
            return
        }
        slots[index].setupRetry = .setupRetry
        if slots[index].hasRun { slots[index].report.restartCount += 1 }
        slots[index].hasRun = true
        let instance = slots[index].report.restartCount
        let workingDirectory = Self.workingDirectory(of: spec, mounts: mounts, podDirectory: podDirectory)
        let now = Date()
        let argv = ContainerCommand.argv(of: spec, environment: environment)
        guard let program = argv.first,
              let executable = ContainerCommand.resolve(program, searchPath: environment["PATH"] ?? "", workingDirectory: workingDirectory)
        else {
            let message = argv.isEmpty ? "the container has no command" : "exec: \"\(argv[0])\": executable file not found in $PATH"
            await containerEnded(index, Termination(exitCode: 127, reason: "StartError", message: message, startedAt: nil, finishedAt: now))
            return
        }
        guard let logDirectory = context.layout.logDirectory(pod: podDirectory, container: spec.name) else { return }
        let logs = ContainerLogFiles(directory: logDirectory)
        let leader: GroupLeader
        do {
            try logs.prepare(for: instance)
            let inbox = inbox
            let generation = slots[index].generation
            let request = SpawnRequest(executable: executable, arguments: argv, environment: environment.pairs,
                                       workingDirectory: workingDirectory, outputPath: logs.path(instance: instance))
            leader = try ProcessSpawner.spawn(request) { status in
                inbox.yield(.exited(container: spec.name, generation: generation, status: status, at: Date()))
            }
        } catch {
            await containerEnded(index, Termination(exitCode: 128, reason: "StartError", message: "\(error)", startedAt: nil, finishedAt: now))
            return
        }
        logger.info("container \(spec.name) started", metadata: ["pid": "\(leader.pid)", "restartCount": "\(instance)"])
        ProcessRecords.write(leader, to: context.layout.processRecord(pod: podDirectory, container: spec.name))
        context.running.started(namespace, podName, spec.name, instance: instance)
        slots[index].leader = leader
        slots[index].startedAt = now
        slots[index].report.state = .running(startedAt: now)
        slots[index].report.containerID = "\(ProcessRuntime.scheme)\(leader.pid)"
        let runner = ProbeRunner(container: spec, podIP: podIP, environment: environment, workingDirectory: workingDirectory)
        slots[index].trackers = [:]
        if slots[index].probe(.startup) != nil {
            slots[index].report.started = false
            startProbes([.startup], index: index, runner: runner)
        } else {
            slots[index].report.started = true
            startProbes([.liveness, .readiness], index: index, runner: runner)
        }
        slots[index].report.ready = slots[index].isReady
    }

    /// `workingDir` mapped through the volume mounts; the pod's directory when it is not set or
    /// not inside a volume.
    static func workingDirectory(of spec: Container, mounts: [String: String], podDirectory: String) -> String {
        guard let wanted = spec.json["workingDir"]?.stringValue, !wanted.isEmpty else { return podDirectory }
        for (mountPath, real) in mounts.sorted(by: { $0.key.count > $1.key.count })
        where wanted == mountPath || wanted.hasPrefix(mountPath + "/") {
            return real + wanted.dropFirst(mountPath.count)
        }
        return podDirectory
    }

    // MARK: Probes

    private mutating func startProbes(_ kinds: [ProbeKind], index: Int, runner: ProbeRunner) {
        let name = slots[index].name
        let generation = slots[index].generation
        for kind in kinds {
            guard let probe = slots[index].probe(kind) else { continue }
            slots[index].trackers[kind] = ProbeTracker(kind: kind, successThreshold: probe.successThreshold,
                                                       failureThreshold: probe.failureThreshold)
            let inbox = inbox
            slots[index].probeTasks.append(Task {
                try? await Task.sleep(for: probe.initialDelay)
                while !Task.isCancelled {
                    let success = await runner.run(probe)
                    if Task.isCancelled { break }
                    inbox.yield(.probe(container: name, generation: generation, kind: kind, success: success))
                    try? await Task.sleep(for: probe.period)
                }
            })
        }
        slots[index].probeRunner = runner
    }

    private mutating func probeResult(_ index: Int, kind: ProbeKind, success: Bool) {
        guard var tracker = slots[index].trackers[kind] else { return }
        let verdict = tracker.record(success: success)
        slots[index].trackers[kind] = tracker
        switch (kind, verdict) {
        case (.startup, .passed):
            slots[index].stopProbes()
            slots[index].report.started = true
            if let runner = slots[index].probeRunner { startProbes([.liveness, .readiness], index: index, runner: runner) }
        case (.startup, .failed), (.liveness, .failed):
            logger.info("container \(slots[index].name) failed its \(kind.rawValue) probe; restarting it")
            slots[index].stopProbes()
            if let leader = slots[index].leader { stop(leader, grace: gracePeriod(nodeStopping: false), kill: false) }
        default:
            break
        }
        slots[index].report.ready = slots[index].isReady
    }

    // MARK: Exits

    private mutating func containerEnded(_ index: Int, _ termination: Termination) async {
        let name = slots[index].name
        slots[index].stopProbes()
        if slots[index].leader != nil {
            ProcessRecords.remove(context.layout.processRecord(pod: podDirectory, container: name))
            context.running.stopped(namespace, podName, name)
            logger.info("container \(name) ended", metadata: ["exitCode": "\(termination.exitCode)", "reason": "\(termination.reason)"])
        }
        slots[index].leader = nil
        slots[index].report.ready = false
        slots[index].report.started = false
        slots[index].report.containerID = nil
        guard ending == nil, ContainerSlot.restarts(policy: restartPolicy, exitCode: termination.exitCode) else {
            slots[index].report.state = .terminated(termination)
            slots[index].finished = ending == nil
            return
        }
        slots[index].report.lastTermination = termination
        let ranFor = termination.startedAt.map { Duration.seconds(fraction: max(0, termination.finishedAt.timeIntervalSince($0))) } ?? .zero
        let delay = slots[index].backoff.delay(afterRunning: ranFor)
        if delay == .zero {
            await startContainer(index)
            return
        }
        slots[index].report.state = .waiting(
            reason: "CrashLoopBackOff",
            message: "back-off \(Int(delay.inSeconds))s restarting failed container=\(name) pod=\(podName)_\(namespace)(\(uid))")
        slots[index].timer = schedule(.startDue(container: name, generation: slots[index].generation), after: delay)
    }

    // MARK: Ending

    /// deletionGracePeriodSeconds, else the pod's terminationGracePeriodSeconds, else 30 s;
    /// when `nodeStopping`, at most the node's shutdown grace period.
    private func gracePeriod(nodeStopping: Bool) -> Duration {
        let seconds = pod.metadata.json["deletionGracePeriodSeconds"]?.intValue.map(Int.init)
            ?? pod.spec.terminationGracePeriodSeconds ?? 30
        let grace = Duration.seconds(min(max(seconds, 0), 86_400 * 365))
        return nodeStopping ? min(grace, context.shutdownGracePeriod) : grace
    }

    /// SIGTERM to the group, SIGKILL after `grace` if it is still there (or SIGKILL at once).
    private func stop(_ leader: GroupLeader, grace: Duration, kill: Bool) {
        guard !kill, grace > .zero else {
            leader.signalGroup(SIGKILL)
            return
        }
        leader.signalGroup(SIGTERM)
        Task {
            try? await Task.sleep(for: grace)
            leader.signalGroup(SIGKILL)
        }
    }

    private mutating func beginEnding(_ kind: Ending, kill: Bool) {
        if let current = ending {
            if current == .deleting && kind == .forgetting { ending = .forgetting }
            if kill { for slot in slots { slot.leader?.signalGroup(SIGKILL) } }
            return
        }
        ending = kind
        timers.values.forEach { $0.cancel() }
        timers = [:]
        let grace = gracePeriod(nodeStopping: kind == .shuttingDown)
        for index in slots.indices {
            slots[index].stopProbes()
            slots[index].cancelTimer()
            if let leader = slots[index].leader { stop(leader, grace: grace, kill: kill) }
        }
        logger.info("stopping the pod's processes", metadata: ["reason": "\(kind)", "grace": "\(grace)"])
    }

    /// Once the pod is ending and every process is gone: removes its files, then the pod object
    /// (when deleting). True when the runtime is done.
    private mutating func finishIfStopped() async -> Bool {
        guard ending != nil, slots.allSatisfy({ $0.leader == nil }) else { return false }
        for slot in slots { context.running.stopped(namespace, podName, slot.name) }
        for slot in slots { context.running.stopped(namespace, podName, slot.name) }
        switch ending {
        case .deleting?:
            removeFiles()
            if context.connectivity.canWrite { await deleteObject() }
        case .forgetting?:
            removeFiles()
        case .shuttingDown?, nil:
            break
        }
        return true
    }

    private func deleteObject() async {
        for attempt in 1...3 {
            do {
                try await context.client.delete(Pod.self, name: podName, namespace: namespace,
                                                options: DeleteOptions(preconditionUID: uid, gracePeriodSeconds: 0))
                logger.info("pod removed")
                return
            } catch {
                // NotFound: gone already; Conflict: another pod by that name, not ours to delete.
                if error.isNotFound || error.isConflict { return }
                logger.warning("cannot remove the pod object (attempt \(attempt)): \(error)")
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    private func removeFiles() {
        if !podDirectory.isEmpty { try? FileManager.default.removeItem(atPath: podDirectory) }
        context.addresses.release(key)
    }

    // MARK: Status

    /// Writes the pod's status when it changed since the last write, as a merge patch on the
    /// status subresource. Condition types the node does not own are left as they are.
    private mutating func reportStatus() async {
        guard ending == nil, !dormant, context.connectivity.canWrite else { return }
        var existing = pod.status.conditions
        if let written = lastWritten?["conditions"]?.arrayValue?.compactMap({ $0.objectValue.map(Condition.init(json:)) }) {
            existing = existing.filter { !PodStatusBuilder.ownConditions.contains($0.type) } + written
        }
        let status = PodStatusBuilder.status(
            containers: slots.map(\.report), restartPolicy: restartPolicy, existingConditions: existing, podIP: podIP,
            hostIP: context.nodeAddress, startTime: startTime, now: Date())
        guard status != lastWritten else { return }
        do {
            _ = try await context.client.patch(Pod.self, name: podName, namespace: namespace, patchType: .merge,
                                               patch: ["status": .object(status)], subresource: "status")
            lastWritten = status
        } catch {
            if error.isNotFound {
                lastWritten = status  // gone: the informer says so next
                return
            }
            logger.warning("cannot write the pod status: \(error)")
            timers[.report]?.cancel()
            timers[.report] = schedule(.reportDue, after: .seconds(1))
        }
    }
}
