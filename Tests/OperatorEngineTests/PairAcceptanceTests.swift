import Foundation
import AgentTestSupport
import Testing

/// Issue #6's acceptance, end to end: `tenops local` with its engine and real PostgreSQL,
/// kubectl as the observer, psql as the client.
@Suite("Pair lifecycle on tenops local (end to end)", .serialized, .timeLimit(.minutes(5)))
struct PairAcceptanceTests {
    /// Starts a cluster with the sample, waits for Normal, creates the test table; returns the active.
    static func normalPair(_ pair: LocalPair) async throws -> String? {
        guard let active = await pair.waitFor("Normal") else {
            Issue.record("the sample never reached Normal: \(await pair.events())\n\(pair.log.suffix(4000))")
            return nil
        }
        let created = try await pair.sql(await pair.podIP(active), "CREATE TABLE IF NOT EXISTS acceptance_rows (id bigint PRIMARY KEY)")
        #expect(created.status == 0, "\(created)")
        return active
    }

    static func other(_ pod: String) -> String { pod == "sample-0" ? "sample-1" : "sample-0" }

    /// Every id, as the database at `host` holds them.
    static func ids(_ pair: LocalPair, _ host: String) async throws -> Set<Int> {
        let result = try await pair.sql(host, "SELECT id FROM acceptance_rows")
        #expect(result.status == 0, "\(result)")
        return Set(result.out.split(separator: "\n").compactMap { Int($0) })
    }

    @Test("create and initialise: Normal with an ACTIVE pod; rows written to the active appear on the standby")
    func createAndInitialise() async throws {
        let pair = try LocalPair()
        defer { pair.stop() }
        guard let active = try await Self.normalPair(pair) else { return }
        #expect(["sample-0", "sample-1"].contains(active))
        let standby = Self.other(active)
        let nodes = [await pair.podNode(active), await pair.podNode(standby)]
        #expect(nodes[0] != nodes[1] && !nodes[0].isEmpty, "\(nodes)")
        let inserted = try await pair.sql(await pair.podIP(active), "INSERT INTO acceptance_rows SELECT generate_series(1, 100)")
        #expect(inserted.status == 0, "\(inserted)")
        // RETURN TWOSAFE: the commit returned once the standby applied it.
        let onStandby = try await Self.ids(pair, await pair.podIP(standby))
        #expect(onStandby == Set(1...100))
        // The standby refuses writes; only the active pod is Ready.
        let refused = try await pair.sql(await pair.podIP(standby), "INSERT INTO acceptance_rows VALUES (0)")
        #expect(refused.status != 0)
        #expect(await pair.jsonpath("pod/\(active)", ".status.conditions[?(@.type==\"Ready\")].status") == "True")
        #expect(await pair.jsonpath("pod/\(standby)", ".status.conditions[?(@.type==\"Ready\")].status") == "False")
        let events = await pair.events()
        #expect(events.contains("Initializing -> Normal"), "\(events)")
    }

    @Test("kill -9 of the active's postmaster: failover, the old active re-duplicated, no acknowledged row lost")
    func postmasterCrash() async throws {
        let pair = try LocalPair()
        defer { pair.stop() }
        guard let active = try await Self.normalPair(pair) else { return }
        let writer = ContinuousWriter()
        writer.start(pair)
        try await Task.sleep(for: .seconds(1))
        guard let postmaster = try await pair.postmaster(active) else {
            Issue.record("no postmaster for \(active)")
            await writer.stop()
            return
        }
        kill(postmaster.pid, SIGKILL)
        let newActive = await pair.waitFor("Normal", timeout: .seconds(60)) { $0 == Self.other(active) }
        try await Task.sleep(for: .seconds(1))
        await writer.stop()
        let failoverEvents = await pair.events()
        #expect(newActive == Self.other(active), "\(failoverEvents)\n\(pair.log.suffix(4000))")
        let acknowledged = Set(writer.ids)
        #expect(acknowledged.count > 5)
        let held = try await Self.ids(pair, await pair.podIP(Self.other(active)))
        #expect(acknowledged.subtracting(held).isEmpty, "lost: \(acknowledged.subtracting(held).sorted())")
        // The old active is now a streaming standby holding the same rows.
        let onOld = try await Self.ids(pair, await pair.podIP(active))
        #expect(acknowledged.subtracting(onOld).isEmpty)
        let events = await pair.events()
        #expect(events.contains("Normal -> ActiveDown") && events.contains("FAILOVER") && events.contains("-> Normal"), "\(events)")
    }

