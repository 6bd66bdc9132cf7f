/// The kubelet's crash-loop backoff for one container.
///
/// The first restart after a clean start is immediate; every further one waits `initial`
/// (10 s), doubling up to `maximum` (5 min). A container that ran for `resetAfter` (10 min)
/// before it ended starts the schedule over. While it waits, the container is reported as
/// waiting with reason `CrashLoopBackOff`.
public struct RestartBackoff: Sendable, Equatable {
    public var initial: Duration
    public var maximum: Duration
    public var resetAfter: Duration
    /// The wait before the restart after next; nil while the schedule is fresh.
    private(set) var pending: Duration?

    public init(initial: Duration = .seconds(10), maximum: Duration = .seconds(300), resetAfter: Duration = .seconds(600)) {
        self.initial = initial
        self.maximum = maximum
        self.resetAfter = resetAfter
    }

    /// How long to wait before restarting a container that ran for `ranFor`; advances the schedule.
    mutating func delay(afterRunning ranFor: Duration) -> Duration {
        if ranFor >= resetAfter { pending = nil }
        guard let current = pending else {
            pending = initial
            return .zero
        }
        pending = min(current * 2, maximum)
        return current
    }
}
