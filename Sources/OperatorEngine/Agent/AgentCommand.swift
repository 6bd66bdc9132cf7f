import Foundation
import KubeAPI

/// One of Oracle's verbs with its request body, as `POST /v1/actions/{verb}` takes it. Paths are
/// container paths (`/ttconfig/...`); nil fields are left out, so the agent uses its defaults.
public enum AgentCommand: Sendable, Equatable {
    case startDaemon
    case stopDaemon
    /// Creates the instance and the database and applies db.ini, adminUser and schema.sql.
    case createDb(dbIni: String? = nil, adminUser: String? = nil, schema: String? = nil)
    case destroyDb
    /// Sets up replication from this database; `peers` are the addresses (or CIDR ranges) allowed
    /// to replicate from it.
    case createRepScheme(peers: [String], twoSafe: Bool, adminUser: String? = nil)
    /// Runs epilog.sql once (the agent's default path when nil; no file, no work).
    case createRepEpilog(epilog: String? = nil)
    /// Replaces this database with a copy of the one at `from` (asynchronous: answers with a job).
    /// `rewind` false copies the whole database even where pg_rewind could re-attach it.
    case repDuplicate(from: String, port: Int? = nil, rewind: Bool = true)
    /// Promotes this database to the active.
    case repStateSetActive
    /// Fences this database: it refuses writes from now on. `stop` also shuts its server down
    /// cleanly, after the standby has received everything it wrote (a switchover's fence).
    case repDeactivate(stop: Bool = false)
    case startRepAgent
    case stopRepAgent
    /// Readiness: only the active pod is Ready.
    case setActive
    case clearActive
    /// The agent exits at once.
    case die

    /// Oracle's name of the verb.
    public var verb: String {
        switch self {
        case .startDaemon: "startDaemon"
        case .stopDaemon: "stopDaemon"
        case .createDb: "createDb"
        case .destroyDb: "destroyDb"
        case .createRepScheme: "createRepScheme"
        case .createRepEpilog: "createRepEpilog"
        case .repDuplicate: "repDuplicate"
        case .repStateSetActive: "repStateSetActive"
        case .repDeactivate: "repDeactivate"
        case .startRepAgent: "startRepAgent"
        case .stopRepAgent: "stopRepAgent"
        case .setActive: "setActive"
        case .clearActive: "clearActive"
        case .die: "die"
        }
    }

    /// The JSON body.
    public var body: JSONObject {
        var body: JSONObject = [:]
        func put(_ key: String, _ value: String?) { if let value { body[key] = .string(value) } }
        switch self {
        case .createDb(let dbIni, let adminUser, let schema):
            put("dbIni", dbIni)
            put("adminUser", adminUser)
            put("schema", schema)
        case .createRepScheme(let peers, let twoSafe, let adminUser):
            body["peers"] = .array(peers.map(JSONValue.string))
            body["returnService"] = .string(twoSafe ? "RETURN TWOSAFE" : "NO RETURN")
            put("adminUser", adminUser)
        case .createRepEpilog(let epilog):
            put("epilog", epilog)
        case .repDeactivate(let stop):
            if stop { body["stop"] = true }
        case .repDuplicate(let from, let port, let rewind):
            body["from"] = .string(from)
            if let port { body["port"] = .int(Int64(port)) }
            if !rewind { body["rewind"] = false }
        default:
            break
        }
        return body
    }

    /// The verb answers with a job rather than at once.
    public var isAsynchronous: Bool { if case .repDuplicate = self { true } else { false } }
}

/// What a verb answered.
public enum AgentVerbResult: Sendable, Equatable {
    /// 200: done; the database's status afterwards (absent for `die`).
    case done(verb: String, status: AgentStatus?)
    /// 202: started as a job; follow it with `AgentClient.waitForJob`.
    case started(AgentJobStatus)

    public var status: AgentStatus? { if case .done(_, let status) = self { status } else { nil } }
    public var job: AgentJobStatus? { if case .started(let job) = self { job } else { nil } }
}

/// An error status from the agent, with the agent's own words.
public struct AgentRejection: Sendable, Equatable, CustomStringConvertible {
    /// The HTTP status: 400 bad request, 404 no such job, 409 conflict, 500 the engine failed.
    public var status: Int
    /// The agent's code: badRequest, conflict, failed, notFound.
    public var code: String?
    public var message: String
    /// The engine tool's stderr, when the engine failed.
    public var stderr: String?
    public var verb: String?

    public init(status: Int, code: String?, message: String, stderr: String? = nil, verb: String? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.stderr = stderr
        self.verb = verb
    }

