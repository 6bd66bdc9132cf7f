import Foundation
import KubeAPI
import Testing
@testable import LocalCluster

/// Issue #4's acceptance, end to end: a real `tenops local` process (API server, controllers,
/// three process nodes) driven by the real kubectl, with real pods (python3's http.server)
/// reached over loopback with curl.
@Suite("tenops local: a StatefulSet of real processes, driven by kubectl", .serialized, .timeLimit(.minutes(5)))
struct LocalClusterAcceptanceTests {
    /// A StatefulSet whose pods serve their own claim directory over HTTP, after appending a
    /// line to `starts` in it, so a test can read what survived on the claim.
    static let statefulSet = """
        apiVersion: apps/v1
        kind: StatefulSet
        metadata: {name: web, namespace: default}
        spec:
          replicas: 2
          podManagementPolicy: Parallel
          serviceName: web
          selector: {matchLabels: {app: web}}
          template:
            metadata: {labels: {app: web}}
            spec:
              terminationGracePeriodSeconds: 5
              affinity:
                podAntiAffinity:
                  requiredDuringSchedulingIgnoredDuringExecution:
                  - labelSelector: {matchLabels: {app: web}}
                    topologyKey: kubernetes.io/hostname
              containers:
              - name: http
                image: python:3
                command: ["sh", "-c", "echo started >> $TENOPS_VOLUME_DATA/starts; exec python3 -u -m http.server --bind $POD_IP --directory $TENOPS_VOLUME_DATA 8080"]
                env:
                - name: POD_IP
                  valueFrom: {fieldRef: {fieldPath: status.podIP}}
                readinessProbe:
                  httpGet: {path: /starts, port: 8080}
                  periodSeconds: 1
                volumeMounts:
                - {name: data, mountPath: /data}
          volumeClaimTemplates:
          - metadata: {name: data}
            spec:
              accessModes: [ReadWriteOnce]
              resources: {requests: {storage: 1Gi}}
        """

    struct PodView {
        let name: String
        let uid: String
        let node: String
        let ip: String
        let ready: Bool
        let restarts: Int
        let claim: String?
    }

    static func pods(_ kubeconfig: String) async throws -> [PodView] {
        let result = try await Kubectl.run(["--kubeconfig", kubeconfig, "get", "pods", "-l", "app=web", "-o", "json"])
        guard result.status == 0, let list = try? JSONParser.parseObject(Data(result.out.utf8)) else { return [] }
        return (list["items"]?.arrayValue ?? []).compactMap { item in
            guard let name = item["metadata"]["name"].stringValue, item["metadata"]["deletionTimestamp"].stringValue == nil
            else { return nil }
            let conditions = item["status"]["conditions"].arrayValue ?? []
            let ready = conditions.contains { $0["type"].stringValue == "Ready" && $0["status"].stringValue == "True" }
            let restarts = (item["status"]["containerStatuses"].arrayValue ?? []).reduce(0) { $0 + Int($1["restartCount"].intValue ?? 0) }
            let claim = (item["spec"]["volumes"].arrayValue ?? []).compactMap { $0["persistentVolumeClaim"]["claimName"].stringValue }.first
            return PodView(name: name, uid: item["metadata"]["uid"].stringValue ?? "", node: item["spec"]["nodeName"].stringValue ?? "", ip: item["status"]["podIP"].stringValue ?? "",
                           ready: ready, restarts: restarts, claim: claim)
        }.sorted { $0.name < $1.name }
    }

