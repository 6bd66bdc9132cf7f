import Agent
import AgentTestSupport
import Foundation
import Glibc
import KubeAPI
@testable import OperatorEngine
import PKI
import Synchronization
import Testing

/// A status line as the agent writes it.
private let statusJSON = #"{"appliedFiles":["db.ini"],"bytesBehind":null,"daemonUp":true,"dbLoaded":true,"engine":"postgresql","fenced":false,"instanceExists":true,"lastError":null,"lsn":"0/3000148","pid":42,"repPeerPState":"none","repScheme":false,"repState":"ACTIVE","timeline":1,"twosafe":false,"updatable":true,"version":"15.18"}"#

/// Values collected from @Sendable callbacks.
private final class Collected<Value: Sendable>: Sendable {
    private let values = Mutex<[Value]>([])
    func append(_ value: Value) { values.withLock { $0.append(value) } }
    var all: [Value] { values.withLock { $0 } }
}

/// Runs `body` against a hostile agent, stopping it afterwards.
private func withHostileAgent(
    timeouts: AgentClient.Timeouts = AgentClient.Timeouts(get: .seconds(10), post: .seconds(10), async: .seconds(10)),
    _ body: (HostileAgent, AgentClient) async throws -> Void
) async throws {
    let server = try HostileAgent()
    defer { server.stop() }
    try await body(server, AgentClient(baseURL: server.baseURL, tls: TLSSettings(), timeouts: timeouts))
}

/// The error `body` throws, as an AgentClientError.
private func clientError(_ body: () async throws -> Void) async -> AgentClientError? {
    do {
        try await body()
        return nil
    } catch let error as AgentClientError {
        return error
    } catch {
        Issue.record("not an AgentClientError: \(error)")
        return nil
    }
}

/// Reads a status stream to its end: the statuses, and the error it ended with.
private func drain(_ stream: AsyncThrowingStream<AgentStatus, any Error>) async -> ([AgentStatus], AgentClientError?) {
    var statuses: [AgentStatus] = []
    let error = await clientError {
        for try await status in stream { statuses.append(status) }
    }
    return (statuses, error)
}

@Suite("AgentClient against a hostile agent (test double)", .timeLimit(.minutes(2)))
struct AgentClientHostileTests {
    struct BadReply: Sendable, CustomTestStringConvertible {
        let name: String
        let reply: HostileAgent.Reply
        /// The error's case, by name, and a part of its message.
        let kind: String
        let says: String
        var testDescription: String { name }
    }

