import Foundation
import KubeAPI

/// What the StatefulSet controller should do next for one set, given what exists: one pass of
/// kube-controller-manager's `updateStatefulSet`. Pure: the controller observes, asks the
/// planner, and acts; the next pass sees the result.
///
/// - Pods are `NAME-N` with hostname and subdomain set; claims are `TEMPLATE-NAME-N`, created
///   when missing (also for a Pending pod whose claim was deleted) and reused when present.
///   Claims are never deleted by the controller; with `persistentVolumeClaimRetentionPolicy`
///   `whenDeleted: Delete` they are owned by the set, so that garbage collection removes them
///   with it. (`whenScaled: Delete` is not modelled.)
/// - A pod that finished (Failed or Succeeded) is deleted; the next pass recreates it.
/// - OrderedReady ("monotonic") goes in ordinal order and stops at the first pod that is not
///   Running and Ready (or is terminating); it creates one pod per pass, and scales down from
///   the highest ordinal, one pod at a time, once the lower ones are healthy. Parallel creates
///   and deletes all at once.
/// - RollingUpdate deletes the highest-ordinal pod of an old revision, one at a time, waiting for
///   each replacement to be healthy (`partition` and `maxUnavailable` are not modelled). OnDelete
///   leaves old pods until someone deletes them.
/// - The revision is a hash of the pod template, in the `controller-revision-hash` label.
///   `currentRevision` moves to the update revision once every replica runs it and is Ready.
enum StatefulSetPlanner {
    struct Plan: Equatable {
        var createClaims: [PersistentVolumeClaim] = []
        var createPods: [Pod] = []
        /// Deleted with the pod's uid as a precondition, so that a newer pod of the same name is safe.
        var deletePods: [Pod] = []
        var status: JSONObject = [:]
        /// When a Ready pod becomes available (minReadySeconds), the set must be looked at again.
        var requeueAfter: Duration?
    }

    static let podNameLabel = "statefulset.kubernetes.io/pod-name"
    static let podIndexLabel = "apps.kubernetes.io/pod-index"
    static let revisionLabel = "controller-revision-hash"

    static func plan(_ set: StatefulSet, pods: [Pod], claims: Set<String>, now: Date = Date()) -> Plan {
        var plan = Plan()
        let name = set.name
        let replicaCount = max(0, set.replicas ?? 1)
        let monotonic = set.podManagementPolicy != "Parallel"
        let updateRevision = "\(name)-\(revisionHash(set.template))"
        let minReady = TimeInterval(JSONValue.object(set.json)["spec"]["minReadySeconds"].intValue ?? 0)

        var replicas: [Pod?] = Array(repeating: nil, count: replicaCount)
        var condemned: [Pod] = []
        for pod in pods {
            guard let ordinal = ordinal(of: pod.name, in: name) else { continue }
            if ordinal < replicaCount { replicas[ordinal] = pod } else { condemned.append(pod) }
        }
        condemned.sort { ordinal(of: $0.name, in: name)! < ordinal(of: $1.name, in: name)! }

        func missingClaims(_ ordinal: Int) -> [PersistentVolumeClaim] {
            set.volumeClaimTemplates.compactMap { template in
                let claimName = claimName(template, set: set, ordinal: ordinal)
                return claims.contains(claimName) ? nil : claim(from: template, named: claimName, set: set)
            }
        }

        status(&plan, set: set, pods: pods, updateRevision: updateRevision, minReady: minReady, now: now)
        guard set.metadata.deletionTimestamp == nil else { return plan }

        // Living replicas, in ordinal order. Past this loop, an ordered set has them all available.
        for ordinal in 0..<replicaCount {
            guard let pod = replicas[ordinal] else {
                plan.createClaims += missingClaims(ordinal)
                plan.createPods.append(self.pod(for: set, ordinal: ordinal, revision: updateRevision))
                if monotonic { return plan }
                continue
            }
            if ["Failed", "Succeeded"].contains(pod.status.phase ?? "") {
                if pod.metadata.deletionTimestamp == nil { plan.deletePods.append(pod) }
                if monotonic { return plan }
                continue
            }
            if (pod.status.phase ?? "Pending") == "Pending" { plan.createClaims += missingClaims(ordinal) }
            if monotonic, !isHealthy(pod) || !isAvailable(pod, minReady: minReady, now: now) { return plan }
        }

        // Condemned pods, from the highest ordinal. An ordered set waits for each to go, and
        // deletes an unhealthy one only if it is the lowest unhealthy one.
        let firstUnhealthy = condemned.first { !isHealthy($0) }?.name
        for pod in condemned.reversed() {
            if pod.metadata.deletionTimestamp != nil {
                if monotonic { return plan }
                continue
            }
            if monotonic, !isAvailable(pod, minReady: minReady, now: now), pod.name != firstUnhealthy { return plan }
            plan.deletePods.append(pod)
            if monotonic { return plan }
        }

        // Rolling update, from the highest ordinal.
        guard set.updateStrategyType != "OnDelete" else { return plan }
        for ordinal in stride(from: replicaCount - 1, through: 0, by: -1) {
            let created = plan.createPods.contains { $0.name == "\(name)-\(ordinal)" }
            guard !created, let pod = replicas[ordinal] else { return plan }
            if pod.metadata.labels[revisionLabel] != updateRevision, pod.metadata.deletionTimestamp == nil {
                if !plan.deletePods.contains(pod) { plan.deletePods.append(pod) }
                return plan
            }
            if !isHealthy(pod) { return plan }
        }
        return plan
    }

