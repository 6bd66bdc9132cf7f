import Foundation
import KubeAPI
import NIOConcurrencyHelpers

/// The operator's client of one pod's agent: HTTPS with mutual TLS (the pair's CA as trust,
/// the operator's clientAuth certificate as identity) over KubeAPI's curl transport, so no call
/// blocks Swift's cooperative pool; the long-lived status stream over `AgentStreamTransport`,
/// which shares one TLS context per identity across thousands of streams.
///
/// The agent's API (see the Agent module): `GET /v1/status`, `GET /v1/status?watch=true` (one
/// status per line), `POST /v1/actions/{verb}` with a JSON body, `GET /v1/jobs/{id}`.
/// Every call has its timeout; every failure is an ``AgentClientError``.
public struct AgentClient: Sendable {
    /// Oracle's agentGetTimeout, agentPostTimeout and agentAsyncTimeout, and how long a
    /// connection may take to open.
    public struct Timeouts: Sendable, Equatable {
        /// A GET (status, job).
        public var get: Duration
        /// A verb.
        public var post: Duration
        /// A whole asynchronous job (repDuplicate), from its start to its end.
        public var async: Duration
        /// Opening the connection, within the above.
        public var connect: Duration
        /// The status stream with no line for this long ends as unreachable (the agent repeats
        /// its status every 5 s, so the default is three missed beats).
        public var streamIdle: Duration

        public init(get: Duration = .seconds(60), post: Duration = .seconds(600), async: Duration = .seconds(600), connect: Duration = .seconds(5),
                    streamIdle: Duration = .seconds(15)) {
            self.get = get
            self.post = post
            self.async = async
            self.connect = connect
            self.streamIdle = streamIdle
        }

        /// From the spec's seconds (`agentGetTimeout`, `agentPostTimeout`, `agentAsyncTimeout`).
        public init(getSeconds: Int, postSeconds: Int, asyncSeconds: Int, connect: Duration = .seconds(5)) {
            self.init(get: .seconds(max(1, getSeconds)), post: .seconds(max(1, postSeconds)), async: .seconds(max(1, asyncSeconds)), connect: connect)
        }
    }

    /// The agent's port in every pod.
    public static let defaultPort = 8443
    /// The longest status line the stream accepts.
    static let maximumLineLength = 1 << 20

    public let baseURL: String
    public let tls: TLSSettings
    public let timeouts: Timeouts
    private let transport: any HTTPTransport
    private let streams: AgentStreamTransport

