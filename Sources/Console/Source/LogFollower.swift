import Foundation
import KubeAPI
import Synchronization

/// Word from a log follower that lines of one pod's log are waiting. The console moves them into
/// its own ring, so they travel from the stream to the screen without a batch allocated for them:
/// at 10,000 lines a second, a 64 KiB batch made and freed twenty times a second kept a free
/// block at the top of malloc's heap, where a watch made again could put its buffers for minutes.
public struct LogLinesReady: Sendable {
    /// Which stream they belong to: lines of a stream since replaced are left alone.
    public let stream: Int
    let pending: LogFollower.PendingLines

    /// Moves the lines waiting into `ring`, oldest first; lines the follower had to drop count
    /// there as dropped. Returns how many lines came or were dropped (0: nothing changed, as
    /// when an earlier word already brought them).
    @discardableResult
    public func moveLines(into ring: inout LogRing) -> Int { pending.move(into: &ring) }
}

/// Follows `pods/log?container=daemonlog&follow=true` of one pod and sends word that lines are
/// waiting at most once per `batchInterval`: 10,000 lines a second make 20 redraws, not 10,000.
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

    /// Lines read and not yet moved to the console, shared by the reading task and the console.
    final class PendingLines: Sendable {
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

        var isEmpty: Bool { ring.withLock { $0.appended == 0 } }

        /// Moves the lines waiting into `destination`; the ring keeps its storage for the next.
        func move(into destination: inout LogRing) -> Int {
            ring.withLock { destination.moveLines(from: &$0) }
        }
    }

    /// `capacity` and `byteCapacity` are the console ring's (`LogRing`): no more lines wait.
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
                       deliver: @escaping @Sendable (LogLinesReady) -> Void) async {
        let pending = PendingLines(capacity: capacity, byteCapacity: byteCapacity)
        let (signal, signalContinuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let batchInterval = self.batchInterval
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await self.read(namespace: namespace, pod: pod, tailLines: tailLines, into: pending) { signalContinuation.yield() }
            }
            group.addTask {
                for await _ in signal {
                    if !pending.isEmpty { deliver(LogLinesReady(stream: stream, pending: pending)) }
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
