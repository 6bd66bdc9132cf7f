import Foundation

/// When to retry a key: client-go's default controller rate limiter, the larger of a per-item
/// exponential backoff and an overall token bucket.
public struct RateLimiter: Sendable {
    public var baseDelay: Duration
    public var maxDelay: Duration
    public var bucketQPS: Double
    public var bucketBurst: Int

    public init(baseDelay: Duration = .milliseconds(5), maxDelay: Duration = .seconds(1000), bucketQPS: Double = 10, bucketBurst: Int = 100) {
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.bucketQPS = bucketQPS
        self.bucketBurst = bucketBurst
    }

    /// The per-item delay after `failures` consecutive failures (1-based): base * 2^(failures-1), capped.
    public func itemDelay(failures: Int) -> Duration {
        .seconds(fraction: min(maxDelay.inSeconds, baseDelay.inSeconds * pow(2, Double(max(0, min(failures - 1, 60))))))
    }
}

/// A rate-limited work queue with client-go's guarantees:
/// - a key added many times before it is processed is processed once;
/// - a key is never handed to two workers at once: added while processing, it is queued again
///   after `done`;
/// - `addRateLimited` backs off exponentially per key until `forget`.
public actor WorkQueue<Key: Hashable & Sendable> {
    private var queue: [Key] = []
    private var head = 0
    private var dirty = Set<Key>()
    private var processing = Set<Key>()
    private var waiters: [CheckedContinuation<Key?, Never>] = []
    private var failures: [Key: Int] = [:]
    private var shuttingDown = false
    private let limiter: RateLimiter
    // Token bucket state.
    private var tokens: Double
    private var lastRefill: ContinuousClock.Instant
    private var delayed: [Key: (due: ContinuousClock.Instant, task: Task<Void, Never>)] = [:]

    public init(rateLimiter: RateLimiter = RateLimiter()) {
        self.limiter = rateLimiter
        self.tokens = Double(rateLimiter.bucketBurst)
        self.lastRefill = .now
    }

    public var count: Int { queue.count - head }
    public var isShuttingDown: Bool { shuttingDown }

    public func add(_ key: Key) {
        guard !shuttingDown, !dirty.contains(key) else { return }
        dirty.insert(key)
        if processing.contains(key) { return }
        if let waiter = waiters.first {
            waiters.removeFirst()
            dirty.remove(key)
            processing.insert(key)
            waiter.resume(returning: key)
        } else {
            queue.append(key)
        }
    }

    /// Waits for the next key; nil once the queue is shut down and drained.
    public func get() async -> Key? {
        if head < queue.count {
            let key = queue[head]
            head += 1
            if head > 1024 && head * 2 > queue.count {
                queue.removeFirst(head)
                head = 0
            }
            dirty.remove(key)
            processing.insert(key)
            return key
        }
        if shuttingDown { return nil }
        return await withCheckedContinuation { waiters.append($0) }
    }

    /// Marks a key as processed; if it was added meanwhile, it is queued again.
    public func done(_ key: Key) {
        processing.remove(key)
        if dirty.contains(key) {
            dirty.remove(key)
            add(key)
        }
    }

    public func addAfter(_ key: Key, _ delay: Duration) {
        guard !shuttingDown else { return }
        if delay <= .zero {
            add(key)
            return
        }
        // As in client-go, the earliest time asked for wins.
        let due = ContinuousClock.now + delay
        if let pending = delayed[key], pending.due <= due { return }
        delayed[key]?.task.cancel()
        delayed[key] = (due, Task { [weak self] in
            try? await Task.sleep(until: due, clock: .continuous)
            guard !Task.isCancelled else { return }
            await self?.fireDelayed(key)
        })
    }

    private func fireDelayed(_ key: Key) {
        delayed[key] = nil
        add(key)
    }

    /// Requeues with the per-key backoff (or the global bucket, whichever is later).
    public func addRateLimited(_ key: Key) {
        addAfter(key, when(key))
    }

    /// The delay `addRateLimited` would use now; counts one failure.
    public func when(_ key: Key) -> Duration {
        let count = (failures[key] ?? 0) + 1
        failures[key] = count
        let itemDelay = limiter.itemDelay(failures: count)
        return max(itemDelay, bucketDelay())
    }

    public func numRequeues(_ key: Key) -> Int { failures[key] ?? 0 }

    /// Clears a key's failure history after it succeeded.
    public func forget(_ key: Key) { failures[key] = nil }

    /// Stops accepting keys and wakes idle workers with nil.
    public func shutDown() {
        shuttingDown = true
        for pending in delayed.values { pending.task.cancel() }
        delayed = [:]
        let idle = waiters
        waiters = []
        idle.forEach { $0.resume(returning: nil) }
    }

    private func bucketDelay() -> Duration {
        let now = ContinuousClock.now
        let elapsed = lastRefill.duration(to: now)
        tokens = min(Double(limiter.bucketBurst), tokens + elapsed.inSeconds * limiter.bucketQPS)
        lastRefill = now
        tokens -= 1
        if tokens >= 0 { return .zero }
        return .nanoseconds(Int64(-tokens / limiter.bucketQPS * 1e9))
    }
}
