import Foundation
import KubeAPI
import Logging
import Testing
@testable import LocalCluster

// MARK: - Pure logic

@Suite("Process node pure logic: expansion, backoff, probes, status, addresses, logs", .timeLimit(.minutes(5)))
struct PureNodeTests {
    @Test("$(VAR) expansion as Kubernetes does it", arguments: [
        ("$(A)", "a"), ("x$(A)y", "xay"), ("$(A)$(B)", "ab"), ("$(MISSING)", "$(MISSING)"), ("$$(A)", "$(A)"),
        ("$$", "$"), ("$", "$"), ("a$", "a$"), ("$x", "$x"), ("$(A", "$(A"), ("$()", "$()"), ("$$$(A)", "$a"),
        ("--bind=$(IP):80", "--bind=127.1.0.2:80"), ("über $(A) ü", "über a ü"), ("", ""),
    ] as [(String, String)])
    func expansion(input: String, expected: String) {
        let values = ["A": "a", "B": "b", "IP": "127.1.0.2"]
        #expect(VariableExpansion.expand(input) { values[$0] } == expected)
    }

    @Test("crash-loop backoff: immediate, then 10 s doubling to 5 min, reset after 10 min running")
    func backoff() {
        var backoff = RestartBackoff()
        let delays = (0..<8).map { _ in backoff.delay(afterRunning: .seconds(1)).components.seconds }
        #expect(delays == [0, 10, 20, 40, 80, 160, 300, 300])
        #expect(backoff.delay(afterRunning: .seconds(600)) == .zero)
        #expect(backoff.delay(afterRunning: .seconds(5)) == .seconds(10))
    }

    @Test("probe thresholds", arguments: [
        (ProbeKind.readiness, 1, 3, [true], [ProbeVerdict.passed]),
        (.readiness, 2, 3, [true, false, true, true], [.unchanged, .unchanged, .unchanged, .passed]),
        (.readiness, 1, 2, [true, false, false, false], [.passed, .unchanged, .failed, .unchanged]),
        (.liveness, 1, 3, [false, false, true, false, false, false], [.unchanged, .unchanged, .unchanged, .unchanged, .unchanged, .failed]),
        (.liveness, 1, 1, [true, false], [.unchanged, .failed]),
        (.startup, 1, 2, [false, false], [.unchanged, .failed]),
        (.startup, 1, 2, [false, true], [.unchanged, .passed]),
    ] as [(ProbeKind, Int, Int, [Bool], [ProbeVerdict])])
    func probeThresholds(kind: ProbeKind, success: Int, failure: Int, runs: [Bool], verdicts: [ProbeVerdict]) {
        var tracker = ProbeTracker(kind: kind, successThreshold: success, failureThreshold: failure)
        #expect(runs.map { tracker.record(success: $0) } == verdicts)
    }

