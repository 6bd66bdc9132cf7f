import Foundation
import KubeAPI

/// What an agent answers to `GET /v1/status`, as the operator reads it.
///
/// OperatorEngine does not import the Agent module: this is the operator's own view of the
/// agent's JSON (`EngineStatus` on the agent's side, written by Foundation's JSONEncoder with
/// every field present). Reading is strict about what decisions rest on (`daemonUp`,
/// `instanceExists`, `dbLoaded`, `updatable`, `repState`, `repPeerPState`) and lenient about the
/// rest, so that a newer agent's extra fields never break an older operator.
public struct AgentStatus: Sendable, Equatable {
    /// Oracle's replication states: ACTIVE takes writes; STANDBY streams from its active; IDLE
    /// has neither role (no server, fenced, or streaming turned off); FAILED died unasked;
    /// RECOVERING is being duplicated, starting, or not yet connected to its active.
    public enum RepState: String, Sendable, CaseIterable {
        case active = "ACTIVE", standby = "STANDBY", idle = "IDLE", failed = "FAILED", recovering = "RECOVERING"
    }

    // The fields mean what the agent's `EngineStatus` documents.
    public var engine: String
    public var version: String
    public var daemonUp: Bool
    public var instanceExists: Bool
    public var dbLoaded: Bool
    public var updatable: Bool
    public var repState: RepState
    /// Sender state on an active (`streaming`, `catchup`, ..., `none`), receiver state on a standby.
    public var repPeerPState: String
    public var bytesBehind: Int64?
    public var lsn: String?
    public var timeline: Int?
    public var appliedFiles: [String]
    public var lastError: String?
    public var pid: Int32?
    public var fenced: Bool
    public var twosafe: Bool
    public var repScheme: Bool

    public init(
        engine: String = "postgresql", version: String = "15", daemonUp: Bool = false, instanceExists: Bool = false,
        dbLoaded: Bool = false, updatable: Bool = false, repState: RepState = .idle, repPeerPState: String = "none",
        bytesBehind: Int64? = nil, lsn: String? = nil, timeline: Int? = nil, appliedFiles: [String] = [],
        lastError: String? = nil, pid: Int32? = nil, fenced: Bool = false, twosafe: Bool = false, repScheme: Bool = false
    ) {
        self.engine = engine
        self.version = version
        self.daemonUp = daemonUp
        self.instanceExists = instanceExists
        self.dbLoaded = dbLoaded
        self.updatable = updatable
        self.repState = repState
        self.repPeerPState = repPeerPState
        self.bytesBehind = bytesBehind
        self.lsn = lsn
        self.timeline = timeline
        self.appliedFiles = appliedFiles
        self.lastError = lastError
        self.pid = pid
        self.fenced = fenced
        self.twosafe = twosafe
        self.repScheme = repScheme
    }

    /// Reads a status object; a missing or mistyped field that decisions rest on is an error
    /// that names it.
    public init(json object: JSONObject) throws(AgentJSONError) {
        let reader = AgentJSONReader(object: object, what: "status")
        let repStateName: String = try reader.required("repState")
        guard let repState = RepState(rawValue: repStateName) else {
            throw AgentJSONError("status: repState \(repStateName.debugDescription) is not one of "
                + RepState.allCases.map(\.rawValue).joined(separator: ", "))
        }
        self.init(
            engine: try reader.optional("engine") ?? "unknown", version: try reader.optional("version") ?? "",
            daemonUp: try reader.required("daemonUp"), instanceExists: try reader.required("instanceExists"),
            dbLoaded: try reader.required("dbLoaded"), updatable: try reader.required("updatable"), repState: repState,
            repPeerPState: try reader.required("repPeerPState"), bytesBehind: try reader.optional("bytesBehind"),
            lsn: try reader.optional("lsn"), timeline: try reader.optional("timeline"),
            appliedFiles: try reader.optional("appliedFiles") ?? [], lastError: try reader.optional("lastError"),
            pid: try reader.optional("pid"), fenced: try reader.optional("fenced") ?? false,
            twosafe: try reader.optional("twosafe") ?? false, repScheme: try reader.optional("repScheme") ?? false)
    }

    /// True when this database may accept writes now: it says so, or it runs as an active.
    public var mayAcceptWrites: Bool { updatable || (daemonUp && repState == .active) }
}

/// An asynchronous agent operation (repDuplicate), as `GET /v1/jobs/{id}` reports it.
public struct AgentJobStatus: Sendable, Equatable {
    public enum State: String, Sendable, CaseIterable {
        case running, succeeded, failed
    }

