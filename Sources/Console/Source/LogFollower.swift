import Foundation
import KubeAPI
import Synchronization

/// Lines of one pod's log that arrived together.
public struct LogBatch: Sendable, Equatable {
    /// Which stream they belong to: a batch of a stream since replaced is dropped.
    public var stream: Int
    public var lines: [String]
    /// Lines the follower dropped because the console fell behind (never more than it keeps).
    public var dropped: Int

    public init(stream: Int, lines: [String], dropped: Int = 0) {
        self.stream = stream
        self.lines = lines
        self.dropped = dropped
    }
}

/// Follows `pods/log?container=daemonlog&follow=true` of one pod and hands the lines over in
/// batches, at most one per `batchInterval`: 10,000 lines a second make 20 redraws, not 10,000.
///
/// Lines waiting for the next batch are bounded by `capacity` (the console's ring keeps no
/// more), so a console that falls behind drops the oldest rather than growing. A stream that
/// ends (the container restarted, the connection dropped) is opened again after a pause.
public final class LogFollower: Sendable {
    public static let container = "daemonlog"

    private let client: KubeClient
    private let batchInterval: Duration
    private let capacity: Int
    private let reconnectDelay: Duration

    private struct Pending {
        var lines: [String] = []
        var dropped = 0
    }

    /// Lines read and not yet delivered, shared by the reading and the delivering task.
    private final class PendingLines: Sendable {
        let capacity: Int
        private let pending = Mutex(Pending())

        init(capacity: Int) { self.capacity = capacity }

        func append(_ line: String) {
            pending.withLock { pending in
                pending.lines.append(line)
                if pending.lines.count > capacity * 2 {
                    // Trim in one go, not per line: the ring keeps only `capacity` anyway.
                    let excess = pending.lines.count - capacity
                    pending.lines.removeFirst(excess)
                    pending.dropped += excess
                }
            }
        }

        func take() -> Pending {
            pending.withLock { pending in
                defer { pending = Pending() }
                return pending
            }
        }
    }

    public init(client: KubeClient, capacity: Int = 10_000, batchInterval: Duration = .milliseconds(50),
                reconnectDelay: Duration = .seconds(1)) {
        self.client = client
        self.capacity = capacity
        self.batchInterval = batchInterval
        self.reconnectDelay = reconnectDelay
    }

    /// Follows until the calling Task is cancelled. `deliver` runs on the follower's task.
    public func follow(namespace: String, pod: String, stream: Int, tailLines: Int = 1000,
                       deliver: @escaping @Sendable (LogBatch) -> Void) async {
        let pending = PendingLines(capacity: capacity)
        let (signal, signalContinuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let capacity = self.capacity
        let batchInterval = self.batchInterval
        let append: @Sendable (String) -> Void = { line in
            pending.append(line)
            signalContinuation.yield()
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.read(namespace: namespace, pod: pod, tailLines: tailLines, append: append) }
            group.addTask {
                for await _ in signal {
                    let batch = pending.take()
                    if !batch.lines.isEmpty || batch.dropped > 0 {
                        let lines = batch.lines.count > capacity ? Array(batch.lines.suffix(capacity)) : batch.lines
                        deliver(LogBatch(stream: stream, lines: lines, dropped: batch.dropped + batch.lines.count - lines.count))
                    }
                    try? await Task.sleep(for: batchInterval)
                }
            }
            await group.next()
            signalContinuation.finish()
            group.cancelAll()
        }
    }

    /// Reads the stream, opening it again when it ends, until cancelled.
    private func read(namespace: String, pod: String, tailLines: Int, append: @Sendable (String) -> Void) async {
        var tail = tailLines
        while !Task.isCancelled {
            do {
                let lines = try await client.logs(
                    pod: pod, namespace: namespace, options: LogOptions(container: Self.container, follow: true, tailLines: tail))
                for try await line in lines { append(line) }
                if Task.isCancelled { return }
                append("[tenops console: the log stream of \(pod) ended; following again]")
            } catch {
                if Task.isCancelled { return }
                append("[tenops console: cannot follow \(pod)/\(Self.container): \(error)]")
            }
            // After a restart the new container's first lines are what matter; a few at most.
            tail = 100
            try? await Task.sleep(for: reconnectDelay)
        }
    }
}