    @Test("probe specs: defaults, clamps, ports by number and by name")
    func probeSpecs() throws {
        let http = try #require(ProbeSpec(json: ["httpGet": ["port": "http", "path": "/ready", "scheme": "HTTPS"], "periodSeconds": 0,
                                                 "timeoutSeconds": 3, "failureThreshold": 99_999]))
        #expect(http.action == .httpGet(scheme: "https", host: nil, port: .name("http"), path: "/ready", headers: []))
        #expect(http.period == .seconds(1) && http.timeout == .seconds(3) && http.failureThreshold == 1000 && http.successThreshold == 1)
        let tcp = try #require(ProbeSpec(json: ["tcpSocket": ["port": 5432]]))
        #expect(tcp.action == .tcpSocket(host: nil, port: .number(5432)) && tcp.period == .seconds(10))
        #expect(ProbeSpec(json: ["grpc": ["port": 1]]) == nil)
        let container = Container(json: ["name": "c", "ports": [["name": "http", "containerPort": 8080]]])
        #expect(PortReference.name("http").resolve(in: container) == 8080)
        #expect(PortReference.name("nope").resolve(in: container) == nil)
        #expect(PortReference(.string("8080")) == .number(8080))
        #expect(PortReference.number(70_000).resolve(in: container) == nil)
    }

    @Test("volume variables follow the agent's convention", arguments: [
        ("/tt", "TENOPS_VOLUME_TT"), ("/agent-tls", "TENOPS_VOLUME_AGENT_TLS"), ("/var/lib/data", "TENOPS_VOLUME_VAR_LIB_DATA"),
        ("//x.y", "TENOPS_VOLUME_X_Y"), ("/ttconfig", "TENOPS_VOLUME_TTCONFIG"), ("/é1", "TENOPS_VOLUME__1"),
    ] as [(String, String)])
    func volumeVariables(mountPath: String, name: String) {
        #expect(VolumeEnvironment.variableName(forMountPath: mountPath) == name)
    }

    static func report(_ name: String, _ state: ContainerReport.State, last: Termination? = nil, ready: Bool = false) -> ContainerReport {
        ContainerReport(name: name, image: "", state: state, lastTermination: last, restartCount: 0, ready: ready, started: true)
    }

    static let epoch = Date(timeIntervalSince1970: 1_700_000_000)
    static let exit0 = Termination(exitCode: 0, reason: "Completed", startedAt: epoch, finishedAt: epoch)
    static let exit1 = Termination(exitCode: 1, reason: "Error", startedAt: epoch, finishedAt: epoch)

    @Test("pod phase from container states", arguments: [
        ([report("a", .waiting(reason: "ContainerCreating", message: nil))], "Always", "Pending"),
        ([report("a", .running(startedAt: epoch)), report("b", .waiting(reason: "ContainerCreating", message: nil))], "Always", "Pending"),
        ([report("a", .running(startedAt: epoch))], "Never", "Running"),
        ([report("a", .waiting(reason: "CrashLoopBackOff", message: nil), last: exit1)], "Always", "Running"),
        ([report("a", .terminated(exit0))], "Never", "Succeeded"),
        ([report("a", .terminated(exit0)), report("b", .terminated(exit1))], "Never", "Failed"),
        ([report("a", .terminated(exit0))], "OnFailure", "Succeeded"),
        ([report("a", .waiting(reason: "CrashLoopBackOff", message: nil), last: exit1)], "OnFailure", "Running"),
        ([report("a", .terminated(exit0)), report("b", .running(startedAt: epoch))], "Never", "Running"),
        ([], "Always", "Pending"),
    ] as [([ContainerReport], String, String)])
    func phases(containers: [ContainerReport], policy: String, phase: String) {
        #expect(PodStatusBuilder.phase(containers, restartPolicy: policy) == phase)
    }

    @Test("pod conditions: Ready follows the containers, transition times stay while a status stays, foreign types are kept")
    func conditions() {
        let earlier = Self.epoch
        let now = earlier.addingTimeInterval(60)
        let existing = [Condition(type: "Ready", status: "False", lastTransitionTime: earlier),
                        Condition(type: "PodScheduled", status: "True", lastTransitionTime: earlier),
                        Condition(type: "example.com/gate", status: "True", lastTransitionTime: earlier)]
        let ready = PodStatusBuilder.conditions(
            phase: "Running", containers: [Self.report("a", .running(startedAt: earlier), ready: true)], existing: existing, now: now)
        #expect(ready.map(\.type) == ["Initialized", "Ready", "ContainersReady", "PodScheduled", "example.com/gate"])
        #expect(ready[type: "Ready"]?.status == "True" && ready[type: "Ready"]?.lastTransitionTime == now)
        #expect(ready[type: "PodScheduled"]?.lastTransitionTime == earlier)
        let unready = PodStatusBuilder.conditions(
            phase: "Running", containers: [Self.report("a", .running(startedAt: earlier)), Self.report("b", .running(startedAt: earlier), ready: true)],
            existing: existing, now: now)
        #expect(unready[type: "Ready"]?.status == "False" && unready[type: "Ready"]?.lastTransitionTime == earlier)
        #expect(unready[type: "ContainersReady"]?.message == "containers with unready status: [a]")
        let done = PodStatusBuilder.conditions(phase: "Succeeded", containers: [Self.report("a", .terminated(Self.exit0))], existing: [], now: now)
        #expect(done[type: "Ready"]?.reason == "PodCompleted")
    }

    @Test("container status JSON: state, lastState, restartCount, exit code of a signal")
    func containerStatusJSON() {
        let killed = Termination(ExitStatus(signal: 9), startedAt: Self.epoch, finishedAt: Self.epoch)
        #expect(killed.exitCode == 137 && killed.signal == 9 && killed.reason == "Error")
        #expect(ExitStatus(waitStatus: 3 << 8) == ExitStatus(code: 3))
        #expect(ExitStatus(waitStatus: 15) == ExitStatus(signal: 15))
        var report = Self.report("db", .running(startedAt: Self.epoch), last: killed, ready: true)
        report.restartCount = 2
        let json = JSONValue.object(report.json)
        #expect(json["state"]["running"]["startedAt"] == "2023-11-14T22:13:20Z")
        #expect(json["lastState"]["terminated"]["exitCode"] == 137)
        #expect(json["restartCount"] == 2 && json["ready"] == true)
        let status = ContainerStatus(json: report.json)
        let resumed = ContainerSlot(spec: Container(name: "db", image: ""), previous: status, restartPolicy: "Always",
                                    backoff: RestartBackoff(), now: Self.epoch)
        #expect(resumed.hasRun && resumed.report.restartCount == 2 && resumed.report.lastTermination?.reason == "Unknown")
        let finished = ContainerSlot(spec: Container(name: "db", image: ""), previous: ContainerStatus(json: Self.report("db", .terminated(Self.exit0)).json),
                                     restartPolicy: "OnFailure", backoff: RestartBackoff(), now: Self.epoch)
        #expect(finished.finished)
    }

    @Test("pod addresses: sticky per pod, never the node's own, reused only when the range runs out")
    func addresses() throws {
        var pool = try PodAddressPool(prefix: "127.1.0", nodeAddress: "127.1.0.1")
        #expect(pool.address(for: "ns/a") == "127.1.0.2")
        #expect(pool.address(for: "ns/b") == "127.1.0.3")
        #expect(pool.address(for: "ns/a") == "127.1.0.2")
        pool.release("ns/a")
        #expect(pool.address(for: "ns/c") == "127.1.0.4")
        #expect(pool.address(for: "ns/a") == "127.1.0.2")
        var saved = try PodAddressPool(prefix: "127.1.0", nodeAddress: "127.1.0.1")
        saved.restore(from: pool.json)
        #expect(saved == pool)
        var wide = try PodAddressPool(prefix: "127.2", nodeAddress: "127.2.0.1")
        #expect(wide.capacity == 254 * 256 && wide.candidate(254) == "127.2.1.1")
        #expect(wide.address(for: "x") == "127.2.0.2")
        for index in 0..<252 { _ = pool.address(for: "fill/\(index)") }
        #expect(pool.address(for: "one/more") == nil)
        pool.release("ns/b")
        #expect(pool.address(for: "one/more") == "127.1.0.3")
        #expect(throws: LocalClusterError.self) { try PodAddressPool(prefix: "127.1.0.0", nodeAddress: "127.1.0.1") }
        #expect(throws: LocalClusterError.self) { try PodAddressPool(prefix: "300.1", nodeAddress: "127.1.0.1") }
    }

    @Test("log requests: hostile names and numbers are refused", arguments: [
        (["ns", "pod", "c"], [:], true),
        (["ns", "pod", "c"], ["tailLines": "0", "limitBytes": "1", "follow": "true"], true),
        (["ns", "..", "c"], [:], false), (["ns", "pod"], [:], false), (["ns", "pod", "c", "x"], [:], false),
        (["../etc", "pod", "c"], [:], false), (["ns", "pod", "C"], [:], false), (["ns", "pod", ""], [:], false),
        (["ns", "pod", "c"], ["tailLines": "-1"], false), (["ns", "pod", "c"], ["tailLines": "99999999999999999999999"], false),
        (["ns", "pod", "c"], ["limitBytes": "0"], false), (["ns", "pod", "c"], ["limitBytes": "x"], false),
    ] as [([String], [String: String], Bool)])
    func logRequests(segments: [String], query: [String: String], valid: Bool) {
        let parsed = LogRequest.parse(segments: segments, query: query)
        if case .success = parsed { #expect(valid) } else { #expect(!valid) }
    }

    @Test("tailLines offsets", arguments: [
        ("a\nb\nc\n", 1, "c\n"), ("a\nb\nc\n", 2, "b\nc\n"), ("a\nb\nc\n", 9, "a\nb\nc\n"), ("a\nb\nc", 1, "c"),
        ("a\nb\nc\n", 0, ""), ("", 3, ""), ("\n\n", 1, "\n"),
    ] as [(String, Int, String)])
    func tailOffsets(text: String, lines: Int, expected: String) throws {
        let directory = try ScratchDirectory()
        let path = try directory.write("log", text)
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        var cursor = LogFileCursor(fd: fd, limit: nil)
        cursor.position = cursor.offset(ofLastLines: lines)
        var collected = Data()
        cursor.drain { collected.append($0) }
        #expect(String(decoding: collected, as: UTF8.self) == expected)
    }

    @Test("/proc/PID/stat parsing survives odd command names")
    func procStat() {
        let line = "42 (a b) c)) S 1 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 123456 1000 10 18446744073709551615"
        #expect(ProcStat.parse(line) == ProcStat(state: "S", session: 42, startTime: 123_456))
        #expect(ProcStat.parse(line.replacingOccurrences(of: ")) S", with: ")) Z"))?.isRunning == false)
        #expect(ProcStat.parse("garbage") == nil)
        #expect(ProcStat.read(getpid())?.startTime ?? 0 > 0)
    }

    @Test("volume file paths stay inside the volume", arguments: [
        ("key", true), ("a/b", true), ("..data", true), ("../x", false), ("a/../b", false), ("/etc/passwd", false), ("", false),
        ("a//b", false), ("./a", false),
    ] as [(String, Bool)])
    func safePaths(path: String, safe: Bool) {
        #expect(VolumeProjection.isSafeRelativePath(path) == safe)
    }

    struct FakeObjects: ReferencedObjects {
        let objects: [String: [String: String]]
        func data(_ kind: ReferencedKind, namespace: String, name: String) async throws -> [String: Data]? {
            objects["\(kind.rawValue)/\(name)"]?.mapValues { Data($0.utf8) }
        }
    }

    @Test("container environment: order, fieldRefs, key references, envFrom, optional and missing references")
    func environment() async throws {
        var pod = Pod(name: "web-0", namespace: "team")
        pod.metadata.uid = "u-1"
        pod.metadata.labels = ["app": "web"]
        pod.spec.hostname = "web-zero"
        let facts = PodFacts(pod: pod, podIP: "127.1.0.2", hostIP: "127.1.0.1", nodeName: "node-a")
        let objects = FakeObjects(objects: ["Secret/creds": ["password": "s3cret", "user": "app"], "ConfigMap/settings": ["mode": "fast"]])
        var container = Container(name: "main", image: "")
        container.json["envFrom"] = [["prefix": "DB_", "secretRef": ["name": "creds"]], ["configMapRef": ["name": "absent", "optional": true]]]
        container.env = [
            EnvVar(name: "GREETING", value: "hi $(POD_NAME) $$(POD_NAME) $(NOPE)"),
            EnvVar(json: ["name": "IP", "valueFrom": ["fieldRef": ["fieldPath": "status.podIP"]]]),
            EnvVar(json: ["name": "NS", "valueFrom": ["fieldRef": ["fieldPath": "metadata.namespace"]]]),
            EnvVar(json: ["name": "NODE", "valueFrom": ["fieldRef": ["fieldPath": "spec.nodeName"]]]),
            EnvVar(json: ["name": "APP", "valueFrom": ["fieldRef": ["fieldPath": "metadata.labels['app']"]]]),
            EnvVar(json: ["name": "PASSWORD", "valueFrom": ["secretKeyRef": ["name": "creds", "key": "password"]]]),
            EnvVar(json: ["name": "MODE", "valueFrom": ["configMapKeyRef": ["name": "settings", "key": "mode"]]]),
            EnvVar(json: ["name": "OPTIONAL", "valueFrom": ["secretKeyRef": ["name": "creds", "key": "nope", "optional": true]]]),
            EnvVar(name: "PATH", value: "/custom"),
        ]
        let environment = try await ContainerEnvironment.build(
            container: container, facts: facts, base: [("PATH", "/bin"), ("HOME", "/root")], mounts: ["/tt": "/data/tt"], objects: objects)
        #expect(environment.names.prefix(5) == ["PATH", "HOME", "HOSTNAME", "POD_NAME", "TENOPS_POD_IP"])
        #expect(environment["GREETING"] == "hi web-0 $(POD_NAME) $(NOPE)")
        #expect(environment["HOSTNAME"] == "web-zero" && environment["TENOPS_VOLUME_TT"] == "/data/tt")
        #expect(environment["IP"] == "127.1.0.2" && environment["NS"] == "team" && environment["NODE"] == "node-a" && environment["APP"] == "web")
        #expect(environment["PASSWORD"] == "s3cret" && environment["MODE"] == "fast" && environment["DB_user"] == "app")
        #expect(environment["OPTIONAL"] == nil && environment["PATH"] == "/custom")
        #expect(environment.expand("--bind $(IP)") == "--bind 127.1.0.2")

        for missing in [
            EnvVar(json: ["name": "X", "valueFrom": ["secretKeyRef": ["name": "absent", "key": "k"]]]),
            EnvVar(json: ["name": "X", "valueFrom": ["configMapKeyRef": ["name": "settings", "key": "absent"]]]),
            EnvVar(json: ["name": "X", "valueFrom": ["fieldRef": ["fieldPath": "spec.unknown"]]]),
        ] {
            var broken = Container(name: "main", image: "")
            broken.env = [missing]
            await #expect(throws: ContainerConfigError.self) {
                _ = try await ContainerEnvironment.build(container: broken, facts: facts, base: [], mounts: [:], objects: objects)
            }
        }
    }

    @Test("volume files: items, modes, optional sources, downward API, stale files removed")
    func volumeFiles() async throws {
        let directory = try ScratchDirectory()
        let pod = Pod(name: "p", namespace: "ns")
        let facts = PodFacts(pod: pod, podIP: "127.1.0.2", hostIP: "127.1.0.1", nodeName: "n")
        let objects = FakeObjects(objects: ["Secret/tls": ["tls.crt": "CERT", "tls.key": "KEY"], "ConfigMap/cfg": ["a": "1"]])
        let projected = Volume(json: ["name": "v", "projected": ["defaultMode": 0o600, "sources": [
            ["secret": ["name": "tls", "items": [["key": "tls.key", "path": "keys/tls.key", "mode": 0o400]]]],
            ["configMap": ["name": "cfg"]],
            ["configMap": ["name": "absent", "optional": true]],
            ["downwardAPI": ["items": [["path": "name", "fieldRef": ["fieldPath": "metadata.name"]]]]],
        ]]])
        let files = try #require(try await VolumeProjection.files(of: projected, facts: facts, objects: objects))
        #expect(files == [ProjectedFile(path: "keys/tls.key", data: Data("KEY".utf8), mode: 0o400),
                          ProjectedFile(path: "a", data: Data("1".utf8), mode: 0o600),
                          ProjectedFile(path: "name", data: Data("p".utf8), mode: 0o600)])
        try directory.write("stale", "old")
        try VolumeProjection.write(files, into: directory.path)
        #expect(try String(contentsOfFile: "\(directory.path)/keys/tls.key", encoding: .utf8) == "KEY")
        #expect(!FileManager.default.fileExists(atPath: "\(directory.path)/stale"))
        let mode = try FileManager.default.attributesOfItem(atPath: "\(directory.path)/keys/tls.key")[.posixPermissions] as? Int
        #expect(mode == 0o400)
        let missing = Volume(json: ["name": "v", "secret": ["secretName": "absent"]])
        await #expect(throws: VolumeSetupError.self) { _ = try await VolumeProjection.files(of: missing, facts: facts, objects: objects) }
        let hostile = Volume(json: ["name": "v", "configMap": ["name": "cfg", "items": [["key": "a", "path": "../../escape"]]]])
        await #expect(throws: VolumeSetupError.self) { _ = try await VolumeProjection.files(of: hostile, facts: facts, objects: objects) }
        #expect(try await VolumeProjection.files(of: Volume(json: ["name": "e", "emptyDir": [:]]), facts: facts, objects: objects) == nil)
    }
}

