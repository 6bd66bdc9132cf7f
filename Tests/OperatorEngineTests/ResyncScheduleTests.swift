import Foundation
import KubeAPI
@testable import OperatorEngine
import Testing

@Suite struct ResyncScheduleTests {
    let start = Date(timeIntervalSince1970: 1_000_000)
    let pair = ObjectKey(namespace: "ns", name: "sample")

    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        let settled: Bool
        let drifted: Bool
        let after: TimeInterval
        let due: Bool
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "at rest, within the full resync: not due", settled: true, drifted: false, after: 299, due: false),
        Case(name: "at rest, the full resync reached: due", settled: true, drifted: false, after: 300, due: true),
        Case(name: "drift, before pollingInterval: not due", settled: true, drifted: true, after: 4.9, due: false),
        Case(name: "drift, at pollingInterval: due", settled: true, drifted: true, after: 5, due: true),
        Case(name: "not settled, at pollingInterval: due", settled: false, drifted: false, after: 5, due: true),
        Case(name: "not settled, before pollingInterval: not due", settled: false, drifted: false, after: 1, due: false),
    ]

    @Test(arguments: cases)
    func dueness(_ test: Case) {
        var schedule = ResyncSchedule(fullResync: 300)
        schedule.reconciled(pair, interval: 5, settled: test.settled, at: start)
        if test.drifted { schedule.drifted(pair) }
        #expect(schedule.takeDue(at: start.addingTimeInterval(test.after)) == (test.due ? [pair] : []))
    }

    @Test func aPairHandedOutIsNotHandedOutAgainUntilItsNextTurn() {
        var schedule = ResyncSchedule(fullResync: 300)
        schedule.reconciled(pair, interval: 5, settled: true, at: start)
        schedule.drifted(pair)
        #expect(schedule.takeDue(at: start.addingTimeInterval(6)) == [pair])
        #expect(schedule.takeDue(at: start.addingTimeInterval(7)).isEmpty)
        // Handed out counts as a reconcile: the drift was cleared, the full resync restarts.
        #expect(schedule.takeDue(at: start.addingTimeInterval(20)).isEmpty)
        #expect(schedule.takeDue(at: start.addingTimeInterval(306)) == [pair])
    }

    @Test func aReconcileClearsDriftAndAForgottenPairIsNeverDue() {
        var schedule = ResyncSchedule(fullResync: 300)
        let other = ObjectKey(namespace: "ns", name: "other")
        schedule.reconciled(pair, interval: 5, settled: true, at: start)
        schedule.reconciled(other, interval: 5, settled: true, at: start)
        schedule.drifted(pair)
        schedule.drifted(other)
        schedule.reconciled(pair, interval: 5, settled: true, at: start.addingTimeInterval(1))
        schedule.forget(other)
        #expect(schedule.takeDue(at: start.addingTimeInterval(10)).isEmpty)
        schedule.drifted(ObjectKey(namespace: "ns", name: "unknown"))
        #expect(schedule.entries.count == 1)
    }

    @Test func theTickerSleepsAtMostOneSecondAndUntilTheSoonestDrift() {
        var schedule = ResyncSchedule(fullResync: 300)
        #expect(schedule.nextCheck(after: start) == 1)
        schedule.reconciled(pair, interval: 5, settled: false, at: start)
        #expect(schedule.nextCheck(after: start.addingTimeInterval(4.5)) == 0.5)
        #expect(schedule.nextCheck(after: start.addingTimeInterval(9)) == 0.05)
    }
}
