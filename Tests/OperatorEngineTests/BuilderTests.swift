import Foundation
import KubeAPI
@testable import OperatorEngine
import Testing

@Suite("Pair builders", .timeLimit(.minutes(5)))
struct BuilderTests {
    static let selector: JSONValue = [
        "app.kubernetes.io/name": "timesten-classic", "app.kubernetes.io/instance": "sample", "tenops.io/pair": "sample",
    ]

    func podSpec(_ set: StatefulSet) -> JSONObject { set.template["spec"]?.objectValue ?? [:] }

    func container(_ set: StatefulSet, _ name: String) throws -> Container {
        try #require(PodSpec(json: podSpec(set)).containers.first { $0.name == name })
    }

    @Test("every object is controlled by the TimesTenClassic and carries the pair's labels")
    func ownership() throws {
        let object = sampleObject()
        let certificates = try PairCertificates.create(for: PairNames(object))
        let objects: [(String, ObjectMeta)] = try [
            ("StatefulSet", PairObjects.statefulSet(for: object).metadata), ("Service", PairObjects.service(for: object).metadata),
            ("ca", certificates.caSecret(owner: object).metadata), ("agent-tls", certificates.agentTLSSecret(owner: object).metadata),
        ]
        for (label, metadata) in objects {
            #expect(metadata.namespace == "ns", "\(label)")
            #expect(metadata.ownerReferences.count == 1, "\(label)")
            let reference = try #require(metadata.ownerReferences.first)
            #expect(reference.apiVersion == "tenops.io/v1" && reference.kind == "TimesTenClassic", "\(label)")
            #expect(reference.name == "sample" && reference.uid == sampleUID, "\(label)")
            #expect(reference.controller == true && reference.blockOwnerDeletion == true, "\(label)")
            #expect(metadata.labels == ["app.kubernetes.io/name": "timesten-classic", "app.kubernetes.io/instance": "sample",
                                        "tenops.io/pair": "sample", "app.kubernetes.io/managed-by": "tenops"], "\(label)")
        }
    }

    @Test("the StatefulSet: two replicas, Parallel, OnDelete, the Service, the selector, hostname anti-affinity")
    func statefulSetShape() throws {
        let set = PairObjects.statefulSet(for: sampleObject())
        #expect(set.apiVersion == "apps/v1" && set.kind == "StatefulSet" && set.name == "sample")
        #expect(set.replicas == 2 && set.podManagementPolicy == "Parallel" && set.updateStrategyType == "OnDelete")
        #expect(set.serviceName == "sample")
        #expect(set.json.value(at: ["spec", "selector", "matchLabels"]) == Self.selector)
        #expect(set.template["metadata"]?["labels"] == Self.selector)
        let spec = podSpec(set)
        #expect(spec["affinity"] == [
            "podAntiAffinity": ["requiredDuringSchedulingIgnoredDuringExecution": [
                ["labelSelector": ["matchLabels": Self.selector], "topologyKey": "kubernetes.io/hostname"],
            ]],
        ])
        #expect(spec["terminationGracePeriodSeconds"] == 30)
        #expect(spec["restartPolicy"] == "Always" && spec["enableServiceLinks"] == false)
        #expect(spec["imagePullSecrets"] == nil)
        #expect(PodSpec(json: spec).containers.map(\.name) == ["tt", "daemonlog"])
    }

    @Test("the tt container: the agent, its environment, ports, mounts and the readiness probe")
    func ttContainer() throws {
        let set = PairObjects.statefulSet(for: sampleObject(ttspec: ["image": "tenops:7", "imagePullPolicy": "Always"]))
        let tt = try container(set, "tt")
        #expect(tt.image == "tenops:7" && tt.json["imagePullPolicy"] == "Always")
        #expect(tt.command == ["tenops", "agent"] && tt.args.isEmpty)
        var values: [String: String] = [:]
        var fields: [String: String] = [:]
        for variable in tt.env {
            if let value = variable.value { values[variable.name] = value }
            if let path = variable.valueFrom?["fieldRef"]?["fieldPath"].stringValue { fields[variable.name] = path }
        }
        #expect(values == ["TENOPS_DATABASE": "sample", "TENOPS_AGENT_PORT": "8443", "TENOPS_REP_PORT": "5432", "TENOPS_TLS_DIR": "/agent-tls"])
        #expect(fields == ["POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace", "POD_IP": "status.podIP", "TENOPS_POD_IP": "status.podIP"])
        #expect(tt.json["ports"] == [
            ["name": "agent", "containerPort": 8443, "protocol": "TCP"], ["name": "db", "containerPort": 5432, "protocol": "TCP"],
        ])
        #expect(tt.volumeMounts.map { "\($0.name)=\($0.mountPath)\($0.readOnly == true ? ":ro" : "")" }
            == ["tt-persistent=/tt", "ttconfig=/ttconfig:ro", "agent-tls=/agent-tls:ro"])
        let probe = try #require(tt.json["readinessProbe"]?.objectValue)
        #expect(probe["exec"]?["command"] == ["sh", "-c", #"test -f "${TENOPS_VOLUME_TT:-/tt}/agent/ready""#])
        #expect(probe["periodSeconds"] == 1 && probe["failureThreshold"] == 1 && probe["successThreshold"] == 1)
        #expect(tt.json["livenessProbe"] == nil, "a liveness probe would restart a busy agent; the engine watches it instead")
    }

    @Test("the readiness probe passes only while the agent's ready file exists, in a container (/tt) and on a process node")
    func readinessProbeRuns() async throws {
        try await withScratchDirectory { directory in
            var environment = ProcessInfo.processInfo.environment
            environment["TENOPS_VOLUME_TT"] = directory
            let command = PairObjects.readinessCommand
            func probe() async throws -> Int32 {
                try await ChildProcess.run("/bin/\(command[0])", Array(command.dropFirst()), environment: environment).status
            }
            #expect(try await probe() != 0)
            try FileManager.default.createDirectory(atPath: "\(directory)/agent", withIntermediateDirectories: true)
            #expect(FileManager.default.createFile(atPath: "\(directory)/agent/ready", contents: nil))
            #expect(try await probe() == 0)
            environment["TENOPS_VOLUME_TT"] = nil  // a real container: /tt/agent/ready, absent here
            #expect(try await probe() != 0)
        }
    }

    @Test("the daemonlog sidecar follows the log read-only, and goes away with daemonLogSidecar false")
    func daemonLog() throws {
        let set = PairObjects.statefulSet(for: sampleObject(ttspec: ["image": "img", "logStorageSize": "2Gi"]))
        let sidecar = try container(set, "daemonlog")
        #expect(sidecar.command == ["tenops", "agent", "daemonlog"] && sidecar.image == "img")
        #expect(sidecar.json["imagePullPolicy"] == "IfNotPresent")
        #expect(sidecar.volumeMounts.map { "\($0.name)=\($0.mountPath)\($0.readOnly == true ? ":ro" : "")" }
            == ["tt-persistent=/tt:ro", "tt-log=/ttlog:ro"])
        let without = PairObjects.statefulSet(for: sampleObject(ttspec: ["image": "img", "daemonLogSidecar": false]))
        #expect(PodSpec(json: podSpec(without)).containers.map(\.name) == ["tt"])
    }

    @Test("volumes: dbConfigMap and dbSecret projected together at /ttconfig, the agent's Secret at /agent-tls")
    func volumes() throws {
        let set = PairObjects.statefulSet(for: sampleObject(ttspec: ["image": "i", "dbConfigMap": ["cfg"], "dbSecret": ["s1", "s2"]]))
        let volumes = PodSpec(json: podSpec(set)).volumes
        #expect(volumes.map(\.name) == ["ttconfig", "agent-tls"])
        #expect(volumes[0].json["projected"] == [
            "sources": [["configMap": ["name": "cfg"]], ["secret": ["name": "s1"]], ["secret": ["name": "s2"]]], "defaultMode": 0o440,
        ])
        #expect(volumes[1].json["secret"] == ["secretName": "sample-agent-tls", "defaultMode": 0o400])
        #expect(volumes[1].secretName == "sample-agent-tls")
        let bare = PairObjects.statefulSet(for: sampleObject())
        #expect(PodSpec(json: podSpec(bare)).volumes[0].json["projected"]?["sources"] == [], "no config: an empty /ttconfig")
        #expect(!volumes.contains { $0.name == "tt-persistent" }, "claims come from the templates")
    }

    @Test("claim templates: tt-persistent always, tt-log with logStorageSize, storage classes when set")
    func claimTemplates() throws {
        let plain = PairObjects.statefulSet(for: sampleObject())
        #expect(plain.volumeClaimTemplates.count == 1)
        let claim = try #require(plain.volumeClaimTemplates.first)
        #expect(claim.name == "tt-persistent" && claim.requestedStorage == "50Gi" && claim.storageClassName == nil)
        #expect(claim.json.value(at: ["spec", "accessModes"]) == ["ReadWriteOnce"])

        let set = PairObjects.statefulSet(for: sampleObject(ttspec: [
            "image": "i", "storageSize": "1Gi", "storageClassName": "fast", "logStorageSize": "3Gi", "logStorageClassName": "slow",
        ]))
        #expect(set.volumeClaimTemplates.map { "\($0.name)=\($0.requestedStorage ?? ""):\($0.storageClassName ?? "-")" }
            == ["tt-persistent=1Gi:fast", "tt-log=3Gi:slow"])
        let tt = try container(set, "tt")
        #expect(tt.volumeMounts.last?.name == "tt-log" && tt.volumeMounts.last?.mountPath == "/ttlog")
    }

    @Test("repPort, image pull secret and policy reach the containers and the Service")
    func specReachesObjects() throws {
        let object = sampleObject(ttspec: ["image": "i", "repPort": 6432, "imagePullSecret": "registry", "imagePullPolicy": "Never"])
        let set = PairObjects.statefulSet(for: object)
        let tt = try container(set, "tt")
        #expect(tt.env.first { $0.name == "TENOPS_REP_PORT" }?.value == "6432")
        #expect(tt.json["ports"]?.arrayValue?[1]["containerPort"] == 6432)
        #expect(podSpec(set)["imagePullSecrets"] == [["name": "registry"]])
        #expect(try container(set, "daemonlog").json["imagePullPolicy"] == "Never")
        let service = PairObjects.service(for: object)
        #expect(service.json.value(at: ["spec", "ports"]).arrayValue?[1] == ["name": "db", "port": 6432, "targetPort": 6432, "protocol": "TCP"])
    }

    @Test("the headless Service publishes not-ready pods on the agent and database ports")
    func service() {
        let service = PairObjects.service(for: sampleObject())
        #expect(service.apiVersion == "v1" && service.kind == "Service" && service.name == "sample")
        #expect(service.clusterIP == "None")
        #expect(service.json.value(at: ["spec", "publishNotReadyAddresses"]) == true)
        #expect(JSONValue.object(service.selector.mapValues(JSONValue.string)) == Self.selector)
        #expect(service.json.value(at: ["spec", "ports"]) == [
            ["name": "agent", "port": 8443, "targetPort": 8443, "protocol": "TCP"],
            ["name": "db", "port": 5432, "targetPort": 5432, "protocol": "TCP"],
        ])
    }

    @Test("names")
    func names() {
        let names = PairNames(sampleObject())
        #expect(names.pods == ["sample-0", "sample-1"])
        #expect(names.podDNSName(1) == "sample-1.sample.ns.svc.cluster.local")
        #expect(names.caSecret == "sample-ca" && names.agentTLSSecret == "sample-agent-tls")
        #expect(names.agentServerName == "sample.ns.svc")
    }

    // MARK: Drift

    /// What a server hands back: the wanted object plus defaults, a resourceVersion and status.
    func asServerReturns(_ json: JSONObject) -> JSONObject {
        var object = json
        object.setValue("123", at: ["metadata", "resourceVersion"])
        object.setValue("Retain", at: ["spec", "persistentVolumeClaimRetentionPolicy", "whenDeleted"])
        object.setValue(10, at: ["spec", "revisionHistoryLimit"])
        object.setValue(["replicas": 2], at: ["status"])
        if var template = object.value(at: ["spec", "template"]).objectValue,
           var containers = template.value(at: ["spec", "containers"]).arrayValue {
            containers = containers.map { container in
                var copy = container.objectValue ?? [:]
                copy["terminationMessagePath"] = "/dev/termination-log"
                return .object(copy)
            }
            template.setValue(.array(containers), at: ["spec", "containers"])
            template.setValue("ClusterFirst", at: ["spec", "dnsPolicy"])
            object.setValue(.object(template), at: ["spec", "template"])
        }
        return object
    }

    @Test("an object as the server returns it matches; server defaults are not drift")
    func noDrift() {
        let object = sampleObject()
        let wanted = PairObjects.statefulSet(for: object)
        let report = Drift.statefulSet(StatefulSet(json: asServerReturns(wanted.json)), wanted: wanted, owner: object)
        #expect(report.matches && report.patch == nil, "\(report)")
        let service = PairObjects.service(for: object)
        var returned = service.json
        returned.setValue(["ClusterIP"], at: ["spec", "ipFamilies"])
        #expect(Drift.service(Service(json: returned), wanted: service, owner: object).matches)
    }

    @Test("a changed image is patchable drift, with a merge patch of the template")
    func templateDrift() throws {
        let object = sampleObject()
        let existing = PairObjects.statefulSet(for: object)
        var changed = object
        changed.ttspec.image = "tenops:2"
        let wanted = PairObjects.statefulSet(for: changed)
        let report = Drift.statefulSet(existing, wanted: wanted, owner: object)
        #expect(report.differences == ["spec.template.spec.containers[0].image", "spec.template.spec.containers[1].image"])
        #expect(report.immutable.isEmpty && report.foreignController == nil)
        let patch = try #require(report.patch)
        #expect(patch.keys.sorted() == ["spec"])
        #expect(patch["spec"]?["template"] == .object(wanted.template))
    }

    @Test("a changed storageSize is immutable drift; a canonical quantity is not")
    func immutableDrift() {
        let object = sampleObject(ttspec: ["image": "i", "storageSize": "1.5Gi"])
        let wanted = PairObjects.statefulSet(for: object)
        var template = wanted.volumeClaimTemplates[0].json
        template.setValue("1536Mi", at: ["spec", "resources", "requests", "storage"])
        var canonical = wanted.json
        canonical.setValue([.object(template)], at: ["spec", "volumeClaimTemplates"])
        #expect(Drift.statefulSet(StatefulSet(json: canonical), wanted: wanted, owner: object).matches)

        var bigger = object
        bigger.ttspec.storageSize = "2Gi"
        let report = Drift.statefulSet(wanted, wanted: PairObjects.statefulSet(for: bigger), owner: object)
        #expect(report.differences == ["spec.volumeClaimTemplates[0].spec.resources.requests.storage"])
        #expect(report.immutable == report.differences && report.patch == nil)

        var logged = object
        logged.ttspec.logStorageSize = "1Gi"
        let added = Drift.statefulSet(wanted, wanted: PairObjects.statefulSet(for: logged), owner: object)
        #expect(added.immutable.contains("spec.volumeClaimTemplates"), "\(added)")
        #expect(added.differences.contains { $0.hasPrefix("spec.template") } && added.patch?["spec"]?["template"] != nil)
    }

    @Test("a headless Service with an IP is immutable drift")
    func serviceClusterIP() {
        let object = sampleObject()
        let wanted = PairObjects.service(for: object)
        var existing = wanted
        existing.json.setValue("10.0.0.7", at: ["spec", "clusterIP"])
        existing.json.setValue(false, at: ["spec", "publishNotReadyAddresses"])
        let report = Drift.service(existing, wanted: wanted, owner: object)
        #expect(report.immutable == ["spec.clusterIP"])
        #expect(report.differences == ["spec.clusterIP", "spec.publishNotReadyAddresses"])
        #expect(report.patch == ["spec": ["publishNotReadyAddresses": true]])
    }

    @Test("an object of another controller is left alone; an orphan is adopted and relabelled")
    func ownershipDrift() throws {
        let object = sampleObject()
        let wanted = PairObjects.service(for: object)
        var foreign = wanted
        var other = PairNames.ownerReference(object)
        other.uid = "someone-else"
        foreign.metadata.ownerReferences = [other]
        let report = Drift.service(foreign, wanted: wanted, owner: object)
        #expect(report.foreignController?.contains("someone-else") == true && !report.matches && report.patch == nil)

        var orphan = wanted
        var keep = OwnerReference()
        keep.apiVersion = "v1"
        keep.kind = "ConfigMap"
        keep.name = "unrelated"
        keep.uid = "u2"
        orphan.metadata.ownerReferences = [keep]
        orphan.metadata.labels = ["app.kubernetes.io/name": "timesten-classic"]
        let adopt = Drift.service(orphan, wanted: wanted, owner: object)
        #expect(adopt.foreignController == nil)
        #expect(adopt.differences.contains("metadata.ownerReferences"))
        #expect(adopt.differences.contains("metadata.labels['tenops.io/pair']"))
        let references = try #require(adopt.patch?["metadata"]?["ownerReferences"].arrayValue)
        #expect(references.count == 2 && references[0]["uid"] == "u2" && references[1]["uid"] == .string(sampleUID))
        #expect(adopt.patch?["metadata"]?["labels"]["app.kubernetes.io/name"] == .null, "labels that are right are not patched")
    }

    @Test("Secret metadata drift")
    func secretDrift() throws {
        let object = sampleObject()
        let certificates = try PairCertificates.create(for: PairNames(object))
        let wanted = try certificates.caSecret(owner: object)
        #expect(Drift.secretMetadata(wanted, wanted: wanted, owner: object).matches)
        var bare = wanted
        bare.metadata.ownerReferences = []
        #expect(Drift.secretMetadata(bare, wanted: wanted, owner: object).differences == ["metadata.ownerReferences"])
    }
}
