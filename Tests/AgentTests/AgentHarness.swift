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

/// A raw HTTPS client of one agent, with the operator's client certificate unless told otherwise:
/// the HTTP statuses and bodies as the agent sends them, for testing the agent's side of the API.
struct RawAgentClient: Sendable {
    let baseURL: String
    let tls: TLSSettings

    init(address: String, pki: TestPKI, identity: IssuedCertificate?) throws {
        baseURL = "https://\(address):8443"
        tls = try pki.tls(identity)
    }

    init(address: String, tls: TLSSettings) {
        baseURL = "https://\(address):8443"
        self.tls = tls
    }

    struct Reply: Sendable {
        let status: Int
        let json: [String: any Sendable]
        let text: String

        var errorMessage: String { ((json["error"] as? [String: any Sendable])?["message"] as? String) ?? "" }
        var errorCode: String { ((json["error"] as? [String: any Sendable])?["code"] as? String) ?? "" }
        var errorStderr: String { ((json["error"] as? [String: any Sendable])?["stderr"] as? String) ?? "" }
    }

    func request(_ method: String, _ path: String, body: String? = nil, timeout: Duration = .seconds(120)) async throws -> Reply {
        let response = try await CurlTransport.shared.perform(
            HTTPRequest(method: method, url: baseURL + path, headers: [("Content-Type", "application/json")],
                        body: body.map { Data($0.utf8) }, timeout: timeout, connectTimeout: .seconds(5)),
            tls: tls)
        let text = String(decoding: response.body, as: UTF8.self)
        let object = (try? JSONSerialization.jsonObject(with: response.body)) as? [String: Any] ?? [:]
        return Reply(status: response.head.status, json: Self.sendable(object), text: text)
    }

    static func sendable(_ object: [String: Any]) -> [String: any Sendable] {
        var result: [String: any Sendable] = [:]
        for (key, value) in object {
            switch value {
            case let nested as [String: Any]: result[key] = sendable(nested)
            case let number as NSNumber: result[key] = number.int64Value
            case let text as String: result[key] = text
            case let list as [Any]: result[key] = list.map { "\($0)" }
            default: result[key] = "\(value)"
            }
        }
        return result
    }

    /// The operator's client of the same agent.
    var operatorClient: AgentClient { AgentClient(baseURL: baseURL, tls: tls) }

    func action(_ verb: String, _ body: String = "{}") async throws -> Reply {
        try await request("POST", "/v1/actions/\(verb)", body: body)
    }

    func status() async throws -> EngineStatus {
        let response = try await CurlTransport.shared.perform(
            HTTPRequest(method: "GET", url: baseURL + "/v1/status", timeout: .seconds(30), connectTimeout: .seconds(5)), tls: tls)
        guard response.head.status == 200 else { throw HarnessError("GET /v1/status: \(response.head.status)") }
        return try JSONDecoder().decode(EngineStatus.self, from: response.body)
    }

    func job(_ id: String) async throws -> AgentJob {
        let response = try await CurlTransport.shared.perform(
            HTTPRequest(method: "GET", url: baseURL + "/v1/jobs/\(id)", timeout: .seconds(30)), tls: tls)
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(AgentJob.self, from: response.body)
    }

    /// Polls a job until it ends; returns it with every (bytesDone, bytesTotal) seen.
    func waitForJob(_ id: String, timeout: Duration = .seconds(120)) async throws -> (AgentJob, [(Int64, Int64)]) {
        var seen: [(Int64, Int64)] = []
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let job = try await self.job(id)
            seen.append((job.bytesDone, job.bytesTotal))
            if job.state != .running { return (job, seen) }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw HarnessError("job \(id) did not finish within \(timeout)")
    }

    /// Polls the status until `condition` holds.
    @discardableResult
    func waitForStatus(
        timeout: Duration = .seconds(60), _ what: String, _ condition: (EngineStatus) -> Bool
    ) async throws -> EngineStatus {
        let deadline = ContinuousClock.now + timeout
        var last: EngineStatus?
        while ContinuousClock.now < deadline {
            let status = try await self.status()
            if condition(status) { return status }
            last = status
            try await Task.sleep(for: .milliseconds(50))
        }
        throw HarnessError("timed out waiting for \(what); last status: \(last.map { AgentService.encode($0) } ?? "none")")
    }
}

