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
/// (`LogRing`), on the transport's thread as they arrive (`KubeClient.followLog`), so a console
/// that falls behind drops the oldest rather than growing, and no line becomes a `String` on the
/// way, nor any chunk a `Data`. A stream that ends (the container restarted, the connection
/// dropped) is opened again after a pause.
public final class LogFollower: Sendable {
    public static let container = "daemonlog"

    private let client: KubeClient
    private let batchInterval: Duration
    private let capacity: Int
    private let byteCapacity: Int?
    private let reconnectDelay: Duration

    /// Lines read and not yet moved to the console, shared by the transport's thread, which
    /// writes them, and the console, which moves them. The transport's thread serves every
    /// transfer and may wait here for a move: one copy of the lines waiting, those of one batch
    /// interval while the console keeps up (500 at 10,000 lines a second, tens of kilobytes).
    final class PendingLines: Sendable {
        private struct Lines {
            var ring: LogRing
            /// The stream's last line, until its newline comes.
            var splitter = LineSplitter()
        }

        private let lines: Mutex<Lines>

        init(capacity: Int, byteCapacity: Int?) { lines = Mutex(Lines(ring: LogRing(capacity: capacity, byteCapacity: byteCapacity))) }

        /// Splits `bytes` into lines, each appended to the ring.
        func append(_ bytes: UnsafeRawBufferPointer) {
            lines.withLock { lines in
                // The closure never throws, so neither does `append`.
                try? lines.splitter.append(bytes) { line in lines.ring.append(line) }
            }
        }

        /// Ends the stream's lines: a last line without its newline is appended, then `note`.
        func end(with note: String) {
            lines.withLock { lines in
                if let rest = lines.splitter.remainder { lines.ring.append(String(decoding: rest, as: UTF8.self)) }
                lines.splitter = LineSplitter()
                lines.ring.append(note)
            }
        }

        var isEmpty: Bool { lines.withLock { $0.ring.appended == 0 } }

        /// Moves the lines waiting into `destination`; the ring keeps its storage for the next.
        func move(into destination: inout LogRing) -> Int {
            lines.withLock { destination.moveLines(from: &$0.ring) }
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

    /// Follows until the calling Task is cancelled. `deliver` runs on the follower's own queue.
    public func follow(namespace: String, pod: String, stream: Int, tailLines: Int = 1000,
                       deliver: @escaping @Sendable (LogLinesReady) -> Void) async {
        let pending = PendingLines(capacity: capacity, byteCapacity: byteCapacity)
        let pacer = DeliveryPacer(interval: batchInterval, label: "tenops.console.log.\(stream)",
                                  hasNews: { !pending.isEmpty }, deliver: { deliver(LogLinesReady(stream: stream, pending: pending)) })
        await read(namespace: namespace, pod: pod, tailLines: tailLines, into: pending, wake: pacer.wake)
        pacer.stop()
    }

    /// Reads the stream, opening it again when it ends, until cancelled.
    private func read(namespace: String, pod: String, tailLines: Int, into pending: PendingLines,
                      wake: @escaping @Sendable () -> Void) async {
        var tail = tailLines
        while !Task.isCancelled {
            do {
                try await client.followLog(pod: pod, namespace: namespace, options: LogOptions(container: Self.container, follow: true, tailLines: tail)) {
                    pending.append($0)
                    wake()
                }
                if Task.isCancelled { return }
                pending.end(with: "[tenops console: the log stream of \(pod) ended; following again]")
            } catch {
                if Task.isCancelled { return }
                pending.end(with: "[tenops console: cannot follow \(pod)/\(Self.container): \(error)]")
            }
            wake()
            // After a restart the new container's first lines are what matter; a few at most.
            tail = 100
            try? await Task.sleep(for: reconnectDelay)
        }
    }
}