    public init(
        baseURL: String, tls: TLSSettings, timeouts: Timeouts = Timeouts(), transport: any HTTPTransport = CurlTransport.shared,
        streams: AgentStreamTransport = .shared
    ) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.tls = tls
        self.timeouts = timeouts
        self.transport = transport
        self.streams = streams
    }

    /// The agent of the pod at `host` (an IP address or a DNS name).
    public init(host: String, port: Int = AgentClient.defaultPort, tls: TLSSettings, timeouts: Timeouts = Timeouts(),
                transport: any HTTPTransport = CurlTransport.shared) {
        let bracketed = host.contains(":") ? "[\(host)]" : host
        self.init(baseURL: "https://\(bracketed):\(port)", tls: tls, timeouts: timeouts, transport: transport)
    }

    /// The TLS settings for a pair: trust the pair's CA, present the operator's certificate.
    public static func tlsSettings(caPEM: String, clientCertificatePEM: String, clientKeyPEM: String) -> TLSSettings {
        TLSSettings(
            certificateAuthorityPEM: Data(caPEM.utf8), clientCertificatePEM: Data(clientCertificatePEM.utf8),
            clientKeyPEM: Data(clientKeyPEM.utf8))
    }

    // MARK: - Calls

    /// `GET /v1/status`: the database's status, freshly read by the agent.
    public func status() async throws(AgentClientError) -> AgentStatus {
        let call = "GET /v1/status"
        let response = try await send("GET", "/v1/status", body: nil, timeout: timeouts.get, call: call)
        guard response.head.status == 200 else { throw unexpected(response, call: call) }
        return try Self.decode(response.body, call: call, AgentStatus.init(json:))
    }

    /// `GET /v1/jobs/{id}`.
    public func job(_ id: String) async throws(AgentClientError) -> AgentJobStatus {
        let escaped = id.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"])) ?? id
        let call = "GET /v1/jobs/\(id)"
        let response = try await send("GET", "/v1/jobs/\(escaped)", body: nil, timeout: timeouts.get, call: call)
        guard response.head.status == 200 else { throw unexpected(response, call: call) }
        return try Self.decode(response.body, call: call, AgentJobStatus.init(json:))
    }

    /// Runs a verb. 200 gives `.done` with the status after it, 202 gives `.started` with a job.
    public func perform(_ command: AgentCommand) async throws(AgentClientError) -> AgentVerbResult {
        try await post(verb: command.verb, body: JSONWriter.data(command.body))
    }

    /// Runs a verb with a raw body (for verbs or bodies ``AgentCommand`` does not know).
    public func post(verb: String, body: Data) async throws(AgentClientError) -> AgentVerbResult {
        let call = "POST /v1/actions/\(verb)"
        let escaped = verb.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? verb
        let response = try await send("POST", "/v1/actions/\(escaped)", body: body, timeout: timeouts.post, call: call)
        switch response.head.status {
        case 200:
            let object = try Self.decode(response.body, call: call) { $0 }
            let status = try object["status"]?.objectValue.map { object throws(AgentClientError) in
                try Self.decode(object, call: call, AgentStatus.init(json:))
            }
            return .done(verb: object["verb"]?.stringValue ?? verb, status: status)
        case 202:
            return .started(try Self.decode(response.body, call: call, AgentJobStatus.init(json:)))
        default:
            throw unexpected(response, call: call)
        }
    }

    /// Polls a job until it ends, calling `progress` each time its phase or byte counts move.
    /// Returns the succeeded job; a failed job throws `.jobFailed`; a job still running after
    /// `timeouts.async` throws `.jobTimedOut` (the job itself goes on in the agent).
    public func waitForJob(
        _ id: String, pollInterval: Duration = .milliseconds(50), progress: (@Sendable (AgentJobStatus) -> Void)? = nil
    ) async throws(AgentClientError) -> AgentJobStatus {
        let deadline = ContinuousClock.now + timeouts.async
        var last: AgentJobStatus?
        while true {
            let job = try await self.job(id)
            if job != last { progress?(job) }
            last = job
            switch job.state {
            case .succeeded: return job
            case .failed: throw .jobFailed(job)
            case .running: break
            }
            guard ContinuousClock.now < deadline else { throw .jobTimedOut(job, after: timeouts.async) }
            do { try await Task.sleep(for: pollInterval) } catch { throw .cancelled }
        }
    }

    /// repDuplicate from `host`, followed to its end: the database becomes a streaming standby of
    /// the one at `host`. Returns the finished job.
    public func duplicate(
        from host: String, port: Int? = nil, pollInterval: Duration = .milliseconds(50),
        progress: (@Sendable (AgentJobStatus) -> Void)? = nil
    ) async throws(AgentClientError) -> AgentJobStatus {
        let result = try await perform(.repDuplicate(from: host, port: port))
        guard let job = result.job else { throw .malformed("POST /v1/actions/repDuplicate: answered 200, not a job") }
        progress?(job)
        return try await waitForJob(job.id, pollInterval: pollInterval, progress: progress)
    }

    /// `GET /v1/status?watch=true`: the current status at once, then each change as the agent
    /// sees it (a postmaster crash the moment it happens).
    ///
    /// The stream finishes when the agent closes it (it is stopping) and throws
    /// `.unreachable` when the connection breaks (the agent died) — either way it is over, and
    /// its end is itself news. A malformed line ends it with `.malformed`. It has no overall
    /// timeout, but 15 s without a line (the agent repeats its status every 5 s) ends it as
    /// unreachable: a half-open connection to a dead node. Stopping iteration closes it.
    /// An agent's replies are a status or a job, a few KB; anything past this is refused.
    static let maxReplyBytes = 4 << 20

    public func watchStatus() async throws(AgentClientError) -> AsyncThrowingStream<AgentStatus, any Error> {
        let (statuses, output) = AsyncThrowingStream<AgentStatus, any Error>.makeStream()
        let result: Result<Void, AgentClientError> = await withCheckedContinuation { opening in
            // Resumed once: when the agent accepts the stream, or when it ends before that.
            let waiting = NIOLockedValueBox<CheckedContinuation<Result<Void, AgentClientError>, Never>?>(opening)
            let stream = openStatusStream(opened: {
                waiting.withLockedValue { $0.take() }?.resume(returning: .success(()))
            }) { output.yield($0) } end: { result in
                let opening = waiting.withLockedValue { $0.take() }
                switch result {
                case .success:
                    // Success needs the 200 that already resumed `opening`.
                    opening?.resume(returning: .failure(.unreachable("GET /v1/status?watch=true: no response")))
                    output.finish()
                case .failure(let error):
                    if let opening { opening.resume(returning: .failure(error)) } else { output.finish(throwing: error) }
                }
            }
            output.onTermination = { _ in stream.cancel() }
        }
        try result.get()
        return statuses
    }

    /// The status stream as callbacks, with no stream or task in between: `opened` once the
    /// agent has accepted it, then `deliver` for each status, then `end` once: success when the
    /// agent ends it, an error as `watchStatus` describes when it fails, `.cancelled` when the
    /// returned stream is cancelled. All on the connection's event loop, never before this
    /// returns. How the engine follows thousands of agents cheaply: an open stream holds no task.
    public func openStatusStream(
        opened: @escaping @Sendable () -> Void = {}, _ deliver: @escaping @Sendable (AgentStatus) -> Void,
        end: @escaping @Sendable (Result<Void, AgentClientError>) -> Void
    ) -> AgentStreamTransport.Stream {
        let call = "GET /v1/status?watch=true"
        var request = HTTPRequest(
            method: "GET", url: baseURL + "/v1/status?watch=true", headers: [("Accept", "application/x-ndjson")],
            timeout: nil, connectTimeout: min(timeouts.connect, timeouts.get))
        // The agent repeats its status every 5 s; three beats missed means the agent is gone.
        request.idleTimeout = timeouts.streamIdle
        // What the reader has seen, touched on the event loop only (the lock is never contended).
        let reading = NIOLockedValueBox(StatusReading())
        return streams.open(request, tls: tls, head: { received in
            reading.withLockedValue { $0.head = received }
            if received.status == 200 { opened() }
        }, chunk: { buffer in
            // Decoded under the lock, delivered after it: `deliver` may end this very stream,
            // and the end takes the lock too.
            let (statuses, failure) = reading.withLockedValue { reading -> ([AgentStatus], AgentClientError?) in
                var statuses: [AgentStatus] = []
                do throws(AgentClientError) {
                    if reading.head?.status == 200 {
                        try reading.lines.append(Data(buffer.readableBytesView), call: call) { statuses.append($0) }
                    } else if reading.refusal.count < 64 << 10 {
                        reading.refusal.append(contentsOf: buffer.readableBytesView)
                    }
                    return (statuses, nil)
                } catch {
                    return (statuses, error)
                }
            }
            statuses.forEach(deliver)
            if let failure { throw failure }
        }, end: { result in
            end(reading.withLockedValue { $0.outcome(of: result, call: call) })
        })
    }

    // MARK: - Plumbing

    private func send(_ method: String, _ path: String, body: Data?, timeout: Duration, call: String) async throws(AgentClientError)
        -> HTTPResponse
    {
        var headers = [("Accept", "application/json")]
        if body != nil { headers.append(("Content-Type", "application/json")) }
        let request = HTTPRequest(
            method: method, url: baseURL + path, headers: headers, body: body, timeout: timeout,
            connectTimeout: min(timeouts.connect, timeout), maxBodyBytes: Self.maxReplyBytes)
        do {
            return try await transport.perform(request, tls: tls)
        } catch {
            throw AgentClientError.from(error, call: call)
        }
    }

    /// A reply with a status the call does not expect: the agent's rejection for an error
    /// status, a malformed reply for anything else.
    private func unexpected(_ response: HTTPResponse, call: String) -> AgentClientError {
        let status = response.head.status
        guard status >= 300 else { return .malformed("\(call): unexpected HTTP \(status)") }
        return .rejected(AgentRejection.decode(status: status, body: response.body))
    }

    static func decode<T>(_ body: Data, call: String, _ make: (JSONObject) throws(AgentJSONError) -> T) throws(AgentClientError) -> T {
        let object: JSONObject
        do {
            object = try JSONParser.parseObject(body)
        } catch {
            let shown = body.isEmpty ? "an empty body" : "\(error)"
            throw .malformed("\(call): \(shown)")
        }
        return try decode(object, call: call, make)
    }

    static func decode<T>(_ object: JSONObject, call: String, _ make: (JSONObject) throws(AgentJSONError) -> T) throws(AgentClientError) -> T {
        do {
            return try make(object)
        } catch {
            throw .malformed("\(call): \(error)")
        }
    }
}

