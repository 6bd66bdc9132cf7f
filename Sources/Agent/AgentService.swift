import Foundation
import Logging

/// An answer to an agent request: an HTTP status and a JSON body.
public struct AgentReply: Sendable {
    public var status: Int
    public var body: String

    static func json(_ status: Int, _ object: [String: Any]) -> AgentReply {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return AgentReply(status: status, body: String(decoding: data, as: UTF8.self))
    }

    static func error(_ status: Int, code: String, verb: String?, _ message: String, stderr: String? = nil) -> AgentReply {
        var error: [String: Any] = ["code": code, "message": message]
        if let stderr, !stderr.isEmpty { error["stderr"] = stderr }
        var body: [String: Any] = ["error": error]
        if let verb { body["verb"] = verb }
        return json(status, body)
    }

    static func engineError(_ error: EngineError, verb: String) -> AgentReply {
        let status = switch error.kind {
        case .badRequest: 400
        case .conflict: 409
        case .failed: 500
        }
        return AgentReply.error(status, code: error.kind.rawValue, verb: verb, error.message, stderr: error.stderr)
    }
}

/// An asynchronous operation (repDuplicate), as `GET /v1/jobs/{id}` reports it.
public struct AgentJob: Codable, Sendable, Equatable {
    public enum State: String, Codable, Sendable { case running, succeeded, failed }
    public var id: String
    public var verb: String
    public var state: State
    public var phase: String
    public var bytesDone: Int64
    public var bytesTotal: Int64
    public var source: String?
    /// "rewind" (pg_rewind re-attached the old copy) or "basebackup" (a whole copy).
    public var method: String?
    public var error: String?
    public var stderr: String?
    public var startedAt: Date
    public var finishedAt: Date?
}

