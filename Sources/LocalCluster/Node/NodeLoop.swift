import Foundation
import KubeAPI
import Logging

/// What the node's control loop acts on, one at a time.
enum NodeCommand: Sendable {
    case pod(InformerEvent<Pod>)
    /// The simulation the Node object asks for now (nil: none).
    case simulation(NodeSimulation?)
    case workerEnded(ObjectKey, serial: Int)
    case stop(CheckedContinuation<Void, Never>)
}

/// The node's control loop: a worker per pod bound here, failure simulation, and shutdown.
///
/// - Online, pod events start, update and stop workers. A pod replaced by another of the same
///   name (a StatefulSet's) waits until the old one's processes are gone.
/// - Partitioned, pod events are ignored (a partitioned kubelet cannot see them), workers keep
///   their processes running and write nothing; when the partition heals, every pod is
///   reconciled with the informer's cache and every status is written again.
/// - Powered off, every worker is stopped with SIGKILL; when power returns, the pods still bound
///   here start again, as after a node restart.
struct NodeLoop: Sendable {
    let context: NodeContext
    let pods: Informer<Pod>
    let commands: AsyncStream<NodeCommand>.Continuation
    let heartbeat: @Sendable () async -> Void
    private var workers: [ObjectKey: PodWorker] = [:]
    private var replacements: [ObjectKey: Pod] = [:]
    private var mode = NodeMode.online
    private var serial = 0

    init(context: NodeContext, pods: Informer<Pod>, commands: AsyncStream<NodeCommand>.Continuation, initialMode: NodeMode,
         heartbeat: @escaping @Sendable () async -> Void) {
        self.context = context
        self.pods = pods
        self.commands = commands
        self.heartbeat = heartbeat
        mode = initialMode
    }

    mutating func run(_ stream: AsyncStream<NodeCommand>) async {
        for await command in stream {
            switch command {
            case .pod(let event):
                if mode == .online { apply(event) }
            case .simulation(let simulation):
                await change(to: NodeMode(simulation))
            case .workerEnded(let key, let serial):
                guard workers[key]?.serial == serial else { continue }
                workers[key] = nil
                if let next = replacements.removeValue(forKey: key) { startWorker(next) }
            case .stop(let done):
                await stopWorkers(kill: mode == .poweredOff)
                done.resume()
                return
            }
        }
    }

    private mutating func apply(_ event: InformerEvent<Pod>) {
        let pod = event.object
        let key = pod.key
        if case .deleted = event {
            if let worker = workers[key], worker.uid == pod.metadata.uid { worker.send(.removedFromAPI(pod)) }
            if replacements[key]?.metadata.uid == pod.metadata.uid { replacements[key] = nil }
            return
        }
        guard pod.spec.nodeName == context.nodeName else {
            workers[key]?.send(.removedFromAPI(nil))
            return
        }
        guard let worker = workers[key] else {
            startWorker(pod)
            return
        }
        if worker.uid == pod.metadata.uid {
            worker.send(.updated(pod))
        } else {
            worker.send(.removedFromAPI(nil))
            replacements[key] = pod
        }
    }

    private mutating func startWorker(_ pod: Pod) {
        serial += 1
        let commands = commands
        let key = pod.key
        let serial = serial
        workers[key] = PodWorker(pod: pod, serial: serial, context: context) { commands.yield(.workerEnded(key, serial: serial)) }
    }

    private mutating func change(to newMode: NodeMode) async {
        guard newMode != mode else { return }
        let old = mode
        mode = newMode
        context.connectivity.mode = newMode
        context.logger.notice("node \(context.nodeName): \(old) -> \(newMode)")
        switch newMode {
        case .poweredOff:
            await stopWorkers(kill: true)
        case .partitioned:
            if old == .poweredOff { reconcile() }
        case .online:
            await heartbeat()
            reconcile()
        }
    }

    /// Brings the workers in line with the informer's cache and has every one write its
    /// status again.
    private mutating func reconcile() {
        let current = pods.store.list()
        let keys = Set(current.map(\.key))
        for (key, worker) in workers where !keys.contains(key) {
            worker.send(.removedFromAPI(nil))
        }
        for pod in current { apply(.updated(old: pod, new: pod)) }
        for worker in workers.values { worker.send(.resync) }
    }

    private mutating func stopWorkers(kill: Bool) async {
        replacements = [:]
        for worker in workers.values { worker.send(.shutdown(kill: kill)) }
        for worker in workers.values { await worker.wait() }
        workers = [:]
    }
}
