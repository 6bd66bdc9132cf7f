import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The log files of one container: `N.log` for instance N (its restartCount when it started).
/// The current instance and the one before it are kept, for `previous=true`.
struct ContainerLogFiles: Sendable {
    let directory: String

    func path(instance: Int) -> String { "\(directory)/\(instance).log" }

    /// The instances that have a file, oldest first.
    var instances: [Int] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .compactMap { $0.hasSuffix(".log") ? Int($0.dropLast(4)) : nil }
            .sorted()
    }

    /// Creates the directory and removes files older than the instance before `instance`.
    func prepare(for instance: Int) throws {
        try NodeLayout.makeDirectory(directory)
        for old in instances where old < instance - 1 || old > instance { unlink(path(instance: old)) }
    }
}

/// Which container instance runs right now, for log streams that follow: a stream ends once its
/// instance has stopped.
final class RunningInstances: Sendable {
    private let running = Mutex<[String: Int]>([:])

    private static func key(_ namespace: String, _ pod: String, _ container: String) -> String { "\(namespace)/\(pod)/\(container)" }

    func started(_ namespace: String, _ pod: String, _ container: String, instance: Int) {
        running.withLock { $0[Self.key(namespace, pod, container)] = instance }
    }

    func stopped(_ namespace: String, _ pod: String, _ container: String) {
        running.withLock { $0[Self.key(namespace, pod, container)] = nil }
    }

    func instance(_ namespace: String, _ pod: String, _ container: String) -> Int? {
        running.withLock { $0[Self.key(namespace, pod, container)] }
    }
}

/// A `GET /containerLogs/NS/POD/CONTAINER` request, checked.
struct LogRequest: Sendable, Equatable {
    var namespace: String
    var pod: String
    var container: String
    var follow = false
    var previous = false
    var tailLines: Int?
    var limitBytes: Int?

    /// Parses path segments (already percent-decoded) and the query; the error is a 400 message.
    static func parse(segments: [String], query: [String: String]) -> Result<LogRequest, LogRequestError> {
        guard segments.count == 3 else { return .failure(.notFound("expected /containerLogs/NAMESPACE/POD/CONTAINER")) }
        for segment in segments where !NodeLayout.isSafeName(segment) {
            return .failure(.badRequest("invalid name \(segment.debugDescription)"))
        }
        var request = LogRequest(namespace: segments[0], pod: segments[1], container: segments[2])
        func flag(_ key: String) -> Bool { ["true", "1"].contains(query[key]?.lowercased() ?? "") }
        request.follow = flag("follow")
        request.previous = flag("previous")
        if let text = query["tailLines"] {
            guard let lines = Int(text), lines >= 0 else { return .failure(.badRequest("tailLines must be a non-negative integer")) }
            request.tailLines = lines
        }
        if let text = query["limitBytes"] {
            guard let limit = Int(text), limit > 0 else { return .failure(.badRequest("limitBytes must be a positive integer")) }
            request.limitBytes = limit
        }
        return .success(request)
    }
}

enum LogRequestError: Error, Equatable {
    case badRequest(String)
    case notFound(String)
}

/// Serves container logs from the files under the node's directory.
struct ContainerLogReader: Sendable {
    let layout: NodeLayout
    let running: RunningInstances
    var pollInterval: Duration = .milliseconds(100)

    /// The bytes a request asks for; `.notFound` when the pod, container or instance has no log.
    func open(_ request: LogRequest) -> Result<AsyncThrowingStream<Data, any Error>, LogRequestError> {
        guard let pod = layout.podDirectory(namespace: request.namespace, pod: request.pod),
              let directory = layout.logDirectory(pod: pod, container: request.container)
        else { return .failure(.badRequest("invalid name")) }
        let files = ContainerLogFiles(directory: directory)
        let instances = files.instances
        guard let current = instances.last else {
            return .failure(.notFound("no logs for container \(request.container) of pod \(request.namespace)/\(request.pod)"))
        }
        let instance = request.previous ? instances.dropLast().last : current
        guard let instance else {
            return .failure(.badRequest("previous terminated container \(request.container) in pod \(request.pod) not found"))
        }
        let fd = Glibc.open(files.path(instance: instance), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .failure(.notFound("the log of container \(request.container) is gone")) }
        let follow = request.follow && !request.previous
        let isLive: @Sendable () -> Bool = { [running] in
            running.instance(request.namespace, request.pod, request.container) == instance
        }
        let interval = pollInterval
        return .success(AsyncThrowingStream { continuation in
            let task = Task {
                var file = LogFileCursor(fd: fd, limit: request.limitBytes)
                file.position = request.tailLines.map { file.offset(ofLastLines: $0) } ?? 0
                file.drain { continuation.yield($0) }
                while follow, !file.limitReached, !Task.isCancelled {
                    let live = isLive()
                    try? await Task.sleep(for: interval)
                    file.drain { continuation.yield($0) }
                    if !live { break }
                }
                close(fd)
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        })
    }
}

/// Reads a log file from a position, up to an optional byte limit.
struct LogFileCursor {
    let fd: Int32
    var position: off_t = 0
    var remaining: Int?

    init(fd: Int32, limit: Int?) {
        self.fd = fd
        remaining = limit
    }

    var limitReached: Bool { remaining.map { $0 <= 0 } ?? false }

    /// Hands everything from `position` to the end of the file to `emit`, in chunks.
    mutating func drain(_ emit: (Data) -> Void) {
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while !limitReached {
            let wanted = min(buffer.count, remaining ?? buffer.count)
            let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, wanted, position) }
            guard count > 0 else { return }
            position += off_t(count)
            remaining = remaining.map { $0 - count }
            emit(Data(buffer[0..<count]))
        }
    }

    /// Where the last `lines` lines start (a final line without a newline counts as a line).
    func offset(ofLastLines lines: Int) -> off_t {
        var info = stat()
        guard fstat(fd, &info) == 0 else { return 0 }
        let size = info.st_size
        guard lines > 0 else { return size }
        var block = [UInt8](repeating: 0, count: 16 << 10)
        var end = size
        var seen = 0
        while end > 0 {
            let start = max(0, end - off_t(block.count))
            let length = Int(end - start)
            guard block.withUnsafeMutableBytes({ pread(fd, $0.baseAddress, length, start) }) == length else { return 0 }
            var index = length - 1
            while index >= 0 {
                // The newline that ends the file closes the last line rather than starting one.
                if block[index] == 0x0A, start + off_t(index) != size - 1 {
                    seen += 1
                    if seen == lines { return start + off_t(index) + 1 }
                }
                index -= 1
            }
            end = start
        }
        return 0
    }
}