    static func bothReady(_ kubeconfig: String, timeout: Duration = .seconds(60)) async -> [PodView]? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let now = (try? await pods(kubeconfig)) ?? []
            if now.count == 2 && now.allSatisfy({ $0.ready && !$0.ip.isEmpty && !$0.node.isEmpty }) { return now }
            try? await Task.sleep(for: .milliseconds(200))
        }
        return nil
    }

    /// What the pod at `ip` serves at /starts: one line per container start on its claim.
    ///
    /// Asked again while nothing answers at `ip`, for up to `patience`: after a restart of tenops
    /// local, the pods keep the Ready status they had until their node reports again (as with a
    /// kubelet's restart), so Ready alone does not say that the new process listens yet.
    static func starts(_ ip: String, patience: Duration = .seconds(15)) async throws -> [String] {
        let deadline = ContinuousClock.now + patience
        while true {
            let result = try await ChildProcess.run("/usr/bin/curl", ["-sS", "--max-time", "5", "http://\(ip):8080/starts"])
            if result.status == 0 || ContinuousClock.now >= deadline { return result.out.split(separator: "\n").map(String.init) }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    static func nodeReady(_ kubeconfig: String, _ node: String) async throws -> String {
        let result = try await Kubectl.run(["--kubeconfig", kubeconfig, "get", "node", node, "-o",
                                            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}"])
        return result.out
    }

    @Test("pods run, restart, are recreated with their claim, survive a node power-off and a restart of tenops local")
    func statefulSetLifecycle() async throws {
        let directory = try ScratchDirectory()
        var local = try TenopsLocalProcess(directory: directory.path, extraArguments: ["--node-grace-period", "4"])
        defer { local.stop() }
        #expect(await local.waitUntilServing(), "\(local.log)")
        let kubeconfig = "\(directory.path)/kubeconfig"

        // The kubeconfig is written as soon as the API server serves; the nodes register next.
        let registered = await eventually(timeout: .seconds(20)) {
            let nodes = try? await Kubectl.run(["--kubeconfig", kubeconfig, "get", "nodes", "--no-headers"])
            let lines = nodes?.out.split(separator: "\n") ?? []
            return ["node-a", "node-b", "node-c"].allSatisfy { name in lines.contains { $0.hasPrefix(name + " ") && $0.contains(" Ready ") } }
        }
        #expect(registered, "three Ready nodes: \(local.log.suffix(2000))")
        let applied = try await Kubectl.run(["--kubeconfig", kubeconfig, "apply", "-f", "-"], input: Self.statefulSet)
        #expect(applied.status == 0, "\(applied.err)")

        // Both pods Running and Ready, on different nodes, at different IPs, and reachable.
        guard let first = await Self.bothReady(kubeconfig) else {
            Issue.record("the pods did not become Ready: \(try await Self.pods(kubeconfig)) \(local.log.suffix(3000))")
            return
        }
        #expect(first[0].node != first[1].node)
        #expect(first[0].ip != first[1].ip)
        #expect(first.map(\.claim) == ["data-web-0", "data-web-1"])
        for pod in first {
            let lines = try await Self.starts(pod.ip)
            #expect(lines == ["started"], "\(pod.name) at \(pod.ip)")
        }

        // kubectl logs -f streams through the API server from the node.
        let follow = try RunningKubectl(["--kubeconfig", kubeconfig, "logs", "-f", "web-0"])
        _ = try await ChildProcess.run("/usr/bin/curl", ["-sS", "--max-time", "5", "http://\(first[0].ip):8080/starts?marker=follow1"])
        #expect(await eventually(timeout: .seconds(10)) { follow.text.contains("marker=follow1") }, "\(follow.text)")
        _ = try await ChildProcess.run("/usr/bin/curl", ["-sS", "--max-time", "5", "http://\(first[0].ip):8080/starts?marker=follow2"])
        #expect(await eventually(timeout: .seconds(10)) { follow.text.contains("marker=follow2") }, "\(follow.text)")
        follow.stop()

        // kill -9 of the container's process: restartCount goes up and the pod is Ready again.
        let server = try await ChildProcess.run("/usr/bin/pgrep", ["-f", "http.server --bind \(first[0].ip) "])
        let pid = Int32(server.out.split(separator: "\n").first ?? "") ?? 0
        #expect(pid > 0, "no process serves \(first[0].ip): \(server.out)")
        if pid > 0 { kill(pid, SIGKILL) }
        let restarted = await eventually(timeout: .seconds(30)) {
            let now = (try? await Self.pods(kubeconfig)) ?? []
            return now.first { $0.name == "web-0" }.map { $0.restarts >= 1 && $0.ready } ?? false
        }
        let afterKill = try await Self.pods(kubeconfig)
        #expect(restarted, "web-0 did not restart: \(afterKill)")
        #expect(try await Self.starts(first[0].ip) == ["started", "started"])

        // kubectl delete pod: recreated with the same claim, and the file on it survives.
        // (Not --wait: kubectl waits for a DELETED event after it has listed, and the node stops
        // python and the StatefulSet recreates web-1 within milliseconds, so kubectl can list
        // the new pod and then wait for ever, against a real cluster just as here.)
        let deleted = try await Kubectl.run(["--kubeconfig", kubeconfig, "delete", "pod", "web-1", "--wait=false"])
        #expect(deleted.status == 0, "\(deleted.err)")
        #expect(await eventually(timeout: .seconds(20)) {
            (try? await Self.pods(kubeconfig))?.first { $0.name == "web-1" }.map { $0.uid != first[1].uid } ?? false
        }, "web-1 was not replaced")
        guard let second = await Self.bothReady(kubeconfig) else {
            Issue.record("web-1 was not recreated: \(try await Self.pods(kubeconfig))")
            return
        }
        #expect(second[1].claim == "data-web-1")
        #expect(second[1].node == first[1].node, "a claim on a node keeps its pod there")
        #expect(try await Self.starts(second[1].ip) == ["started", "started"])

        // Power-off of web-1's node: NotReady after the grace period; the pod stays bound there.
        let downNode = second[1].node
        let down = try await ChildProcess.run(try tenopsBinary(), ["local", "node-down", downNode, "--mode", "poweroff", "--dir", directory.path])
        #expect(down.status == 0, "\(down.err)")
        #expect(await eventually(timeout: .seconds(20)) { (try? await Self.nodeReady(kubeconfig, downNode)) == "Unknown" },
                "\(downNode) did not turn NotReady")
        // The node lifecycle controller sets its pods' Ready condition to False.
        #expect(await eventually(timeout: .seconds(10)) {
            (try? await Self.pods(kubeconfig))?.first { $0.name == "web-1" }.map { $0.node == downNode && !$0.ready } ?? false
        }, "web-1 should stay on \(downNode), not Ready")

        // Deleting the pod and its claim lets it move, with a fresh claim.
        for arguments in [["delete", "pod", "web-1", "--grace-period=0", "--force", "--wait=false"],
                          ["delete", "pvc", "data-web-1", "--wait=false"]] {
            let result = try await Kubectl.run(["--kubeconfig", kubeconfig] + arguments)
            #expect(result.status == 0, "\(arguments): \(result.err)")
        }
        guard let moved = await Self.bothReady(kubeconfig) else {
            Issue.record("web-1 did not move: \(try await Self.pods(kubeconfig))")
            return
        }
        #expect(moved[1].node != downNode && moved[1].node != moved[0].node)
        #expect(try await Self.starts(moved[1].ip) == ["started"], "a fresh claim")
        let up = try await ChildProcess.run(try tenopsBinary(), ["local", "node-up", downNode, "--dir", directory.path])
        #expect(up.status == 0, "\(up.err)")
        #expect(await eventually(timeout: .seconds(20)) { (try? await Self.nodeReady(kubeconfig, downNode)) == "True" })

        // tenops local stopped and started again: the pods come back with their data.
        local.stop()
        #expect(local.process.terminationStatus == 0, "\(local.log.suffix(2000))")
        local = try TenopsLocalProcess(directory: directory.path, extraArguments: ["--node-grace-period", "4"])
        #expect(await local.waitUntilServing())
        guard let again = await Self.bothReady(kubeconfig) else {
            Issue.record("the pods did not come back: \(try await Self.pods(kubeconfig)) \(local.log.suffix(3000))")
            return
        }
        #expect(again.map(\.ip) == moved.map(\.ip), "pods keep their addresses")
        #expect(try await Self.starts(again[0].ip) == ["started", "started", "started"])
        #expect(try await Self.starts(again[1].ip) == ["started", "started"])
    }
}

/// The built tenops binary, beside the test bundle or in .build/debug.
func tenopsBinary() throws -> String {
    let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let candidates = [Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("tenops").path,
                      packageRoot.appendingPathComponent(".build/debug/tenops").path]
    guard let binary = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
        throw LocalClusterError.configuration("the tenops binary is not built (looked in \(candidates))")
    }
    return binary
}