    public var id: String
    public var verb: String
    public var state: State
    public var phase: String
    public var bytesDone: Int64
    public var bytesTotal: Int64
    /// `host:port` the copy comes from.
    public var source: String?
    /// "rewind" (pg_rewind re-attached the old copy) or "basebackup" (a whole copy).
    public var method: String?
    public var error: String?
    /// The engine tool's own words when it failed.
    public var stderr: String?
    public var startedAt: Date?
    public var finishedAt: Date?

    public init(
        id: String, verb: String = "repDuplicate", state: State, phase: String = "", bytesDone: Int64 = 0, bytesTotal: Int64 = 0,
        source: String? = nil, method: String? = nil, error: String? = nil, stderr: String? = nil, startedAt: Date? = nil,
        finishedAt: Date? = nil
    ) {
        self.id = id
        self.verb = verb
        self.state = state
        self.phase = phase
        self.bytesDone = bytesDone
        self.bytesTotal = bytesTotal
        self.source = source
        self.method = method
        self.error = error
        self.stderr = stderr
        self.startedAt = startedAt
        self.finishedAt = finishedAt
    }

    public init(json object: JSONObject) throws(AgentJSONError) {
        let reader = AgentJSONReader(object: object, what: "job")
        let stateName: String = try reader.required("state")
        guard let state = State(rawValue: stateName) else {
            throw AgentJSONError("job: state \(stateName.debugDescription) is not one of running, succeeded, failed")
        }
        self.init(
            id: try reader.required("id"), verb: try reader.optional("verb") ?? "", state: state,
            phase: try reader.optional("phase") ?? "", bytesDone: try reader.optional("bytesDone") ?? 0,
            bytesTotal: try reader.optional("bytesTotal") ?? 0, source: try reader.optional("source"), method: try reader.optional("method"),
            error: try reader.optional("error"), stderr: try reader.optional("stderr"),
            startedAt: try reader.optionalTime("startedAt"), finishedAt: try reader.optionalTime("finishedAt"))
    }

    /// Done, one way or the other.
    public var isFinished: Bool { state != .running }

    /// A fraction 0...1 of the copy, when its size is known.
    public var fractionDone: Double? {
        bytesTotal > 0 ? min(1, max(0, Double(bytesDone) / Double(bytesTotal))) : nil
    }
}

/// An agent reply that is not what the agent's API promises.
public struct AgentJSONError: Error, Sendable, Equatable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A value an agent reply can hold in one member.
protocol AgentJSONField {
    static var typeName: String { get }
    static func agentValue(_ value: JSONValue) -> Self?
}

extension String: AgentJSONField {
    static var typeName: String { "a string" }
    static func agentValue(_ value: JSONValue) -> String? { value.stringValue }
}

extension Bool: AgentJSONField {
    static var typeName: String { "true or false" }
    static func agentValue(_ value: JSONValue) -> Bool? { value.boolValue }
}

extension Int: AgentJSONField {
    static var typeName: String { "an integer" }
    static func agentValue(_ value: JSONValue) -> Int? { value.intValue.flatMap(Int.init(exactly:)) }
}

extension Int64: AgentJSONField {
    static var typeName: String { "an integer" }
    static func agentValue(_ value: JSONValue) -> Int64? { value.intValue }
}

extension Int32: AgentJSONField {
    static var typeName: String { "a 32-bit integer" }
    static func agentValue(_ value: JSONValue) -> Int32? { value.intValue.flatMap(Int32.init(exactly:)) }
}

extension Array: AgentJSONField where Element == String {
    static var typeName: String { "a list of strings" }
    static func agentValue(_ value: JSONValue) -> [String]? {
        guard let items = value.arrayValue else { return nil }
        let strings = items.compactMap(\.stringValue)
        return strings.count == items.count ? strings : nil
    }
}

/// Reads members of one reply object, naming the member and the object in every error.
struct AgentJSONReader {
    let object: JSONObject
    let what: String

    func required<T: AgentJSONField>(_ key: String) throws(AgentJSONError) -> T {
        guard let value = try optional(key) as T? else { throw AgentJSONError("\(what): the field \(key) is missing") }
        return value
    }

    /// nil when absent or null; an error when present with another type.
    func optional<T: AgentJSONField>(_ key: String) throws(AgentJSONError) -> T? {
        guard let raw = object[key], !raw.isNull else { return nil }
        guard let value = T.agentValue(raw) else { throw AgentJSONError("\(what): the field \(key) must be \(T.typeName), got \(raw)") }
        return value
    }

    func optionalTime(_ key: String) throws(AgentJSONError) -> Date? {
        guard let text: String = try optional(key) else { return nil }
        guard let date = KubeTime.parse(text) else { throw AgentJSONError("\(what): the field \(key) is not an RFC 3339 time: \(text)") }
        return date
    }
}
