import Foundation

/// A pod's state and why.
public struct PodAssessment: Sendable, Equatable, CustomStringConvertible {
    public var state: PodState
    public var reason: String

    public init(_ state: PodState, _ reason: String) {
        self.state = state
        self.reason = reason
    }

    public var description: String { "\(state.rawValue) (\(reason))" }
}

/// Derives a pod's state from raw facts, for the role the operator intends for it. Pure: time
/// comes in as `now`.
///
/// For every role: a terminal reason gives Terminal; a pod that is gone or whose container has
/// terminated is Down; an agent that does not answer leaves the pod Unknown until
/// unreachableTimeout has passed since it last answered, then Down. With the agent's status:
/// - **active**: Healthy when the server is up, the database loaded and updatable and repState
///   ACTIVE; OtherDown when, in addition, its peer's replication is FAILED or has been
///   disconnected for longer than repStateTimeout. A crashed or stopped server, a fenced
///   database, a missing database or a standby is Down at once; any other state (starting up,
///   read-only) is Unknown until repStateTimeout, then Down.
/// - **standby**: a database that accepts writes is OtherDown (it is an active). Streaming is
///   Healthy, or CatchingUp while the active reports its peer in catch-up. In recovery but not
///   streaming: a standby that was Healthy stays Healthy (it lost its upstream, or the link
///   blinked) unless the active is up and it has not streamed for repStateTimeout; any other is
///   CatchingUp until repStateTimeout, then Down. Duplicating, crashed, stopped, fenced or
///   missing is Down.
public enum PodStateClassifier {
    /// Peer states of an active whose standby is connected.
    static let connectedPeerStates: Set<String> = ["streaming", "catchup", "startup", "backup"]
    /// Peer states of an active whose standby is connected but still catching up.
    static let catchingUpPeerStates: Set<String> = ["catchup", "startup", "backup"]

    public static func classify(
        _ pod: PodObservation, as role: PodRole, peer: PodObservation?, settings: PairSettings, now: Date
    ) -> PodAssessment {
        switch reachability(pod, settings: settings, now: now) {
        case .settled(let assessment): return assessment
        case .reachable(let status):
            switch role {
            case .active: return classifyActive(pod, status, settings: settings, now: now)
            case .standby: return classifyStandby(pod, status, peer: peer, settings: settings, now: now)
            }
        }
    }

    /// The Reexamine states: HealthyActive, HealthyStandby, HealthyIdle, or Down, Unknown, Terminal.
    public static func classifyForReexamine(_ pod: PodObservation, settings: PairSettings, now: Date) -> PodAssessment {
        switch reachability(pod, settings: settings, now: now) {
        case .settled(let assessment):
            return assessment
        case .reachable(let status):
            if status.daemonUp && status.dbLoaded && status.updatable && status.repState == .active {
                return PodAssessment(.healthyActive, "a writable active")
            }
            if status.daemonUp && status.dbLoaded && status.repState == .standby {
                return PodAssessment(.healthyStandby, "a streaming standby")
            }
            if status.instanceExists && status.repState == .idle && !pod.duplicating {
                return PodAssessment(.healthyIdle, "a database with neither role")
            }
            return PodAssessment(.down, describe(status))
        }
    }

    enum Reachability {
        case settled(PodAssessment)
        case reachable(AgentStatus)
    }

    /// What can be said without the agent's status, or the status to judge by.
    static func reachability(_ pod: PodObservation, settings: PairSettings, now: Date) -> Reachability {
        if let reason = pod.terminalReason { return .settled(PodAssessment(.terminal, reason)) }
        if !pod.exists { return .settled(PodAssessment(.down, "the pod is gone")) }
        if pod.containerTerminated { return .settled(PodAssessment(.down, "the tt container has terminated")) }
        if let status = pod.reachableStatus { return .reachable(status) }
        let limit = settings.unreachableTimeout
        if let deadline = unreachableDeadline(pod, settings: settings), now < deadline {
            return .settled(PodAssessment(.unknown, "the agent has not answered for \(seconds(now, since: deadline - limit)) (unreachableTimeout \(Int(limit)) s)"))
        }
        return .settled(PodAssessment(.down, "the agent has not answered for more than unreachableTimeout (\(Int(limit)) s)"))
    }

    /// When an unreachable pod counts as Down; nil when it never answered and its creation
    /// time is unknown (it counts as Down at once).
    public static func unreachableDeadline(_ pod: PodObservation, settings: PairSettings) -> Date? {
        (pod.lastTimeReachable ?? pod.createdAt).map { $0.addingTimeInterval(settings.unreachableTimeout) }
    }

