import Foundation
import KubeAPI
import LocalCluster
import Logging
import OperatorEngine

#if canImport(Glibc)
import Glibc
#endif

/// Issue #7's scale figure: `tenops operator` (a process of its own) in charge of N
/// TimesTenClassic pairs whose pods are SIMULATED, the one place DESIGN.md allows it.
///
/// In this process: the local API server and its controllers (`LocalControlPlane` with no
/// process node), the simulated kubelet of three simulated nodes (`SimulatedNodes`) and the
/// agents of the simulated pods (`SimulatedAgents`: the real agent endpoint over mutual TLS, a
/// simulated database behind it). The operator authenticates with a token of its own user, so
/// that the API server's `/metrics` (`apiserver_request_total`) tells its requests apart.
///
/// Figures: the time from creating the pairs (the sample's spec, `scale-NNNN` in one
/// namespace) until all are Normal (informational); then, after a settling pause, over a
/// window: the operator's CPU (utime + stime from /proc/PID/stat) as a share of one core, its
/// RSS, and its API requests per minute by verb and resource.
///
/// `tenops-bench scale [--pairs N] [--window-seconds S] [--settle-seconds S] [--logs DIR]`
enum ScaleBench {
    static let namespace = "scale"
    static let operatorUser = "system:serviceaccount:tenops-system:tenops-operator"

    struct Options {
        var pairs = 1000
        var windowSeconds = 60
        var settleSeconds = 30
        /// Pairs created at once.
        var concurrency = 16
        var logDirectory: String?

        static let usage = "scale [--pairs N] [--window-seconds S] [--settle-seconds S] [--concurrency N] [--logs DIR]"

        init(_ arguments: [String]) throws {
            var rest = arguments[...]
            func value(_ flag: String) throws -> String {
                guard let value = rest.popFirst() else { throw BenchError("\(flag) needs a value; usage: \(Self.usage)") }
                return value
            }
            func count(_ flag: String, allowZero: Bool = false) throws -> Int {
                guard let number = Int(try value(flag)), number > 0 || (allowZero && number == 0) else {
                    throw BenchError("\(flag) takes a positive number")
                }
                return number
            }
            while let flag = rest.popFirst() {
                switch flag {
                case "--pairs": pairs = try count(flag)
                case "--window-seconds": windowSeconds = try count(flag)
                case "--settle-seconds": settleSeconds = try count(flag, allowZero: true)
                case "--concurrency": concurrency = try count(flag)
                case "--logs": logDirectory = try value(flag)
                default: throw BenchError("unknown option \(flag); usage: \(Self.usage)")
                }
            }
        }
    }

    static func run() async throws {
        print("scale (simulated pods)")
        fflush(nil)
        let options = try Options(Bench.options)
        let directory = "/tmp/tenops-bench-scale-\(UUID().uuidString.prefix(8).lowercased())"
        let logDirectory = options.logDirectory ?? directory
        try FileManager.default.createDirectory(atPath: "\(directory)/state", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: logDirectory, withIntermediateDirectories: true)
        var logger = Logger(label: "tenops-bench.scale")
        logger.logLevel = .warning

        let plane = try await LocalControlPlane.start(
            LocalControlPlane.Options(stateDirectory: "\(directory)/state", nodeNames: []), logger: logger)
        let agents = SimulatedAgents()
        var world: Task<Void, any Error>?
        var operatorProcess: OperatorProcess?
        do {
            let admin = KubeClient(config: try ClusterConfig.load(kubeconfig: "\(directory)/state/kubeconfig"))
            try await ClusterSetup.install(client: admin, sample: false, logger: logger)
            _ = try await admin.create(Namespace(name: namespace))

            let kubelet = try plane.server.componentClient(user: "system:node:simulated", groups: ["system:nodes"])
            let nodes = SimulatedNodes(client: kubelet, agents: agents, directory: "\(directory)/simulated", namespace: namespace)
            world = Task { try await nodes.run() }
            try await NodeBench.waitUntil("the simulated nodes are registered", timeout: .seconds(30)) {
                let listed = (try? await admin.list(KubeAPI.Node.self))?.items ?? []
                return listed.filter { $0.isReady }.count == SimulatedNodes.names.count
            }

            let kubeconfig = try writeOperatorKubeconfig(plane.server, directory: directory)
            let process = try OperatorProcess(name: "operator", arguments: ["--kubeconfig", kubeconfig, "-n", namespace],
                                              log: "\(logDirectory)/scale-operator.log")
            operatorProcess = process
            try await process.waitUntilServing()
            try await NodeBench.waitUntil("the operator leads and has synced", timeout: .seconds(60)) {
                let leading = await process.metric(EngineMetrics.Name.leader) == 1
                let ready = await process.get("/readyz")
                return leading && ready?.status == 200
            }
            let figures = try await measure(options, admin: admin, process: process, agents: agents, nodes: nodes)
            for entry in figures { figure(entry.name, entry.value, target: entry.target) }
        } catch {
            if let operatorProcess { progress("the end of \(operatorProcess.child.log):\n\(operatorProcess.child.tail())") }
            await stop(operatorProcess, world: world, agents: agents, plane: plane, directory: directory, keep: options.logDirectory != nil)
            throw error
        }
        await stop(operatorProcess, world: world, agents: agents, plane: plane, directory: directory, keep: options.logDirectory != nil)
    }

