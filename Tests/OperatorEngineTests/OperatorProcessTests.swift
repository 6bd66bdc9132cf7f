import AgentTestSupport
import Foundation
@testable import OperatorEngine
import Testing

/// Issue #7's operator process: several `tenops operator` replicas against `tenops local`
/// (without its own engine), electing one leader through the Lease `tenops-operator`; the
/// leader drives the sample pair to Normal; a killed leader is replaced once its Lease expires,
/// a terminated one hands over at once; every replica serves /healthz, /readyz and /metrics.
@Suite("tenops operator: leader election, endpoints, metrics", .serialized, .timeLimit(.minutes(5)))
struct OperatorProcessTests {
    static let curl = "/usr/bin/curl"
    /// The operator's defaults (flags allowed, not used here).
    static let leaseDuration: Duration = .seconds(15)

    @Test("two replicas elect one leader, which drives the pair to Normal; kill -9 and SIGTERM of the leader hand over")
    func leaderElectionAndHandover() async throws {
        let pair = try LocalPair(engine: false)
        var replicas: [OperatorReplica] = []
        defer {
            replicas.forEach { $0.kill() }
            pair.stop()
        }
        // The API server is up and `tenops local` has created the sample pair.
        let up = await poll(timeout: .seconds(60)) { (try? await pair.kubectl(["get", "ttc", "sample", "-o", "name"]))?.status == 0 }
        try #require(up, "tenops local did not come up:\n\(pair.log)")

        let first = try OperatorReplica(name: "a", directory: pair.directory, kubeconfig: pair.kubeconfig)
        replicas.append(first)
        let second = try OperatorReplica(name: "b", directory: pair.directory, kubeconfig: pair.kubeconfig, extra: ["--log-format", "json"])
        replicas.append(second)
        for replica in [first, second] {
            let started = await replica.waitUntilServing()
            try #require(started, "\(replica.name) did not print its address:\n\(replica.stdout)\n\(replica.stderr)")
        }

        // Exactly one leader: its /metrics says tenops_leader 1, the other's 0, and the Lease names it.
        var leader: OperatorReplica?
        let elected = await poll(timeout: .seconds(30)) {
            leader = await Self.soleLeader(among: [first, second], pair: pair)
            return leader != nil
        }
        let oldLeader = try #require(leader, "no single leader (\(elected)):\n\(first.stderr)\n\(second.stderr)")
        let follower = oldLeader === first ? second : first
        print("leader: \(oldLeader.name) (\(oldLeader.identity)); standby: \(follower.name) (\(follower.identity))")

        // The leader drives the pair to Normal and reports it.
        let active = await pair.waitFor("Normal", timeout: .seconds(120))
        let events = await pair.events()
        try #require(active != nil, "the pair did not reach Normal:\n\(events)\n\(oldLeader.stderr)")
        var metrics = ""
        let reported = await poll(timeout: .seconds(15)) {
            metrics = await oldLeader.metrics()
            return Self.value(in: metrics, name: "timesten_classic_state", labels: ["name=\"sample\"", "namespace=\"default\"", "state=\"Normal\""]) == 1
        }
        #expect(reported, "no timesten_classic_state Normal 1 on the leader:\n\(metrics)")
        print("leader /metrics:\n\(metrics)")
        #expect(Self.value(in: metrics, name: "tenops_failovers_total", labels: ["name=\"sample\"", "namespace=\"default\""]) == 0)
        #expect(Self.value(in: metrics, name: "tenops_switchovers_total", labels: ["name=\"sample\"", "namespace=\"default\""]) == 0)
        #expect((Self.value(in: metrics, name: "tenops_reconcile_duration_seconds_count", labels: []) ?? 0) > 0)
        #expect((Self.value(in: metrics, name: "tenops_agent_request_duration_seconds_count", labels: ["verb=\"createDb\""]) ?? 0) >= 1)
        #expect(metrics.contains("# TYPE tenops_reconcile_duration_seconds histogram"))
        // At rest one stream is open (the active's) and the standby's rests on it.
        let rested = await poll(timeout: .seconds(15)) {
            let now = await oldLeader.metrics()
            return Self.value(in: now, name: "tenops_agent_streams", labels: ["state=\"resting\""]) == 1
                && Self.value(in: now, name: "tenops_agent_streams", labels: ["state=\"open\""]) == 1
        }
        let streams = await oldLeader.metrics().split(separator: "\n").filter { $0.hasPrefix("tenops_agent_streams") }
        #expect(rested, "\(streams)")
        let standbyMetrics = await follower.metrics()
        #expect(Self.value(in: standbyMetrics, name: "tenops_leader", labels: []) == 0)
        #expect(!standbyMetrics.contains("timesten_classic_state{"), "the standby reports pairs:\n\(standbyMetrics)")
        for replica in [first, second] {
            let healthz = await replica.httpStatus("/healthz"), readyz = await replica.httpStatus("/readyz")
            let why = await replica.body("/readyz")
            #expect(healthz == "200" && readyz == "200", "\(replica.name): /healthz \(healthz), /readyz \(readyz) \(why)")
        }

        // kill -9 of the leader: the standby takes the Lease once it expires.
        let killed = ContinuousClock.now
        oldLeader.kill()
        var takeover: Duration?
        let tookOver = await poll(timeout: Self.leaseDuration + .seconds(8)) {
            guard await pair.leaseHolder() == follower.identity, await follower.leaderGauge() == 1 else { return false }
            takeover = killed.duration(to: .now)
            return true
        }
        #expect(tookOver, "the standby did not take over:\n\(follower.stderr)")
        print("takeover after kill -9 of the leader: \(takeover.map { "\($0)" } ?? "none") (lease duration \(Self.leaseDuration))")
        if let takeover { #expect(takeover <= Self.leaseDuration + .seconds(5)) }
        let normalAfterKill = await pair.waitFor("Normal", timeout: .seconds(60))
        let eventsAfterKill = await pair.events()
        #expect(normalAfterKill != nil, "not Normal after the takeover:\n\(eventsAfterKill)")
        var newMetrics = ""
        let newReported = await poll(timeout: .seconds(15)) {
            newMetrics = await follower.metrics()
            return Self.value(in: newMetrics, name: "timesten_classic_state", labels: ["name=\"sample\"", "state=\"Normal\""]) == 1
        }
        #expect(newReported, "the new leader does not report the pair:\n\(newMetrics)")

        // SIGTERM of the leader: it releases the Lease and exits 0; a standby takes over at once.
        let third = try OperatorReplica(name: "c", directory: pair.directory, kubeconfig: pair.kubeconfig)
        replicas.append(third)
        let thirdStarted = await third.waitUntilServing()
        try #require(thirdStarted, "c did not print its address:\n\(third.stdout)\n\(third.stderr)")
        // A standby is ready once it campaigns.
        let standbyReady = await poll(timeout: .seconds(15)) { await third.httpStatus("/readyz") == "200" }
        #expect(standbyReady, "c is not ready:\n\(third.stderr)")
        let thirdGauge = await third.leaderGauge()
        #expect(thirdGauge == 0)
        let terminated = ContinuousClock.now
        follower.signal(SIGTERM)
        let exited = await follower.process.exited(within: .seconds(15))
        try #require(exited, "SIGTERM did not stop the leader:\n\(follower.stderr)")
        #expect(follower.process.terminationReason == .exit && follower.process.terminationStatus == 0,
                "exit \(follower.process.terminationStatus) (\(follower.process.terminationReason == .exit ? "exit" : "signal"))")
        var handover: Duration?
        let handedOver = await poll(timeout: .seconds(10)) {
            guard await pair.leaseHolder() == third.identity else { return false }
            handover = terminated.duration(to: .now)
            return true
        }
        #expect(handedOver, "c did not take over:\n\(third.stderr)")
        print("handover after SIGTERM of the leader: \(handover.map { "\($0)" } ?? "none")")
        // The released Lease is taken at the standby's next attempt: retry period 2 s, jitter up to 20 %.
        if let handover { #expect(handover <= .seconds(5)) }
        let thirdLeads = await poll(timeout: .seconds(10)) { await third.leaderGauge() == 1 }
        #expect(thirdLeads)
        let normalAtEnd = await pair.waitFor("Normal", timeout: .seconds(60))
        let eventsAtEnd = await pair.events()
        #expect(normalAtEnd != nil, "not Normal after the handover:\n\(eventsAtEnd)")

        // --log-format json: one object a line, with time, level, label, message and metadata.
        let lines = second.stderr.split(separator: "\n").map(String.init)
        #expect(lines.count >= 4, "\(second.stderr)")
        for line in lines {
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(object != nil, "not a JSON object: \(line)")
            guard let object else { continue }
            #expect(object["time"] is String && object["level"] is String && object["label"] is String && object["message"] is String)
            #expect(object["metadata"] is [String: Any], "\(line)")
        }
        #expect(lines.contains { $0.contains("\"message\":\"became leader\"") }, "\(second.stderr)")
        // Never a secret in the logs: the sample's password, a private key.
        for replica in replicas {
            let log = replica.stdout + replica.stderr
            #expect(!log.contains("CHANGE-ME") && !log.contains("PRIVATE KEY"), "\(replica.name) logs a secret")
        }
    }

    @Test("kill -9 of the leader in the middle of a failover: the other replica finishes it; /metrics shows the state change")
    func leaderKilledMidFailover() async throws {
        let pair = try LocalPair(engine: false)
        var replicas: [OperatorReplica] = []
        defer {
            replicas.forEach { $0.kill() }
            pair.stop()
        }
        let up = await poll(timeout: .seconds(60)) { (try? await pair.kubectl(["get", "ttc", "sample", "-o", "name"]))?.status == 0 }
        try #require(up, "tenops local did not come up:\n\(pair.log)")
        let short = ["--lease-duration", "4", "--renew-deadline", "3", "--retry-period", "1"]
        for name in ["a", "b"] {
            let replica = try OperatorReplica(name: name, directory: pair.directory, kubeconfig: pair.kubeconfig, extra: short)
            replicas.append(replica)
            let started = await replica.waitUntilServing()
            try #require(started, "\(name) did not start:\n\(replica.stderr)")
        }
        var leader: OperatorReplica?
        _ = await poll(timeout: .seconds(30)) {
            leader = await Self.soleLeader(among: replicas, pair: pair)
            return leader != nil
        }
        let first = try #require(leader, "no single leader")
        let other = first === replicas[0] ? replicas[1] : replicas[0]
        let reachedNormal = await pair.waitFor("Normal", timeout: .seconds(120))
        let active = try #require(reachedNormal, "the pair did not reach Normal")
        let normal = ["name=\"sample\"", "namespace=\"default\"", "state=\"Normal\""]
        let reported = await poll(timeout: .seconds(15)) { Self.value(in: await first.metrics(), name: "timesten_classic_state", labels: normal) == 1 }
        #expect(reported)

        guard let postmaster = try await pair.postmaster(active) else {
            Issue.record("no postmaster for \(active)")
            return
        }
        kill(postmaster.pid, SIGKILL)
        // The leader's gauge leaves Normal for another state: the failover is under way. Kill the
        // leader right then. A scrape is not atomic across series, and the engine sets the new
        // state before it clears the old one, so one scrape can catch two states at 1 (the old
        // and the new) or, rendered in the wrong order, none: the poll waits for a scrape that
        // shows Normal at 0 and some other state at 1.
        var during = ""
        let left = await poll(timeout: .seconds(20)) {
            during = await first.metrics()
            return Self.value(in: during, name: "timesten_classic_state", labels: normal) == 0 && !Self.statesAtOne(in: during).isEmpty
        }
        first.kill()
        let states = Self.statesAtOne(in: during)
        #expect(left, "the state gauge never left Normal for another state:\n\(during)")
        // Only the states a failover passes through: a scrape that showed Normal at 0 has left it.
        let failover = ["ActiveDown", "ActiveTakeover", "StandbyDown"].map { "state=\"\($0)\"" }
        #expect(states.allSatisfy { state in failover.contains { state.contains($0) } }, "\(states)")
        let interrupted = await pair.pairRow()?.state ?? "?"
        print("leader killed with the pair \(interrupted); gauge: \(states)")

        let finished = await pair.waitFor("Normal", timeout: .seconds(90)) { $0 == PairAcceptanceTests.other(active) }
        let events = await pair.events()
        #expect(finished == PairAcceptanceTests.other(active), "\(events)\n\(other.stderr.suffix(3000))")
        #expect(await other.leaderGauge() == 1)
        let after = await poll(timeout: .seconds(15)) { Self.value(in: await other.metrics(), name: "timesten_classic_state", labels: normal) == 1 }
        #expect(after)
    }

    @Test("a bad --metrics-address or lease timing is refused before anything starts")
    func badFlags() async throws {
        let binary = try tenopsBinary()
        let address = try await ChildProcess.run(binary, ["operator", "--metrics-address", "localhost"])
        #expect(address.status != 0 && address.err.contains("--metrics-address"), "\(address)")
        let timing = try await ChildProcess.run(binary, ["operator", "--lease-duration", "5", "--renew-deadline", "10"])
        #expect(timing.status != 0 && timing.err.contains("--lease-duration"), "\(timing)")
        let format = try await ChildProcess.run(binary, ["operator", "--log-format", "xml"])
        #expect(format.status != 0 && format.err.contains("log-format"), "\(format)")
    }

    // MARK: Helpers

    /// The one replica whose /metrics says `tenops_leader 1` while the others say 0, and which
    /// the Lease names; nil while that is not so.
    static func soleLeader(among replicas: [OperatorReplica], pair: LocalPair) async -> OperatorReplica? {
        var leaders: [OperatorReplica] = []
        for replica in replicas {
            guard let value = await replica.leaderGauge() else { return nil }
            if value == 1 { leaders.append(replica) }
        }
        guard leaders.count == 1, let leader = leaders.first, await pair.leaseHolder() == leader.identity else { return nil }
        return leader
    }

    /// The `timesten_classic_state` series that read 1.
    static func statesAtOne(in metrics: String) -> [Substring] {
        samples(in: metrics, name: "timesten_classic_state").filter { $0.value == 1 }.map(\.series)
    }

    /// The value of the sample `name{...}` whose labels include every one of `labels`.
    static func value(in metrics: String, name: String, labels: [String]) -> Double? {
        samples(in: metrics, name: name).first { sample in labels.allSatisfy { sample.series.contains($0) } }?.value
    }

    /// The samples `name{...} value` of a Prometheus text exposition, comments left out.
    static func samples(in metrics: String, name: String) -> [(series: Substring, value: Double?)] {
        metrics.split(separator: "\n").compactMap { line in
            let parts = line.split(separator: " ")
            guard !line.hasPrefix("#"), parts.count == 2, parts[0].split(separator: "{", maxSplits: 1).first == Substring(name) else { return nil }
            return (parts[0], Double(parts[1]))
        }
    }
}

/// Polls `condition` every 200 ms until it holds or `timeout` passes.
private func poll(timeout: Duration, _ condition: () async -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(200))
    }
    return false
}

