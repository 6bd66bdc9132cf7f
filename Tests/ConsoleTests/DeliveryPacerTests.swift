import Foundation
import Synchronization
import Testing

@testable import Console

@Suite("Delivery pacer: a timer that runs only while there is news", .timeLimit(.minutes(2)))
struct DeliveryPacerTests {
    /// News that a tick hands over, as the log pane's pending lines are.
    final class News: Sendable {
        private let state = Mutex((waiting: 0, deliveries: 0, delivered: 0))
        private let times = Mutex([ContinuousClock.Instant]())

        /// When each delivery came.
        var deliveryTimes: [ContinuousClock.Instant] { times.withLock { $0 } }

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
        func deliverWithoutTaking() {
            state.withLock { $0.deliveries += 1 }
            times.withLock { $0.append(.now) }
        }
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

    @Test("after a pause, the tick after the first comes a whole interval later, not at the old rhythm's next beat")
    func freshRhythmAfterPause() async throws {
        let news = News()
        let pacer = DeliveryPacer(interval: .milliseconds(200), hasNews: { news.hasNews }, deliver: { news.deliverWithoutTaking() })
        defer { pacer.stop() }
        for pause in [130, 270] {
            // Stopped: a tick finds nothing.
            #expect(await eventually(timeout: .seconds(5)) { !pacer.isTicking })
            try await Task.sleep(for: .milliseconds(pause))
            let before = news.deliveryTimes.count
            news.add()
            pacer.wake()
            #expect(await eventually(timeout: .seconds(5)) { news.deliveryTimes.count >= before + 2 })
            news.deliver()
            let times = news.deliveryTimes
            let gap = times[before].duration(to: times[before + 1])
            #expect(gap >= .milliseconds(180), "\(gap) between the first two deliveries after a pause of \(pause) ms")
        }
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
        weak var released: DeliveryPacer?
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
                    // A tick already running when stop came may still finish.
                    try await Task.sleep(for: .milliseconds(20))
                    let before = news.delivered
                    news.add()
                    pacer.wake()
                    #expect(!pacer.isTicking, "a wake after stop starts nothing")
                    try await Task.sleep(for: .milliseconds(50))
                    #expect(news.delivered == before, "nothing delivered after stop")
                    released = pacer
                }
                // Released here, without dispatch's crash on a suspended or inactive source.
                #expect(released == nil, "the pacer is released once no one holds it")
            }
        }
        // Released without stop, ticking: deinit stops it, and no tick comes after.
        let news = News()
        do {
            let pacer = DeliveryPacer(interval: .milliseconds(10), hasNews: { news.hasNews }, deliver: { news.deliverWithoutTaking() })
            news.add()
            pacer.wake()
            #expect(await eventually(timeout: .seconds(5)) { news.deliveries >= 2 })
            #expect(pacer.isTicking)
            released = pacer
        }
        #expect(released == nil, "the pacer's own timer does not keep it alive")
        try await Task.sleep(for: .milliseconds(20))
        let after = news.deliveries
        try await Task.sleep(for: .milliseconds(100))
        #expect(news.deliveries == after, "a released pacer delivers nothing more")
    }
}
