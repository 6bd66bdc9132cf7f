import Foundation
import KubeAPI
import OperatorEngine

#if canImport(Glibc)
import Glibc
#endif

/// Issue #7's leader-takeover figure, against real processes only: `tenops local --no-engine`
/// (its sample pair runs real PostgreSQL pods) and two `tenops operator` replicas electing a
/// leader through the Lease `default/tenops-operator`.
///
/// Each run finds the leader (its `tenops_leader` is 1) and the standby, waits a random part of
/// a retry period (so that the end lands anywhere in the renewal cycle), ends the leader, and
/// times, on the standby:
/// - the Lease naming it (`holderIdentity`, read from the API server);
/// - its `tenops_leader` turning 1;
/// - reconciling: its /readyz 200 while leading (the informers have synced) and its
///   `tenops_reconcile_duration_seconds_count` above what it was before.
/// A fresh replica then replaces the one that ended. `kill -9` runs first (the Lease must expire),
/// then SIGTERM runs (the leader releases the Lease). Each lease timing gets its own replicas.
///
/// `tenops-bench takeover [--runs N] [--sigterm-runs N] [--timings default,short] [--logs DIR]`
enum TakeoverBench {
    static let leaseName = "tenops-operator"

    /// The operator's leader-election flags.
    struct LeaseTiming {
        var name: String
        var duration: Int
        var renewDeadline: Int
        var retryPeriod: Int

        static let standard = LeaseTiming(name: "default", duration: 15, renewDeadline: 10, retryPeriod: 2)
        static let short = LeaseTiming(name: "short", duration: 4, renewDeadline: 3, retryPeriod: 1)

        var flags: [String] {
            ["--lease-duration", String(duration), "--renew-deadline", String(renewDeadline), "--retry-period", String(retryPeriod)]
        }
        var label: String { "lease \(duration) s, renew deadline \(renewDeadline) s, retry \(retryPeriod) s" }
    }

    struct Options {
        var runs = 10
        var sigtermRuns = 10
        var timings: [LeaseTiming] = [.standard, .short]
        var logDirectory: String?

        static let usage = "takeover [--runs N] [--sigterm-runs N] [--timings default,short] [--logs DIR]"

        init(_ arguments: [String]) throws {
            var rest = arguments[...]
            func value(_ flag: String) throws -> String {
                guard let value = rest.popFirst() else { throw BenchError("\(flag) needs a value; usage: \(Self.usage)") }
                return value
            }
            func count(_ flag: String) throws -> Int {
                guard let number = Int(try value(flag)), number >= 0 else { throw BenchError("\(flag) takes a number") }
                return number
            }
            while let flag = rest.popFirst() {
                switch flag {
                case "--runs": runs = try count(flag)
                case "--sigterm-runs": sigtermRuns = try count(flag)
                case "--logs": logDirectory = try value(flag)
                case "--timings":
                    timings = try value(flag).split(separator: ",").map { name in
                        switch name {
                        case "default": return .standard
                        case "short": return .short
                        default: throw BenchError("--timings takes default and/or short, not \(name)")
                        }
                    }
                default: throw BenchError("unknown option \(flag); usage: \(Self.usage)")
                }
            }
        }
    }

    /// What one run saw, in seconds from the leader's end.
    struct Takeover {
        var lease: Double?
        var leaderGauge: Double?
        var reconciling: Double?
    }

    static func run() async throws {
        print("takeover")
        fflush(nil)
        let options = try Options(Bench.options)
        var clusterOptions = try PairBench.Options([])
        clusterOptions.logDirectory = options.logDirectory
        var figures: [PairBench.Figure] = []
        try await LocalClusterRun.with("takeover", options: clusterOptions, ["--no-engine"]) { cluster in
            for timing in options.timings { figures += try await measure(cluster, timing: timing, options: options) }
        }
        for entry in figures { figure(entry.name, entry.value, target: entry.target) }
    }

