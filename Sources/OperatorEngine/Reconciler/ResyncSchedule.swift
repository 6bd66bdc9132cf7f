import Foundation
import KubeAPI
import Synchronization

/// When a pair is reconciled with no event behind it. Pure.
///
/// Every decision input arrives as an event: informer changes, an agent's decisive status
/// change or lost stream, and the state machine's own timeouts (`recheckAt`). What does not is
/// an agent's non-decisive drift, such as replication lag and WAL position: a pair whose agents
/// drifted is reconciled once per `pollingInterval`, so `.status` shows the lag at that pace. A
/// pair that is not settled (not Normal, or an action running) is also polled at that pace, as a
/// safety net for what it waits on outside the watches (a ConfigMap created later, for one).
/// Besides that, every pair is reconciled every `fullResync` whatever happened, as
/// controller-runtime's SyncPeriod does, to repair anything an event missed. A pair at rest thus
/// costs nothing between full resyncs, which is what lets one operator keep 1,000 pairs.
struct ResyncSchedule: Sendable {
    struct Entry: Sendable, Equatable {
        /// The last reconcile, from whatever cause.
        var last: Date
        var interval: TimeInterval
        var drifted = false
    }

    let fullResync: TimeInterval
    private(set) var entries: [ObjectKey: Entry] = [:]

    init(fullResync: TimeInterval) { self.fullResync = fullResync }

    /// Pair `key`, polled every `interval` seconds, was reconciled at `now`; `settled`: it is at rest.
    mutating func reconciled(_ key: ObjectKey, interval: TimeInterval, settled: Bool, at now: Date) {
        entries[key] = Entry(last: now, interval: max(1, interval), drifted: !settled)
    }

    /// An agent of pair `key` reported a change that needs no decision but belongs in `.status`.
    mutating func drifted(_ key: ObjectKey) {
        entries[key]?.drifted = true
    }

    mutating func forget(_ key: ObjectKey) { entries[key] = nil }

    /// The pairs due at `now`; each counts as reconciled from now on, so that it is not handed out again.
    mutating func takeDue(at now: Date) -> [ObjectKey] {
        var due: [ObjectKey] = []
        for (key, entry) in entries {
            let age = now.timeIntervalSince(entry.last)
            if (entry.drifted && age >= entry.interval) || age >= fullResync {
                due.append(key)
                entries[key] = Entry(last: now, interval: entry.interval)
            }
        }
        return due.sorted()
    }

    /// How long until the next pair may fall due, for the ticker's sleep.
    func nextCheck(after now: Date) -> TimeInterval {
        let soonest = entries.values.map { entry in
            entry.last.addingTimeInterval(entry.drifted ? entry.interval : fullResync).timeIntervalSince(now)
        }.min() ?? fullResync
        return min(max(soonest, 0.05), 1)
    }
}

/// A `ResyncSchedule` shared by the reconciler's worker, its ticker and the agents' callbacks.
final class SharedResyncSchedule: Sendable {
    private let schedule: Mutex<ResyncSchedule>

    init(fullResync: TimeInterval) { schedule = Mutex(ResyncSchedule(fullResync: fullResync)) }

    func reconciled(_ key: ObjectKey, interval: TimeInterval, settled: Bool, at now: Date) {
        schedule.withLock { $0.reconciled(key, interval: interval, settled: settled, at: now) }
    }

    func drifted(_ key: ObjectKey) { schedule.withLock { $0.drifted(key) } }

    func forget(_ key: ObjectKey) { schedule.withLock { $0.forget(key) } }

    /// The pairs due at `now`, and how long the ticker may sleep before it asks again.
    func takeDue(at now: Date) -> (due: [ObjectKey], wait: TimeInterval) {
        schedule.withLock { schedule in (schedule.takeDue(at: now), schedule.nextCheck(after: now)) }
    }
}
