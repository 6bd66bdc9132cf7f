import Foundation
import Synchronization
import Testing

@testable import Console

@Suite("Delivery pacer: a timer that runs only while there is news", .timeLimit(.minutes(2)))
struct DeliveryPacerTests {
    /// News that a tick hands over, as the log pane's pending lines are.
    final class News: Sendable {
        private let state = Mutex((waiting: 0, deliveries: 0, delivered: 0))

        func add(_ count: Int = 1) { state.withLock { $0.waiting += count } }
        var hasNews: Bool { state.withLock { $0.waiting > 0 } }
        var deliveries: Int { state.withLock { $0.deliveries } }
        var delivered: Int { state.withLock { $0.delivered } }

        /// Takes everything waiting, as the console's move does.
        func deliver() {
            state.withLock {
                $0.deliveries += 1
                $0.delivered += $0.waiting
                $0.waiting = 0
            }
        }

        /// Counts a delivery and leaves the news waiting (a console that has not moved it yet).
        func deliverWithoutTaking() { state.withLock { $0.deliveries += 1 } }
    }

    @Test("the first news is delivered at once; the timer stops when a tick finds none and starts again on wake")
    func stopsAndStarts() async throws {
        let news = News()
        let pacer = DeliveryPacer(interval: .milliseconds(20), hasNews: { news.hasNews }, deliver: { news.deliver() })
        defer { pacer.stop() }
        #expect(!pacer.isTicking, "no tick before the first wake")
        try await Task.sleep(for: .milliseconds(100))
        #expect(news.deliveries == 0)

        news.add(3)
        pacer.wake()
        #expect(await eventually(timeout: .seconds(5)) { news.delivered == 3 })
        #expect(await eventually(timeout: .seconds(5)) { !pacer.isTicking }, "a tick with nothing new stops the timer")
        let deliveries = news.deliveries
        try await Task.sleep(for: .milliseconds(200))
        #expect(news.deliveries == deliveries, "no delivery while stopped")

        news.add(2)
        pacer.wake()
        #expect(await eventually(timeout: .seconds(5)) { news.delivered == 5 })
        #expect(news.deliveries == deliveries + 1)
    }

    @Test("news that stays waiting is delivered at most once per interval")
    func paced() async throws {
        let news = News()
        let pacer = DeliveryPacer(interval: .milliseconds(50), hasNews: { news.hasNews }, deliver: { news.deliverWithoutTaking() })
        news.add()
        let start = ContinuousClock.now
        pacer.wake()
        try await Task.sleep(for: .milliseconds(500))
        pacer.stop()
        let elapsed = start.duration(to: .now)
        let stopped = news.deliveries
        // One at the wake, then one per 50 ms: 11 in 500 ms, and never more than the time allows.
        let most = Int(elapsed / .milliseconds(50)) + 1
        #expect(stopped >= 3 && stopped <= most, "\(stopped) deliveries in \(elapsed), at most \(most)")
        #expect(pacer.isTicking == false)
        try await Task.sleep(for: .milliseconds(150))
        #expect(news.deliveries == stopped, "nothing after stop")
    }

    @Test("wakes racing the ticks from four threads never strand news", arguments: [1, 2, 5])
    func racing(intervalMilliseconds: Int) async throws {
        let news = News()
        let pacer = DeliveryPacer(interval: .milliseconds(intervalMilliseconds), hasNews: { news.hasNews }, deliver: { news.deliver() })
        defer { pacer.stop() }
        let perThread = 2_000
        await withTaskGroup(of: Void.self) { group in
            for thread in 0..<4 {
                group.addTask {
                    for index in 0..<perThread {
                        news.add()
                        pacer.wake()
                        if (index + thread) % 97 == 0 { usleep(UInt32(intervalMilliseconds * 1000)) }
                    }
                }
            }
        }
        #expect(await eventually(timeout: .seconds(10)) { news.delivered == 4 * perThread }, "delivered \(news.delivered)")
        #expect(await eventually(timeout: .seconds(10)) { !pacer.isTicking })
    }

    @Test("news that comes while a tick is finding none is delivered, not stranded by the timer stopping")
    func newsDuringAnEmptyTick() async throws {
        let news = News()
        // A slow look that finds nothing: wide open, the moment between a tick's look and its
        // stopping the timer, when the race would strand news.
        let pacer = DeliveryPacer(interval: .milliseconds(2), hasNews: {
            let found = news.hasNews
            if !found { usleep(1_000) }
            return found
        }, deliver: { news.deliver() })
        defer { pacer.stop() }
        var stranded = 0
        for round in 1...300 {
            // 0 to 3.5 ms after the last delivery: often inside the next tick's look.
            usleep(UInt32(round % 8) * 500)
            news.add()
            pacer.wake()
            let deadline = ContinuousClock.now + .seconds(1)
            while news.delivered < round, ContinuousClock.now < deadline { usleep(100) }
            if news.delivered < round {
                stranded = round
                break
            }
        }
        #expect(stranded == 0, "the news of round \(stranded) was never delivered")
    }

    @Test("stop before any wake, while stopped, while ticking, and twice, releases the timer cleanly")
    func stopInEveryState() async throws {
        for wakes in [false, true] {
            for waitForSuspend in [false, true] {
                let news = News()
                do {
                    let pacer = DeliveryPacer(interval: .milliseconds(10), hasNews: { news.hasNews }, deliver: { news.deliver() })
                    if wakes {
                        news.add()
                        pacer.wake()
                        if waitForSuspend {
                            #expect(await eventually(timeout: .seconds(5)) { !pacer.isTicking && news.delivered == 1 })
                        }
                    }
                    pacer.stop()
                    pacer.stop()
                    pacer.wake()
                    #expect(!pacer.isTicking, "a wake after stop starts nothing")
                }
                // Released here, without dispatch's crash on a suspended or inactive source.
                let before = news.delivered
                news.add()
                try await Task.sleep(for: .milliseconds(30))
                #expect(news.delivered == before, "nothing delivered after stop")
            }
        }
        // Released without stop: deinit stops it.
        let news = News()
        do {
            let pacer = DeliveryPacer(interval: .milliseconds(10), hasNews: { news.hasNews }, deliver: { news.deliver() })
            news.add()
            pacer.wake()
            #expect(await eventually(timeout: .seconds(5)) { news.delivered == 1 })
        }
        news.add()
        try await Task.sleep(for: .milliseconds(50))
        #expect(news.delivered == 1, "a released pacer delivers nothing more")
    }
}