// MARK: - Real nodes

/// A node in this process against a local API server, stopped when `body` ends.
struct NodeHarness: Sendable {
    let local: LocalServer
    let client: KubeClient
    let directory: ScratchDirectory
    let options: ProcessNode.Options

    init(local: LocalServer, name: String, address: String, directory: ScratchDirectory? = nil) throws {
        self.local = local
        client = try local.client()
        self.directory = try directory ?? ScratchDirectory()
        options = ProcessNode.Options(name: name, stateDirectory: "\(self.directory.path)/node", address: address,
                                      heartbeatInterval: .milliseconds(300), shutdownGracePeriod: .seconds(2))
    }

    static var logger: Logger {
        var logger = Logger(label: "tenops.node.test")
        logger.logLevel = .warning
        return logger
    }

    func run<R: Sendable>(_ body: (ProcessNode) async throws -> R) async throws -> R {
        let node = try await ProcessNode.start(options, client: client, logger: Self.logger)
        do {
            let result = try await body(node)
            await node.stop()
            return result
        } catch {
            await node.stop()
            throw error
        }
    }

    func pod(_ name: String) async -> Pod? { try? await client.get(Pod.self, name: name, namespace: "default") }

    func container(_ pod: String, _ container: String) async -> ContainerStatus? {
        await self.pod(pod)?.status.containerStatuses.first { $0.name == container }
    }