    static func measure(_ cluster: LocalClusterRun, timing: LeaseTiming, options: Options) async throws -> [PairBench.Figure] {
        progress("\(timing.label)")
        var started = 0
        func replica() async throws -> OperatorProcess {
            started += 1
            let name = "operator-\(timing.name)-\(started)"
            let arguments = OperatorProcess.commandLine(["--kubeconfig", cluster.kubeconfig, "-n", PairBench.namespace] + timing.flags)
            let process = OperatorProcess(name: name, child: try cluster.start(name, arguments))
            try await process.waitUntilServing()
            return process
        }
        var replicas: [OperatorProcess] = []
        do {
            replicas = [try await replica(), try await replica()]
            _ = try await PairBench.waitForNormal(cluster.client, PairSample.name, timeout: .seconds(300))
            var killed: [Takeover] = []
            var terminated: [Takeover] = []
            for run in 0..<(options.runs + options.sigtermRuns) {
                let sigkill = run < options.runs
                let (leader, standby) = try await roles(replicas, client: cluster.client)
                let baseline = await standby.metric("tenops_reconcile_duration_seconds_count") ?? 0
                try await Task.sleep(for: .milliseconds(Int.random(in: 0...(timing.retryPeriod * 1000))))
                let ended = ContinuousClock.now
                kill(leader.pid, sigkill ? SIGKILL : SIGTERM)
                var seen = Takeover()
                let limit = Duration.seconds(timing.duration * 2 + 15)
                while seen.lease == nil || seen.leaderGauge == nil || seen.reconciling == nil, ContinuousClock.now - ended < limit {
                    let since = { (ContinuousClock.now - ended).inSeconds }
                    if seen.lease == nil, try await holder(cluster.client) == standby.identity { seen.lease = since() }
                    if seen.leaderGauge == nil, await standby.metric(EngineMetrics.Name.leader) == 1 { seen.leaderGauge = since() }
                    if seen.leaderGauge != nil, seen.reconciling == nil, (await standby.get("/readyz"))?.status == 200,
                       (await standby.metric("tenops_reconcile_duration_seconds_count") ?? 0) > baseline {
                        seen.reconciling = since()
                    }
                    try await Task.sleep(for: .milliseconds(10))
                }
                if sigkill { killed.append(seen) } else { terminated.append(seen) }
                progress("\(timing.name) \(sigkill ? "kill -9" : "SIGTERM") \(run + 1): \(leader.name) ended; \(standby.name) holds the Lease after "
                         + format(seen.lease) + ", tenops_leader 1 after " + format(seen.leaderGauge) + ", reconciling after " + format(seen.reconciling))
                if !sigkill { await leader.terminate() } else { await leader.kill9() }
                replicas = [standby, try await replica()]
                // The newcomer campaigns (has read the Lease) before the next run.
                let newcomer = replicas[1]
                try await NodeBench.waitUntil("\(newcomer.name) is ready", timeout: .seconds(30)) { (await newcomer.get("/readyz"))?.status == 200 }
            }
            for process in replicas { await process.terminate() }
            return figures(timing, killed: killed, terminated: terminated)
        } catch {
            for process in replicas { await process.terminate() }
            throw error
        }
    }

    /// The leader (tenops_leader 1, ready: synced) and the standby (tenops_leader 0, ready: campaigning).
    static func roles(_ replicas: [OperatorProcess], client: KubeClient) async throws -> (leader: OperatorProcess, standby: OperatorProcess) {
        var found: (OperatorProcess, OperatorProcess)?
        try await NodeBench.waitUntil("one leader and one standby, both ready", timeout: .seconds(60)) {
            var gauges: [Double?] = []
            for replica in replicas { gauges.append(await replica.metric(EngineMetrics.Name.leader)) }
            guard let index = gauges.firstIndex(of: 1), gauges.filter({ $0 == 1 }).count == 1, gauges.filter({ $0 == 0 }).count == 1 else {
                return false
            }
            let leader = replicas[index], standby = replicas[1 - index]
            guard (await leader.get("/readyz"))?.status == 200, (await standby.get("/readyz"))?.status == 200,
                  (try? await holder(client)) == leader.identity
            else { return false }
            found = (leader, standby)
            return true
        }
        return try requireValue(found, "the roles")
    }

    static func holder(_ client: KubeClient) async throws -> String? {
        try await client.get(Lease.self, name: leaseName, namespace: PairBench.namespace).spec.holderIdentity
    }

    static func figures(_ timing: LeaseTiming, killed: [Takeover], terminated: [Takeover]) -> [PairBench.Figure] {
        var figures: [PairBench.Figure] = [.init(name: "takeover with \(timing.label)", value: "")]
        for (what, runs) in [("kill -9", killed), ("SIGTERM", terminated)] where !runs.isEmpty {
            var lease = Samples(), reconciling = Samples()
            for run in runs {
                if let value = run.lease { lease.add(value) }
                if let value = run.reconciling { reconciling.add(value) }
            }
            let missing = runs.filter { $0.lease == nil || $0.reconciling == nil }.count
            figures += [
                .init(name: "  \(what) of the leader to the Lease held by the other, p50 / p99 (of \(lease.values.count))",
                      value: "\(PairBench.seconds(lease.percentile(50))) / \(PairBench.seconds(lease.percentile(99)))",
                      target: what == "kill -9" ? "within the lease duration (\(timing.duration) s) + a retry" : "a retry period"),
                .init(name: "  \(what) of the leader to the other reconciling, p50 / p99",
                      value: "\(PairBench.seconds(reconciling.percentile(50))) / \(PairBench.seconds(reconciling.percentile(99)))"),
                .init(name: "  \(what): min / max to reconciling",
                      value: "\(PairBench.seconds(reconciling.percentile(0))) / \(PairBench.seconds(reconciling.percentile(100)))"),
            ]
            if missing > 0 { figures.append(.init(name: "  \(what): runs without a takeover in time", value: "\(missing) of \(runs.count)", target: "0")) }
        }
        return figures
    }

    static func format(_ value: Double?) -> String { value.map(PairBench.seconds) ?? "never" }

    static func progress(_ line: String) {
        FileHandle.standardError.write(Data("  takeover: \(line)\n".utf8))
    }
}