    static let badStatusReplies: [BadReply] = [
        BadReply(name: "not JSON", reply: HostileAgent.http(200, "{not json"), kind: "malformed", says: "invalid JSON"),
        BadReply(name: "an empty body", reply: HostileAgent.http(200, ""), kind: "malformed", says: "an empty body"),
        BadReply(name: "a JSON array", reply: HostileAgent.http(200, "[1, 2]"), kind: "malformed", says: "expected a JSON object"),
        BadReply(name: "a field missing", reply: HostileAgent.http(200, #"{"daemonUp": true}"#), kind: "malformed", says: "the field repState is missing"),
        BadReply(name: "a field of the wrong type", reply: HostileAgent.http(200, statusJSON.replacingOccurrences(of: #""daemonUp":true"#, with: #""daemonUp":"yes""#)),
                 kind: "malformed", says: "daemonUp must be true or false"),
        BadReply(name: "an unknown repState", reply: HostileAgent.http(200, statusJSON.replacingOccurrences(of: "ACTIVE", with: "SIDEWAYS")),
                 kind: "malformed", says: #"repState "SIDEWAYS""#),
        BadReply(name: "a pid beyond 32 bits", reply: HostileAgent.http(200, statusJSON.replacingOccurrences(of: #""pid":42"#, with: #""pid":99999999999"#)),
                 kind: "malformed", says: "pid must be a 32-bit integer"),
        BadReply(name: "a body cut off before its Content-Length", reply: HostileAgent.http(200, statusJSON, contentLength: statusJSON.utf8.count + 100),
                 kind: "malformed", says: "cut off"),
        BadReply(name: "not HTTP at all", reply: .pieces(["SSH-2.0-OpenSSH_9.2\r\n"]), kind: "malformed", says: "not HTTP"),
        BadReply(name: "no reply", reply: .pieces([]), kind: "unreachable", says: "Empty reply"),
        BadReply(name: "a reply of 5 MiB", reply: HostileAgent.http(200, String(repeating: "x", count: 5 << 20)),
                 kind: "malformed", says: "larger than 4194304 bytes"),
        BadReply(name: "an unexpected success status", reply: HostileAgent.http(204, ""), kind: "malformed", says: "unexpected HTTP 204"),
        BadReply(name: "an error status with an HTML body", reply: HostileAgent.http(502, "<html>\nbad gateway</html>", contentType: "text/html"),
                 kind: "rejected", says: "HTTP 502: <html>bad gateway</html>"),
        BadReply(name: "an error status in the agent's words",
                 reply: HostileAgent.http(409, #"{"error": {"code": "conflict", "message": "repDuplicate is running"}, "verb": "createDb"}"#),
                 kind: "rejected", says: "HTTP 409 conflict: repDuplicate is running"),
    ]

    @Test("a bad status reply is a clear error, never a crash", arguments: badStatusReplies)
    func badStatus(_ row: BadReply) async throws {
        try await withHostileAgent { server, client in
            server.script("/v1/status", row.reply)
            let error = try #require(await clientError { _ = try await client.status() })
            #expect(String(describing: error).hasPrefix(Self.prefix(row.kind)), "\(error)")
            #expect(error.description.contains(row.says), "\(error)")
        }
    }

    static func prefix(_ kind: String) -> String {
        switch kind {
        case "malformed": "malformed agent reply"
        case "unreachable": "agent unreachable"
        default: "agent refused"
        }
    }

    @Test("verb replies: a job without an id, a status of the wrong shape, die without a status")
    func badVerbReplies() async throws {
        try await withHostileAgent { server, client in
            server.script("/v1/actions/repDuplicate", HostileAgent.http(202, #"{"state": "running"}"#))
            let job = await clientError { _ = try await client.perform(.repDuplicate(from: "10.0.0.1")) }
            #expect(job?.description.contains("job: the field id is missing") == true, "\(String(describing: job))")
            server.script("/v1/actions/startDaemon", HostileAgent.http(200, #"{"verb": "startDaemon", "ok": true, "status": {"repState": 5}}"#))
            let status = await clientError { _ = try await client.perform(.startDaemon) }
            #expect(status?.description.contains("repState must be a string") == true, "\(String(describing: status))")
            server.script("/v1/actions/die", HostileAgent.http(200, #"{"verb": "die", "ok": true}"#))
            let died = try await client.perform(.die)
            #expect(died == .done(verb: "die", status: nil))
        }
    }

    @Test("timeouts: a GET, a verb and a job that outlive theirs")
    func timeouts() async throws {
        let short = AgentClient.Timeouts(get: .milliseconds(300), post: .milliseconds(300), async: .milliseconds(300))
        try await withHostileAgent(timeouts: short) { server, client in
            server.script("/v1/status", .hang)
            server.script("/v1/actions/startDaemon", .hang)
            server.script("/v1/jobs/slow", HostileAgent.http(200, #"{"id": "slow", "verb": "repDuplicate", "state": "running", "phase": "copying"}"#))
            for error in [await clientError { _ = try await client.status() }, await clientError { _ = try await client.perform(.startDaemon) }] {
                guard case .timedOut = error else {
                    Issue.record("expected a timeout, got \(String(describing: error))")
                    continue
                }
                #expect(error?.isUnreachable == true)
            }
            let job = await clientError { _ = try await client.waitForJob("slow", pollInterval: .milliseconds(20)) }
            guard case .jobTimedOut(let running, let after) = job else {
                Issue.record("expected jobTimedOut, got \(String(describing: job))")
                return
            }
            #expect(running.phase == "copying" && after == .milliseconds(300) && job?.isUnreachable == false)
        }
    }

    @Test("nothing listening: unreachable")
    func nothingListening() async throws {
        let client = AgentClient(baseURL: "http://127.0.0.1:1", tls: TLSSettings())
        let error = await clientError { _ = try await client.status() }
        guard case .unreachable(let detail) = error else {
            Issue.record("expected unreachable, got \(String(describing: error))")
            return
        }
        #expect(detail.contains("GET /v1/status"))
        #expect(error?.isUnreachable == true)
    }

    @Test("job polling reports each change of progress and ends with the job's end")
    func jobPolling() async throws {
        try await withHostileAgent { server, client in
            func job(_ state: String, _ done: Int, _ phase: String, extra: String = "") -> HostileAgent.Reply {
                HostileAgent.http(200, #"{"id": "dup-1", "verb": "repDuplicate", "state": "\#(state)", "phase": "\#(phase)", "bytesDone": \#(done), "bytesTotal": 100, "startedAt": "2024-05-01T12:00:00Z"\#(extra)}"#)
            }
            server.script("/v1/jobs/dup-1", job("running", 0, "starting"), job("running", 50, "copying"), job("running", 50, "copying"),
                          job("succeeded", 100, "done", extra: #", "finishedAt": "2024-05-01T12:00:07Z""#))
            let seen = Collected<AgentJobStatus>()
            let finished = try await client.waitForJob("dup-1", pollInterval: .milliseconds(5)) { seen.append($0) }
            #expect(finished.state == .succeeded && finished.fractionDone == 1)
            #expect(seen.all.map(\.bytesDone) == [0, 50, 100])
            #expect(finished.finishedAt.map { $0.timeIntervalSince(finished.startedAt ?? .distantPast) } == 7)

            server.script("/v1/jobs/dup-2", HostileAgent.http(200, #"{"id": "dup-2", "verb": "repDuplicate", "state": "failed", "phase": "failed", "error": "pg_basebackup failed", "stderr": "connection refused"}"#))
            let failure = await clientError { _ = try await client.waitForJob("dup-2") }
            guard case .jobFailed(let job) = failure else {
                Issue.record("expected jobFailed, got \(String(describing: failure))")
                return
            }
            #expect(job.stderr == "connection refused")
            #expect(failure?.description == "agent job dup-2 (repDuplicate) failed: pg_basebackup failed: connection refused")
        }
    }

    @Test("status stream: a clean end finishes it")
    func streamCleanEnd() async throws {
        try await withHostileAgent { server, client in
            server.script("/v1/status?watch=true", HostileAgent.stream([statusJSON + "\n", statusJSON + "\n"]))
            let (statuses, error) = await drain(try await client.watchStatus())
            #expect(statuses.count == 2 && error == nil)
            #expect(statuses.first?.pid == 42 && statuses.first?.repState == .active)
        }
    }

    @Test("status stream: an agent that falls silent with the connection open is unreachable after the idle timeout")
    func streamSilence() async throws {
        let timeouts = AgentClient.Timeouts(get: .seconds(10), post: .seconds(10), async: .seconds(10), streamIdle: .seconds(2))
        try await withHostileAgent(timeouts: timeouts) { server, client in
            server.script("/v1/status?watch=true", .piecesThenSilence(
                ["HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nConnection: close\r\n\r\n", statusJSON + "\n"]))
            let (statuses, error) = await drain(try await client.watchStatus())
            #expect(statuses.count == 1)
            #expect(error?.isUnreachable == true, "\(String(describing: error))")
        }
    }

    @Test("status stream: ends that are errors")
    func streamBadEnds() async throws {
        try await withHostileAgent { server, client in
            let cases: [(HostileAgent.Reply, Int, String, String)] = [
                (HostileAgent.stream([statusJSON + "\n", String(statusJSON.prefix(30))]), 1, "malformed", "ended inside a status line"),
                (HostileAgent.stream([statusJSON + "\n" + "not json\n" + statusJSON + "\n"]), 1, "malformed", "invalid JSON"),
                (HostileAgent.brokenChunkedStream([statusJSON + "\n"]), 1, "unreachable", "the stream broke off"),
                (HostileAgent.stream([String(repeating: "x", count: (1 << 20) + 10)]), 0, "malformed", "longer than"),
            ]
            for (reply, count, kind, says) in cases {
                server.script("/v1/status?watch=true", reply)
                let (statuses, error) = await drain(try await client.watchStatus())
                #expect(statuses.count == count, "\(says)")
                #expect(error?.description.hasPrefix(Self.prefix(kind)) == true && error?.description.contains(says) == true,
                        "\(String(describing: error))")
            }
            server.script("/v1/status?watch=true", HostileAgent.http(403, #"{"error": {"code": "forbidden", "message": "no"}}"#))
            let refused = await clientError { _ = try await client.watchStatus() }
            #expect(refused?.rejection?.status == 403 && refused?.rejection?.message == "no")
        }
    }
}

/// Waits up to `timeout` for `condition`; whether it came true.
private func eventually(_ timeout: Duration = .seconds(10), _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}

/// The stream the engine keeps per pod, with callbacks only (`openStatusStream`, `StatusFollower`).
@Suite("Status streams held by callbacks (against the hostile agent test double)", .timeLimit(.minutes(2)))
struct StatusStreamCallbackTests {
    static let watch = "/v1/status?watch=true"

    @Test("the follower delivers each status, reports each end and opens again; once cancelled it reports and opens nothing")
    func followerReopensUntilCancelled() async throws {
        try await withHostileAgent { server, client in
            server.script(Self.watch, HostileAgent.stream([statusJSON + "\n"]))
            let received = Collected<AgentStatus>()
            let lost = Collected<String>()
            let follower = StatusFollower(client: client) { received.append($0) } lost: { lost.append($0) }
            follower.start()
            let reopened = await eventually { lost.all.count >= 3 && received.all.count >= 3 }
            #expect(reopened, "received \(received.all.count), lost \(lost.all)")
            #expect(received.all.allSatisfy { $0.pid == 42 && $0.repState == .active })
            #expect(lost.all.first == "the agent closed its status stream")
            #expect(server.requests(Self.watch) >= 3)

            follower.cancel()
            let (seen, ends, requests) = (received.all.count, lost.all.count, server.requests(Self.watch))
            // Three times the longest wait between attempts: a follower still running would have opened again.
            try await Task.sleep(for: StatusFollower.longestWait * 3)
            #expect(received.all.count == seen && lost.all.count == ends, "nothing is reported after cancel")
            #expect(server.requests(Self.watch) <= requests + 1, "at most the attempt already on the wire")
        }
    }

    @Test("the wait before the next attempt doubles to 2 s, and starts again at 100 ms after a stream that opened", arguments: [
        (100, false, 100, 200), (200, false, 200, 400), (1600, false, 1600, 2000), (2000, false, 2000, 2000),
        (2000, true, 100, 200), (400, true, 100, 200),
    ])
    func waits(before: Int, opened: Bool, now: Int, next: Int) {
        let wait = StatusFollower.nextWait(after: .milliseconds(before), opened: opened)
        #expect(wait.now == .milliseconds(now) && wait.next == .milliseconds(next))
    }

    @Test("a stream cancelled before it connects ends as cancelled, and never reaches the agent")
    func cancelledBeforeConnecting() async throws {
        try await withHostileAgent { server, client in
            server.script(Self.watch, HostileAgent.stream([statusJSON + "\n"]))
            let ends = Collected<Result<Void, AgentClientError>>()
            let stream = client.openStatusStream({ _ in }) { ends.append($0) }
            stream.cancel()
            #expect(await eventually { ends.all.count == 1 })
            #expect(ends.all.first.map { if case .failure(.cancelled) = $0 { true } else { false } } == true, "\(ends.all)")
            try await Task.sleep(for: .milliseconds(200))
            #expect(server.requests(Self.watch) == 0)
        }
    }

    @Test("a stream that its own status callback cancels ends as cancelled (the callback runs outside the reader's lock)")
    func cancelledFromItsOwnCallback() async throws {
        try await withHostileAgent { server, client in
            server.script(Self.watch, .piecesThenSilence(
                ["HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nConnection: close\r\n\r\n", statusJSON + "\n"]))
            let ends = Collected<Result<Void, AgentClientError>>()
            let holder = Mutex<AgentStreamTransport.Stream?>(nil)
            let stream = client.openStatusStream({ _ in holder.withLock { $0 }?.cancel() }) { ends.append($0) }
            holder.withLock { $0 = stream }
            #expect(await eventually { ends.all.count == 1 })
            #expect(ends.all.first.map { if case .failure(.cancelled) = $0 { true } else { false } } == true, "\(ends.all)")
        }
    }

    @Test("a stream cancelled while open ends as cancelled, once, after the statuses it brought")
    func cancelledWhileOpen() async throws {
        try await withHostileAgent { server, client in
            server.script(Self.watch, .piecesThenSilence(
                ["HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nConnection: close\r\n\r\n", statusJSON + "\n"]))
            let statuses = Collected<AgentStatus>()
            let ends = Collected<Result<Void, AgentClientError>>()
            let stream = client.openStatusStream({ statuses.append($0) }) { ends.append($0) }
            #expect(await eventually { statuses.all.count == 1 })
            #expect(ends.all.isEmpty)
            stream.cancel()
            #expect(await eventually { ends.all.count == 1 })
            #expect(ends.all.first.map { if case .failure(.cancelled) = $0 { true } else { false } } == true, "\(ends.all)")
            try await Task.sleep(for: .milliseconds(100))
            #expect(ends.all.count == 1)
        }
    }

    @Test("a stream cancelled while its connection is still opening (the agent's accept queue is full) ends as cancelled at once, not at the connect timeout")
    func cancelledWhileConnecting() async throws {
        let listener = try FullAcceptQueue()
        defer { listener.close() }
        let client = AgentClient(host: "127.0.0.1", port: listener.port, tls: TLSSettings(),
                                 timeouts: AgentClient.Timeouts(get: .seconds(30), connect: .seconds(30)))
        let ends = Collected<Result<Void, AgentClientError>>()
        let stream = client.openStatusStream({ _ in }) { ends.append($0) }
        try await Task.sleep(for: .milliseconds(300))
        #expect(ends.all.isEmpty, "the connection should still be opening: \(ends.all)")
        let cancelled = ContinuousClock.now
        stream.cancel()
        #expect(await eventually(.seconds(3)) { ends.all.count == 1 }, "no end 3 s after cancelling (the connect timeout is 30 s)")
        let took = ContinuousClock.now - cancelled
        #expect(ends.all.first.map { if case .failure(.cancelled) = $0 { true } else { false } } == true, "\(ends.all) after \(took)")
        try await Task.sleep(for: .milliseconds(100))
        #expect(ends.all.count == 1)
    }
}

@Suite("AgentClient against a real agent", .timeLimit(.minutes(5)))
struct AgentClientAgentTests {
    /// Runs `body` with in-process agents over real PostgreSQL; stops them and removes their
    /// directories afterwards.
    func withAgents(_ addresses: [String], _ body: (TestPKI, [PodDirectory], [Agent]) async throws -> Void) async throws {
        let pki = try TestPKI()
        let pods = try addresses.map { try PodDirectory(address: $0, pki: pki) }
        var agents: [Agent] = []
        do {
            for pod in pods { agents.append(try await startAgent(pod)) }
            try await body(pki, pods, agents)
        } catch {
            for agent in agents { await agent.stop() }
            pods.forEach { $0.remove() }
            throw error
        }
        for agent in agents { await agent.stop() }
        pods.forEach { $0.remove() }
    }

    func client(_ pod: PodDirectory, _ pki: TestPKI) throws -> AgentClient {
        AgentClient(host: pod.address, tls: try pki.tls(pki.client), timeouts: AgentClient.Timeouts(get: .seconds(30), post: .seconds(120), async: .seconds(120)))
    }

    @Test("status, watch, verbs, the agent's 400, 404 and 409, readiness; the stream ends when the agent stops")
    func statusWatchAndVerbs() async throws {
        try await withAgents(["127.0.9.1"]) { pki, pods, agents in
            let pod = pods[0]
            let client = try client(pod, pki)
            let fresh = try await client.status()
            #expect(!fresh.instanceExists && !fresh.daemonUp && fresh.repState == .idle)
            #expect(fresh.engine == "postgresql" && fresh.version.hasPrefix("15."))

            let stream = try await client.watchStatus()
            var updates = stream.makeAsyncIterator()
            #expect(try await updates.next()?.repState == .idle)

            let created = try await client.perform(.createDb())
            let active = try #require(created.status)
            #expect(active.repState == .active && active.updatable && active.dbLoaded)
            #expect(active.appliedFiles == ["db.ini", "adminUser", "schema.sql"])
            // The stream passes through the server's start (ACTIVE, database not yet loaded) to the writable active.
            var seen = try await updates.next()
            while let status = seen, !(status.repState == .active && status.updatable) { seen = try await updates.next() }
            #expect(seen?.dbLoaded == true, "the stream did not report the new active")

            let scheme = try await client.perform(.createRepScheme(peers: ["127.0.9.2"], twoSafe: true))
            #expect(scheme.status?.repScheme == true && scheme.status?.twosafe == true)
            #expect(try await client.perform(.createRepEpilog()).status?.appliedFiles.last == "epilog.sql")

            // 400, 404 and 409 in the agent's words.
            let unknown = await clientError { _ = try await client.post(verb: "dropEverything", body: Data("{}".utf8)) }
            #expect(unknown?.rejection?.isBadRequest == true && unknown?.rejection?.code == "badRequest")
            #expect(unknown?.rejection?.message.contains("unknown verb") == true, "\(String(describing: unknown))")
            let badPeer = await clientError { _ = try await client.perform(.createRepScheme(peers: ["127.0.0.1; DROP"], twoSafe: false)) }
            #expect(badPeer?.rejection?.status == 400 && badPeer?.rejection?.message.contains("peers") == true)
            let overActive = await clientError { _ = try await client.perform(.repDuplicate(from: "127.0.9.2")) }
            #expect(overActive?.rejection?.isConflict == true && overActive?.rejection?.verb == "repDuplicate", "\(String(describing: overActive))")
            #expect(overActive?.rejection?.message.contains("unfenced active") == true)
            let noJob = await clientError { _ = try await client.job("nope") }
            #expect(noJob?.rejection?.isNotFound == true)

            // Readiness.
            _ = try await client.perform(.setActive)
            #expect(FileManager.default.fileExists(atPath: pod.root + "/tt/agent/ready"))
            _ = try await client.perform(.clearActive)
            #expect(!FileManager.default.fileExists(atPath: pod.root + "/tt/agent/ready"))

            // The operator's reading of a real status agrees with the agent's own type, field by field.
            let raw = try await CurlTransport.shared.perform(HTTPRequest(method: "GET", url: client.baseURL + "/v1/status"), tls: client.tls)
            let theirs = try JSONDecoder().decode(EngineStatus.self, from: raw.body)
            let ours = try AgentStatus(json: JSONParser.parseObject(raw.body))
            expectSame(theirs, ours)

            // The agent stops: the stream is over.
            await agents[0].stop()
            var ended = false
            do {
                while try await updates.next() != nil {}
                ended = true
            } catch let error as AgentClientError {
                ended = error.isUnreachable
            }
            #expect(ended)
            let gone = await clientError { _ = try await client.status() }
            #expect(gone?.isUnreachable == true, "\(String(describing: gone))")
        }
    }

    @Test("TLS: refused with a wrong CA, a foreign client certificate, no client certificate, or the agent's own certificate")
    func tlsRefusals() async throws {
        try await withAgents(["127.0.9.3"]) { pki, pods, _ in
            let pod = pods[0]
            let stranger = try CertificateAuthority.create(commonName: "another-ca")
            let foreignClient = try stranger.issueClient(commonName: "tenops-operator")
            let wrongTrust = TLSSettings(
                certificateAuthorityPEM: Data(try stranger.certificate.pem.utf8),
                clientCertificatePEM: Data(try pki.client.certificatePEM.utf8), clientKeyPEM: Data(try pki.client.privateKeyPEM.utf8))
            let foreign = try pki.tls(foreignClient)
            for (what, tls) in [
                ("a CA that did not sign the agent", wrongTrust), ("a client certificate from another CA", foreign),
                ("no client certificate", try pki.tls(nil)), ("the agent's serverAuth certificate", try pki.tls(pod.serverCertificate)),
            ] {
                let error = await clientError { _ = try await AgentClient(host: pod.address, tls: tls).status() }
                guard case .tls = error else {
                    Issue.record("\(what): expected a TLS failure, got \(String(describing: error))")
                    continue
                }
            }
            #expect(try await client(pod, pki).status().engine == "postgresql")
        }
    }

    @Test("repDuplicate followed to its end with progress; a failed one ends with the engine's words")
    func duplicateWithProgress() async throws {
        try await withAgents(["127.0.9.4", "127.0.9.5"]) { pki, pods, _ in
            let active = try client(pods[0], pki), standby = try client(pods[1], pki)
            _ = try await active.perform(.createDb())
            _ = try await active.perform(.createRepScheme(peers: [pods[1].address], twoSafe: false))
            let progress = Collected<AgentJobStatus>()
            let job = try await standby.duplicate(from: pods[0].address, pollInterval: .milliseconds(10)) { progress.append($0) }
            #expect(job.state == .succeeded && job.bytesTotal > 1_000_000 && job.bytesDone == job.bytesTotal)
            let seen = progress.all
            #expect(seen.first?.state == .running && seen.last == job)
            #expect(zip(seen, seen.dropFirst()).allSatisfy { $0.bytesDone <= $1.bytesDone }, "progress went backwards")
            var status = try await standby.status()
            let deadline = ContinuousClock.now + .seconds(30)
            while status.repState != .standby && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
                status = try await standby.status()
            }
            #expect(status.repState == .standby && !status.updatable)

            let failure = await clientError { _ = try await standby.duplicate(from: "127.0.9.99") }
            guard case .jobFailed(let failed) = failure else {
                Issue.record("expected jobFailed, got \(String(describing: failure))")
                return
            }
            #expect(failed.stderr?.contains("127.0.9.99") == true, "\(failed)")
        }
    }
}

@Suite("AgentClient decoding")
struct AgentClientDecodingTests {
    @Test("every field of the agent's status and job, as the agent encodes them")
    func agentEncodings() throws {
        var status = EngineStatus(engine: "postgresql", version: "15.18")
        status.daemonUp = true
        status.instanceExists = true
        status.dbLoaded = true
        status.repState = .standby
        status.repPeerPState = "streaming"
        status.bytesBehind = 1234
        status.lsn = "0/3000148"
        status.timeline = 3
        status.appliedFiles = ["db.ini", "adminUser"]
        status.lastError = "none really"
        status.pid = 4242
        status.fenced = true
        status.twosafe = true
        status.repScheme = true
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        expectSame(status, try AgentStatus(json: JSONParser.parseObject(encoder.encode(status))))
        // Unknown fields are ignored, nulls are absent.
        let fresh = try AgentStatus(json: JSONParser.parseObject(encoder.encode(EngineStatus(engine: "postgresql", version: "15"))))
        #expect(fresh == AgentStatus(version: "15"))
        var extended = try JSONParser.parseObject(encoder.encode(status))
        extended["somethingNew"] = ["nested": true]
        #expect(try AgentStatus(json: extended).pid == 4242)

        let started = Date(timeIntervalSince1970: 1_714_564_800)
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let job = try decoder.decode(AgentJob.self, from: Data(#"""
            {"id": "dup-1-abc", "verb": "repDuplicate", "state": "failed", "phase": "failed", "bytesDone": 10, "bytesTotal": 20,
             "source": "10.0.0.1:5432", "error": "boom", "stderr": "pg_basebackup: error",
             "startedAt": "2024-05-01T12:00:00Z", "finishedAt": "2024-05-01T12:00:03Z"}
            """#.utf8))
        let ours = try AgentJobStatus(json: JSONParser.parseObject(encoder.encode(job)))
        #expect(ours == AgentJobStatus(
            id: "dup-1-abc", verb: "repDuplicate", state: .failed, phase: "failed", bytesDone: 10, bytesTotal: 20, source: "10.0.0.1:5432",
            error: "boom", stderr: "pg_basebackup: error", startedAt: started, finishedAt: started.addingTimeInterval(3)))
    }

    @Test("commands: Oracle's verbs and the bodies the agent parses")
    func commands() {
        #expect(AgentCommand.createDb().body.isEmpty)
        #expect(AgentCommand.createRepScheme(peers: ["10.0.0.2"], twoSafe: true).body
            == ["peers": ["10.0.0.2"], "returnService": "RETURN TWOSAFE"])
        #expect(AgentCommand.repDuplicate(from: "10.0.0.1", port: 5433).body == ["from": "10.0.0.1", "port": 5433])
        #expect(AgentCommand.repDuplicate(from: "10.0.0.1").isAsynchronous)
        #expect(AgentCommand.repDeactivate().body.isEmpty)
        #expect(AgentCommand.repDeactivate(stop: true).body == ["stop": true])
        let verbs: [AgentCommand] = [
            .startDaemon, .stopDaemon, .createDb(), .destroyDb, .createRepScheme(peers: [], twoSafe: false), .createRepEpilog(),
            .repDuplicate(from: "h"), .repStateSetActive, .repDeactivate(), .startRepAgent, .stopRepAgent, .setActive, .clearActive, .die,
        ]
        #expect(verbs.map(\.verb) == AgentService.verbs)
    }
}

/// The operator's reading equals the agent's own value in every field.
func expectSame(_ theirs: EngineStatus, _ ours: AgentStatus, sourceLocation: SourceLocation = #_sourceLocation) {
    let expected = AgentStatus(
        engine: theirs.engine, version: theirs.version, daemonUp: theirs.daemonUp, instanceExists: theirs.instanceExists,
        dbLoaded: theirs.dbLoaded, updatable: theirs.updatable, repState: AgentStatus.RepState(rawValue: theirs.repState.rawValue) ?? .failed,
        repPeerPState: theirs.repPeerPState, bytesBehind: theirs.bytesBehind, lsn: theirs.lsn, timeline: theirs.timeline,
        appliedFiles: theirs.appliedFiles, lastError: theirs.lastError, pid: theirs.pid, fenced: theirs.fenced, twosafe: theirs.twosafe,
        repScheme: theirs.repScheme)
    #expect(ours == expected, sourceLocation: sourceLocation)
}

/// A listening socket on 127.0.0.1 whose accept queue is full: it listens with a backlog of 0,
/// never accepts, and one connection made here fills the queue. The kernel then drops the SYN of
/// any further connection, whose connect(2) hangs, retrying, as toward a partitioned node. A real
/// fault, not a double.
private final class FullAcceptQueue: Sendable {
    let port: Int
    private let listening: Int32
    private let filling: Int32

    init() throws {
        let listening = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Bool in
                bind(listening, pointer, length) == 0 && listen(listening, 0) == 0 && getsockname(listening, pointer, &length) == 0
            }
        }
        guard listening >= 0, bound else {
            _ = Glibc.close(listening)
            throw POSIXError(.EADDRNOTAVAIL)
        }
        let filling = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(filling, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard filling >= 0, connected else {
            _ = Glibc.close(filling)
            _ = Glibc.close(listening)
            throw POSIXError(.ECONNREFUSED)
        }
        self.listening = listening
        self.filling = filling
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    func close() {
        _ = Glibc.close(filling)
        _ = Glibc.close(listening)
    }
}