    private static func stop(_ process: OperatorProcess?, world: Task<Void, any Error>?, agents: SimulatedAgents, plane: LocalControlPlane,
                             directory: String, keep: Bool) async {
        await process?.terminate()
        world?.cancel()
        _ = try? await world?.value
        await agents.stopAll()
        await plane.stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Creates the pairs, waits for Normal, settles, and measures the window.
    static func measure(_ options: Options, admin: KubeClient, process: OperatorProcess, agents: SimulatedAgents,
                        nodes: SimulatedNodes) async throws -> [PairBench.Figure] {
        let pairs = options.pairs
        let requestsBefore = try await operatorRequests(admin)
        let created = ContinuousClock.now
        try await createPairs(pairs, concurrency: options.concurrency, admin: admin)
        progress("\(pairs) pairs created in \(PairBench.seconds((ContinuousClock.now - created).inSeconds))")
        let toNormal = try await waitForAllNormal(pairs, admin: admin, since: created)
        let requestsToNormal = try await operatorRequests(admin)
        let usageToNormal = try ProcessUsage(pid: process.pid)
        progress("all \(pairs) pairs Normal after \(PairBench.seconds(toNormal)); \(nodes.runningCount) simulated pods, "
                 + "\(agents.count) simulated agents; settling \(options.settleSeconds) s")
        try await Task.sleep(for: .seconds(options.settleSeconds))

        let before = try await operatorRequests(admin)
        let usageBefore = try ProcessUsage(pid: process.pid)
        let ownBefore = try ProcessUsage(pid: getpid())
        let windowStart = ContinuousClock.now
        try await Task.sleep(for: .seconds(options.windowSeconds))
        let usageAfter = try ProcessUsage(pid: process.pid)
        let ownAfter = try ProcessUsage(pid: getpid())
        let elapsed = (ContinuousClock.now - windowStart).inSeconds
        let after = try await operatorRequests(admin)
        let stillNormal = try await countNormal(admin)
        let openStreams = await process.metric(EngineMetrics.Name.agentStreams, labels: [#"state="open""#])
        let restingStreams = await process.metric(EngineMetrics.Name.agentStreams, labels: [#"state="resting""#])

        let perMinute = 60 / elapsed
        let window = after.subtracting(before)
        let cpu = (usageAfter.cpuSeconds - usageBefore.cpuSeconds) / elapsed * 100
        let rssMB = Double(usageAfter.rssKiB) * 1024 / 1_000_000
        func rate(_ verbs: Set<String>) -> String { String(format: "%.1f", Double(window.total(verbs: verbs)) * perMinute) }
        var figures: [PairBench.Figure] = [
            .init(name: "pairs (simulated pods, simulated agents)", value: "\(pairs) (\(nodes.runningCount), \(agents.count))"),
            .init(name: "creation to all \(pairs) Normal (informational)", value: PairBench.seconds(toNormal)),
            .init(name: "operator CPU until all Normal", value: String(format: "%.1f s (%.0f %% of one core)", usageToNormal.cpuSeconds,
                                                                       usageToNormal.cpuSeconds / toNormal * 100)),
            .init(name: "operator API requests until all Normal",
                  value: requestsToNormal.subtracting(requestsBefore).summary),
            .init(name: "steady state: pairs still Normal at the window's end", value: "\(stillNormal) of \(pairs)", target: "\(pairs)"),
            .init(name: "steady state: operator CPU over \(Int(elapsed.rounded())) s",
                  value: String(format: "%.2f %% of one core", cpu), target: "< 5 %"),
            .init(name: "steady state: operator RSS", value: String(format: "%.1f MB (%.1f MiB)", rssMB, Double(usageAfter.rssKiB) / 1024),
                  target: "<= 150 MB"),
            .init(name: "steady state: agents' status streams open / resting",
                  value: "\(openStreams.map { String(Int($0)) } ?? "?") / \(restingStreams.map { String(Int($0)) } ?? "?")"),
            .init(name: "steady state: operator LISTs per minute", value: rate(["LIST"]), target: "0"),
            .init(name: "steady state: operator GETs per minute", value: rate(["GET"]), target: "0"),
            .init(name: "steady state: operator WATCHes per minute", value: rate(["WATCH"])),
            .init(name: "steady state: operator PATCH+PUT+POST per minute", value: rate(["PATCH", "PUT", "POST"])),
            .init(name: "steady state: operator DELETEs per minute", value: rate(["DELETE", "DELETECOLLECTION"])),
        ]
        for (kind, count) in window.counts.sorted(by: { $0.key < $1.key }) where count > 0 {
            figures.append(.init(name: "  per minute: \(kind)", value: String(format: "%.1f", Double(count) * perMinute)))
        }
        figures.append(.init(name: "this process (API server, simulated nodes and agents) CPU",
                             value: String(format: "%.1f %% of one core", (ownAfter.cpuSeconds - ownBefore.cpuSeconds) / elapsed * 100)))
        return figures
    }

    /// The sample's Secret once, then `count` pairs with the sample's spec, `concurrency` at a time.
    static func createPairs(_ count: Int, concurrency: Int, admin: KubeClient) async throws {
        let objects = try PairSample.objects()
        guard var secret = objects.first(where: { $0["kind"]?.stringValue == "Secret" }),
              let template = objects.first(where: { $0["kind"]?.stringValue == TimesTenClassic.resourceType.kind })
        else { throw BenchError("the embedded sample lacks its Secret or its TimesTenClassic") }
        secret.setValue(.string(namespace), at: ["metadata", "namespace"])
        _ = try await admin.create(.secrets, namespace: namespace, object: secret)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<count {
                if index >= concurrency { try await group.next() }
                group.addTask {
                    var pair = TimesTenClassic(json: template)
                    pair.metadata.name = name(index)
                    pair.metadata.namespace = namespace
                    _ = try await admin.create(pair)
                }
            }
            try await group.waitForAll()
        }
    }

    static func name(_ index: Int) -> String { String(format: "scale-%04d", index) }

    /// Polls the pairs every 2 s until all `count` are Normal; returns the seconds since `since`.
    static func waitForAllNormal(_ count: Int, admin: KubeClient, since: ContinuousClock.Instant) async throws -> Double {
        let deadline = ContinuousClock.now + .seconds(max(600, count * 2))
        var lastReport = ContinuousClock.now
        while ContinuousClock.now < deadline {
            let states = try await pairStates(admin)
            let normal = states["Normal", default: 0]
            if normal == count { return (ContinuousClock.now - since).inSeconds }
            if ContinuousClock.now - lastReport >= .seconds(10) {
                lastReport = .now
                progress("after \(PairBench.seconds((ContinuousClock.now - since).inSeconds)): "
                         + states.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
            }
            try await Task.sleep(for: .seconds(2))
        }
        let states = try await pairStates(admin)
        throw BenchError("not all \(count) pairs were Normal in time: \(states)")
    }

    static func pairStates(_ admin: KubeClient) async throws -> [String: Int] {
        var states: [String: Int] = [:]
        for pair in try await admin.list(TimesTenClassic.self, namespace: namespace).items {
            states[pair.status.highLevelState ?? "none", default: 0] += 1
        }
        return states
    }

    static func countNormal(_ admin: KubeClient) async throws -> Int { try await pairStates(admin)["Normal", default: 0] }

    /// The operator's requests so far, from the API server's `/metrics`.
    static func operatorRequests(_ admin: KubeClient) async throws -> RequestCounts {
        let text = String(decoding: try await admin.send(method: "GET", path: "/metrics", accept: "text/plain"), as: UTF8.self)
        var counts: [String: Int] = [:]
        for series in PrometheusText.series(text) where series.name == "apiserver_request_total" && series.labels["user"] == operatorUser {
            let labels = series.labels
            let resource = [labels["group"], labels["resource"]].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: "/")
                + ((labels["subresource"] ?? "").isEmpty ? "" : "/" + labels["subresource"]!)
            counts["\(labels["verb"] ?? "?") \(resource.isEmpty ? "(no resource)" : resource)", default: 0] += Int(series.value)
        }
        return RequestCounts(counts: counts)
    }

    /// A kubeconfig for the operator's own user, with a bearer token the API server issued.
    static func writeOperatorKubeconfig(_ server: LocalAPIServer, directory: String) throws -> String {
        let token = try server.credentials.componentToken(for: operatorUser, groups: [])
        let ca = Data(try server.credentials.ca.certificate.pem.utf8).base64EncodedString()
        let text = """
            apiVersion: v1
            kind: Config
            current-context: operator
            clusters:
            - name: local
              cluster:
                server: \(server.url)
                certificate-authority-data: \(ca)
            users:
            - name: operator
              user:
                token: \(token)
            contexts:
            - name: operator
              context:
                cluster: local
                user: operator
                namespace: \(namespace)

            """
        let path = "\(directory)/operator.kubeconfig"
        guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw BenchError("cannot write \(path)")
        }
        return path
    }

    static func progress(_ line: String) {
        FileHandle.standardError.write(Data("  scale: \(line)\n".utf8))
    }
}

/// Requests by "VERB group/resource[/subresource]".
struct RequestCounts {
    var counts: [String: Int]

    func subtracting(_ earlier: RequestCounts) -> RequestCounts {
        RequestCounts(counts: counts.mapValues { $0 }.merging(earlier.counts.mapValues { -$0 }, uniquingKeysWith: +).filter { $0.value != 0 })
    }

    func total(verbs: Set<String>) -> Int {
        counts.filter { verbs.contains(String($0.key.prefix { $0 != " " })) }.map(\.value).reduce(0, +)
    }

    /// "LIST 7, WATCH 7, GET 12, ..." by verb.
    var summary: String {
        var byVerb: [String: Int] = [:]
        for (key, count) in counts { byVerb[String(key.prefix { $0 != " " }), default: 0] += count }
        return byVerb.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
    }
}