    @Test("kill -9 of the active's agent, then kubectl delete pod of the active: each ends in Normal with nothing lost")
    func agentKillAndPodDelete() async throws {
        let pair = try LocalPair()
        defer { pair.stop() }
        guard let first = try await Self.normalPair(pair) else { return }
        guard let processes = try await pair.postmaster(first) else {
            Issue.record("no postmaster for \(first)")
            return
        }
        _ = try await pair.sql(await pair.podIP(first), "INSERT INTO acceptance_rows VALUES (1)")
        kill(processes.agent, SIGKILL)
        guard let second = await pair.waitFor("Normal", timeout: .seconds(60), where: { $0 == Self.other(first) }) else {
            Issue.record("no failover after the agent's death: \(await pair.events())\n\(pair.log.suffix(4000))")
            return
        }
        _ = try await pair.sql(await pair.podIP(second), "INSERT INTO acceptance_rows VALUES (2)")
        let deleted = try await pair.kubectl(["delete", "pod", second, "--wait=false"])
        #expect(deleted.status == 0, "\(deleted)")
        guard let third = await pair.waitFor("Normal", timeout: .seconds(90), where: { $0 == first }) else {
            Issue.record("no failover after the pod's deletion: \(await pair.events())\n\(pair.log.suffix(4000))")
            return
        }
        // Both pods hold both rows.
        for pod in [third, Self.other(third)] {
            let held = try await Self.ids(pair, await pair.podIP(pod))
            #expect(held.isSuperset(of: [1, 2]), "\(pod): \(held)")
        }
    }

    @Test("kill -9 of the standby's postmaster: StandbyDown, re-duplication, Normal; the active never moves")
    func standbyLoss() async throws {
        let pair = try LocalPair()
        defer { pair.stop() }
        guard let active = try await Self.normalPair(pair) else { return }
        let standby = Self.other(active)
        // At rest the standby's stream rests on the active's: the crash must reach the engine
        // through the active, which stops vouching for it.
        let rests = "the status stream of default/\(standby) rests while default/\(active) vouches for it"
        #expect(await eventuallyTrue { pair.log.contains(rests) }, "\(pair.log.suffix(4000))")
        guard let postmaster = try await pair.postmaster(standby) else {
            Issue.record("no postmaster for \(standby)")
            return
        }
        kill(postmaster.pid, SIGKILL)
        let down = await pair.waitFor("StandbyDown", timeout: .seconds(20)) { $0 == active }
        let events = await pair.events()
        #expect(down == active || events.contains("-> StandbyDown"), "\(events)")
        #expect(pair.log.contains("the status stream of default/\(standby) wakes: "), "\(pair.log.suffix(4000))")
        #expect(await pair.waitFor("Normal", timeout: .seconds(60)) { $0 == active } == active)
        #expect(await pair.events().contains("re-duplicating \(standby) from \(active)"))
        let inserted = try await pair.sql(await pair.podIP(active), "INSERT INTO acceptance_rows VALUES (7)")
        #expect(inserted.status == 0, "\(inserted)")
        #expect(try await Self.ids(pair, await pair.podIP(standby)).contains(7))
    }