    /// The PID of a running container, from its containerID.
    func pid(_ pod: String, _ container: String) async -> pid_t? {
        guard let status = await self.container(pod, container), status.isRunning,
              let id = status.containerID, id.hasPrefix("tenops://") else { return nil }
        return pid_t(id.dropFirst("tenops://".count))
    }

    /// Running, after exactly `restarts` restarts when given.
    func running(_ pod: String, _ container: String, restarts: Int? = nil) async -> Bool {
        guard let status = await self.container(pod, container), status.isRunning else { return false }
        return restarts.map { $0 == status.restartCount } ?? true
    }

    func renewTime() async -> Date? {
        try? await client.get(Lease.self, name: options.name, namespace: "kube-node-lease").spec.renewTime
    }

    /// A pod bound to this node already (the scheduler is not part of these tests).
    @discardableResult
    func create(_ name: String, containers: [JSONValue], volumes: [JSONValue] = [], restartPolicy: String = "Always",
                grace: Int? = nil) async throws -> Pod {
        var spec: JSONObject = ["nodeName": .string(options.name), "restartPolicy": .string(restartPolicy), "containers": .array(containers)]
        if !volumes.isEmpty { spec["volumes"] = .array(volumes) }
        if let grace { spec["terminationGracePeriodSeconds"] = .int(Int64(grace)) }
        return try await client.create(Pod(json: ["apiVersion": "v1", "kind": "Pod", "metadata": ["name": .string(name), "namespace": "default"],
                                                  "spec": .object(spec)]))
    }

