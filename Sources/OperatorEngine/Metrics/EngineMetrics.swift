import CoreMetrics
import KubeAPI
import Metrics
import Synchronization

/// The engine's metrics, through swift-metrics: whoever bootstraps `MetricsSystem` (the
/// `tenops operator` process, with Prometheus) sees them; without a bootstrap they cost nothing.
///
/// - `timesten_classic_state{name,namespace,state}`: 1 for the pair's current highLevelState, 0 for
///   the states this process saw it in before;
/// - `tenops_failovers_total{name,namespace}`: failovers, automatic (a decision with a FAILOVER
///   event) or asked for (`tenops failover`, once it succeeded);
/// - `tenops_switchovers_total{name,namespace}`: manual switchovers that succeeded;
/// - `tenops_reconcile_duration_seconds`: one reconcile of one pair (a histogram);
/// - `tenops_agent_request_duration_seconds{verb}`: one agent verb (a histogram);
/// - `tenops_leader`: 1 while this replica holds the leader Lease, else 0;
/// - `tenops_agent_streams{state}`: agents' status streams, `open` or `resting` (a standby's
///   while its active vouches for it, see ``StandbyRest``).
///
/// The handles are looked up at each call (the factory returns the one it made before), so a
/// bootstrap that happens after this type is first used still counts.
public enum EngineMetrics {
    public enum Name {
        public static let pairState = "timesten_classic_state"
        public static let failovers = "tenops_failovers_total"
        public static let switchovers = "tenops_switchovers_total"
        public static let reconcileDuration = "tenops_reconcile_duration_seconds"
        public static let agentRequestDuration = "tenops_agent_request_duration_seconds"
        public static let leader = "tenops_leader"
        public static let agentStreams = "tenops_agent_streams"
    }

    /// Per pair: every state its gauge has been set for in this process.
    private static let states = Mutex<[ObjectKey: Set<String>]>([:])

    /// After a reconcile's Kubernetes actions went through (the status written, if it changed,
    /// and the decision's events recorded): the state gauge, and the failover and switchover
    /// counters for what this decision did. `previous` is the status the decision started from.
    public static func recorded(_ key: ObjectKey, status: TimesTenClassicStatus, previous: TimesTenClassicStatus, events: [PairEvent]) {
        let dimensions = pairDimensions(key)
        let failovers = failovers(in: events) + (actionSucceeded("failover", status: status, previous: previous) ? 1 : 0)
        let switchedOver = actionSucceeded("switchover", status: status, previous: previous)
        // Created at 0 with the pair, so that a rate over them starts from its first sample.
        Counter(label: Name.failovers, dimensions: dimensions).increment(by: failovers)
        Counter(label: Name.switchovers, dimensions: dimensions).increment(by: switchedOver ? 1 : 0)
        guard let state = status.highLevelState else { return }
        let before = states.withLock { states -> Set<String> in
            var seen = states[key] ?? []
            if let previous = previous.highLevelState { seen.insert(previous) }
            seen.remove(state)
            states[key, default: []].formUnion(seen.union([state]))
            return seen
        }
        // The new state first: a scrape between the two steps then sees it already at 1 (beside
        // the old one, for that instant), never a pair in no state at all. Once the old state
        // reads 0, the new one reads 1.
        Gauge(label: Name.pairState, dimensions: dimensions + [("state", state)]).record(1)
        for old in before.sorted() {
            Gauge(label: Name.pairState, dimensions: dimensions + [("state", old)]).record(0)
        }
    }

    /// The pair is gone: its series go too.
    public static func forget(_ key: ObjectKey) {
        let seen = states.withLock { $0.removeValue(forKey: key) }
        guard let seen else { return }
        let dimensions = pairDimensions(key)
        for state in seen { Gauge(label: Name.pairState, dimensions: dimensions + [("state", state)]).destroy() }
        Counter(label: Name.failovers, dimensions: dimensions).destroy()
        Counter(label: Name.switchovers, dimensions: dimensions).destroy()
    }

    /// This replica stopped leading: the pairs' series go, so that only the leader reports them.
    public static func forgetAllPairs() {
        let keys = states.withLock { Array($0.keys) }
        keys.forEach(forget)
    }

    /// Automatic failovers among a decision's events: the state machine's `FAILOVER: ...` event
    /// (a manual switchover or failover announces itself otherwise, and counts by its record).
    static func failovers(in events: [PairEvent]) -> Int {
        events.filter { $0.message.hasPrefix("FAILOVER") }.count
    }

    /// The record of a manual action `verb` (switchover, failover) turned Succeeded with this status.
    static func actionSucceeded(_ verb: String, status: TimesTenClassicStatus, previous: TimesTenClassicStatus) -> Bool {
        guard let now = status.lastAction, now.verb == verb, now.state == ActionState.succeeded else { return false }
        if let before = previous.lastAction, before.id == now.id, before.state == ActionState.succeeded { return false }
        return true
    }

    /// One reconcile of one pair, from `start` to now.
    public static func reconciled(since start: ContinuousClock.Instant) {
        CoreMetrics.Timer(label: Name.reconcileDuration).record(start.duration(to: .now))
    }

    /// One agent verb (`action.verb`; actions that are not agent verbs are not timed).
    public static func agentRequest(_ action: PairAction, since start: ContinuousClock.Instant) {
        guard let verb = action.verb else { return }
        CoreMetrics.Timer(label: Name.agentRequestDuration, dimensions: [("verb", verb)]).record(start.duration(to: .now))
    }

    /// How many agents' status streams are open and how many rest.
    public static func agentStreams(open: Int, resting: Int) {
        Gauge(label: Name.agentStreams, dimensions: [("state", "open")]).record(open)
        Gauge(label: Name.agentStreams, dimensions: [("state", "resting")]).record(resting)
    }

    public static func leader(_ leading: Bool) {
        Gauge(label: Name.leader).record(leading ? 1 : 0)
    }

    private static func pairDimensions(_ key: ObjectKey) -> [(String, String)] {
        [("name", key.name), ("namespace", key.namespace ?? "")]
    }
}

extension CoreMetrics.Timer {
    fileprivate func record(_ duration: Duration) {
        recordNanoseconds(max(0, duration.inNanoseconds))
    }
}

extension PairReconciler {
    /// Suspends until the reconciler's informers have delivered their first lists (or the
    /// calling Task is cancelled): from then on it decides from a full picture (`/readyz`).
    public func waitUntilSynced() async {
        await observer.waitForSync()
    }
}
