import Foundation

extension KubeClient {
    /// Opens a stream and fails with the server's Status when the answer is not 200.
    func openStream(path: String, query: [(String, String)], accept: String) async throws(KubeAPIError)
        -> AsyncThrowingStream<Data, any Error>
    {
        var retry = StreamRetry()
        while true {
            let request = try await makeRequest(
                method: "GET", path: path, query: query, body: nil, contentType: nil, accept: accept, timeout: nil)
            let (head, body) = try await transport.stream(request.http, tls: request.tls)
            if head.status == 200 { return body }
            var collected = Data()
            do {
                for try await chunk in body {
                    collected.append(chunk)
                    if collected.count > HTTPResponse.refusedStreamBodyBytes { break }
                }
            } catch {
                // The error status is what matters; a broken error body is reported through it.
            }
            try await retry.afterFailure(head: head, body: collected, client: self)
        }
    }

    /// Follows a stream to its end, handing its body to `receive` on the transport's thread
    /// (`HTTPTransport.forward`); fails with the server's Status when the answer is not a 2xx.
    func forwardStream(path: String, query: [(String, String)], accept: String,
                       to receive: @escaping @Sendable (UnsafeRawBufferPointer) -> Void) async throws(KubeAPIError) {
        var retry = StreamRetry()
        while true {
            let request = try await makeRequest(
                method: "GET", path: path, query: query, body: nil, contentType: nil, accept: accept, timeout: nil)
            let response = try await transport.forward(request.http, tls: request.tls, to: receive)
            if (200..<300).contains(response.head.status) { return }
            try await retry.afterFailure(head: response.head, body: response.body, client: self)
        }
    }

