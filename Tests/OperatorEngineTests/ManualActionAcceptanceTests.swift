import AgentTestSupport
import Foundation
import Testing

/// Issue #7's manual actions, end to end on `tenops local`: the CLI submits, the engine acts,
/// kubectl and psql observe.
@Suite("Manual actions on tenops local (end to end)", .serialized, .timeLimit(.minutes(5)))
struct ManualActionAcceptanceTests {
    static func tenops(_ pair: LocalPair, _ arguments: [String]) async throws -> ProcessOutput {
        try await ChildProcess.run(try tenopsBinary(), arguments + ["--kubeconfig", pair.kubeconfig, "-n", "default"], timeout: .seconds(120))
    }

    static func lastAction(_ pair: LocalPair, _ field: String) async -> String {
        await pair.jsonpath("ttc/sample", ".status.lastAction.\(field)")
    }

    @Test("switchover under continuous writes: the active moves, nothing acknowledged is lost, the old active is re-attached by pg_rewind")
    func switchover() async throws {
        let pair = try LocalPair()
        defer { pair.stop() }
        guard let active = try await PairAcceptanceTests.normalPair(pair) else { return }
        let standby = PairAcceptanceTests.other(active)
        let writer = ContinuousWriter()
        writer.start(pair)
        try await Task.sleep(for: .seconds(1))
        let result = try await Self.tenops(pair, ["switchover", "sample"])
        try await Task.sleep(for: .seconds(1))
        await writer.stop()
        #expect(result.status == 0, "\(result)")
        #expect(result.out.contains("Succeeded"), "\(result.out)")
        #expect(await pair.pairRow()?.active == standby)
        #expect(await Self.lastAction(pair, "state") == "Succeeded")
        let switchoverEvents = await pair.events()
        #expect(await Self.lastAction(pair, "method") == "rewind", "\(switchoverEvents)")
        let acknowledged = Set(writer.ids)
        #expect(acknowledged.count > 5)
        let held = try await PairAcceptanceTests.ids(pair, await pair.podIP(standby))
        #expect(acknowledged.subtracting(held).isEmpty, "lost: \(acknowledged.subtracting(held).sorted())")
        #expect(await pair.waitFor("Normal", timeout: .seconds(30)) == standby)
        let onOld = try await PairAcceptanceTests.ids(pair, await pair.podIP(active))
        #expect(acknowledged.subtracting(onOld).isEmpty, "the re-attached standby lacks rows")
        let events = await pair.events()
        #expect(events.contains("switchover") && events.contains("succeeded"), "\(events)")
        #expect(events.contains("re-attached by rewind"), "the switchover's event does not say how \(active) was re-attached: \(events)")
    }

    @Test("reduplicate reports its progress in bytes and ends with the pair Normal; failover moves the active")
    func reduplicateAndFailover() async throws {
        let pair = try LocalPair()
        defer { pair.stop() }
        guard let active = try await PairAcceptanceTests.normalPair(pair) else { return }
        let standby = PairAcceptanceTests.other(active)
        // Some data, so that the copy has bytes to count.
        let filled = try await pair.sql(await pair.podIP(active), "CREATE TABLE filler AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 100000) g")
        #expect(filled.status == 0, "\(filled)")
        let result = try await Self.tenops(pair, ["reduplicate", "sample", standby])
        #expect(result.status == 0, "\(result)")
        #expect(await Self.lastAction(pair, "state") == "Succeeded")
        let total = Int(await Self.lastAction(pair, "bytesTotal")) ?? 0
        let done = Int(await Self.lastAction(pair, "bytesDone")) ?? 0
        #expect(total > 10_000_000 && done == total, "bytes \(done) of \(total)")
        #expect(await Self.lastAction(pair, "method") == "basebackup")
        #expect(await pair.waitFor("Normal", timeout: .seconds(30)) == active)
        #expect(try await pair.sql(await pair.podIP(standby), "SELECT count(*) FROM filler").out.contains("100000"))

        let failover = try await Self.tenops(pair, ["failover", "sample"])
        #expect(failover.status == 0, "\(failover)")
        #expect(await pair.waitFor("Normal", timeout: .seconds(60)) == standby)
        #expect(await Self.lastAction(pair, "verb") == "failover")
        #expect(await Self.lastAction(pair, "state") == "Succeeded")
    }

    @Test("refused actions change nothing: reduplicate of the active, a switchover while the standby is down, a malformed annotation")
    func refusals() async throws {
        let pair = try LocalPair()
        defer { pair.stop() }
        guard let active = try await PairAcceptanceTests.normalPair(pair) else { return }
        let standby = PairAcceptanceTests.other(active)
        let activeIP = await pair.podIP(active)
        let before = try await pair.postmaster(active)

        let ofActive = try await Self.tenops(pair, ["reduplicate", "sample", active])
        #expect(ofActive.status != 0)
        #expect(ofActive.err.contains("is the active"), "\(ofActive)")
        #expect(await pair.pairRow()?.active == active)
        #expect(try await pair.postmaster(active)?.pid == before?.pid, "the active's server was touched")

        let malformed = try await pair.kubectl(["annotate", "ttc", "sample", #"tenops.io/action={"verb":"switchover"}"#, "--overwrite"])
        #expect(malformed.status == 0, "\(malformed)")
        let reported = await eventually { await Self.lastAction(pair, "message").contains("needs an \"id\"") }
        let refusal = await Self.lastAction(pair, "message")
        #expect(reported, "\(refusal)")
        #expect(await Self.lastAction(pair, "state") == "Failed")
        #expect(await pair.pairRow()?.active == active)

        // The standby's node powered off: its pod is Unknown, then Down; either way not Healthy.
        let standbyNode = await pair.podNode(standby)
        try await PairAcceptanceTests.node(pair, "node-down", standbyNode)
        let whileDown = try await Self.tenops(pair, ["switchover", "sample", "--timeout", "30"])
        #expect(whileDown.status != 0, "\(whileDown)")
        #expect(whileDown.err.contains("refused") && whileDown.err.contains(standby), "\(whileDown)")
        #expect(await pair.pairRow()?.active == active, "a refused switchover moved the active")
        // Still the active, untouched: not fenced (under RETURN TWOSAFE its commits wait for a standby).
        let readOnly = try await pair.sql(activeIP, "SHOW default_transaction_read_only")
        #expect(readOnly.out.trimmingCharacters(in: .whitespacesAndNewlines) == "off", "\(readOnly)")
        try await PairAcceptanceTests.node(pair, "node-up", standbyNode)
    }

    func eventually(timeout: Duration = .seconds(20), _ condition: () async -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if await condition() { return true }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return false
    }
}
