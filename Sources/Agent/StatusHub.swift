import Foundation
import Synchronization

/// Holds the latest status and hands every change to each subscriber at once.
final class StatusHub: Sendable {
    private struct State {
        var current: EngineStatus
        var subscribers: [Int: AsyncStream<EngineStatus>.Continuation] = [:]
        var nextID = 0
        var finished = false
    }

    private let state: Mutex<State>

    init(initial: EngineStatus) {
        state = Mutex(State(current: initial))
    }

    var current: EngineStatus { state.withLock { $0.current } }

    /// Publishes `status` when it differs from the current one. Returns true when it did.
    @discardableResult
    func publish(_ status: EngineStatus) -> Bool {
        state.withLock { state in
            guard status != state.current else { return false }
            state.current = status
            for continuation in state.subscribers.values { continuation.yield(status) }
            return true
        }
    }

    /// The current status at once, then every change, until the hub finishes or the consumer stops.
    func subscribe() -> AsyncStream<EngineStatus> {
        let (stream, continuation) = AsyncStream<EngineStatus>.makeStream(bufferingPolicy: .bufferingNewest(64))
        let id: Int? = state.withLock { state in
            continuation.yield(state.current)
            guard !state.finished else { return nil }
            let id = state.nextID
            state.nextID += 1
            state.subscribers[id] = continuation
            return id
        }
        guard let id else {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.subscribers.removeValue(forKey: id) }
        }
        return stream
    }

    /// Ends every subscription (the agent is stopping).
    func finishAll() {
        let continuations = state.withLock { state -> [AsyncStream<EngineStatus>.Continuation] in
            state.finished = true
            defer { state.subscribers.removeAll() }
            return Array(state.subscribers.values)
        }
        for continuation in continuations { continuation.finish() }
    }
}

/// A value behind a lock that closures can share (Mutex itself cannot be captured by copy).
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<R>(_ body: (inout sending Value) throws -> sending R) rethrows -> sending R {
        try mutex.withLock(body)
    }
}
