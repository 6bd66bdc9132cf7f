import Dispatch
import KubeAPI
import Synchronization

/// Calls `deliver` at most once per `interval` while `hasNews` holds, on a queue of its own:
/// a repeating timer that suspends itself when a tick finds nothing new and that `wake` resumes.
///
/// It paces the log pane. A `Task.sleep` per batch cost six heap blocks each time (a task, its
/// slab, a dispatch timer source and its continuations), twenty times a second for as long as a
/// log streams; a tick of this timer costs none, and a quiet log costs no tick at all.
final class DeliveryPacer: Sendable {
    /// Whether the timer runs; nil once stopped. Suspending and resuming happen only under this
    /// lock, so they alternate, as dispatch requires.
    private let running = Mutex<Bool?>(false)
    private let timer: Timer
    /// The interval, in nanoseconds.
    private let nanoseconds: Int
    private let hasNews: @Sendable () -> Bool
    private let deliver: @Sendable () -> Void

    /// A dispatch timer source; dispatch makes its own calls to it thread-safe.
    private struct Timer: @unchecked Sendable {
        let source: any DispatchSourceTimer
    }

    init(interval: Duration, label: String = "tenops.console.pacer",
         hasNews: @escaping @Sendable () -> Bool, deliver: @escaping @Sendable () -> Void) {
        self.hasNews = hasNews
        self.deliver = deliver
        // A serial queue of its own as the target: a tick is then handed over without a block
        // allocated for it, as one aimed at a global queue would be.
        let source = DispatchSource.makeTimerSource(queue: DispatchQueue(label: label))
        nanoseconds = max(1, Int(interval.inNanoseconds))
        timer = Timer(source: source)
        source.setEventHandler { [weak self] in self?.tick() }
    }

    /// Something new may be there: a stopped timer starts again with a tick at once, then one
    /// per interval. The last delivery was at least an interval ago: the timer stops only at a
    /// tick that found nothing, an interval after the tick before.
    func wake() {
        running.withLock { running in
            guard running == false else { return }
            running = true
            // Scheduled afresh, so that the tick after the first is a whole interval later,
            // not at the next beat of the old rhythm.
            timer.source.schedule(deadline: .now(), repeating: .nanoseconds(nanoseconds), leeway: .nanoseconds(max(1, nanoseconds / 10)))
            timer.source.resume()
        }
    }

    /// Stops the timer for good: no tick starts after it returns (one running already may still
    /// deliver).
    func stop() {
        running.withLock { running in
            guard let wasRunning = running else { return }
            running = nil
            timer.source.setEventHandler(handler: nil)
            timer.source.cancel()
            // A suspended (or never started) source must run again to be released.
            if !wasRunning { timer.source.resume() }
        }
    }

    deinit { stop() }

    /// Whether the timer runs (the tests look at it).
    var isTicking: Bool { running.withLock { $0 == true } }

    private func tick() {
        guard running.withLock({ $0 == true }) else { return }
        if hasNews() {
            deliver()
            return
        }
        // Checked again under the lock: news that came after the check above has its `wake`
        // wait for this, and then finds the timer stopped and starts it again.
        running.withLock { running in
            guard running == true, !hasNews() else { return }
            running = false
            timer.source.suspend()
        }
    }
}
