import Agent
import Foundation
import KubeAPI
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// SIMULATED: the scale benchmark's kubelet for nodes that run no processes (DESIGN.md allows
/// simulated pods in the scale benchmark only; the nodes, their pods' container IDs and their OS
/// image say "simulated"). It does what a kubelet does through the API, and nothing more:
/// - registers the Nodes `simulated-node-N` (Ready) and renews their Leases in kube-node-lease;
/// - for each pod scheduled to them: binds its claims (Bound, as a local-volume provisioner
///   does), writes its Secret volumes out as files, starts the pod's agent
///   (`SimulatedAgents`: the real agent endpoint over a simulated database) on a pod IP of its
///   own from 127.200.0.0/13 (real local pods use 127.N.0.x), and reports it Running;
/// - probes readiness as the pod's readiness probe does (`test -f /tt/agent/ready`, every
///   second): only the pod the operator has told it is the active is Ready;
/// - confirms the deletion of a pod being deleted once its agent is stopped.
final class SimulatedNodes: Sendable {
    static let names = ["simulated-node-0", "simulated-node-1", "simulated-node-2"]
    /// Where the simulated nodes' own addresses live; no process listens there.
    static func nodeAddress(_ index: Int) -> String { "127.208.0.\(index + 1)" }
    static let leaseNamespace = "kube-node-lease"
    static let leaseDurationSeconds = 40
    static let heartbeatInterval: Duration = .seconds(10)
    static let probeInterval: Duration = .seconds(1)

    /// A pod this kubelet runs.
    struct RunningPod: Sendable {
        var uid: String
        var address: String
        var hostIP: String
        var startedAt: Date
        /// The readiness file of the pod's /tt.
        var readyFile: String
        /// What the pod's status says now.
        var ready = false
    }

    let client: KubeClient
    let agents: SimulatedAgents
    let directory: String
    let pods: Informer<Pod>
    private let queue = WorkQueue<ObjectKey>(rateLimiter: RateLimiter(baseDelay: .milliseconds(100), maxDelay: .seconds(5)))
    private let running = Mutex<[ObjectKey: RunningPod]>([:])
    private let addresses = Mutex(SimulatedAddressPool())
    private let logger = Logger(label: "tenops-bench.simulated-kubelet")

    /// `namespace` nil: pods of every namespace.
    init(client: KubeClient, agents: SimulatedAgents, directory: String, namespace: String?) {
        self.client = client
        self.agents = agents
        self.directory = directory
        pods = Informer(client: client, namespace: namespace, logger: Logger(label: "tenops-bench.simulated-kubelet"))
    }

    var runningCount: Int { running.withLock { $0.count } }