    /// kube-controller-manager's status: counts over every pod the set owns.
    private static func status(_ plan: inout Plan, set: StatefulSet, pods: [Pod], updateRevision: String, minReady: TimeInterval,
                               now: Date) {
        let previous = JSONValue.object(set.json)["status"]
        var currentRevision = previous["currentRevision"].stringValue ?? updateRevision
        let owned = pods.filter { ordinal(of: $0.name, in: set.name) != nil }
        let ready = owned.filter(isRunningAndReady)
        let available = ready.filter { isAvailable($0, minReady: minReady, now: now) }
        let living = owned.filter { $0.metadata.deletionTimestamp == nil }
        let updated = living.filter { $0.metadata.labels[revisionLabel] == updateRevision }.count
        // (Kubernetes moves it under RollingUpdate only; here under OnDelete too, so that
        // currentReplicas keeps its meaning.)
        if updated == owned.count, ready.count == owned.count {
            currentRevision = updateRevision
        }
        plan.status = [
            "observedGeneration": .int(Int64(set.metadata.generation ?? 1)),
            "replicas": .int(Int64(owned.count)),
            "readyReplicas": .int(Int64(ready.count)),
            "availableReplicas": .int(Int64(available.count)),
            "currentReplicas": .int(Int64(living.filter { $0.metadata.labels[revisionLabel] == currentRevision }.count)),
            "updatedReplicas": .int(Int64(updated)),
            "currentRevision": .string(currentRevision),
            "updateRevision": .string(updateRevision),
            "collisionCount": previous["collisionCount"].isNull ? .int(0) : previous["collisionCount"],
        ]
        // A Ready pod that is not yet available becomes so later: look again then.
        plan.requeueAfter = ready.compactMap { pod -> Duration? in
            guard minReady > 0, let since = readySince(pod) else { return nil }
            let left = since.addingTimeInterval(minReady).timeIntervalSince(now)
            return left > 0 ? .seconds(fraction: left) : nil
        }.min()
    }

    static func isRunningAndReady(_ pod: Pod?) -> Bool {
        guard let pod else { return false }
        return pod.status.phase == "Running" && pod.isReady
    }

    /// Running, Ready and not terminating: what lets an ordered set move on.
    static func isHealthy(_ pod: Pod?) -> Bool {
        isRunningAndReady(pod) && pod?.metadata.deletionTimestamp == nil
    }

