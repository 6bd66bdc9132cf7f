import Foundation
import KubeAPI

/// The StatefulSet and the headless Service of a pair, as pure functions of the TimesTenClassic.
/// Both are controlled by it (ownerReferences with controller and blockOwnerDeletion), so
/// deleting the TimesTenClassic deletes them. The caller checks `SpecValidation` first.
public enum PairObjects {
    /// Container paths, as the agent knows them (see the Agent module's AgentConfiguration).
    public enum Mount {
        public static let tt = "/tt"
        public static let ttconfig = "/ttconfig"
        public static let agentTLS = "/agent-tls"
        public static let ttlog = "/ttlog"
    }

    /// Volume and claim-template names.
    public enum VolumeName {
        public static let persistent = "tt-persistent"
        public static let log = "tt-log"
        public static let config = "ttconfig"
        public static let agentTLS = "agent-tls"
    }

    /// The readiness probe of the `tt` container. The agent keeps the file `/tt/agent/ready`
    /// only while the operator has told it that this pod is the active (setActive/clearActive),
    /// so only the active is Ready. A process node maps `/tt` to a directory and says where in
    /// `TENOPS_VOLUME_TT`; in a real container that variable is unset and `/tt` is used.
    public static let readinessCommand = ["sh", "-c", #"test -f "${TENOPS_VOLUME_TT:-/tt}/agent/ready""#]

    public static let terminationGracePeriodSeconds = 30
    /// Secret files are for root only: the agent reads them, the database server never does.
    public static let secretFileMode = 0o400
    /// The metadata files (adminUser holds a password) are readable by root's group as well.
    public static let configFileMode = 0o440

    // MARK: StatefulSet

    public static func statefulSet(for object: TimesTenClassic) -> StatefulSet {
        let names = PairNames(object)
        let spec = object.ttspec
        var set = StatefulSet(name: names.statefulSet, namespace: names.namespace)
        set.metadata = names.metadata(names.statefulSet, owner: object)
        var claims = [claimTemplate(VolumeName.persistent, size: spec.storageSize, storageClass: spec.storageClassName, names: names)]
        if let logSize = spec.logStorageSize {
            claims.append(claimTemplate(VolumeName.log, size: logSize, storageClass: spec.logStorageClassName, names: names))
        }
        set.json["spec"] = .object([
            "replicas": .int(Int64(PairNames.replicas)),
            "podManagementPolicy": "Parallel",
            "updateStrategy": ["type": "OnDelete"],
            "serviceName": .string(names.service),
            "selector": ["matchLabels": labelsJSON(names.selectorLabels)],
            "template": .object(podTemplate(spec, names: names)),
            "volumeClaimTemplates": .array(claims),
        ])
        return set
    }

    static func podTemplate(_ spec: TTSpec, names: PairNames) -> JSONObject {
        var containers = [ttContainer(spec, names: names)]
        if spec.daemonLogSidecar { containers.append(daemonLogContainer(spec)) }
        let affinityTerm: JSONValue = [
            "labelSelector": ["matchLabels": labelsJSON(names.selectorLabels)],
            "topologyKey": "kubernetes.io/hostname",
        ]
        var podSpec: JSONObject = [
            "containers": .array(containers.map { .object($0.json) }),
            "volumes": .array(volumes(spec, names: names)),
            "affinity": ["podAntiAffinity": ["requiredDuringSchedulingIgnoredDuringExecution": [affinityTerm]]],
            "terminationGracePeriodSeconds": .int(Int64(terminationGracePeriodSeconds)),
            "restartPolicy": "Always",
            "enableServiceLinks": false,
        ]
        if let pullSecret = spec.imagePullSecret {
            podSpec["imagePullSecrets"] = [["name": .string(pullSecret)]]
        }
        return ["metadata": ["labels": labelsJSON(names.selectorLabels)], "spec": .object(podSpec)]
    }

    static func ttContainer(_ spec: TTSpec, names: PairNames) -> Container {
        var container = Container(name: "tt", image: spec.image, command: ["tenops", "agent"])
        container[field: "imagePullPolicy"] = .string(spec.imagePullPolicy.rawValue)
        container.env = [
            EnvVar(name: "TENOPS_DATABASE", value: names.name),
            fieldReference("POD_NAME", "metadata.name"),
            fieldReference("POD_NAMESPACE", "metadata.namespace"),
            fieldReference("POD_IP", "status.podIP"),
            fieldReference("TENOPS_POD_IP", "status.podIP"),
            EnvVar(name: "TENOPS_AGENT_PORT", value: String(PairNames.agentPort)),
            EnvVar(name: "TENOPS_REP_PORT", value: String(spec.repPort)),
            EnvVar(name: "TENOPS_TLS_DIR", value: Mount.agentTLS),
        ]
        container[field: "ports"] = [
            ["name": "agent", "containerPort": .int(Int64(PairNames.agentPort)), "protocol": "TCP"],
            ["name": "db", "containerPort": .int(Int64(spec.repPort)), "protocol": "TCP"],
        ]
        container[field: "readinessProbe"] = [
            "exec": ["command": .array(readinessCommand.map(JSONValue.string))],
            "periodSeconds": 1, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 1,
        ]
        var mounts = [
            mount(VolumeName.persistent, Mount.tt),
            mount(VolumeName.config, Mount.ttconfig, readOnly: true),
            mount(VolumeName.agentTLS, Mount.agentTLS, readOnly: true),
        ]
        if spec.logStorageSize != nil { mounts.append(mount(VolumeName.log, Mount.ttlog)) }
        container.volumeMounts = mounts
        return container
    }

    /// Follows the database's log, which lives on /tt or, with a log claim, on /ttlog.
    static func daemonLogContainer(_ spec: TTSpec) -> Container {
        var container = Container(name: "daemonlog", image: spec.image, command: ["tenops", "agent", "daemonlog"])
        container[field: "imagePullPolicy"] = .string(spec.imagePullPolicy.rawValue)
        var mounts = [mount(VolumeName.persistent, Mount.tt, readOnly: true)]
        if spec.logStorageSize != nil { mounts.append(mount(VolumeName.log, Mount.ttlog, readOnly: true)) }
        container.volumeMounts = mounts
        return container
    }

    /// `ttconfig` projects every dbConfigMap and dbSecret at /ttconfig (none: an empty
    /// directory); `agent-tls` is the agent's Secret. The claims come from the templates.
    static func volumes(_ spec: TTSpec, names: PairNames) -> [JSONValue] {
        let sources = spec.dbConfigMap.map { name -> JSONValue in ["configMap": ["name": .string(name)]] }
            + spec.dbSecret.map { name -> JSONValue in ["secret": ["name": .string(name)]] }
        return [
            ["name": .string(VolumeName.config),
             "projected": ["sources": .array(sources), "defaultMode": .int(Int64(configFileMode))]],
            ["name": .string(VolumeName.agentTLS),
             "secret": ["secretName": .string(names.agentTLSSecret), "defaultMode": .int(Int64(secretFileMode))]],
        ]
    }

    static func claimTemplate(_ name: String, size: String, storageClass: String?, names: PairNames) -> JSONValue {
        var spec: JSONObject = [
            "accessModes": ["ReadWriteOnce"],
            "resources": ["requests": ["storage": .string(size)]],
        ]
        if let storageClass { spec["storageClassName"] = .string(storageClass) }
        return ["metadata": ["name": .string(name), "labels": labelsJSON(names.selectorLabels)], "spec": .object(spec)]
    }

    // MARK: Service

    /// The headless Service that gives the pods their DNS names. It publishes pods that are not
    /// Ready, since only the active is Ready and the standby must be reachable too.
    public static func service(for object: TimesTenClassic) -> Service {
        let names = PairNames(object)
        var service = Service(name: names.service, namespace: names.namespace)
        service.metadata = names.metadata(names.service, owner: object)
        service.json["spec"] = [
            "clusterIP": "None",
            "publishNotReadyAddresses": true,
            "selector": labelsJSON(names.selectorLabels),
            "ports": [
                ["name": "agent", "port": .int(Int64(PairNames.agentPort)), "targetPort": .int(Int64(PairNames.agentPort)), "protocol": "TCP"],
                ["name": "db", "port": .int(Int64(object.ttspec.repPort)), "targetPort": .int(Int64(object.ttspec.repPort)), "protocol": "TCP"],
            ],
        ]
        return service
    }

    // MARK: Pieces

    static func labelsJSON(_ labels: [String: String]) -> JSONValue { .object(labels.mapValues(JSONValue.string)) }

    private static func fieldReference(_ name: String, _ path: String) -> EnvVar {
        EnvVar(json: ["name": .string(name), "valueFrom": ["fieldRef": ["apiVersion": "v1", "fieldPath": .string(path)]]])
    }

    private static func mount(_ name: String, _ path: String, readOnly: Bool = false) -> VolumeMount {
        var mount = VolumeMount()
        mount.name = name
        mount.mountPath = path
        if readOnly { mount.readOnly = true }
        return mount
    }
}
