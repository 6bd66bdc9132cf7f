import Foundation

/// What the engine knows of one pod incarnation's agent: the last status its stream delivered,
/// whether the stream is up, and the work the engine has running there. A plain value; the
/// watchers in ``PairAgents`` keep one per pod.
public struct AgentView: Sendable, Equatable {
    /// The Pod's uid: a view describes one incarnation of the pod.
    public var podUID: String
    /// The pod IP the agent is called on.
    public var address: String
    /// When the engine began watching this agent. An agent not yet reached counts as
    /// unreachable from here, never from earlier: an engine that just started must not take
    /// its own ignorance for a long silence.
    public var watchingSince: Date
    /// The first connection attempt has ended, one way or the other. Until then the engine
    /// does not judge the pod.
    public var settled = false
    /// The stream is up (or a call just succeeded).
    public var reachable = false
    public var status: AgentStatus?
    public var lastTimeReachable: Date?
    /// Why the agent is unreachable.
    public var lastError: String?
    /// The tt container's restartCount when a status last arrived: a higher count with the
    /// stream down means the incarnation that sent it is gone.
    public var restartCountAtStatus: Int?
    /// A repDuplicate job the engine started here and follows.
    public var job: AgentJobStatus?
    /// The last job's failure, for the event and the console.
    public var jobError: String?
    /// The readiness the engine last set (setActive true, clearActive false) and when. The
    /// Pod's Ready condition follows within a probe period; until then this stands in for it, so
    /// that the same verb is not sent again at every reconcile.
    public var readinessSet: Bool?
    public var readinessSetAt: Date?
    /// Why the operator cannot repair this pod (createDb refused the metadata); nil when it can.
    public var terminalReason: String?

    public init(podUID: String, address: String, watchingSince: Date) {
        self.podUID = podUID
        self.address = address
        self.watchingSince = watchingSince
    }

    /// A repDuplicate job is running here.
    public var duplicating: Bool { job?.state == .running }

    /// The status with the fields decisions rest on, lag and positions left out: a change of
    /// this is worth an immediate reconcile, a change of lag alone is not.
    static func decisive(_ status: AgentStatus?) -> AgentStatus? {
        guard var status else { return nil }
        status.bytesBehind = nil
        status.lsn = nil
        status.pid = nil
        return status
    }
}