extension LocalPair {
    /// The Lease's holderIdentity, as kubectl reads it ("" when free or missing).
    func leaseHolder() async -> String {
        guard let result = try? await kubectl(["-n", "default", "get", "lease", "tenops-operator", "-o", "jsonpath={.spec.holderIdentity}"]),
              result.status == 0 else { return "" }
        return result.out.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// One `tenops operator` process on 127.0.0.1 (any free port, read from its first line of
/// output), its stdout and stderr in files under the pair's directory. Stopped by PID.
final class OperatorReplica: @unchecked Sendable {  // the Process is only started, signalled and read
    let name: String
    let process = Process()
    let outPath: String
    let errPath: String

    init(name: String, directory: String, kubeconfig: String, extra: [String] = []) throws {
        self.name = name
        outPath = "\(directory)/operator-\(name).out"
        errPath = "\(directory)/operator-\(name).err"
        FileManager.default.createFile(atPath: outPath, contents: nil)
        FileManager.default.createFile(atPath: errPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: try tenopsBinary())
        process.arguments = ["operator", "--kubeconfig", kubeconfig, "-n", "default", "--metrics-address", "127.0.0.1:0"] + extra
        var environment = ProcessInfo.processInfo.environment
        environment["KUBECONFIG"] = nil
        environment["POD_NAMESPACE"] = nil  // the Lease goes to the watched namespace, default
        process.environment = environment
        process.standardOutput = FileHandle(forWritingAtPath: outPath)
        process.standardError = FileHandle(forWritingAtPath: errPath)
        try process.run()
    }

    var stdout: String { (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "" }

    /// `http://127.0.0.1:PORT`, from `tenops operator: serving ... on http://127.0.0.1:PORT`.
    var baseURL: String? {
        guard let line = stdout.split(separator: "\n").first(where: { $0.contains("serving /healthz") }),
              let range = line.range(of: "http://") else { return nil }
        return String(line[range.lowerBound...])
    }

    /// From `tenops operator: campaigning for the Lease NS/NAME as IDENTITY`.
    var identity: String {
        guard let line = stdout.split(separator: "\n").first(where: { $0.contains("campaigning for the Lease") }) else { return "?" }
        return line.components(separatedBy: " as ").last ?? "?"
    }

    func waitUntilServing() async -> Bool {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline, process.isRunning {
            if baseURL != nil && identity != "?" { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return baseURL != nil && identity != "?"
    }

    func httpStatus(_ path: String) async -> String {
        guard let baseURL,
              let result = try? await ChildProcess.run(OperatorProcessTests.curl, ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "5", baseURL + path],
                                                       timeout: .seconds(10))
        else { return "" }
        return result.out
    }

    func body(_ path: String) async -> String {
        guard let baseURL, let result = try? await ChildProcess.run(OperatorProcessTests.curl, ["-s", "-m", "5", baseURL + path], timeout: .seconds(10))
        else { return "" }
        return result.out
    }

    func metrics() async -> String { await body("/metrics") }

    func leaderGauge() async -> Double? { OperatorProcessTests.value(in: await metrics(), name: "tenops_leader", labels: []) }

    func signal(_ number: Int32) {
        if process.isRunning { Foundation.kill(process.processIdentifier, number) }
    }

    /// SIGKILL by PID, and reaped.
    func kill() {
        guard process.isRunning else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}

/// What the failover and switchover counters count (`EngineMetrics`), without a process.
@Suite("EngineMetrics: what counts as a failover or a switchover")
struct EngineMetricsRuleTests {
    static func status(_ verb: String?, _ state: String?, id: String = "a1") -> TimesTenClassicStatus {
        var status = TimesTenClassicStatus(json: [:])
        status.highLevelState = "Normal"
        if let verb {
            var record = ActionRecord(id: id)
            record.verb = verb
            record.state = state
            status.lastAction = record
        }
        return status
    }

    @Test("a manual action counts once, when its record turns Succeeded")
    func actionTransitions() {
        let running = Self.status("switchover", ActionState.running), succeeded = Self.status("switchover", ActionState.succeeded)
        #expect(EngineMetrics.actionSucceeded("switchover", status: succeeded, previous: running))
        #expect(!EngineMetrics.actionSucceeded("switchover", status: succeeded, previous: succeeded))  // written again: not twice
        #expect(!EngineMetrics.actionSucceeded("switchover", status: running, previous: Self.status(nil, nil)))
        #expect(!EngineMetrics.actionSucceeded("failover", status: succeeded, previous: running))
        #expect(!EngineMetrics.actionSucceeded("switchover", status: Self.status("switchover", ActionState.failed), previous: running))
        // A second action of the same verb, succeeded right after the first: a new id counts.
        #expect(EngineMetrics.actionSucceeded("switchover", status: Self.status("switchover", ActionState.succeeded, id: "a2"), previous: succeeded))
        #expect(EngineMetrics.actionSucceeded("failover", status: Self.status("failover", ActionState.succeeded), previous: Self.status(nil, nil)))
    }

    @Test("an automatic failover is the state machine's FAILOVER event")
    func failoverEvents() {
        let events = [
            PairEvent(.warning, reason: PairEvent.Reason.stateChange, "Normal -> ActiveDown: sample-0 is Down"),
            PairEvent(.warning, reason: PairEvent.Reason.info, "FAILOVER: sample-1 becomes the active; sample-0 is Down"),
            PairEvent(.normal, reason: PairEvent.Reason.info, "failover a1 started: promoting sample-1"),
        ]
        #expect(EngineMetrics.failovers(in: events) == 1)
        #expect(EngineMetrics.failovers(in: []) == 0)
    }
}
