import AgentTestSupport
import Foundation
import KubeAPI
import Logging
import OperatorEngine
import PKI
import PostgresNIO
import Testing
@testable import Agent

#if canImport(Glibc)
import Glibc
#endif

/// Two real agents on two loopback addresses, each with its own directories and its own
/// PostgreSQL 15 server, driven over HTTPS with mutual TLS.
@Suite("Agent with PostgreSQL", .timeLimit(.minutes(5)))
struct AgentPairTests {
    @Test("duplicate with progress, replicate 10,000 rows, kill -9 the active, fail over, re-duplicate, fence")
    func pairLifecycle() async throws {
        let pki = try TestPKI()
        let podA = try PodDirectory(address: "127.0.5.1", pki: pki)
        let podB = try PodDirectory(address: "127.0.5.2", pki: pki)
        try await withAgents([podA, podB]) { _, sessions in
            try await lifecycle(pki: pki, podA: podA, podB: podB, sessions: sessions)
        }
    }

    private func lifecycle(pki: TestPKI, podA: PodDirectory, podB: PodDirectory, sessions: SQLSessions) async throws {
        let a = try RawAgentClient(address: podA.address, pki: pki, identity: pki.client)
        let b = try RawAgentClient(address: podB.address, pki: pki, identity: pki.client)

        // createDb on A: db.ini, adminUser and schema.sql applied, the database is the active.
        let created = try await a.action("createDb")
        #expect(created.status == 200, "\(created.text)")
        let statusA = try await a.status()
        #expect(statusA.daemonUp && statusA.dbLoaded && statusA.updatable)
        #expect(statusA.repState == .active)
        #expect(statusA.appliedFiles == ["db.ini", "adminUser", "schema.sql"])
        #expect(statusA.engine == "postgresql" && statusA.version.hasPrefix("15."))
        // Idempotent: a second createDb changes nothing.
        #expect(try await a.action("createDb").status == 200)
        #expect(try await a.status().pid == statusA.pid)
        // db.ini reached the server.
        let sessionA = try await sessions.connect(podA.address)
        let rows = try await sessionA.query("SHOW max_connections", logger: SQLClient.logger)
        for try await row in rows { #expect(try row.decode(String.self) == "40") }

        let scheme = try await a.action("createRepScheme", #"{"peers": ["\#(podB.address)"]}"#)
        #expect(scheme.status == 200, "\(scheme.text)")
        let epilog = try await a.action("createRepEpilog")
        #expect(epilog.status == 200, "\(epilog.text)")
        #expect(try await a.status().appliedFiles.last == "epilog.sql")

        // repDuplicate on B from A, and a second one at the same time is refused.
        let started = try await b.action("repDuplicate", #"{"from": "\#(podA.address)"}"#)
        #expect(started.status == 202, "\(started.text)")
        let jobID = try #require(started.json["id"] as? String)
        let second = try await b.action("repDuplicate", #"{"from": "\#(podA.address)"}"#)
        #expect(second.status == 409)
        #expect(second.errorCode == "conflict" && second.errorMessage.contains("repDuplicate"))
        let (job, progress) = try await b.waitForJob(jobID)
        #expect(job.state == .succeeded, "\(job)")
        #expect(job.bytesTotal > 1_000_000 && job.bytesDone == job.bytesTotal)
        #expect(zip(progress, progress.dropFirst()).allSatisfy { $0.0 <= $1.0 }, "progress went backwards: \(progress)")
        try await b.waitForStatus("B streaming") { $0.repState == .standby && $0.repPeerPState == "streaming" }
        try await a.waitForStatus("A sees its standby") { $0.repPeerPState == "streaming" }

        // 10,000 rows on A are readable on B, and both sides report no lag.
        try await sessionA.query("""
            INSERT INTO items SELECT g, 'row ' || g FROM generate_series(1, 10000) g
            """, logger: SQLClient.logger)
        let sessionB = try await sessions.connect(podB.address)
        #expect(try await eventually(.seconds(20)) { try await SQLClient.count(sessionB, "items") == 10_000 })
        #expect(try await SQLClient.count(sessionB, "epilog_marker") == 1)
        try await b.waitForStatus("B caught up") { $0.bytesBehind == 0 && $0.repState == .standby }
        try await a.waitForStatus("A sees B caught up") { $0.bytesBehind == 0 }
        let standby = try await b.status()
        #expect(!standby.updatable && standby.dbLoaded)

        // stopRepAgent turns B's streaming off: A's changes wait until startRepAgent.
        #expect(try await b.action("stopRepAgent").status == 200)
        try await b.waitForStatus("B not streaming") { $0.repState == .idle && $0.repPeerPState == "stopped" }
        try await sessionA.query("INSERT INTO epilog_marker VALUES (2)", logger: SQLClient.logger)
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await SQLClient.count(sessionB, "epilog_marker") == 1)
        #expect(try await b.action("startRepAgent").status == 200)
        #expect(try await b.action("startRepAgent").status == 200)
        #expect(try await eventually(.seconds(20)) { try await SQLClient.count(sessionB, "epilog_marker") == 2 })
        try await b.waitForStatus("B streaming again") { $0.repState == .standby }
        try await sessionB.close()

        // kill -9 of A's postmaster: the status stream says so within 100 ms.
        let pidA = try #require(try await a.status().pid)
        let stream = try await a.operatorClient.watchStatus()
        let seen = Locked<[(AgentStatus, ContinuousClock.Instant)]>([])
        let reader = Task {
            for try await status in stream {
                seen.withLock { $0.append((status, .now)) }
                if status.repState == .failed { return }
            }
        }
        defer { reader.cancel() }
        #expect(await eventually(.seconds(10)) { !seen.withLock { $0.isEmpty } }, "the status stream sent nothing")
        #expect(seen.withLock { $0.first?.0.daemonUp } == true)
        let killedAt = ContinuousClock.now
        #expect(kill(pidA, SIGKILL) == 0)
        #expect(await eventually(.seconds(10)) { seen.withLock { $0.last?.0.repState == .failed } }, "the crash never reached the stream")
        let crash = try #require(seen.withLock { $0.last }.flatMap { $0.0.repState == .failed ? $0 : nil })
        let latency = crash.1 - killedAt
        #expect(latency < .milliseconds(100), "crash reported after \(latency)")
        #expect(!crash.0.daemonUp && !crash.0.updatable)
        #expect(crash.0.lastError?.contains("signal 9") == true)
        try? await sessionA.close()

        // Fail over: B becomes the active and takes writes once the verb has answered.
        let promoted = try await b.action("repStateSetActive")
        #expect(promoted.status == 200, "\(promoted.text)")
        let writer = try await sessions.connect(podB.address)
        try await writer.query("INSERT INTO items VALUES (10001, 'after failover')", logger: SQLClient.logger)
        let active = try await b.status()
        #expect(active.repState == .active && active.updatable)
        #expect((active.timeline ?? 0) >= 2)

        // A duplicate from an unreachable address fails with pg_basebackup's words and leaves A as it was.
        let before = try await a.status()
        let unreachable = try await a.action("repDuplicate", #"{"from": "127.0.5.99"}"#)
        #expect(unreachable.status == 202)
        let (failed, _) = try await a.waitForJob(try #require(unreachable.json["id"] as? String))
        #expect(failed.state == .failed)
        #expect(failed.stderr?.contains("127.0.5.99") == true, "\(failed)")
        #expect(failed.stderr?.contains("Connection refused") == true, "\(failed)")
        let after = try await a.status()
        #expect(after.instanceExists && after.repState == before.repState && after.appliedFiles == before.appliedFiles)
        #expect(FileManager.default.fileExists(atPath: podA.root + "/tt/pgdata/PG_VERSION"))

        // A is re-duplicated from B and follows it.
        let again = try await a.action("repDuplicate", #"{"from": "\#(podB.address)"}"#)
        #expect(again.status == 202, "\(again.text)")
        let (reduplicated, _) = try await a.waitForJob(try #require(again.json["id"] as? String))
        #expect(reduplicated.state == .succeeded, "\(reduplicated)")
        try await a.waitForStatus("A streaming from B") { $0.repState == .standby }
        let followerA = try await sessions.connect(podA.address)
        #expect(try await eventually(.seconds(20)) { try await SQLClient.count(followerA, "items") == 10_001 })
        try await followerA.close()

        // repDeactivate on the active: the open session is cut off, and a new session's write is refused.
        let writerPID = try await SQLClient.backendPID(writer)
        let fenced = try await b.action("repDeactivate")
        #expect(fenced.status == 200, "\(fenced.text)")
        #expect(await eventually(.seconds(5)) { !processExists(writerPID) }, "the open session survived the fence")
        let late = try await sessions.connect(podB.address)
        let refused = await outcome(within: .seconds(10)) {
            try await late.query("INSERT INTO items VALUES (10003, 'new session')", logger: SQLClient.logger)
        }
        #expect(sqlState(refused.error) == "25006", "the write after the fence: \(refused)")
        #expect(try await SQLClient.count(late, "items") == 10_001)
        let fencedStatus = try await b.status()
        #expect(fencedStatus.fenced && !fencedStatus.updatable && fencedStatus.repState == .idle)
        // Idempotent.
        #expect(try await b.action("repDeactivate").status == 200)
        try await late.close()

        // A switchover's fence: repDeactivate with stop shuts B down cleanly once A has received
        // everything, and reports where B's shutdown checkpoint begins. A, promoted after
        // replaying past it, continues B's history: B follows A as its standby.
        let stop = try await b.action("repDeactivate", #"{"stop": true}"#)
        #expect(stop.status == 200, "\(stop.text)")
        let stoppedStatus = try await b.status()
        #expect(stoppedStatus.fenced && !stoppedStatus.daemonUp && !stoppedStatus.updatable && stoppedStatus.pid == nil)
        let checkpoint = try #require(stoppedStatus.lsn.flatMap(LogPosition.init), "no shutdown checkpoint in \(stoppedStatus)")
        try await a.waitForStatus("A replayed B's shutdown checkpoint") {
            $0.lsn.flatMap(LogPosition.init).map { $0 > checkpoint } ?? false
        }
        #expect(try await b.action("repDeactivate", #"{"stop": "yes"}"#).status == 400)
        #expect(try await a.action("repStateSetActive").status == 200)
        let rejoin = try await b.action("repDuplicate", #"{"from": "\#(podA.address)"}"#)
        #expect(rejoin.status == 202, "\(rejoin.text)")
        let (rejoined, _) = try await b.waitForJob(try #require(rejoin.json["id"] as? String))
        #expect(rejoined.state == .succeeded && rejoined.method == "rewind", "\(rejoined)")
        try await b.waitForStatus("B streaming from A") { $0.repState == .standby && !$0.fenced }
        let newActive = try await sessions.connect(podA.address)
        try await newActive.query("INSERT INTO items VALUES (10004, 'after the switchover')", logger: SQLClient.logger)
        try await newActive.close()
        let followerB = try await sessions.connect(podB.address)
        #expect(try await eventually(.seconds(20)) { try await SQLClient.count(followerB, "items") == 10_002 })
        try await followerB.close()
    }

    @Test("RETURN TWOSAFE: a commit waits while the standby is down and returns once it is back")
    func twosafe() async throws {
        let pki = try TestPKI()
        let podA = try PodDirectory(address: "127.0.5.3", pki: pki, epilog: nil)
        let podB = try PodDirectory(address: "127.0.5.4", pki: pki, epilog: nil)
        try await withAgents([podA, podB]) { _, sessions in
            let a = try RawAgentClient(address: podA.address, pki: pki, identity: pki.client)
            let b = try RawAgentClient(address: podB.address, pki: pki, identity: pki.client)
            #expect(try await a.action("createDb").status == 200)
            let scheme = try await a.action("createRepScheme", #"{"peers": ["\#(podB.address)"], "returnService": "RETURN TWOSAFE"}"#)
            #expect(scheme.status == 200, "\(scheme.text)")
            #expect(try await a.status().twosafe)
            let started = try await b.action("repDuplicate", #"{"from": "\#(podA.address)"}"#)
            let (job, _) = try await b.waitForJob(try #require(started.json["id"] as? String))
            #expect(job.state == .succeeded, "\(job)")
            try await b.waitForStatus("B streaming") { $0.repState == .standby }

            let session = try await sessions.connect(podA.address)
            try await session.query("INSERT INTO items VALUES (1, 'with the standby up')", logger: SQLClient.logger)

            #expect(try await b.action("stopDaemon").status == 200)
            #expect(try await b.status().daemonUp == false)
            let committed = Locked<ContinuousClock.Instant?>(nil)
            let commit = Task {
                try await session.query("INSERT INTO items VALUES (2, 'while the standby is down')", logger: SQLClient.logger)
                committed.withLock { $0 = ContinuousClock.now }
            }
            try await Task.sleep(for: .milliseconds(1500))
            #expect(committed.withLock { $0 } == nil, "the commit returned while the standby was down")

            let restarted = ContinuousClock.now
            #expect(try await b.action("startDaemon").status == 200)
            #expect(await eventually(.seconds(30)) { committed.withLock { $0 } != nil }, "the commit did not return once the standby was back")
            let returned = try #require(committed.withLock { $0 })
            #expect(returned > restarted)
            try await commit.value
            let reader = try await sessions.connect(podB.address)
            #expect(try await SQLClient.count(reader, "items") == 2)
            try await reader.close()
            try await session.close()
        }
    }

    @Test("refused with a clean error and no change: bad certificates, malformed JSON, unknown verb, .. paths, bad db.ini")
    func refusals() async throws {
        let pki = try TestPKI()
        let pod = try PodDirectory(address: "127.0.5.5", pki: pki, dbIni: "shared_buffers=32MB\nwal_compression=sideways\n")
        try await withAgents([pod]) { _, _ in
            let client = try RawAgentClient(address: pod.address, pki: pki, identity: pki.client)

            // A db.ini value that PostgreSQL refuses: 400 with its words, and no database made.
            let refused = try await client.action("createDb")
            #expect(refused.status == 400, "\(refused.text)")
            #expect(refused.errorStderr.contains("wal_compression"), "\(refused.text)")
            #expect(try await client.status().instanceExists == false)
            #expect(!FileManager.default.fileExists(atPath: pod.root + "/tt/pgdata"))
            try pod.write("ttconfig/db.ini", "bogus_setting = 1\n")
            let unknown = try await client.action("createDb")
            #expect(unknown.status == 400 && unknown.errorMessage.contains("unknown PostgreSQL setting"), "\(unknown.text)")
            try pod.write("ttconfig/db.ini", "port = 6000\n")
            let reserved = try await client.action("createDb")
            #expect(reserved.status == 400 && reserved.errorMessage.contains("managed by the agent"), "\(reserved.text)")
            try pod.write("ttconfig/db.ini", "shared_buffers = 32MB\n")
            #expect(try await client.action("createDb").status == 200)
            let before = try await client.status()
            #expect(before.repState == .active)

            // TLS refusals: no certificate, another CA's, and the agent's own server certificate.
            let anonymous = try RawAgentClient(address: pod.address, pki: pki, identity: nil)
            await #expect(throws: KubeAPIError.self) { _ = try await anonymous.request("GET", "/v1/status") }
            let stranger = try CertificateAuthority.create(commonName: "other-ca").issueClient(commonName: "intruder")
            let foreign = try RawAgentClient(address: pod.address, pki: pki, identity: stranger)
            await #expect(throws: KubeAPIError.self) { _ = try await foreign.action("stopDaemon") }
            let impostor = try RawAgentClient(address: pod.address, pki: pki, identity: pod.serverCertificate)
            await #expect(throws: KubeAPIError.self) { _ = try await impostor.action("stopDaemon") }
            #expect(TLSSetup.verifyClient([], trusted: [pki.ca.certificate]).isFailure)

            // Bad requests.
            let malformed = try await client.request("POST", "/v1/actions/repDuplicate", body: #"{"from": "127.0.5.1""#)
            #expect(malformed.status == 400 && malformed.errorCode == "badRequest")
            #expect(malformed.errorMessage.contains("malformed JSON"), "\(malformed.text)")
            let notObject = try await client.action("startDaemon", "[1, 2]")
            #expect(notObject.status == 400 && notObject.errorMessage.contains("JSON object"))
            let unknownVerb = try await client.action("dropEverything")
            #expect(unknownVerb.status == 400 && unknownVerb.errorMessage.contains("unknown verb"))
            let unknownField = try await client.action("stopDaemon", #"{"force": true}"#)
            #expect(unknownField.status == 400 && unknownField.errorMessage.contains("force"))
            let traversal = try await client.action("createRepEpilog", #"{"epilog": "/ttconfig/../../etc/passwd"}"#)
            #expect(traversal.status == 400 && traversal.errorMessage.contains(".."), "\(traversal.text)")
            let outside = try await client.action("createRepEpilog", #"{"epilog": "/etc/passwd"}"#)
            #expect(outside.status == 400 && outside.errorMessage.contains("outside the pod's volumes"), "\(outside.text)")
            try FileManager.default.createSymbolicLink(atPath: pod.root + "/ttconfig/escape.sql", withDestinationPath: "/etc/passwd")
            let symlink = try await client.action("createRepEpilog", #"{"epilog": "/ttconfig/escape.sql"}"#)
            #expect(symlink.status == 400 && symlink.errorMessage.contains("outside"), "\(symlink.text)")
            let badPeer = try await client.action("createRepScheme", #"{"peers": ["127.0.0.1; DROP"]}"#)
            #expect(badPeer.status == 400)
            let badReturn = try await client.action("createRepScheme", #"{"returnService": "RETURN RECEIPT"}"#)
            #expect(badReturn.status == 400)
            let badHost = try await client.action("repDuplicate", #"{"from": "host name with spaces"}"#)
            #expect(badHost.status == 400)
            // Duplicating over a running active would lose it: refused.
            let overActive = try await client.action("repDuplicate", #"{"from": "127.0.5.6"}"#)
            #expect(overActive.status == 409 && overActive.errorMessage.contains("unfenced active"), "\(overActive.text)")
            let fromItself = try await client.action("repDuplicate", #"{"from": "\#(pod.address)"}"#)
            #expect(fromItself.status == 400)
            let missing = try await client.request("GET", "/v1/jobs/nope")
            #expect(missing.status == 404)

            // Nothing changed, and the endpoint still serves.
            let after = try await client.status()
            #expect(after.pid == before.pid && after.repState == before.repState && after.updatable)
            #expect(after.appliedFiles == before.appliedFiles && !after.fenced && after.lastError == nil)
            #expect(!AgentService.encode(after).contains(PodDirectory.adminPassword))

            // The readiness file follows setActive and clearActive.
            let ready = pod.root + "/tt/agent/ready"
            #expect(try await client.action("setActive").status == 200)
            #expect(FileManager.default.fileExists(atPath: ready))
            #expect(try await client.action("clearActive").status == 200)
            #expect(try await client.action("clearActive").status == 200)
            #expect(!FileManager.default.fileExists(atPath: ready))

            // destroyDb stops the server and removes the database; a second time changes nothing.
            #expect(try await client.action("destroyDb").status == 200)
            let destroyed = try await client.status()
            #expect(!destroyed.instanceExists && !destroyed.daemonUp && destroyed.repState == .idle)
            #expect(postgresProcesses(using: pod.root).isEmpty)
            #expect(try await client.action("destroyDb").status == 200)
            #expect(try await client.action("startDaemon").status == 409)

            // The password never reached the server's log.
            let log = (try? String(contentsOfFile: pod.root + "/tt/log/postgresql.log", encoding: .utf8)) ?? ""
            #expect(!log.isEmpty && !log.contains(PodDirectory.adminPassword))
        }
    }
}

extension Result {
    var isFailure: Bool {
        if case .failure = self { return true }
        return false
    }
}