    /// A raw watch: one event per JSON line. An ERROR event ends the stream with its Status as a
    /// typed error (410 gives `.gone`). The stream ends when the server closes the watch; the
    /// caller resumes from the last resourceVersion it saw.
    public func watch(_ resource: ResourceType, namespace: String?, options: WatchOptions = WatchOptions()) async throws(KubeAPIError)
        -> AsyncThrowingStream<WatchEvent<UnstructuredObject>, any Error>
    {
        let body = try await openStream(
            path: resource.collectionPath(namespace: namespace), query: options.query, accept: "application/json")
        let label = "WATCH \(resource)"
        return AsyncThrowingStream { continuation in
            let task = Task {
                var decoder = WatchStreamDecoder(label: label)
                do {
                    for try await chunk in body {
                        try decoder.decode(chunk) { continuation.yield($0) }
                    }
                    try decoder.finish()
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// A typed watch.
    public func watch<T: KubeObject>(_ type: T.Type, namespace: String? = nil, options: WatchOptions = WatchOptions())
        async throws(KubeAPIError) -> AsyncThrowingStream<WatchEvent<T>, any Error>
    {
        let raw = try await watch(T.resourceType, namespace: namespace, options: options)
        return AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    for try await event in raw { continuation.yield(WatchEvent(type: event.type, object: T(json: event.object.json))) }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// Pod logs as lines. With `follow`, the stream stays open until the container ends or the
    /// consumer stops.
    public func logs(pod: String, namespace: String, options: LogOptions = LogOptions()) async throws(KubeAPIError)
        -> AsyncThrowingStream<String, any Error>
    {
        let body = try await logBytes(pod: pod, namespace: namespace, options: options)
        return AsyncThrowingStream { continuation in
            let task = Task {
                var splitter = LineSplitter()
                do {
                    for try await chunk in body {
                        try splitter.append(chunk) { line throws(KubeAPIError) in
                            continuation.yield(String(decoding: line, as: UTF8.self))
                        }
                    }
                    if let rest = splitter.remainder { continuation.yield(String(decoding: rest, as: UTF8.self)) }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// Pod logs as the bytes arrive, in whatever chunks: for a reader that splits them itself
    /// (`LineSplitter`) rather than take a `String` per line.
    public func logBytes(pod: String, namespace: String, options: LogOptions = LogOptions()) async throws(KubeAPIError)
        -> AsyncThrowingStream<Data, any Error>
    {
        let path = ResourceType.pods.objectPath(namespace: namespace, name: pod, subresource: "log")
        return try await openStream(path: path, query: options.query, accept: "*/*")
    }

    /// Pod logs handed to `receive` as the bytes arrive, on the transport's own thread, until
    /// the stream ends (returns) or the calling Task is cancelled. `receive` must copy what it
    /// keeps and not block. For a reader of a chatty log that must stay still in memory: unlike
    /// `logBytes`, no chunk becomes a `Data` and no Task is woken per chunk.
    public func followLog(pod: String, namespace: String, options: LogOptions = LogOptions(),
                          receive: @escaping @Sendable (UnsafeRawBufferPointer) -> Void) async throws(KubeAPIError) {
        let path = ResourceType.pods.objectPath(namespace: namespace, name: pod, subresource: "log")
        try await forwardStream(path: path, query: options.query, accept: "*/*", to: receive)
    }
}

/// What a stream opened again after a refused answer has tried: one credential refresh after a
/// 401, and the retries that `RetryPolicy` allows for a GET.
struct StreamRetry {
    private var refreshed = false
    private var attempt = 0

    /// Returns when the request should be made again (after any delay); throws the server's
    /// Status when it should not.
    mutating func afterFailure(head: HTTPResponseHead, body: Data, client: KubeClient) async throws(KubeAPIError) {
        attempt += 1
        let failure = StatusFailure.decode(code: head.status, body: body, retryAfter: head.retryAfterSeconds)
        if head.status == 401, !refreshed, await client.credentials.invalidate() {
            refreshed = true
            attempt -= 1
            return
        }
        if KubeClient.isRetryable(status: head.status, method: "GET"), attempt < client.retryPolicy.maxAttempts {
            let delay = failure.retryAfter.map { Duration.seconds(min($0, 60)) } ?? client.retryPolicy.backoff(attempt: attempt)
            do { try await Task.sleep(for: delay) } catch { throw .cancelled }
            return
        }
        throw KubeAPIError.from(failure)
    }
}

/// Splits a byte stream into lines without copying each line more than once. A line is handed
/// over without its newline (or CRLF); empty lines are skipped.
public struct LineSplitter: Sendable {
    private var buffer: [UInt8] = []
    private var start = 0

    public init() {}

    var hasPartialLine: Bool { buffer[start...].contains { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 } }
    /// The bytes after the last newline: a last line that the stream ended without ending.
    public var remainder: [UInt8]? { start < buffer.count ? Array(buffer[start...]) : nil }

    public mutating func append(_ data: Data, line: (UnsafeRawBufferPointer) throws(KubeAPIError) -> Void) throws(KubeAPIError) {
        buffer.append(contentsOf: data)
        try splitLines(line)
    }

    public mutating func append(_ bytes: UnsafeRawBufferPointer, line: (UnsafeRawBufferPointer) throws(KubeAPIError) -> Void)
        throws(KubeAPIError)
    {
        buffer.append(contentsOf: bytes)
        try splitLines(line)
    }

    /// Hands over every whole line in the buffer.
    private mutating func splitLines(_ line: (UnsafeRawBufferPointer) throws(KubeAPIError) -> Void) throws(KubeAPIError) {
        var failure: KubeAPIError?
        buffer.withUnsafeBytes { raw in
            var index = start
            while let newline = raw[index...].firstIndex(of: 0x0A) {
                var end = newline
                if end > start, raw[end - 1] == 0x0D { end -= 1 }
                if end > start {
                    do throws(KubeAPIError) {
                        try line(UnsafeRawBufferPointer(rebasing: raw[start..<end]))
                    } catch {
                        failure = error
                        start = newline + 1
                        return
                    }
                }
                start = newline + 1
                index = start
            }
        }
        if let failure { throw failure }
        // Compact once the consumed prefix dominates the buffer.
        if start > 0 && start * 2 >= buffer.count {
            buffer.removeSubrange(0..<start)
            start = 0
        }
    }
}

/// Turns the bytes of a watch response, in whatever chunks they arrive, into events.
public struct WatchStreamDecoder: Sendable {
    private var splitter = LineSplitter()
    private let label: String

    public init(label: String = "WATCH") { self.label = label }

    /// Decodes every complete event in the bytes seen so far. An ERROR event throws its Status as
    /// a typed error; a line that is not an event throws `.malformedResponse`.
    /// Events before a bad line are still delivered, in order, before the error is thrown.
    public mutating func decode(_ chunk: Data, _ deliver: (WatchEvent<UnstructuredObject>) -> Void) throws(KubeAPIError) {
        let label = self.label
        try splitter.append(chunk) { line throws(KubeAPIError) in
            deliver(try WatchEventDecoder.decode(line: line, label: label))
        }
    }

    /// Call at the end of the stream: a half-received event is an error.
    public func finish() throws(KubeAPIError) {
        if splitter.hasPartialLine { throw .malformedResponse("\(label): the stream ended inside an event") }
    }
}

enum WatchEventDecoder {
    static func decode(line: UnsafeRawBufferPointer, label: String) throws(KubeAPIError) -> WatchEvent<UnstructuredObject> {
        let value: JSONValue
        do {
            value = try JSONParser.parse(bytes: line)
        } catch {
            throw .malformedResponse("\(label): \(error)")
        }
        guard case .object(let event) = value, let typeName = event["type"]?.stringValue,
              let object = event["object"]?.objectValue
        else {
            throw .malformedResponse("\(label): an event needs a type and an object")
        }
        if typeName == "ERROR" {
            let failure = StatusFailure(
                code: object["code"]?.intValue.map(Int.init) ?? 500,
                reason: object["reason"]?.stringValue ?? "InternalError",
                message: object["message"]?.stringValue ?? "watch error",
                details: object["details"]?.objectValue)
            throw KubeAPIError.from(failure)
        }
        guard let type = WatchEventType(rawValue: typeName) else {
            throw .malformedResponse("\(label): unknown event type \(typeName)")
        }
        return WatchEvent(type: type, object: UnstructuredObject(json: object))
    }
}