    public var isConflict: Bool { status == 409 }
    public var isBadRequest: Bool { status == 400 }
    public var isNotFound: Bool { status == 404 }

    public var description: String {
        var text = "HTTP \(status)"
        if let code { text += " \(code)" }
        text += ": \(message)"
        if let stderr, !stderr.isEmpty { text += " (\(stderr.trimmingCharacters(in: .whitespacesAndNewlines)))" }
        return text
    }

    /// Reads an error reply: `{"error": {"code", "message", "stderr"}, "verb"}`. A body of another
    /// shape still gives a rejection, with a printable excerpt of it as the message.
    static func decode(status: Int, body: Data) -> AgentRejection {
        if let object = try? JSONParser.parseObject(body), let error = object["error"]?.objectValue,
           let message = error["message"]?.stringValue {
            return AgentRejection(
                status: status, code: error["code"]?.stringValue, message: message, stderr: error["stderr"]?.stringValue,
                verb: object["verb"]?.stringValue)
        }
        let excerpt = String(decoding: body.prefix(200), as: UTF8.self).filter { !$0.isNewline && !$0.isASCIIControl }
        return AgentRejection(status: status, code: nil, message: excerpt.isEmpty ? "HTTP \(status) with an empty body" : excerpt)
    }
}

extension Character {
    fileprivate var isASCIIControl: Bool { asciiValue.map { $0 < 0x20 || $0 == 0x7F } ?? false }
}

/// Every error the agent client raises. None of them is a crash: whatever the agent (or
/// something posing as it) sends, the caller gets one of these.
public enum AgentClientError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No answer: the connection was refused or broke off.
    case unreachable(String)
    /// The call took longer than its timeout (agentGetTimeout, agentPostTimeout or agentAsyncTimeout).
    case timedOut(String)
    /// The TLS handshake failed: the agent's certificate is not from the pair's CA, or the agent
    /// refused the operator's client certificate.
    case tls(String)
    /// The agent answered with an error status.
    case rejected(AgentRejection)
    /// The reply is not what the agent's API promises: not JSON, cut off, a field missing or of
    /// the wrong type.
    case malformed(String)
    /// An asynchronous verb's job ended in failure.
    case jobFailed(AgentJobStatus)
    /// An asynchronous verb's job was still running after agentAsyncTimeout (it goes on in the agent).
    case jobTimedOut(AgentJobStatus, after: Duration)
    /// The calling Task was cancelled.
    case cancelled

    public var description: String {
        switch self {
        case .unreachable(let detail): "agent unreachable: \(detail)"
        case .timedOut(let detail): "agent timed out: \(detail)"
        case .tls(let detail): "agent TLS failure: \(detail)"
        case .rejected(let rejection): "agent refused: \(rejection)"
        case .malformed(let detail): "malformed agent reply: \(detail)"
        case .jobFailed(let job):
            "agent job \(job.id) (\(job.verb)) failed: \(job.error ?? "no reason given")"
                + (job.stderr.map { ": \($0.trimmingCharacters(in: .whitespacesAndNewlines))" } ?? "")
        case .jobTimedOut(let job, let after):
            "agent job \(job.id) (\(job.verb)) still running after \(after) (agentAsyncTimeout), in phase \(job.phase)"
        case .cancelled: "cancelled"
        }
    }

    /// The agent's rejection, when it sent one.
    public var rejection: AgentRejection? { if case .rejected(let rejection) = self { rejection } else { nil } }

    /// The agent could not be reached at all (as opposed to answering badly): what makes a pod
    /// Unknown.
    public var isUnreachable: Bool {
        switch self {
        case .unreachable, .timedOut, .tls: true
        default: false
        }
    }

    /// Sorts a transport failure. libcurl's message is the only thing to go by.
    static func from(_ error: KubeAPIError, call: String) -> AgentClientError {
        guard case .transport(let message) = error else {
            return error == .cancelled ? .cancelled : .malformed("\(call): \(error)")
        }
        let lower = message.lowercased()
        if lower.contains("timed out") || lower.contains("timeout was reached") { return .timedOut("\(call): \(message)") }
        if lower.contains("ssl") || lower.contains("tls") || lower.contains("certificate") { return .tls("\(call): \(message)") }
        let cutOff = ["transfer closed", "chunk", "http/0.9", "weird server reply", "unsupported http version", "header"]
        if cutOff.contains(where: lower.contains) { return .malformed("\(call): the reply was cut off or is not HTTP: \(message)") }
        return .unreachable("\(call): \(message)")
    }
}