/// A SQL session with a database, as the application would open it (TCP, password).
enum SQLClient {
    static let logger = Logger(label: "agent-tests.sql")
    static let counter = Locked(0)

    static func connect(_ address: String, database: String = "sample") async throws -> PostgresConnection {
        let id = counter.withLock { value -> Int in
            value += 1
            return value
        }
        var configuration = PostgresConnection.Configuration(
            host: address, port: 5432, username: PodDirectory.adminUser, password: PodDirectory.adminPassword,
            database: database, tls: .disable)
        configuration.options.connectTimeout = .seconds(10)
        return try await PostgresConnection.connect(configuration: configuration, id: id, logger: logger)
    }

    static func backendPID(_ connection: PostgresConnection) async throws -> Int32 {
        let rows = try await connection.query("SELECT pg_backend_pid()", logger: logger)
        for try await row in rows { return try row.decode(Int32.self) }
        return -1
    }

    static func count(_ connection: PostgresConnection, _ table: String) async throws -> Int {
        let rows = try await connection.query(PostgresQuery(unsafeSQL: "SELECT count(*)::int FROM \(table)"), logger: logger)
        for try await row in rows { return try row.decode(Int.self) }
        return -1
    }
}

/// The SQL sessions a test opened, closed at its end whatever happened.
final class SQLSessions: @unchecked Sendable {
    private let lock = NSLock()
    private var all: [PostgresConnection] = []

    func connect(_ address: String, database: String = "sample") async throws -> PostgresConnection {
        let connection = try await SQLClient.connect(address, database: database)
        lock.withLock { all.append(connection) }
        return connection
    }

    func closeAll() async {
        for connection in lock.withLock({ all }) { try? await connection.close() }
    }
}

/// Runs `body` with an in-process agent for each pod; stops them, closes the sessions and
/// removes the directories afterwards, and checks that no postgres process is left.
func withAgents(_ pods: [PodDirectory], _ body: ([Agent], SQLSessions) async throws -> Void) async throws {
    var agents: [Agent] = []
    let sessions = SQLSessions()
    func cleanUp() async {
        await sessions.closeAll()
        for agent in agents { await agent.stop() }
    }
    do {
        for pod in pods { agents.append(try await startAgent(pod)) }
        try await body(agents, sessions)
    } catch {
        await cleanUp()
        pods.forEach { $0.remove() }
        throw error
    }
    await cleanUp()
    for pod in pods {
        #expect(postgresProcesses(using: pod.root).isEmpty, "a postgres process outlived its agent")
        pod.remove()
    }
}

/// True while a process exists.
func processExists(_ pid: Int32) -> Bool {
    kill(pid, 0) == 0 || errno == EPERM
}

/// The pids of postgres processes whose command line names `dataDirectory`.
func postgresProcesses(using dataDirectory: String) -> [Int32] {
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
    return entries.compactMap { entry -> Int32? in
        guard let pid = Int32(entry),
              let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline")
        else { return nil }
        let arguments = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        guard arguments.first?.hasSuffix("/postgres") == true, arguments.contains(where: { $0.hasPrefix(dataDirectory) }) else { return nil }
        return pid
    }
}

/// Waits until `condition` holds or the time is up.
func eventually(_ timeout: Duration = .seconds(10), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}

/// How an operation ended, waiting at most `within` (a hung operation is left behind, so that a
/// client library's hang fails the test instead of stalling it).
enum Outcome: Sendable {
    case succeeded
    case failed(any Error)
    case timedOut

    var error: (any Error)? { if case .failed(let error) = self { return error } else { return nil } }
}

func outcome(within timeout: Duration, _ body: @escaping @Sendable () async throws -> Void) async -> Outcome {
    let result = Locked<Outcome?>(nil)
    let task = Task {
        do {
            try await body()
            result.withLock { $0 = $0 ?? .succeeded }
        } catch {
            result.withLock { $0 = $0 ?? .failed(error) }
        }
    }
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if let done = result.withLock({ $0 }) { return done }
        try? await Task.sleep(for: .milliseconds(10))
    }
    task.cancel()
    return result.withLock { state in
        if state == nil { state = .timedOut }
        return state!
    }
}

/// The SQLSTATE of a server error, e.g. 25006 for a write in a read-only transaction.
func sqlState(_ error: (any Error)?) -> String? {
    (error as? PSQLError)?.serverInfo?[.sqlState]
}