/// The verbs, their bodies, and who may run at the same time. Verbs that change the database
/// run one at a time: a second one while another runs (a duplicate included) gets 409.
/// setActive, clearActive and die never conflict.
public actor AgentService {
    /// Oracle's verbs, in the order the operator usually sends them.
    public static let verbs = [
        "startDaemon", "stopDaemon", "createDb", "destroyDb", "createRepScheme", "createRepEpilog", "repDuplicate",
        "repStateSetActive", "repDeactivate", "startRepAgent", "stopRepAgent", "setActive", "clearActive", "die",
    ]
    static let nonExclusive: Set<String> = ["setActive", "clearActive", "die"]
    /// The mounts a path in a request may point into.
    static let requestMounts = ["/tt", "/ttconfig", "/ttlog"]

    public nonisolated let engine: any DatabaseEngine
    nonisolated let configuration: AgentConfiguration
    nonisolated let logger: Logger
    nonisolated let readyFile: String
    nonisolated let jobs = Locked<[String: AgentJob]>([:])
    private let onDie: @Sendable () -> Void
    private var running: (verb: String, job: String?)?
    private var jobCounter = 0

    public init(engine: any DatabaseEngine, configuration: AgentConfiguration, logger: Logger, onDie: @escaping @Sendable () -> Void) {
        self.engine = engine
        self.configuration = configuration
        self.logger = logger
        self.onDie = onDie
        self.readyFile = configuration.volumes.realPath("/tt/agent/ready")
    }

    /// The pod is not Ready until the operator says it is the active: a restarted agent starts
    /// not ready.
    public func prepare() {
        unlink(readyFile)
    }

    public func job(_ id: String) -> AgentReply {
        guard let job = jobs.withLock({ $0[id] }) else {
            return .error(404, code: "notFound", verb: nil, "no job \(id.debugDescription)")
        }
        return AgentReply(status: 200, body: Self.encode(job))
    }

    public func status() async -> AgentReply {
        AgentReply(status: 200, body: Self.encode(await engine.refreshStatus()))
    }

    /// Runs a verb. `body` is the request body (empty means `{}`).
    public func perform(verb: String, body: [UInt8]) async -> AgentReply {
        guard Self.verbs.contains(verb) else {
            return .error(400, code: "badRequest", verb: verb, "unknown verb \(verb.debugDescription); the verbs are \(Self.verbs.joined(separator: ", "))")
        }
        let fields: [String: Any]
        do { fields = try Self.parseBody(body) } catch {
            return .error(400, code: "badRequest", verb: verb, error.message)
        }
        let request: VerbRequest
        do { request = try parse(verb: verb, fields) } catch {
            return .error(400, code: "badRequest", verb: verb, error.message)
        }
        if !Self.nonExclusive.contains(verb), let running {
            let what = running.job.map { "\(running.verb) (job \($0))" } ?? running.verb
            return .error(409, code: "conflict", verb: verb, "\(what) is running; try again when it is done")
        }
        switch request {
        case .setActive:
            let fd = open(readyFile, O_CREAT | O_WRONLY | O_CLOEXEC, 0o644)
            guard fd >= 0 else {
                return .error(500, code: "failed", verb: verb, "cannot create the readiness file \(readyFile): \(String(cString: strerror(errno)))")
            }
            close(fd)
            return await success(verb)
        case .clearActive:
            if unlink(readyFile) != 0 && errno != ENOENT {
                return .error(500, code: "failed", verb: verb, "cannot remove the readiness file \(readyFile): \(String(cString: strerror(errno)))")
            }
            return await success(verb)
        case .die:
            logger.notice("die: exiting at once, as asked")
            let onDie = self.onDie
            Task.detached {
                try? await Task.sleep(for: .milliseconds(50))
                onDie()
            }
            return .json(200, ["verb": verb, "ok": true])
        case .repDuplicate(let source, let rewind):
            running = (verb, nil)
            do {
                try await engine.checkDuplicate(from: source)
            } catch {
                running = nil
                return .engineError(error, verb: verb)
            }
            return startDuplicate(source, rewind: rewind)
        default:
            break
        }
        running = (verb, nil)
        defer { running = nil }
        logger.info("\(verb): starting")
        do {
            switch request {
            case .startDaemon: try await engine.start()
            case .stopDaemon: try await engine.stop()
            case .createDb(let spec): try await engine.create(spec)
            case .destroyDb: try await engine.destroy()
            case .createRepScheme(let scheme, let adminUser): try await engine.createReplicationScheme(scheme, adminUser: adminUser)
            case .createRepEpilog(let path):
                if let path { try await engine.runScriptOnce(name: "epilog.sql", path: path) }
            case .repStateSetActive: try await engine.promote()
            case .repDeactivate(let stop):
                if stop { try await engine.fenceAndStop() } else { try await engine.fence() }
            case .startRepAgent: try await engine.setStreaming(true)
            case .stopRepAgent: try await engine.setStreaming(false)
            case .setActive, .clearActive, .die, .repDuplicate: break
            }
        } catch {
            logger.error("\(verb) failed: \(error.message)")
            return .engineError(error, verb: verb)
        }
        logger.info("\(verb): done")
        return await success(verb)
    }

    private func success(_ verb: String) async -> AgentReply {
        let status = await engine.currentStatus()
        let statusObject = (try? JSONSerialization.jsonObject(with: Data(Self.encode(status).utf8))) ?? [:]
        return .json(200, ["verb": verb, "ok": true, "status": statusObject])
    }

    private func startDuplicate(_ source: DuplicateSource, rewind: Bool) -> AgentReply {
        jobCounter += 1
        let id = "dup-\(jobCounter)-\(UUID().uuidString.prefix(8).lowercased())"
        let job = AgentJob(
            id: id, verb: "repDuplicate", state: .running, phase: "starting", bytesDone: 0, bytesTotal: 0,
            source: "\(source.host):\(source.port)", method: nil, error: nil, stderr: nil, startedAt: Date(), finishedAt: nil)
        jobs.withLock { jobs in
            // Keep the last few finished jobs.
            if jobs.count >= 32, let oldest = jobs.values.filter({ $0.state != .running }).min(by: { $0.startedAt < $1.startedAt }) {
                jobs.removeValue(forKey: oldest.id)
            }
            jobs[id] = job
        }
        running = ("repDuplicate", id)
        logger.info("repDuplicate: job \(id) from \(source.host):\(source.port)")
        let jobs = self.jobs
        let engine = self.engine
        Task {
            var failure: EngineError?
            do throws(EngineError) {
                try await engine.duplicate(from: source, rewind: rewind) { progress in
                    jobs.withLock { jobs in
                        jobs[id]?.phase = progress.phase
                        jobs[id]?.bytesDone = progress.bytesDone
                        jobs[id]?.bytesTotal = progress.bytesTotal
                        if let method = progress.method { jobs[id]?.method = method }
                    }
                }
            } catch {
                failure = error
            }
            jobs.withLock { jobs in
                jobs[id]?.finishedAt = Date()
                if let failure {
                    jobs[id]?.state = .failed
                    jobs[id]?.phase = "failed"
                    jobs[id]?.error = failure.message
                    jobs[id]?.stderr = failure.stderr
                } else {
                    jobs[id]?.state = .succeeded
                    jobs[id]?.phase = "done"
                }
            }
            self.finishDuplicate(id: id, failure: failure)
        }
        return AgentReply(status: 202, body: Self.encode(job))
    }

    private func finishDuplicate(id: String, failure: EngineError?) {
        if running?.job == id { running = nil }
        if let failure {
            logger.error("repDuplicate: job \(id) failed: \(failure.message)")
        } else {
            logger.info("repDuplicate: job \(id) done")
        }
    }

    // MARK: - Requests

    enum VerbRequest {
        case startDaemon, stopDaemon, destroyDb, repStateSetActive, startRepAgent, stopRepAgent
        /// `stop`: also shut the server down cleanly (a switchover's fence).
        case repDeactivate(stop: Bool)
        case setActive, clearActive, die
        case createDb(CreateSpec)
        case createRepScheme(ReplicationScheme, adminUser: String?)
        case createRepEpilog(String?)
        case repDuplicate(DuplicateSource, rewind: Bool)
    }

    struct BadRequest: Error {
        let message: String
        init(_ message: String) { self.message = message }
    }

    static func parseBody(_ body: [UInt8]) throws(BadRequest) -> [String: Any] {
        let trimmed = body.drop(while: { $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 })
        if trimmed.isEmpty { return [:] }
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: Data(body), options: []) } catch {
            throw BadRequest("malformed JSON body: \((error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? error.localizedDescription)")
        }
        guard let fields = object as? [String: Any] else {
            throw BadRequest("the body must be a JSON object")
        }
        return fields
    }

    private func parse(verb: String, _ fields: [String: Any]) throws(BadRequest) -> VerbRequest {
        func allow(_ keys: Set<String>) throws(BadRequest) {
            let unknown = Set(fields.keys).subtracting(keys)
            guard unknown.isEmpty else {
                let known = keys.isEmpty ? "it takes no fields" : "it takes \(keys.sorted().joined(separator: ", "))"
                throw BadRequest("unknown field(s) \(unknown.sorted().joined(separator: ", ")) for \(verb); \(known)")
            }
        }
        func string(_ key: String) throws(BadRequest) -> String? {
            guard let value = fields[key] else { return nil }
            guard let text = value as? String else { throw BadRequest("\(key) must be a string") }
            return text
        }
        /// A path from the request, confined to the pod's volumes; nil when absent.
        func path(_ key: String) throws(BadRequest) -> String? {
            guard let text = try string(key) else { return nil }
            do {
                return try configuration.volumes.confinedRealPath(text, allowedMounts: Self.requestMounts)
            } catch {
                throw BadRequest("\(key): \(error.description)")
            }
        }
        func defaultPath(_ containerPath: String) -> String { configuration.volumes.realPath(containerPath) }
        /// A JSON true or false; JSON booleans arrive as Foundation's boolean NSNumber, and other
        /// numbers also cast to Bool, so the type is checked.
        func flag(_ key: String) throws(BadRequest) -> Bool? {
            guard let value = fields[key] else { return nil }
            guard let flag = value as? Bool, type(of: value) == type(of: NSNumber(value: true)) else {
                throw BadRequest("\(key) must be true or false")
            }
            return flag
        }

        switch verb {
        case "startDaemon": try allow([]); return .startDaemon
        case "stopDaemon": try allow([]); return .stopDaemon
        case "destroyDb": try allow([]); return .destroyDb
        case "repStateSetActive": try allow([]); return .repStateSetActive
        case "repDeactivate":
            try allow(["stop"])
            return .repDeactivate(stop: try flag("stop") ?? false)
        case "startRepAgent": try allow([]); return .startRepAgent
        case "stopRepAgent": try allow([]); return .stopRepAgent
        case "setActive": try allow([]); return .setActive
        case "clearActive": try allow([]); return .clearActive
        case "die": try allow([]); return .die
        case "createDb":
            try allow(["dbIni", "adminUser", "schema"])
            return .createDb(CreateSpec(
                dbIni: try path("dbIni") ?? defaultPath("/ttconfig/db.ini"),
                adminUser: try path("adminUser") ?? defaultPath("/ttconfig/adminUser"),
                schema: try path("schema") ?? defaultPath("/ttconfig/schema.sql")))
        case "createRepScheme":
            try allow(["peers", "returnService", "adminUser"])
            var peers: [String] = []
            if let value = fields["peers"] {
                guard let list = value as? [Any], list.allSatisfy({ $0 is String }) else {
                    throw BadRequest("peers must be a list of IP addresses or CIDR ranges")
                }
                peers = list.compactMap { $0 as? String }
                if let bad = peers.first(where: { !PostgresFiles.isAddressOrRange($0) }) {
                    throw BadRequest("peers: \(bad.debugDescription) is not an IP address or CIDR range")
                }
            }
            let returnService = try string("returnService") ?? "NO RETURN"
            let normalized = returnService.uppercased().split(whereSeparator: \.isWhitespace).joined(separator: " ")
            guard normalized == "NO RETURN" || normalized == "RETURN TWOSAFE" else {
                throw BadRequest("returnService must be \"NO RETURN\" or \"RETURN TWOSAFE\", got \(returnService.debugDescription)")
            }
            return .createRepScheme(ReplicationScheme(peers: peers, twosafe: normalized == "RETURN TWOSAFE"), adminUser: try path("adminUser"))
        case "createRepEpilog":
            try allow(["epilog"])
            if let explicit = try path("epilog") {
                guard FileManager.default.fileExists(atPath: explicit) else { throw BadRequest("epilog: no such file \(fields["epilog"] as? String ?? "")") }
                return .createRepEpilog(explicit)
            }
            let standard = defaultPath("/ttconfig/epilog.sql")
            return .createRepEpilog(FileManager.default.fileExists(atPath: standard) ? standard : nil)
        case "repDuplicate":
            try allow(["from", "port", "rewind"])
            guard let host = try string("from") else { throw BadRequest("repDuplicate needs \"from\": the active's address") }
            guard PostgresFiles.isValidHost(host) else { throw BadRequest("from: \(host.debugDescription) is not a host name or IP address") }
            var port = configuration.repPort
            if let value = fields["port"] {
                guard let number = value as? Int, !(value is Bool), (1...65535).contains(number) else {
                    throw BadRequest("port must be an integer 1...65535")
                }
                port = number
            }
            return .repDuplicate(DuplicateSource(host: host, port: port), rewind: try flag("rewind") ?? true)
        default:
            throw BadRequest("unknown verb \(verb.debugDescription)")
        }
    }

    static func encode(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}