    @Test("stopManaging gives ManualInterventionRequired and hands off; reexamine resumes (Reexamine's rules: both healthy -> Normal, a dead standby -> ManualInterventionRequired)")
    func stopManagingAndReexamine() async throws {
        let pair = try LocalPair()
        defer { pair.stop() }
        guard let active = try await Self.normalPair(pair) else { return }
        func patch(_ field: String, _ value: String) async throws {
            let result = try await pair.kubectl(["patch", "ttc", "sample", "--type=merge", "-p", #"{"spec":{"ttspec":{"\#(field)":"\#(value)"}}}"#])
            #expect(result.status == 0, "\(result)")
        }
        // A healthy pair: stop, then resume to Normal.
        try await patch("stopManaging", "1")
        #expect(await pair.waitFor("ManualInterventionRequired", timeout: .seconds(20)) != nil)
        try await patch("reexamine", "1")
        let resumed = await pair.waitFor("Normal", timeout: .seconds(30))
        let resumeEvents = await pair.events()
        #expect(resumed == active, "\(resumeEvents)")
        #expect(await pair.events().contains("Reexamine"))

        // Hands off: a dead standby is not repaired while stopManaging holds.
        try await patch("stopManaging", "2")
        #expect(await pair.waitFor("ManualInterventionRequired", timeout: .seconds(20)) != nil)
        guard let postmaster = try await pair.postmaster(Self.other(active)) else {
            Issue.record("no postmaster")
            return
        }
        kill(postmaster.pid, SIGKILL)
        try await Task.sleep(for: .seconds(3))
        #expect(await pair.pairRow()?.state == "ManualInterventionRequired")
        #expect(try await pair.postmaster(Self.other(active)) == nil, "the operator restarted the standby while told to leave it alone")
        // Reexamine with a dead standby: the reference's "otherwise" -> ManualInterventionRequired.
        try await patch("reexamine", "2")
        let reexamined = await eventuallyTrue(timeout: .seconds(20)) {
            await pair.events().contains("Reexamine -> ManualInterventionRequired")
        }
        let reexamineEvents = await pair.events()
        #expect(reexamined, "\(reexamineEvents)")
    }

    @Test("an engine killed in the middle of a failover: a new engine finishes it from .status")
    func engineRestartMidFailover() async throws {
        let pair = try LocalPair(engine: false)
        defer { pair.stop() }
        try await Task.sleep(for: .seconds(1))
        try pair.startOperator()
        guard let active = try await Self.normalPair(pair) else {
            Issue.record("\(pair.operatorLog.suffix(3000))")
            return
        }
        guard let postmaster = try await pair.postmaster(active) else { return }
        kill(postmaster.pid, SIGKILL)
        // Kill the engine as soon as the failover is on record (the intended roles swapped).
        let deadline = ContinuousClock.now + .seconds(20)
        var seen = ""
        while ContinuousClock.now < deadline {
            seen = await pair.jsonpath("ttc/sample", ".status.highLevelState")
            if seen != "Normal" { break }
            try await Task.sleep(for: .milliseconds(5))
        }
        await pair.killOperator()
        #expect(seen != "Normal", "the engine never left Normal")
        let interrupted = await pair.pairRow()?.state
        try pair.startOperator()
        let finished = await pair.waitFor("Normal", timeout: .seconds(60)) { $0 == Self.other(active) }
        let restartEvents = await pair.events()
        #expect(finished == Self.other(active), "interrupted in \(interrupted ?? "?"): \(restartEvents)\n\(pair.operatorLog.suffix(4000))")
    }

    @Test("bad input: the schema refuses an invalid spec; a missing dbSecret gets a clear Event and state")
    func badInput() async throws {
        let pair = try LocalPair(sample: false)
        defer { pair.stop() }
        #expect(await eventuallyTrue { (try? await pair.kubectl(["get", "ttc"]))?.status == 0 })
        for (field, value) in [("pollingInterval", "-5"), ("storageSize", "\"lots\"")] {
            let manifest = """
                {"apiVersion":"tenops.io/v1","kind":"TimesTenClassic","metadata":{"name":"bad","namespace":"default"},
                 "spec":{"ttspec":{"image":"tenops:latest","\(field)":\(value)}}}
                """
            let refused = try await pair.kubectl(["apply", "-f", "-"], input: manifest)
            #expect(refused.status != 0 && refused.err.contains(field), "\(field): \(refused)")
        }
        let noImage = try await pair.kubectl(["apply", "-f", "-"], input: """
            {"apiVersion":"tenops.io/v1","kind":"TimesTenClassic","metadata":{"name":"bad","namespace":"default"},"spec":{"ttspec":{}}}
            """)
        #expect(noImage.status != 0 && noImage.err.contains("image"), "\(noImage)")
        #expect((try await pair.kubectl(["get", "ttc", "bad"])).status != 0, "a refused object exists")

        let missing = try await pair.kubectl(["apply", "-f", "-"], input: """
            {"apiVersion":"tenops.io/v1","kind":"TimesTenClassic","metadata":{"name":"orphan","namespace":"default"},
             "spec":{"ttspec":{"image":"tenops:latest","storageSize":"1Gi","dbSecret":["no-such-secret"]}}}
            """)
        #expect(missing.status == 0, "\(missing)")
        let reported = await eventuallyTrue(timeout: .seconds(30)) {
            await pair.events("orphan").contains("dbSecret no-such-secret does not exist")
        }
        let orphanEvents = await pair.events("orphan")
        #expect(reported, "\(orphanEvents)")
        #expect(await pair.jsonpath("ttc/orphan", ".status.conditions[?(@.type==\"MetadataAvailable\")].status") == "False")
        #expect(await pair.pairRow("orphan")?.state == "Initializing")
    }

    /// `tenops local node-down|node-up NODE` against the pair's cluster.
    static func node(_ pair: LocalPair, _ verb: String, _ node: String) async throws {
        var arguments = ["local", verb, node, "--dir", pair.state]
        if verb == "node-down" { arguments += ["--mode", "poweroff"] }
        let result = try await ChildProcess.run(try tenopsBinary(), arguments, timeout: .seconds(30))
        #expect(result.status == 0, "\(result)")
    }

    @Test("node loss with deleteDbOnNotReadyNode 60: failover, the pod and its claim deleted after 60 s, back on the third node, Normal")
    func nodeLoss() async throws {
        let pair = try LocalPair()
        defer { pair.stop() }
        guard let active = try await Self.normalPair(pair) else { return }
        let standby = Self.other(active)
        let activeNode = await pair.podNode(active), standbyNode = await pair.podNode(standby)
        let claimUID = await pair.jsonpath("pvc/tt-persistent-\(active)", ".metadata.uid")
        let inserted = try await pair.sql(await pair.podIP(active), "INSERT INTO acceptance_rows SELECT generate_series(1, 50)")
        #expect(inserted.status == 0, "\(inserted)")
        try await Self.node(pair, "node-down", activeNode)
        // Failover once the old active has been unreachable for unreachableTimeout (30 s): a
        // powered-off node cannot be told from a partitioned one, so nothing is promoted sooner.
        let failedOver = await eventuallyTrue(timeout: .seconds(60)) { await pair.pairRow()?.active == standby }
        let failoverEvents = await pair.events()
        #expect(failedOver, "\(failoverEvents)")
        let back = await pair.waitFor("Normal", timeout: .seconds(120)) { $0 == standby }
        let events = await pair.events()
        #expect(back == standby, "\(events)\n\(pair.log.suffix(3000))")
        #expect(events.contains("deleting pod \(active) and its PVCs"), "\(events)")
        let newNode = await pair.podNode(active)
        #expect(newNode != activeNode && newNode != standbyNode && !newNode.isEmpty, "\(active) runs on \(newNode)")
        #expect(await pair.jsonpath("pvc/tt-persistent-\(active)", ".metadata.uid") != claimUID, "the claim was not replaced")
        #expect(try await Self.ids(pair, await pair.podIP(active)) == Set(1...50))
        try await Self.node(pair, "node-up", activeNode)
    }

    @Test("both nodes powered off, the active's restored: BothDown, Best picks the former active (RETURN TWOSAFE after Normal), Normal again")
    func bothDown() async throws {
        let pair = try LocalPair()
        defer { pair.stop() }
        guard let active = try await Self.normalPair(pair) else { return }
        let standby = Self.other(active)
        let activeNode = await pair.podNode(active), standbyNode = await pair.podNode(standby)
        let inserted = try await pair.sql(await pair.podIP(active), "INSERT INTO acceptance_rows SELECT generate_series(1, 20)")
        #expect(inserted.status == 0, "\(inserted)")
        try await Self.node(pair, "node-down", activeNode)
        try await Self.node(pair, "node-down", standbyNode)
        let waiting = await pair.waitFor("WaitingForActive", timeout: .seconds(60))
        let downEvents = await pair.events()
        #expect(waiting != nil && downEvents.contains("-> BothDown"), "\(downEvents)")
        #expect(await pair.jsonpath("ttc/sample", ".status.podStatus[?(@.intendedState==\"Active\")].name") == active)
        try await Self.node(pair, "node-up", activeNode)
        let writable = await eventuallyTrue(timeout: .seconds(60)) {
            (try? await pair.sql(await pair.podIP(active), "SELECT count(*) FROM acceptance_rows"))?.out.trimmingCharacters(in: .whitespacesAndNewlines) == "20"
        }
        let restoreEvents = await pair.events()
        #expect(writable, "\(restoreEvents)")
        // The standby's node stays off: after deleteDbOnNotReadyNode its pod moves to the third node.
        let normal = await pair.waitFor("Normal", timeout: .seconds(120)) { $0 == active }
        let events = await pair.events()
        #expect(normal == active, "\(events)\n\(pair.log.suffix(3000))")
        #expect(events.contains("WaitingForActive -> ConfiguringActive"), "\(events)")
        try await Self.node(pair, "node-up", standbyNode)
    }

    @Test("20 forced failovers under continuous writes with RETURN TWOSAFE lose no acknowledged commit")
    func twentyFailovers() async throws {
        let pair = try LocalPair()
        defer { pair.stop() }
        guard var active = try await Self.normalPair(pair) else { return }
        let writer = ContinuousWriter()
        writer.start(pair)
        var completed = 0
        for round in 1...20 {
            try await Task.sleep(for: .milliseconds(300))
            guard let postmaster = try await pair.postmaster(active) else {
                Issue.record("round \(round): no postmaster for \(active)")
                break
            }
            kill(postmaster.pid, SIGKILL)
            guard let next = await pair.waitFor("Normal", timeout: .seconds(60), where: { $0 == Self.other(active) }) else {
                Issue.record("""
                    round \(round): no failover from \(active): \(await pair.events())
                    \(pair.log.suffix(8000))
                    \(pair.containerLogs("sample-0"))
                    \(pair.containerLogs("sample-1"))
                    the agent of \(active): \(LocalPair.threads(of: postmaster.agent))
                    """)
                break
            }
            active = next
            completed += 1
        }
        try await Task.sleep(for: .milliseconds(500))
        await writer.stop()
        #expect(completed == 20)
        let acknowledged = Set(writer.ids)
        let held = try await Self.ids(pair, await pair.podIP(active))
        #expect(acknowledged.count > 100, "only \(acknowledged.count) commits were acknowledged")
        #expect(acknowledged.subtracting(held).isEmpty, "lost \(acknowledged.subtracting(held).count) of \(acknowledged.count): \(acknowledged.subtracting(held).sorted().prefix(20))")
    }

    @Test("a broken schema.sql: createDb is refused, the pair goes Failed with the database's words, and nothing retries")
    func brokenSchema() async throws {
        let pair = try LocalPair(sample: false)
        defer { pair.stop() }
        // kubectl's discovery must know the kind before it validates one: wait on the kind itself.
        #expect(await eventuallyTrue { (try? await pair.kubectl(["get", "ttc"]))?.status == 0 })
        let applied = try await pair.kubectl(["apply", "-f", "-"], input: """
            {"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"broken-meta","namespace":"default"},
             "data":{"schema.sql":"CREATE TABLE ok (id int);\\nCREATE TABLEX nonsense;\\n"}}
            {"apiVersion":"v1","kind":"Secret","metadata":{"name":"broken-db","namespace":"default"},"stringData":{"adminUser":"admin/secret1"}}
            {"apiVersion":"tenops.io/v1","kind":"TimesTenClassic","metadata":{"name":"broken","namespace":"default"},
             "spec":{"ttspec":{"image":"tenops:latest","storageSize":"1Gi","dbConfigMap":["broken-meta"],"dbSecret":["broken-db"]}}}
            """)
        #expect(applied.status == 0, "\(applied)")
        let failed = await pair.waitFor("Failed", pair: "broken", timeout: .seconds(60))
        let events = await pair.events("broken")
        #expect(failed != nil, "\(events)\n\(pair.log.suffix(3000))")
        #expect(events.contains("schema.sql"), "\(events)")
        #expect(!events.contains("secret1"), "an event shows the password")
    }

    /// Polls `condition` every 100 ms until it holds or `timeout` passes.
    func eventuallyTrue(timeout: Duration = .seconds(20), _ condition: () async -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if await condition() { return true }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return false
    }
}