    /// `since` plus `timeout` has passed; a nil `since` counts as long ago.
    static func timedOut(_ since: Date?, _ timeout: TimeInterval, now: Date) -> Bool {
        guard let since else { return true }
        return now.timeIntervalSince(since) >= timeout
    }

    static func classifyActive(_ pod: PodObservation, _ status: AgentStatus, settings: PairSettings, now: Date) -> PodAssessment {
        if status.daemonUp && status.dbLoaded && status.updatable && status.repState == .active {
            if let failure = peerFailure(pod, status, settings: settings, now: now) { return PodAssessment(.otherDown, failure) }
            return PodAssessment(.healthy, "a writable active")
        }
        if !status.instanceExists { return PodAssessment(.down, "there is no database") }
        if !status.daemonUp || status.repState == .failed { return PodAssessment(.down, describe(status)) }
        if status.fenced && !status.updatable { return PodAssessment(.down, "the database is fenced") }
        if status.repState == .standby { return PodAssessment(.down, "the database is a standby, not the active") }
        return transient(pod, status, settings: settings, now: now, whileWaiting: .unknown)
    }

    static func classifyStandby(
        _ pod: PodObservation, _ status: AgentStatus, peer: PodObservation?, settings: PairSettings, now: Date
    ) -> PodAssessment {
        if pod.duplicating { return PodAssessment(.down, "the database is being duplicated") }
        if status.mayAcceptWrites { return PodAssessment(.otherDown, "the standby's database is a writable active") }
        if !status.instanceExists { return PodAssessment(.down, "there is no database") }
        if !status.daemonUp || status.repState == .failed { return PodAssessment(.down, describe(status)) }
        if status.fenced { return PodAssessment(.down, "the database is a fenced former active") }
        if status.repState == .standby {
            if let peerState = peer?.reachableStatus?.repPeerPState, catchingUpPeerStates.contains(peerState) {
                return PodAssessment(.catchingUp, "streaming; the active reports it in \(peerState)")
            }
            return PodAssessment(.healthy, "a streaming standby")
        }
        // In recovery but not streaming.
        if pod.previousState == .healthy {
            let activeUp = peer?.reachableStatus.map { $0.updatable && $0.repState == .active } ?? false
            if activeUp && timedOut(pod.repStateSince, settings.repStateTimeout, now: now) {
                return PodAssessment(.down, "not streaming from a healthy active for more than repStateTimeout (\(Int(settings.repStateTimeout)) s)")
            }
            return PodAssessment(.healthy, "a synchronised standby, not streaming now (repState \(status.repState.rawValue))")
        }
        return transient(pod, status, settings: settings, now: now, whileWaiting: .catchingUp)
    }

    /// A replication state that is not right for the role but may come right: `whileWaiting`
    /// until repStateTimeout, then Down.
    static func transient(_ pod: PodObservation, _ status: AgentStatus, settings: PairSettings, now: Date, whileWaiting: PodState) -> PodAssessment {
        let limit = settings.repStateTimeout
        if !timedOut(pod.repStateSince, limit, now: now), let since = pod.repStateSince {
            return PodAssessment(whileWaiting, "\(describe(status)) for \(seconds(now, since: since)) (repStateTimeout \(Int(limit)) s)")
        }
        return PodAssessment(.down, "\(describe(status)) for more than repStateTimeout (\(Int(limit)) s)")
    }

    /// Why an active's peer counts as failed, or nil.
    static func peerFailure(_ pod: PodObservation, _ status: AgentStatus, settings: PairSettings, now: Date) -> String? {
        let peerState = status.repPeerPState
        if peerState.uppercased() == "FAILED" { return "replication to the peer has FAILED" }
        guard !connectedPeerStates.contains(peerState), timedOut(pod.peerStateSince, settings.repStateTimeout, now: now) else { return nil }
        return "no standby has been connected for more than repStateTimeout (\(Int(settings.repStateTimeout)) s; peer state \(peerState))"
    }

    static func describe(_ status: AgentStatus) -> String {
        var text = "repState \(status.repState.rawValue)"
        if !status.daemonUp { text += ", the server is down" }
        if status.daemonUp && !status.dbLoaded { text += ", the database is not loaded" }
        if let error = status.lastError, !error.isEmpty { text += ": \(error)" }
        return text
    }

    static func seconds(_ now: Date, since: Date) -> String {
        "\(Int(max(0, now.timeIntervalSince(since)).rounded())) s"
    }
}