    /// The admin client certificate of the local API server, issued by the cluster CA.
    var adminCertificate: [String] {
        let pki = "\(local.directory.path)/state/pki"
        return ["--cert", "\(pki)/admin.crt", "--key", "\(pki)/admin.key"]
    }
}

/// Pod specs and checks for the node tests.
enum Spec {
    static func container(_ name: String, _ command: [String], env: [JSONValue] = [], mounts: [String: String] = [:],
                          extra: JSONObject = [:]) -> JSONValue {
        var object: JSONObject = ["name": .string(name), "image": "local", "command": .array(command.map(JSONValue.string))]
        if !env.isEmpty { object["env"] = .array(env) }
        if !mounts.isEmpty {
            object["volumeMounts"] = .array(mounts.sorted { $0.key < $1.key }.map { ["name": .string($0.value), "mountPath": .string($0.key)] })
        }
        object.merge(extra) { _, new in new }
        return .object(object)
    }

    static func fieldRef(_ name: String, _ path: String) -> JSONValue {
        ["name": .string(name), "valueFrom": ["fieldRef": ["fieldPath": .string(path)]]]
    }

    static func claim(_ name: String) -> PersistentVolumeClaim {
        PersistentVolumeClaim(json: [
            "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": ["name": .string(name), "namespace": "default"],
            "spec": ["accessModes": ["ReadWriteOnce"], "resources": ["requests": ["storage": "1Gi"]]]])
    }

    /// Running and not a zombie.
    static func isAlive(_ pid: pid_t) -> Bool { ProcStat.read(pid)?.isRunning == true }

    /// curl without certificate checks (the kubelet's CA is the node's own).
    static func curl(_ arguments: [String]) async throws -> ProcessOutput {
        try await ChildProcess.run("/usr/bin/curl", ["-s", "-k", "--max-time", "10"] + arguments, timeout: .seconds(20))
    }
}

@Suite("Process node: real processes against the local API server", .serialized, .timeLimit(.minutes(5)))
struct NodeTests {
    @Test("registration: the Node with its addresses, endpoint and Ready condition; the Lease is renewed")
    func registration() async throws {
        try await LocalServer.with { local in
            let harness = try NodeHarness(local: local, name: "node-r", address: "127.77.1.1")
            try await harness.run { node in
                #expect(node.kubeletURL.hasPrefix("https://127.77.1.1:"))
                let registered = try await harness.client.get(Node.self, name: "node-r")
                let status = JSONValue.object(registered.json)["status"]
                #expect(registered.metadata.labels["kubernetes.io/hostname"] == "node-r")
                #expect(status["addresses"].arrayValue?.first == ["type": "InternalIP", "address": "127.77.1.1"])
                #expect(status["daemonEndpoints"]["kubeletEndpoint"]["Port"].intValue.map { node.kubeletURL.hasSuffix(":\($0)") } == true)
                #expect(status["capacity"]["pods"] == "250")
                #expect(registered.isReady)
                let lease = try await harness.client.get(Lease.self, name: "node-r", namespace: "kube-node-lease")
                #expect(lease.spec.holderIdentity == "node-r" && lease.spec.leaseDurationSeconds == 40)
                let first = try #require(lease.spec.renewTime)
                #expect(await eventually(timeout: .seconds(5)) { (await harness.renewTime() ?? first) > first })
                let nodes = try await local.kubectl(["get", "nodes"])
                #expect(nodes.out.contains("node-r") && nodes.out.contains("Ready"), "\(nodes.out)\(nodes.err)")
            }
        }
    }