/// What a status stream has brought so far, and what its end means.
struct StatusReading {
    var head: HTTPResponseHead?
    /// The body of a refusal (any status but 200), kept to 64 KB.
    var refusal = Data()
    var lines = StatusLines()

    /// The stream's outcome, from how the transfer ended and what came before.
    func outcome(of transfer: Result<Void, any Error>, call: String) -> Result<Void, AgentClientError> {
        switch transfer {
        case .failure(let error as AgentClientError):
            return .failure(error)
        case .failure(let error as KubeAPIError):
            if let head, head.status != 200 {
                // The status code is what matters.
                return .failure(.rejected(AgentRejection.decode(status: head.status, body: refusal)))
            }
            let mapped = AgentClientError.from(error, call: call)
            // After the head, a broken transfer is the agent going away, not a bad reply.
            guard head != nil, mapped != .cancelled else { return .failure(mapped) }
            return .failure(.unreachable("\(call): the stream broke off: \(error)"))
        case .failure(let error):
            return .failure(.unreachable("\(call): \(error)"))
        case .success:
            guard let head else { return .failure(.unreachable("\(call): no response")) }
            guard head.status == 200 else { return .failure(.rejected(AgentRejection.decode(status: head.status, body: refusal))) }
            if lines.hasPartialLine { return .failure(.malformed("\(call): the stream ended inside a status line")) }
            return .success(())
        }
    }
}

