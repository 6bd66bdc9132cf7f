import Foundation
import KubeAPI

#if canImport(Glibc)
import Glibc
#endif

/// How a tenops process node names its container runtime: `status.nodeInfo.containerRuntimeVersion`
/// starts with it, and so does every container ID it reports.
public enum ProcessRuntime {
    public static let scheme = "tenops://"
    public static let version = scheme + "0.1.0"

    /// Whether a Node object is one of tenops' process nodes.
    public static func runs(_ node: KubeAPI.Node) -> Bool {
        JSONValue.object(node.json)["status"]["nodeInfo"]["containerRuntimeVersion"].stringValue?.hasPrefix(scheme) ?? false
    }
}

/// What the node says about itself in its Node object.
struct NodeDescription: Sendable {
    var name: String
    var address: String
    var kubeletPort: Int
    var labels: [String: String]

    /// `kubernetes.io/hostname`, `kubernetes.io/os` and `kubernetes.io/arch`, then the extra labels.
    var allLabels: [String: String] {
        var all = ["kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": Self.architecture]
        all.merge(labels) { _, extra in extra }
        all["kubernetes.io/hostname"] = name
        return all
    }

    static var architecture: String {
        #if arch(arm64)
        return "arm64"
        #else
        return "amd64"
        #endif
    }

    /// The full `status` of a registration: addresses, the kubelet endpoint, capacity, node info
    /// and conditions.
    func status(existingConditions: [Condition], now: Date) -> JSONObject {
        let memoryKi = ProcessInfo.processInfo.physicalMemory / 1024
        let resources: JSONValue = [
            "cpu": .string(String(ProcessInfo.processInfo.activeProcessorCount)), "memory": .string("\(memoryKi)Ki"),
            "pods": "250", "ephemeral-storage": "100Gi",
        ]
        var kernel = utsname()
        uname(&kernel)
        let release = withUnsafeBytes(of: &kernel.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return [
            "addresses": [["type": "InternalIP", "address": .string(address)], ["type": "Hostname", "address": .string(name)]],
            "daemonEndpoints": ["kubeletEndpoint": ["Port": .int(Int64(kubeletPort))]],
            "capacity": resources,
            "allocatable": resources,
            "nodeInfo": [
                "machineID": .string(name), "systemUUID": .string(name), "bootID": .string(Self.bootID),
                "kernelVersion": .string(release), "osImage": "tenops process node", "operatingSystem": "linux",
                "architecture": .string(Self.architecture), "containerRuntimeVersion": .string(ProcessRuntime.version),
                "kubeletVersion": "v1.31.0-tenops", "kubeProxyVersion": "",
            ],
            "conditions": .array(Self.conditions(existing: existingConditions, now: now).map { .object($0.json) }),
        ]
    }

    /// Ready, and no pressure of any kind, with a fresh heartbeat; transition times are kept
    /// while a condition keeps its status.
    static func conditions(existing: [Condition], now: Date) -> [Condition] {
        let wanted: [(type: String, status: String, reason: String, message: String)] = [
            ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
        ]
        return wanted.map { entry in
            let previous = existing[type: entry.type]
            var condition = Condition(type: entry.type, status: entry.status, reason: entry.reason, message: entry.message,
                                      lastTransitionTime: previous?.status == entry.status ? previous?.lastTransitionTime ?? now : now)
            condition.lastHeartbeatTime = now
            return condition
        }
    }

    private static let bootID = ((try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8)) ?? "")
        .trimmingCharacters(in: .whitespacesAndNewlines)
}

/// Registration and heartbeats, the kubelet's way: the Node object with its status, and the
/// Lease `kube-node-lease/NAME` renewed at every beat.
struct NodeRegistration: Sendable {
    static let leaseNamespace = "kube-node-lease"
    static let leaseDurationSeconds = 40

    let client: KubeClient
    let node: NodeDescription

    /// Creates the Node (or updates its labels), writes its whole status and renews the Lease.
    func register(existingConditions: [Condition]) async throws {
        var namespace = Namespace(name: Self.leaseNamespace)
        namespace.metadata.labels = ["kubernetes.io/metadata.name": Self.leaseNamespace]
        // AlreadyExists is what it says; a Conflict is a namespace being deleted, which the lease
        // write below reports.
        try await createUnlessPresent(namespace, tolerating: { $0.isAlreadyExists || $0.isConflict })
        let labels: JSONValue = .object(node.allLabels.mapValues(JSONValue.string))
        var object = Node(name: node.name)
        object.json["metadata"] = ["name": .string(node.name), "labels": labels]
        if try await !createUnlessPresent(object, tolerating: \.isAlreadyExists) {
            _ = try await client.patch(Node.self, name: node.name, patchType: .merge, patch: ["metadata": ["labels": labels]])
        }
        _ = try await client.patch(Node.self, name: node.name, patchType: .merge,
                                   patch: ["status": .object(node.status(existingConditions: existingConditions, now: Date()))],
                                   subresource: "status")
        try await renewLease()
    }

    /// Creates `object`; false when it existed (an error that `tolerating` accepts).
    @discardableResult
    private func createUnlessPresent<T: KubeObject>(_ object: T, tolerating: (KubeAPIError) -> Bool) async throws -> Bool {
        do {
            _ = try await client.create(object)
            return true
        } catch {
            guard tolerating(error) else { throw error }
            return false
        }
    }

    /// One heartbeat: the Lease's renewTime and the conditions' lastHeartbeatTime. A Node that
    /// someone deleted is registered again.
    func beat(existingConditions: [Condition]) async throws {
        try await renewLease()
        do {
            let conditions = NodeDescription.conditions(existing: existingConditions, now: Date())
            _ = try await client.patch(Node.self, name: node.name, patchType: .merge,
                                       patch: ["status": ["conditions": .array(conditions.map { .object($0.json) })]],
                                       subresource: "status")
        } catch {
            guard error.isNotFound else { throw error }
            try await register(existingConditions: [])
        }
    }

    func renewLease() async throws {
        let now = Date()
        let existing: Lease
        do {
            existing = try await client.get(Lease.self, name: node.name, namespace: Self.leaseNamespace)
        } catch {
            guard error.isNotFound else { throw error }
            var lease = Lease(name: node.name, namespace: Self.leaseNamespace)
            lease.spec.holderIdentity = node.name
            lease.spec.leaseDurationSeconds = Self.leaseDurationSeconds
            lease.spec.acquireTime = now
            lease.spec.renewTime = now
            if let uid = try? await client.get(Node.self, name: node.name).metadata.uid {
                lease.metadata.ownerReferences = [OwnerReference(json: [
                    "apiVersion": "v1", "kind": "Node", "name": .string(node.name), "uid": .string(uid),
                ])]
            }
            _ = try await client.create(lease)
            return
        }
        var lease = existing
        lease.spec.holderIdentity = node.name
        lease.spec.leaseDurationSeconds = Self.leaseDurationSeconds
        lease.spec.renewTime = now
        _ = try await client.update(lease)
    }
}