    @Test("environment and volumes: fieldRefs, secret and configMap keys, PVC bound here, projected files, emptyDir; config errors wait; a missing program fails")
    func environmentAndVolumes() async throws {
        try await LocalServer.with { local in
            let harness = try NodeHarness(local: local, name: "node-e", address: "127.77.2.1")
            let client = harness.client
            try await harness.run { _ in
                var secret = Secret(name: "creds", namespace: "default")
                secret.data = ["password": Data("s3cret".utf8)]
                _ = try await client.create(secret)
                var settings = ConfigMap(name: "settings", namespace: "default")
                settings.data = ["key": "value-from-config"]
                _ = try await client.create(settings)
                _ = try await client.create(Spec.claim("data-env"))
                let script = """
                    cat $TENOPS_VOLUME_CFG/key > $TENOPS_VOLUME_DATA/out
                    env > $TENOPS_VOLUME_DATA/env
                    cat $TENOPS_VOLUME_ETC_PROJ/pw $TENOPS_VOLUME_ETC_PROJ/name > $TENOPS_VOLUME_DATA/projected
                    stat -c %a $TENOPS_VOLUME_SECRETS/password > $TENOPS_VOLUME_DATA/mode
                    echo "$1" > $TENOPS_VOLUME_DATA/args
                    touch $TENOPS_VOLUME_SCRATCH/made-here
                    """
                try await harness.create("env", containers: [Spec.container("main", ["sh", "-c", script, "sh", "ip=$(POD_IP) escaped=$$(POD_IP)"],
                    env: [Spec.fieldRef("POD_IP", "status.podIP"), Spec.fieldRef("NS", "metadata.namespace"), Spec.fieldRef("NODE", "spec.nodeName"),
                          ["name": "PASSWORD", "valueFrom": ["secretKeyRef": ["name": "creds", "key": "password"]]],
                          ["name": "SETTING", "valueFrom": ["configMapKeyRef": ["name": "settings", "key": "key"]]],
                          ["name": "GREETING", "value": "hello $(NS)"]],
                    mounts: ["/cfg": "cfg", "/data": "data", "/secrets": "secrets", "/etc/proj": "proj", "/scratch": "scratch"])],
                    volumes: [["name": "cfg", "configMap": ["name": "settings"]], ["name": "data", "persistentVolumeClaim": ["claimName": "data-env"]],
                              ["name": "secrets", "secret": ["secretName": "creds", "defaultMode": 0o440]], ["name": "scratch", "emptyDir": [:]],
                              ["name": "proj", "projected": ["sources": [
                                ["secret": ["name": "creds", "items": [["key": "password", "path": "pw"]]]],
                                ["downwardAPI": ["items": [["path": "name", "fieldRef": ["fieldPath": "metadata.name"]]]]]]]]],
                    restartPolicy: "Never")
                #expect(await eventually(timeout: .seconds(15)) { await harness.pod("env")?.status.phase == "Succeeded" })
                let pod = try #require(await harness.pod("env"))
                let podIP = try #require(pod.status.podIP)
                #expect(podIP.hasPrefix("127.77.2.") && podIP != "127.77.2.1" && pod.status.hostIP == "127.77.2.1")
                let data = "\(harness.options.stateDirectory)/pvc/default/data-env"
                func read(_ name: String) -> String { (try? String(contentsOfFile: "\(data)/\(name)", encoding: .utf8)) ?? "" }
                #expect(read("out") == "value-from-config")
                let env = Set(read("env").split(separator: "\n").map(String.init))
                for line in ["POD_IP=\(podIP)", "TENOPS_POD_IP=\(podIP)", "NS=default", "NODE=node-e", "PASSWORD=s3cret", "SETTING=value-from-config",
                             "GREETING=hello default", "HOSTNAME=env", "POD_NAME=env", "TENOPS_VOLUME_DATA=\(data)"] {
                    #expect(env.contains(line), "\(line) missing from \(env.sorted())")
                }
                #expect(!env.contains { $0.hasPrefix("KUBECONFIG=") })
                #expect(read("projected") == "s3cretenv" && read("mode") == "440\n")
                #expect(read("args") == "ip=\(podIP) escaped=$(POD_IP)\n")
                #expect(pod.status.containerStatuses.first?.json["state"]?["terminated"]["reason"] == "Completed")
                let claim = try await client.get(PersistentVolumeClaim.self, name: "data-env", namespace: "default")
                #expect(claim.metadata.annotations[ClaimBinder.selectedNodeAnnotation] == "node-e" && claim.phase == "Bound")

                try await harness.create("late", containers: [Spec.container("main", ["true"], env: [["name": "TOKEN", "valueFrom": ["secretKeyRef": ["name": "late", "key": "token"]]]])],
                    restartPolicy: "Never")
                #expect(await eventually {
                    await harness.container("late", "main")?.state["waiting"]?["reason"] == "CreateContainerConfigError"
                })
                var late = Secret(name: "late", namespace: "default")
                late.data = ["token": Data("t".utf8)]
                _ = try await client.create(late)
                #expect(await eventually(timeout: .seconds(15)) { await harness.pod("late")?.status.phase == "Succeeded" })

                try await harness.create("ghost", containers: [Spec.container("main", ["no-such-program-anywhere"])], restartPolicy: "Never")
                #expect(await eventually { await harness.pod("ghost")?.status.phase == "Failed" })
                let ghost = try #require(await harness.container("ghost", "main"))
                #expect(ghost.terminatedExitCode == 127 && ghost.state["terminated"]?["reason"] == "StartError")
            }
        }
    }

    @Test("probes: readiness gates Ready, kill -9 restarts a container that comes back Ready, liveness failure restarts")
    func probesAndRestarts() async throws {
        try await LocalServer.with { local in
            let harness = try NodeHarness(local: local, name: "node-p", address: "127.77.3.1")
            let flags = try ScratchDirectory()
            try await harness.run { _ in
                let quick: JSONObject = ["periodSeconds": 1, "timeoutSeconds": 2, "failureThreshold": 1]
                func probe(_ action: JSONObject) -> JSONValue { .object(quick.merging(action) { _, new in new }) }
                try await harness.create("probed", containers: [
                    Spec.container("web", ["python3", "-m", "http.server", "--bind", "$(POD_IP)", "8080"], env: [Spec.fieldRef("POD_IP", "status.podIP")],
                              extra: ["ports": [["name": "http", "containerPort": 8080]], "readinessProbe": probe(["httpGet": ["port": "http", "path": "/"]])]),
                    Spec.container("gate", ["sleep", "300"], extra: ["readinessProbe": probe(["exec": ["command": ["test", "-f", .string("\(flags.path)/ready")]]])]),
                    Spec.container("alive", ["sleep", "300"], extra: ["livenessProbe": probe([
                        "exec": ["command": ["sh", "-c", .string("if [ -f \(flags.path)/die ]; then rm \(flags.path)/die; exit 1; fi")]]])]),
                ], grace: 2)
                #expect(await eventually(timeout: .seconds(20)) { await harness.container("probed", "web")?.ready == true })
                #expect(await harness.container("probed", "gate")?.ready == false)
                #expect(await harness.pod("probed")?.isReady == false)
                try flags.write("ready", "")
                #expect(await eventually(timeout: .seconds(10)) { await harness.pod("probed")?.isReady == true })

                let podIP = try #require(await harness.pod("probed")?.status.podIP)
                let served = try await Spec.curl(["-o", "/dev/null", "-w", "%{http_code}", "http://\(podIP):8080/"])
                #expect(served.out == "200")

                let web = try #require(await harness.pid("probed", "web"))
                kill(web, SIGKILL)
                #expect(await eventually(timeout: .seconds(10)) {
                    let status = await harness.container("probed", "web")
                    return status?.restartCount == 1 && status?.json["lastState"]?["terminated"]["exitCode"] == 137
                })
                #expect(await eventually(timeout: .seconds(20)) { await harness.pod("probed")?.isReady == true })
                #expect(await harness.pid("probed", "web") != web)

                let alive = try #require(await harness.pid("probed", "alive"))
                try flags.write("die", "")
                #expect(await eventually(timeout: .seconds(15)) {
                    await harness.running("probed", "alive", restarts: 1)
                })
                #expect(!Spec.isAlive(alive))

                try FileManager.default.removeItem(atPath: "\(flags.path)/ready")
                #expect(await eventually(timeout: .seconds(10)) { await harness.pod("probed")?.isReady == false })
            }
        }
    }

    @Test("deletion: SIGTERM first, SIGKILL after the grace period, the object removed only once the processes are gone")
    func deletion() async throws {
        try await LocalServer.with { local in
            let harness = try NodeHarness(local: local, name: "node-d", address: "127.77.4.1")
            let shared = try ScratchDirectory()
            try await harness.run { _ in
                try await harness.create("polite", containers: [Spec.container("main", ["sh", "-c", "trap 'echo TERM > $TENOPS_VOLUME_OUT/term; exit 0' TERM; while true; do sleep 0.1; done"],
                    mounts: ["/out": "out"])], volumes: [["name": "out", "hostPath": ["path": .string(shared.path)]]], grace: 30)
                try await harness.create("stubborn", containers: [Spec.container("main", ["sh", "-c", "trap '' TERM; while true; do sleep 0.1; done"])],
                                         grace: 1)
                #expect(await eventually {
                    let polite = await harness.running("polite", "main")
                    let stubborn = await harness.running("stubborn", "main")
                    return polite && stubborn
                })
                let polite = try #require(await harness.pid("polite", "main"))
                let stubborn = try #require(await harness.pid("stubborn", "main"))
                let podDirectory = "\(harness.options.stateDirectory)/pods/default_stubborn"
                #expect(FileManager.default.fileExists(atPath: podDirectory))

                let started = ContinuousClock.now
                try await harness.client.delete(Pod.self, name: "polite", namespace: "default")
                try await harness.client.delete(Pod.self, name: "stubborn", namespace: "default")
                #expect(await eventually { await harness.pod("polite") == nil })
                #expect(try String(contentsOfFile: "\(shared.path)/term", encoding: .utf8) == "TERM\n")
                #expect(!Spec.isAlive(polite))
                #expect(await harness.pod("stubborn") != nil || ContinuousClock.now - started >= .seconds(1))
                #expect(await eventually { await harness.pod("stubborn") == nil })
                #expect(ContinuousClock.now - started >= .seconds(1))
                #expect(!Spec.isAlive(stubborn))
                #expect(!FileManager.default.fileExists(atPath: podDirectory))
            }
        }
    }

    @Test("logs at the kubelet endpoint: tail, limit, follow until the container ends, kubectl logs through the API server; no certificate, no logs")
    func logs() async throws {
        try await LocalServer.with { local in
            let harness = try NodeHarness(local: local, name: "node-l", address: "127.77.5.1")
            try await harness.run { node in
                try await harness.create("talker", containers: [Spec.container("main", ["sh", "-c", "for i in 1 2 3 4 5 6; do echo line $i; sleep 0.3; done"])], restartPolicy: "Never")
                #expect(await eventually { await harness.pid("talker", "main") != nil })
                let base = "\(node.kubeletURL)/containerLogs/default/talker/main"
                let followed = try await Spec.curl(harness.adminCertificate + ["-N", "\(base)?follow=true"])
                #expect(followed.status == 0 && followed.out == (1...6).map { "line \($0)\n" }.joined(), "\(followed)")
                #expect(await eventually { await harness.pod("talker")?.status.phase == "Succeeded" })
                #expect(try await Spec.curl(harness.adminCertificate + ["\(base)?tailLines=2"]).out == "line 5\nline 6\n")
                #expect(try await Spec.curl(harness.adminCertificate + ["\(base)?limitBytes=3"]).out == "lin")

                let kubectl = try await local.kubectl(["logs", "talker", "--tail=1"])
                #expect(kubectl.out == "line 6\n", "\(kubectl.err)")

                let anonymous = try await Spec.curl(["-o", "/dev/null", "-w", "%{http_code}", base])
                #expect(anonymous.status != 0 && anonymous.out == "000")
                for (path, code) in [("/containerLogs/default/%2e%2e/main", "400"), ("/containerLogs/default/../../etc/passwd", "404"),
                                     ("/containerLogs/default/talker/main?tailLines=-1", "400"),
                                     ("/containerLogs/default/talker/main?tailLines=99999999999999999999999", "400"),
                                     ("/containerLogs/default/nobody/main", "404"), ("/containerLogs/default/talker/main?previous=true", "400")] {
                    let answer = try await Spec.curl(harness.adminCertificate + ["--path-as-is", "-o", "/dev/null", "-w", "%{http_code}", node.kubeletURL + path])
                    #expect(answer.out == code, "\(path)")
                }
            }
        }
    }

    @Test("poweroff kills every process and stops the Lease; partition stops the Lease only; node-up restores both")
    func failureSimulation() async throws {
        try await LocalServer.with { local in
            let harness = try NodeHarness(local: local, name: "node-s", address: "127.77.6.1")
            try await harness.run { _ in
                try await harness.create("sleeper", containers: [Spec.container("main", ["sleep", "300"])], grace: 1)
                #expect(await eventually { await harness.pid("sleeper", "main") != nil })
                let first = try #require(await harness.pid("sleeper", "main"))

                _ = try await harness.client.patch(Node.self, name: "node-s", patchType: .merge, patch: NodeSimulation.poweroff.patch)
                #expect(await eventually { !Spec.isAlive(first) })
                try await Task.sleep(for: .milliseconds(500))  // a heartbeat already on its way lands first
                let frozen = await harness.renewTime()
                try await Task.sleep(for: .seconds(1))
                #expect(await harness.renewTime() == frozen)

                _ = try await harness.client.patch(Node.self, name: "node-s", patchType: .merge, patch: NodeSimulation.clearPatch)
                #expect(await eventually { (await harness.renewTime() ?? .distantPast) > (frozen ?? .distantPast) })
                #expect(await eventually {
                    await harness.running("sleeper", "main", restarts: 1)
                })
                let second = try #require(await harness.pid("sleeper", "main"))

                _ = try await harness.client.patch(Node.self, name: "node-s", patchType: .merge, patch: NodeSimulation.partition.patch)
                try await Task.sleep(for: .milliseconds(500))
                let partitioned = await harness.renewTime()
                try await Task.sleep(for: .seconds(1))
                #expect(await harness.renewTime() == partitioned)
                #expect(Spec.isAlive(second))

                _ = try await harness.client.patch(Node.self, name: "node-s", patchType: .merge, patch: NodeSimulation.clearPatch)
                #expect(await eventually { (await harness.renewTime() ?? .distantPast) > (partitioned ?? .distantPast) })
                let current = await harness.pid("sleeper", "main")
                #expect(Spec.isAlive(second) && current == second)
            }
        }
    }

    @Test("a node started again on its directory restarts its pods with the same IP and the claim's data")
    func nodeRestart() async throws {
        try await LocalServer.with { local in
            let harness = try NodeHarness(local: local, name: "node-x", address: "127.77.7.1")
            _ = try await harness.client.create(Spec.claim("kept"))
            let first = try await harness.run { _ in
                try await harness.create("keeper", containers: [Spec.container("main", ["sh", "-c", "echo $TENOPS_POD_IP >> $TENOPS_VOLUME_DATA/ips; exec sleep 300"], mounts: ["/data": "data"])],
                    volumes: [["name": "data", "persistentVolumeClaim": ["claimName": "kept"]]], grace: 1)
                #expect(await eventually { await harness.pid("keeper", "main") != nil })
                return (pid: await harness.pid("keeper", "main"), ip: await harness.pod("keeper")?.status.podIP)
            }
            let pid = try #require(first.pid)
            #expect(!Spec.isAlive(pid))
            try await harness.run { _ in
                #expect(await eventually {
                    await harness.running("keeper", "main", restarts: 1)
                })
                #expect(await harness.pod("keeper")?.status.podIP == first.ip)
                let ips = try String(contentsOfFile: "\(harness.options.stateDirectory)/pvc/default/kept/ips", encoding: .utf8)
                #expect(ips == "\(first.ip ?? "")\n\(first.ip ?? "")\n")
                let status = await harness.container("keeper", "main")
                #expect(status?.json["lastState"]?["terminated"]["reason"] == "Unknown")
            }
        }
    }

    @Test("tenops node as a process: after kill -9 of it and of its reaper, its containers are left over, and the next run ends them and starts the pod again")
    func nodeProcessKilled() async throws {
        try await LocalServer.with { local in
            let harness = try NodeHarness(local: local, name: "node-k", address: "127.77.8.1")
            let arguments = ["node", "--kubeconfig", local.kubeconfig, "--name", "node-k", "--dir", harness.options.stateDirectory,
                             "--address", "127.77.8.1", "--heartbeat-seconds", "1"]
            let first = try NodeProcess(arguments)
            let orphan: pid_t
            do {
                #expect(await eventually { (try? await harness.client.get(Node.self, name: "node-k"))?.isReady == true })
                try await harness.create("orphan", containers: [Spec.container("main", ["sleep", "300"])], grace: 1)
                #expect(await eventually { await harness.running("orphan", "main") })
                orphan = try #require(await harness.pid("orphan", "main"))
                // Its reaper would end the orphan at once (see the reaper's test in ProcessTests):
                // a crash that takes the reaper too is what the next run must clean up after.
                let reaper = reapers(under: harness.options.stateDirectory)
                #expect(reaper.count == 1, "\(reaper)")
                for pid in reaper { kill(pid, SIGKILL) }
                #expect(await eventually { reapers(under: harness.options.stateDirectory).isEmpty })
                await first.kill()
            } catch {
                await first.stop()
                throw error
            }
            #expect(Spec.isAlive(orphan))

            let second = try NodeProcess(arguments)
            do {
                #expect(await eventually { !Spec.isAlive(orphan) })
                #expect(await eventually { await harness.running("orphan", "main", restarts: 1) })
                let replacement = try #require(await harness.pid("orphan", "main"))
                #expect(await second.stop() == 0)
                #expect(!Spec.isAlive(replacement))
            } catch {
                await second.stop()
                kill(orphan, SIGKILL)
                throw error
            }
        }
    }
}

/// A `tenops node` process.
final class NodeProcess: @unchecked Sendable {
    let process = Process()

    init(_ arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: try tenopsBinary())
        process.arguments = arguments
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
    }

    /// SIGKILL, as a crash would end it; its containers are left behind.
    func kill() async {
        if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
        _ = await process.exited(within: .seconds(10))
    }

    /// SIGTERM, which stops the node's containers too; SIGKILL if it takes longer than 15 s.
    /// Returns the exit status.
    @discardableResult
    func stop() async -> Int32 {
        if process.isRunning { Glibc.kill(process.processIdentifier, SIGTERM) }
        if await !process.exited(within: .seconds(15)) { await kill() }
        return process.terminationStatus
    }
}