    /// Registers the nodes, then runs until the calling Task is cancelled.
    func run(workers: Int = 16) async throws {
        var registered: [Lease] = []
        for (index, name) in Self.names.enumerated() { registered.append(try await register(name, index: index)) }
        let leases = registered
        let queue = self.queue
        pods.addHandler { event in
            let pod = event.object
            guard Self.names.contains(pod.spec.nodeName ?? "") else { return }
            Task { await queue.add(pod.key) }
        }
        await withTaskCancellationHandler {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.pods.run() }
                group.addTask { await self.heartbeats(leases) }
                group.addTask { await self.probeReadiness() }
                for _ in 0..<workers {
                    group.addTask {
                        while let key = await queue.get() {
                            if await self.sync(key) { await queue.forget(key) } else { await queue.addRateLimited(key) }
                            await queue.done(key)
                        }
                    }
                }
                await group.waitForAll()
            }
        } onCancel: {
            Task { await queue.shutDown() }
        }
    }

    // MARK: Nodes

    /// Creates the Node with its status, and its Lease.
    private func register(_ name: String, index: Int) async throws -> Lease {
        var node = KubeAPI.Node(name: name)
        node.json["metadata"] = ["name": .string(name), "labels": [
            "kubernetes.io/hostname": .string(name), "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
            "tenops.io/simulated": "true",
        ]]
        do {
            _ = try await client.create(node)
        } catch {
            guard error.isAlreadyExists else { throw error }
        }
        let now = JSONValue.string(KubeTime.format(Date()))
        let resources: JSONValue = ["cpu": "64", "memory": "256Gi", "pods": "5000", "ephemeral-storage": "1Ti"]
        let conditions: [JSONValue] = [
            ("MemoryPressure", "False", "KubeletHasSufficientMemory"), ("DiskPressure", "False", "KubeletHasNoDiskPressure"),
            ("PIDPressure", "False", "KubeletHasSufficientPID"), ("Ready", "True", "KubeletReady"),
        ].map { type, status, reason in
            ["type": .string(type), "status": .string(status), "reason": .string(reason), "message": "simulated node: no processes run here",
             "lastHeartbeatTime": now, "lastTransitionTime": now]
        }
        let status: JSONValue = [
            "addresses": [["type": "InternalIP", "address": .string(Self.nodeAddress(index))], ["type": "Hostname", "address": .string(name)]],
            "daemonEndpoints": ["kubeletEndpoint": ["Port": 10250]],
            "capacity": resources, "allocatable": resources,
            "nodeInfo": [
                "machineID": .string(name), "systemUUID": .string(name), "bootID": "simulated", "kernelVersion": "simulated",
                "osImage": "simulated node (no processes)", "operatingSystem": "linux", "architecture": "amd64",
                "containerRuntimeVersion": "simulated://0", "kubeletVersion": "v1.31.0-simulated", "kubeProxyVersion": "",
            ],
            "conditions": .array(conditions),
        ]
        _ = try await client.patch(KubeAPI.Node.self, name: name, patchType: .merge, patch: ["status": status], subresource: "status")
        var lease = Lease(name: name, namespace: Self.leaseNamespace)
        lease.spec.holderIdentity = name
        lease.spec.leaseDurationSeconds = Self.leaseDurationSeconds
        lease.spec.acquireTime = Date()
        lease.spec.renewTime = Date()
        do {
            return try await client.create(lease)
        } catch {
            guard error.isAlreadyExists else { throw error }
            var existing = try await client.get(Lease.self, name: name, namespace: Self.leaseNamespace)
            existing.spec = lease.spec
            return try await client.update(existing)
        }
    }

    /// Renews each Lease every heartbeatInterval, from the copy last written (no GET).
    private func heartbeats(_ leases: [Lease]) async {
        var leases = leases
        while !Task.isCancelled {
            try? await Task.sleep(for: Self.heartbeatInterval)
            for index in leases.indices {
                var lease = leases[index]
                lease.spec.renewTime = Date()
                do {
                    leases[index] = try await client.update(lease)
                } catch {
                    if let fresh = try? await client.get(Lease.self, name: lease.name, namespace: Self.leaseNamespace) { leases[index] = fresh }
                }
            }
        }
    }

    // MARK: Pods

    /// Brings pod `key` to what it should be; false to try again later.
    private func sync(_ key: ObjectKey) async -> Bool {
        let agentKey = key.description
        guard let pod = pods.store.get(key), let uid = pod.uid, let node = pod.spec.nodeName, let nodeIndex = Self.names.firstIndex(of: node) else {
            running.withLock { _ = $0.removeValue(forKey: key) }
            await agents.stop(agentKey)
            return true
        }
        if pod.metadata.deletionTimestamp != nil {
            running.withLock { _ = $0.removeValue(forKey: key) }
            await agents.stop(agentKey)
            do {
                _ = try await client.delete(Pod.self, name: key.name, namespace: key.namespace,
                                            options: DeleteOptions(preconditionUID: uid, gracePeriodSeconds: 0))
            } catch {
                return error.isNotFound || error.isConflict
            }
            return true
        }
        if running.withLock({ $0[key]?.uid == uid }) { return true }
        do {
            let address = try addresses.withLock { pool throws(BenchError) in try pool.address(for: agentKey) }
            let volumes = try await prepareVolumes(pod)
            let pair = pod.metadata.labels["tenops.io/pair"] ?? AgentConfiguration.databaseName(forPod: key.name)
            try await agents.start(key: agentKey, uid: uid, address: address, databaseName: pair, volumes: volumes)
            let started = RunningPod(uid: uid, address: address, hostIP: Self.nodeAddress(nodeIndex), startedAt: Date(),
                                     readyFile: volumes.realPath("/tt/agent/ready"))
            _ = try await client.patch(Pod.self, name: key.name, namespace: key.namespace, patchType: .merge,
                                       patch: ["status": .object(Self.status(of: pod, running: started))], subresource: "status")
            running.withLock { $0[key] = started }
            return true
        } catch {
            logger.warning("simulated pod \(key): \(error)")
            return false
        }
    }

    /// The pod's volumes as directories: a claim's under `claims/` (it outlives the pod), the
    /// pod's Secret volumes written out as files under `pods/`. Returns the agent's mapping.
    private func prepareVolumes(_ pod: Pod) async throws -> VolumeMap {
        let namespace = pod.namespace ?? "default"
        let podDirectory = "\(directory)/pods/\(namespace)/\(pod.name)"
        var byVolume: [String: String] = [:]
        for volume in pod.spec.volumes {
            if let claim = volume.persistentVolumeClaimName {
                try await bind(claim: claim, namespace: namespace, node: pod.spec.nodeName ?? "")
                let path = "\(directory)/claims/\(namespace)/\(claim)"
                try FileManager.default.createDirectory(atPath: path + "/agent", withIntermediateDirectories: true)
                byVolume[volume.name] = path
            } else if let secretName = volume.secretName {
                let secret = try await client.get(Secret.self, name: secretName, namespace: namespace)
                let path = "\(podDirectory)/\(volume.name)"
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
                for (file, data) in secret.data {
                    let target = "\(path)/\(file)"
                    try data.write(to: URL(fileURLWithPath: target), options: .atomic)
                    chmod(target, 0o400)
                }
                byVolume[volume.name] = path
            } else {
                let path = "\(podDirectory)/\(volume.name)"
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
                byVolume[volume.name] = path
            }
        }
        var mounts: [String: String] = [:]
        for container in pod.spec.containers where container.name == "tt" {
            for mount in container.volumeMounts { if let path = byVolume[mount.name] { mounts[mount.mountPath] = path } }
        }
        return VolumeMap(mounts)
    }

    /// The claim is Bound on `node`, as a local-volume provisioner leaves it.
    private func bind(claim: String, namespace: String, node: String) async throws {
        let annotation = "volume.kubernetes.io/selected-node"
        _ = try await client.patch(PersistentVolumeClaim.self, name: claim, namespace: namespace, patchType: .merge,
                                   patch: ["metadata": ["annotations": [.init(stringLiteral: annotation): .string(node)]]])
        _ = try await client.patch(PersistentVolumeClaim.self, name: claim, namespace: namespace, patchType: .merge,
                                   patch: ["status": ["phase": "Bound", "accessModes": ["ReadWriteOnce"]]], subresource: "status")
    }

    /// The readiness probe of every running pod, every second; a change is written at once.
    private func probeReadiness() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: Self.probeInterval)
            let changed = running.withLock { running in
                running.compactMap { key, pod -> (ObjectKey, RunningPod)? in
                    let ready = access(pod.readyFile, F_OK) == 0
                    guard ready != pod.ready else { return nil }
                    var probed = pod
                    probed.ready = ready
                    return (key, probed)
                }
            }
            await withTaskGroup(of: Void.self) { group in
                for (key, probed) in changed {
                    guard let pod = pods.store.get(key), pod.uid == probed.uid else { continue }
                    group.addTask {
                        do {
                            _ = try await self.client.patch(Pod.self, name: key.name, namespace: key.namespace, patchType: .merge,
                                                            patch: ["status": .object(Self.status(of: pod, running: probed))],
                                                            subresource: "status")
                            self.running.withLock { running in
                                if running[key]?.uid == probed.uid { running[key]?.ready = probed.ready }
                            }
                        } catch {
                            self.logger.warning("simulated pod \(key): readiness not written: \(error)")
                        }
                    }
                }
            }
        }
    }

    /// A Running pod's status: every container running since the pod started; `tt` ready as
    /// its probe says, the others (no probe) ready.
    static func status(of pod: Pod, running: RunningPod) -> JSONObject {
        let started = JSONValue.string(KubeTime.format(running.startedAt))
        let now = JSONValue.string(KubeTime.format(Date()))
        let containers: [JSONValue] = pod.spec.containers.map { container in
            [
                "name": .string(container.name), "image": .string(container.image ?? ""), "imageID": "",
                "containerID": .string("simulated://\(running.uid)/\(container.name)"),
                "state": ["running": ["startedAt": started]], "lastState": [:], "restartCount": 0,
                "ready": .bool(container.name != "tt" || running.ready), "started": true,
            ]
        }
        let readiness: JSONObject = running.ready
            ? ["status": "True"]
            : ["status": "False", "reason": "ContainersNotReady", "message": "containers with unready status: [tt]"]
        func condition(_ type: String, _ fields: JSONObject, since: JSONValue) -> JSONValue {
            var object = fields
            object["type"] = .string(type)
            object["lastTransitionTime"] = since
            return .object(object)
        }
        return [
            "phase": "Running",
            "conditions": [
                condition("Initialized", ["status": "True"], since: started),
                condition("Ready", readiness, since: now),
                condition("ContainersReady", readiness, since: now),
                condition("PodScheduled", ["status": "True"], since: started),
            ],
            "containerStatuses": .array(containers),
            "hostIP": .string(running.hostIP), "hostIPs": [["ip": .string(running.hostIP)]],
            "podIP": .string(running.address), "podIPs": [["ip": .string(running.address)]],
            "startTime": started, "qosClass": "BestEffort",
        ]
    }
}

/// Pod IPs for simulated pods from 127.200.0.0/13 (127.200.0.1 to 127.207.255.254, last octet
/// 1...254), away from the 127.N.0.x of real local pods. Sticky: a pod made again under the same
/// name gets its address back, as the process node's pool does.
struct SimulatedAddressPool {
    static let capacity = 8 * 256 * 254
    private var assigned: [String: String] = [:]

    mutating func address(for key: String) throws(BenchError) -> String {
        if let existing = assigned[key] { return existing }
        let index = assigned.count
        guard index < Self.capacity else { throw BenchError("no simulated pod address is left in 127.200.0.0/13") }
        let block = index / 254
        let address = "127.\(200 + block / 256).\(block % 256).\(index % 254 + 1)"
        assigned[key] = address
        return address
    }
}