/// Splits the status stream into lines and decodes each.
struct StatusLines {
    private var pending = Data()
    /// How much of `pending` is known to hold no newline.
    private var scanned = 0
    /// The last line and its status: the agent's heartbeat repeats it, and is not decoded again.
    private var last: (line: Data, status: AgentStatus)?

    var hasPartialLine: Bool { pending.contains { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 } }

    /// Delivers every complete line's status, in order, before throwing for a bad line.
    mutating func append(_ chunk: Data, call: String, deliver: (AgentStatus) -> Void) throws(AgentClientError) {
        pending.append(chunk)
        while let newline = pending[(pending.startIndex + scanned)...].firstIndex(of: 0x0A) {
            let line = pending[pending.startIndex..<newline]
            pending = Data(pending[pending.index(after: newline)...])
            scanned = 0
            guard line.contains(where: { $0 != 0x20 && $0 != 0x0D && $0 != 0x09 }) else { continue }
            if let last, last.line == line {
                deliver(last.status)
                continue
            }
            let lineData = Data(line)
            let status = try AgentClient.decode(lineData, call: call, AgentStatus.init(json:))
            last = (lineData, status)
            deliver(status)
        }
        scanned = pending.count
        if pending.count > AgentClient.maximumLineLength {
            throw .malformed("\(call): a status line longer than \(AgentClient.maximumLineLength) bytes")
        }
    }
}
