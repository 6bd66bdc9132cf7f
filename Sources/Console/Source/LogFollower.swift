import Foundation
import KubeAPI
import Synchronization

/// Lines of one pod's log that arrived together.
public struct LogBatch: Sendable, Equatable {
    /// Which stream they belong to: a batch of a stream since replaced is dropped.
    public var stream: Int
    public var lines: LogLines
    /// Lines the follower dropped because the console fell behind (never more than it keeps).
    public var dropped: Int

    public init(stream: Int, lines: LogLines, dropped: Int = 0) {
        self.stream = stream
        self.lines = lines
        self.dropped = dropped
    }
}

/// Follows `pods/log?container=daemonlog&follow=true` of one pod and hands the lines over in
/// batches, at most one per `batchInterval`: 10,000 lines a second make 20 redraws, not 10,000.
///
/// The bytes are split into lines straight into a ring as bounded as the console's own
/// (`LogRing`), so a console that falls behind drops the oldest rather than growing, and no line
/// becomes a `String` on the way. A stream that ends (the container restarted, the connection
/// dropped) is opened again after a pause.
public final class LogFollower: Sendable {
    public static let container = "daemonlog"

    private let client: KubeClient
    private let batchInterval: Duration
    private let capacity: Int
    private let byteCapacity: Int?
    private let reconnectDelay: Duration

    /// Lines read and not yet delivered, shared by the reading and the delivering task.
    private final class PendingLines: Sendable {
        private let ring: Mutex<LogRing>

        init(capacity: Int, byteCapacity: Int?) { ring = Mutex(LogRing(capacity: capacity, byteCapacity: byteCapacity)) }

        /// Splits `chunk` into lines, each appended to the ring.
        func append(_ chunk: Data, splitter: inout LineSplitter) {
            ring.withLock { ring in
                // The closure never throws, so neither does `append`.
                try? splitter.append(chunk) { line in ring.append(line) }
            }
        }

        func append(_ line: String) { ring.withLock { $0.append(line) } }

        /// The lines waiting, in one batch, and how many were dropped since the last take; the
        /// ring keeps its storage for the next lines.
        func take() -> (lines: LogLines, dropped: Int) {
            ring.withLock { ring in
                defer { ring.removeAll() }
                return (ring.lines, ring.dropped)
            }
        }
    }

    /// `capacity` and `byteCapacity` are the console ring's (`LogRing`): a batch never holds more.
    public init(client: KubeClient, capacity: Int = 10_000, byteCapacity: Int? = nil, batchInterval: Duration = .milliseconds(50),
                reconnectDelay: Duration = .seconds(1)) {
        self.client = client
        self.capacity = capacity
        self.byteCapacity = byteCapacity
        self.batchInterval = batchInterval
        self.reconnectDelay = reconnectDelay
    }

    /// Follows until the calling Task is cancelled. `deliver` runs on the follower's task.
    public func follow(namespace: String, pod: String, stream: Int, tailLines: Int = 1000,
                       deliver: @escaping @Sendable (LogBatch) -> Void) async {
        let pending = PendingLines(capacity: capacity, byteCapacity: byteCapacity)
        let (signal, signalContinuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let batchInterval = self.batchInterval
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await self.read(namespace: namespace, pod: pod, tailLines: tailLines, into: pending) { signalContinuation.yield() }
            }
            group.addTask {
                for await _ in signal {
                    let batch = pending.take()
                    if !batch.lines.isEmpty || batch.dropped > 0 {
                        deliver(LogBatch(stream: stream, lines: batch.lines, dropped: batch.dropped))
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
    private func read(namespace: String, pod: String, tailLines: Int, into pending: PendingLines, signal: @Sendable () -> Void) async {
        var tail = tailLines
        while !Task.isCancelled {
            do {
                let body = try await client.logBytes(
                    pod: pod, namespace: namespace, options: LogOptions(container: Self.container, follow: true, tailLines: tail))
                var splitter = LineSplitter()
                for try await chunk in body {
                    pending.append(chunk, splitter: &splitter)
                    signal()
                }
                if Task.isCancelled { return }
                if let rest = splitter.remainder { pending.append(String(decoding: rest, as: UTF8.self)) }
                pending.append("[tenops console: the log stream of \(pod) ended; following again]")
            } catch {
                if Task.isCancelled { return }
                pending.append("[tenops console: cannot follow \(pod)/\(Self.container): \(error)]")
            }
            signal()
            // After a restart the new container's first lines are what matter; a few at most.
            tail = 100
            try? await Task.sleep(for: reconnectDelay)
        }
    }
}