    /// Running, and Ready for at least minReadySeconds.
    static func isAvailable(_ pod: Pod?, minReady: TimeInterval, now: Date) -> Bool {
        guard let pod, isRunningAndReady(pod) else { return false }
        guard minReady > 0 else { return true }
        return readySince(pod).map { $0.addingTimeInterval(minReady) <= now } ?? false
    }

    private static func readySince(_ pod: Pod) -> Date? { pod.status.conditions[type: "Ready"]?.lastTransitionTime }

    static func ordinal(of podName: String, in setName: String) -> Int? {
        guard podName.hasPrefix(setName + "-") else { return nil }
        let suffix = podName.dropFirst(setName.count + 1)
        guard !suffix.isEmpty, suffix.allSatisfy(\.isASCII), suffix.allSatisfy(\.isNumber), let value = Int(suffix) else { return nil }
        return String(value) == suffix ? value : nil
    }

    static func claimName(_ template: PersistentVolumeClaim, set: StatefulSet, ordinal: Int) -> String {
        "\(template.name)-\(set.name)-\(ordinal)"
    }

    static func pod(for set: StatefulSet, ordinal: Int, revision: String) -> Pod {
        let name = "\(set.name)-\(ordinal)"
        let template = set.template
        var pod = Pod(name: name, namespace: set.namespace)
        var metadata = ObjectMeta(json: template["metadata"]?.objectValue ?? [:])
        metadata.name = name
        metadata.namespace = set.namespace
        metadata.generateName = nil
        var labels = metadata.labels
        labels[podNameLabel] = name
        labels[podIndexLabel] = String(ordinal)
        labels[revisionLabel] = revision
        metadata.labels = labels
        metadata.ownerReferences = [OwnerReference(owner: set)]
        pod.metadata = metadata
        var spec = PodSpec(json: template["spec"]?.objectValue ?? [:])
        spec.hostname = name
        if let service = set.serviceName, !service.isEmpty { spec.subdomain = service }
        // A claim template replaces a template volume of the same name, as in Kubernetes.
        let claimVolumes = set.volumeClaimTemplates.map { claimTemplate in
            Volume(json: [
                "name": .string(claimTemplate.name),
                "persistentVolumeClaim": ["claimName": .string(claimName(claimTemplate, set: set, ordinal: ordinal))],
            ])
        }
        let claimNames = Set(claimVolumes.map(\.name))
        spec.volumes = claimVolumes + spec.volumes.filter { !claimNames.contains($0.name) }
        pod.spec = spec
        return pod
    }

    static func claim(from template: PersistentVolumeClaim, named claimName: String, set: StatefulSet) -> PersistentVolumeClaim {
        var claim = PersistentVolumeClaim(json: template.json)
        var metadata = ObjectMeta(json: [:])
        metadata.name = claimName
        metadata.namespace = set.namespace
        var labels = template.metadata.labels
        let selector = JSONValue.object(set.json)["spec"]["selector"]["matchLabels"].objectValue ?? [:]
        for (key, value) in selector { if let value = value.stringValue { labels[key] = value } }
        metadata.labels = labels
        metadata.annotations = template.metadata.annotations
        let retention = JSONValue.object(set.json)["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"].stringValue
        if retention == "Delete" { metadata.ownerReferences = [OwnerReference(owner: set)] }
        claim.metadata = metadata
        claim.apiVersion = "v1"
        claim.kind = "PersistentVolumeClaim"
        claim[field: "status"] = .null
        return claim
    }

    /// A short, stable hash of the pod template, as the controller-revision-hash label.
    static func revisionHash(_ template: JSONObject) -> String {
        var hash: UInt64 = 0xcbf29ce484222325
        for byte in JSONWriter.data(.object(template)) {
            hash ^= UInt64(byte)
            hash = hash &* 0x100000001b3
        }
        return String(String(hash, radix: 36).prefix(10))
    }
}
