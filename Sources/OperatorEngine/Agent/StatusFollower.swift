import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Synchronization

/// Keeps one agent's status stream open until cancelled, with callbacks only: each status goes
/// to `received`, each end of the stream to `lost` (why, as text), and the stream opens again
/// after a wait that doubles from 100 ms to 2 s, back to 100 ms once a stream got as far as
/// opening. The wait is a timer on the event loop, so neither an open stream nor a wait holds a
/// task.
final class StatusFollower: Sendable {
    /// The first wait after a stream ends, and the longest.
    static let shortestWait: Duration = .milliseconds(100)
    static let longestWait: Duration = .seconds(2)

    private struct State {
        var stream: AgentStreamTransport.Stream?
        var retry: Scheduled<Void>?
        var wait = StatusFollower.shortestWait
        var cancelled = false
    }

    private let client: AgentClient
    private let received: @Sendable (AgentStatus) -> Void
    private let lost: @Sendable (String) -> Void
    private let state = Mutex(State())

    init(client: AgentClient, received: @escaping @Sendable (AgentStatus) -> Void,
         lost: @escaping @Sendable (String) -> Void) {
        self.client = client
        self.received = received
        self.lost = lost
    }

    /// Opens the first stream.
    func start() { open() }

    /// Closes the stream or stops the wait. Nothing is reported after this returns, apart from a
    /// status or an end that another thread is reporting at that moment.
    func cancel() {
        let (stream, retry) = state.withLock { state in
            state.cancelled = true
            defer {
                state.stream = nil
                state.retry = nil
            }
            return (state.stream, state.retry)
        }
        stream?.cancel()
        retry?.cancel()
    }

    var isCancelled: Bool { state.withLock { $0.cancelled } }

    /// The wait before the next attempt, after one that `opened` (or not) with `wait` before it.
    static func nextWait(after wait: Duration, opened: Bool) -> (now: Duration, next: Duration) {
        let now = opened ? shortestWait : wait
        return (now, min(now * 2, longestWait))
    }

    private func open() {
        let opened = NIOLockedValueBox(false)
        // Under the lock, so that an end that comes at once (a refused connection) cannot take
        // its turn before this stream is kept: `end` never runs before `openStatusStream`
        // returns, and here it waits for the lock.
        state.withLock { state in
            guard !state.cancelled else { return }
            state.stream = client.openStatusStream(opened: { opened.withLockedValue { $0 = true } }) { [weak self] status in
                guard let self, !self.isCancelled else { return }
                self.received(status)
            } end: { [weak self] result in
                self?.ended(result, opened: opened.withLockedValue { $0 })
            }
        }
    }

    private func ended(_ result: Result<Void, AgentClientError>, opened: Bool) {
        guard !isCancelled else { return }
        switch result {
        case .success: lost("the agent closed its status stream")
        case .failure(let error): lost("\(error)")
        }
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        state.withLock { state in
            guard !state.cancelled else { return }
            let (now, next) = Self.nextWait(after: state.wait, opened: opened)
            state.wait = next
            state.stream = nil
            state.retry = loop.scheduleTask(in: TimeAmount(now)) { [weak self] in self?.open() }
        }
    }
}
