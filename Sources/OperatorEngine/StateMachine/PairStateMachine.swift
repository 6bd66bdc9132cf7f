import Foundation

/// The pair's state machine, after Oracle's TimesTen operator: a pure function from what the
/// reconciler observed to the next state, the actions that get there and the status to record.
/// No I/O and no clock.
///
/// It follows the transitions of `reference/timesten-classic.md`, read as (intended active's
/// pod state / intended standby's pod state). Where the reference is silent it keeps the pair
/// where it is and waits (Unknown pods), or takes the reading closest to Oracle's (noted at each
/// place). Beyond the reference:
/// - **One writer.** No decision makes a database writable (createDb, promote) while the other
///   pod may still accept writes: the other must be confirmed gone (container terminated, pod
///   gone), unreachable for longer than unreachableTimeout, unable to write (no database, a
///   streaming standby, being duplicated), or fenced by an earlier action of the same decision.
///   `decide` checks its own output against this and drops what breaks it.
/// - **Resumable.** A FAILOVER records the swap of intended roles in the status that is written
///   before any action, so an engine that restarts mid-failover finds an intended active still
///   in standby role and promotes it (in ActiveTakeover).
/// - **Readiness.** Only a writable intended active is Ready (setActive/clearActive).
/// - **deleteDbOnNotReadyNode** never deletes the only copy: only the intended standby's pod,
///   while the intended active is up (or any pod while Initializing).
public enum PairStateMachine {
    public static func decide(_ observation: PairObservation) -> PairDecision {
        var decision = rawDecision(observation)
        enforceSingleWriter(&decision, observation)
        return decision
    }

    /// The decision before the one-writer check.
    static func rawDecision(_ observation: PairObservation) -> PairDecision {
        var builder = DecisionBuilder(observation)
        builder.run()
        return builder.finish()
    }

    // MARK: - The one-writer invariant

    /// A pod whose database cannot accept writes, as far as the observation shows, without any
    /// action of this decision.
    public static func cannotWrite(_ pod: PodObservation, settings: PairSettings, now: Date) -> Bool {
        if pod.confirmedGone { return true }
        guard let status = pod.reachableStatus else {
            guard let deadline = PodStateClassifier.unreachableDeadline(pod, settings: settings) else { return true }
            return now >= deadline
        }
        if !status.instanceExists || pod.duplicating { return true }
        return !status.updatable && (status.repState == .standby || (status.fenced && !status.daemonUp))
    }

    /// Drops any action that would make a database writable while the other pod may still
    /// write, and everything after it, with an Error event. The machine never needs this (the
    /// table tests check that); it is the last line of defence.
    static func enforceSingleWriter(_ decision: inout PairDecision, _ observation: PairObservation) {
        for (index, action) in decision.actions.enumerated() where action.makesWritable {
            guard let other = [observation.active, observation.standby].first(where: { $0.name != action.pod }) else { continue }
            let fencedBefore = decision.actions[..<index].contains { $0 == .fence(pod: other.name) || $0 == .fenceAndStop(pod: other.name) }
            if fencedBefore || cannotWrite(other, settings: observation.settings, now: observation.now) { continue }
            decision.actions.removeSubrange(index...)
            decision.events.append(PairEvent(
                .warning, reason: PairEvent.Reason.error,
                "refused to \(action) while \(other.name) may still accept writes"))
            return
        }
    }
}

/// Builds one decision. Each state has its method; the helpers below hold what several share.
struct DecisionBuilder {
    let o: PairObservation
    let settings: PairSettings
    let now: Date
    /// The pods by intended role, as this decision leaves them.
    private(set) var active: PodObservation
    private(set) var standby: PodObservation
    private(set) var a: PodAssessment
    private(set) var s: PodAssessment
    private(set) var next: PairState
    private var rolesSwapped = false
    private var actions: [PairAction] = []
    private var events: [PairEvent] = []
    private var notes: [String] = []
    /// States in which the operator touches nothing.
    private var handsOff = false

    init(_ observation: PairObservation) {
        o = observation
        settings = observation.settings
        now = observation.now
        active = observation.active
        standby = observation.standby
        next = observation.state
        a = PodStateClassifier.classify(active, as: .active, peer: standby, settings: settings, now: now)
        s = PodStateClassifier.classify(standby, as: .standby, peer: active, settings: settings, now: now)
    }

    // MARK: Dispatch

    mutating func run() {
        if o.state == .failed {
            handsOff = true
            note("Failed is final: delete the object to start over")
            return
        }
        if o.edges.stopManagingChanged {
            handsOff = true
            go(.manualInterventionRequired, .warning, "stopManaging changed: the operator leaves the pair alone until reexamine changes")
            return
        }
        if o.edges.reexamineChanged {
            go(.reexamine, .normal, "reexamine changed: examining both pods again")
            return
        }
        switch o.state {
        case .initializing: initializing()
        case .normal: normal()
        case .activeDown: activeDown()
        case .activeTakeover: activeTakeover()
        case .standbyDown: standbyDown()
        case .standbyStarting: standbyStarting()
        case .standbyCatchup: standbyCatchup()
        case .bothDown: bothDown()
        case .waitingForActive: waitingForActive()
        case .configuringActive: configuringActive()
        case .reexamine: reexamine()
        case .manualInterventionRequired:
            handsOff = true
            note("waiting for a person: change reexamine to resume")
        case .failed: break
        }
        if next == .manualInterventionRequired || next == .failed { handsOff = true }
        if !handsOff {
            readiness()
            deleteOnNotReadyNodes()
        }
    }

    // MARK: States

    /// Initializing: build the active, duplicate the standby from it; both Healthy → Normal;
    /// any pod Terminal → Failed.
    mutating func initializing() {
        if a.state == .terminal || s.state == .terminal {
            let pod = a.state == .terminal ? active.name : standby.name
            let reason = a.state == .terminal ? a.reason : s.reason
            handsOff = true
            go(.failed, .warning, "\(pod) is Terminal: \(reason)", eventReason: PairEvent.Reason.error)
            return
        }
        if a.state.isActiveUp, let status = active.reachableStatus {
            if !status.repScheme || (settings.hasEpilog && !status.appliedFiles.contains("epilog.sql")) {
                configureReplication(status)
                return
            }
            switch s.state {
            case .healthy: go(.normal, .normal, "\(active.name) is the active and \(standby.name) its streaming standby")
            case .catchingUp: note("\(standby.name) is catching up: \(s.reason)")
            default: reduplicateStandby()
            }
            return
        }
        guard let status = active.reachableStatus, a.state != .unknown else {
            note("waiting for \(active.name): \(a.reason)")
            return
        }
        guard neutralize(standby, before: "create the database on \(active.name)") else { return }
        add(.createDb(pod: active.name))
        configureReplication(status)
    }

    /// Normal: the reference's table; Unknown pods keep the pair Normal until they time out.
    mutating func normal() {
        guard !waitingForUnknown(), !activeLost() else { return }
        switch (a.state.settled, s.state.settled) {
        case (.healthy, .down):
            go(.activeTakeover, .warning, "\(standby.name) is Down (\(s.reason)); \(active.name) carries on alone")
        case (.healthy, .otherDown):
            // The reference believes the standby here: it is a writable active.
            fenceIfReachable(active)
            go(.activeDown, .warning, "\(standby.name) is a writable active (\(s.reason)); \(active.name) is fenced")
        case (.otherDown, .healthy):
            go(.activeTakeover, .warning, "\(active.name) reports its peer failed (\(a.reason)); believing the active")
        case (.otherDown, .down):
            go(.standbyDown, .warning, "\(standby.name) is Down (\(s.reason)) and \(active.name) reports its peer failed")
        case (.otherDown, .otherDown):
            // Not in the reference: two writable actives. Believe the intended active.
            fenceIfReachable(standby)
            go(.standbyDown, .warning, "both databases are writable actives: \(standby.name) is fenced and will be re-duplicated")
        default:
            // Healthy (or OtherDown) with a healthy or catching-up standby: all is well.
            break
        }
    }

    /// ActiveDown: standby Healthy → FAILOVER (swap the intended roles, then ActiveTakeover);
    /// both Down → BothDown. An active that came back is judged as in Normal.
    mutating func activeDown() {
        if s.state.settled == .healthy || s.state.settled == .otherDown {
            failover()
        } else if !activeLost() && a.state.isActiveUp {
            let before = next
            normal()
            if next == before { go(.normal, .normal, "\(active.name) is a healthy active again") }
        }
    }

    /// ActiveTakeover: first finish a failover (promote the intended active if it is still a
    /// standby); then Healthy / Down → StandbyDown, and the rest as in the repair states.
    mutating func activeTakeover() {
        if let status = active.reachableStatus, Self.awaitsPromotion(active, status) {
            note("finishing the failover: \(active.name) is to be promoted")
            promote(active, fencing: standby)
            return
        }
        repairState(catchingUp: .standbyStarting, healthy: .normal)
    }

    /// StandbyDown: re-duplicate the standby from the active; Healthy / CatchingUp →
    /// StandbyStarting; Healthy / Healthy → Normal; Down / Healthy → ActiveDown; Down / Down → BothDown.
    mutating func standbyDown() {
        repairState(catchingUp: .standbyStarting, healthy: .normal)
    }

    /// StandbyStarting: Healthy / CatchingUp → StandbyCatchup; Healthy / Healthy → Normal;
    /// Healthy / Down → StandbyDown; active Down → ManualInterventionRequired.
    mutating func standbyStarting() {
        if a.state.settled == .down {
            go(.manualInterventionRequired, .warning,
               "\(active.name) is Down (\(a.reason)) while \(standby.name) is still starting: it is not a safe copy")
            return
        }
        repairState(catchingUp: .standbyCatchup, healthy: .normal)
    }

    /// StandbyCatchup: Healthy / Healthy → Normal; Healthy / Down → StandbyDown;
    /// Down / Healthy → ActiveDown; Down / Down → BothDown.
    mutating func standbyCatchup() {
        repairState(catchingUp: nil, healthy: .normal)
    }

    /// BothDown: Best picks the database that is ahead (without TWOSAFE the former active; with
    /// TWOSAFE the standby after ActiveDown, the active after ActiveTakeover, StandbyStarting or
    /// StandbyDown), then WaitingForActive; Manual, or no way to tell → ManualInterventionRequired.
    mutating func bothDown() {
        guard settings.bothDownBehavior == .best else {
            go(.manualInterventionRequired, .warning, "both databases are down and bothDownBehavior is Manual")
            return
        }
        guard let chosen = Self.databaseAhead(twoSafe: settings.twoSafe, previous: o.previousState) else {
            go(.manualInterventionRequired, .warning,
               "both databases are down and, with RETURN TWOSAFE after \(o.previousState?.rawValue ?? "no known state"), which is ahead cannot be told")
            return
        }
        if chosen == .standby { swapRoles() }
        let why = settings.twoSafe ? "with RETURN TWOSAFE after \(o.previousState?.rawValue ?? "?")" : "without RETURN TWOSAFE"
        go(.waitingForActive, .normal, "\(active.name) (the former \(chosen.rawValue.lowercased())) is ahead \(why); waiting for it")
    }

    /// WaitingForActive: the chosen pod is reachable → ConfiguringActive.
    mutating func waitingForActive() {
        if a.state == .terminal {
            go(.manualInterventionRequired, .warning, "the chosen database's pod \(active.name) is Terminal: \(a.reason)")
            return
        }
        guard let status = active.reachableStatus else {
            note("waiting for \(active.name) to be reachable: \(a.reason)")
            return
        }
        guard status.instanceExists else {
            go(.manualInterventionRequired, .warning, "the chosen pod \(active.name) is reachable but has no database")
            return
        }
        go(.configuringActive, .normal, "\(active.name) is reachable; making it the active")
    }

    /// ConfiguringActive: start the chosen database as the active. Healthy / Healthy → Normal;
    /// Healthy / other → StandbyDown; an active that cannot be made Healthy (gone, no database,
    /// or not Healthy within repStateTimeout) → ManualInterventionRequired.
    mutating func configuringActive() {
        if a.state.isActiveUp, let status = active.reachableStatus {
            if !status.repScheme {
                add(.createRepScheme(pod: active.name, twoSafe: settings.twoSafe))
                return
            }
            if s.state == .healthy {
                go(.normal, .normal, "\(active.name) is the active and \(standby.name) its streaming standby")
            } else {
                go(.standbyDown, .normal, "\(active.name) is the active; \(standby.name) is \(s) and will be re-duplicated")
            }
            return
        }
        if let since = o.stateSince, PodStateClassifier.timedOut(since, settings.repStateTimeout, now: now) {
            go(.manualInterventionRequired, .warning,
               "\(active.name) did not become a healthy active within repStateTimeout (\(Int(settings.repStateTimeout)) s): \(a.reason)")
            return
        }
        if let status = active.reachableStatus, status.instanceExists, !active.duplicating, a.state != .terminal {
            promote(active, fencing: standby)
            return
        }
        if a.state == .unknown {
            note("waiting for \(active.name): \(a.reason)")
            return
        }
        go(.manualInterventionRequired, .warning, "\(active.name) cannot be made the active: \(a.reason)")
    }

    /// Reexamine: HealthyActive + HealthyStandby → Normal; HealthyIdle + Down →
    /// ConfiguringActive; otherwise → ManualInterventionRequired. Unknown pods are waited for.
    mutating func reexamine() {
        a = PodStateClassifier.classifyForReexamine(active, settings: settings, now: now)
        s = PodStateClassifier.classifyForReexamine(standby, settings: settings, now: now)
        switch (a.state, s.state) {
        case (.unknown, _), (_, .unknown):
            note("waiting: \(active.name) \(a), \(standby.name) \(s)")
        case (.healthyActive, .healthyStandby), (.healthyStandby, .healthyActive):
            if a.state == .healthyStandby { swapRoles() }
            go(.normal, .normal, "\(active.name) is a healthy active and \(standby.name) a healthy standby")
        case (.healthyIdle, .down), (.down, .healthyIdle):
            if a.state == .down { swapRoles() }
            go(.configuringActive, .normal, "\(active.name) holds the only database; making it the active")
        default:
            go(.manualInterventionRequired, .warning, "cannot resume from \(active.name) \(a) and \(standby.name) \(s)")
        }
    }

    // MARK: Shared steps

    /// ActiveTakeover, StandbyDown, StandbyStarting and StandbyCatchup, beyond their own rules.
    /// OtherDown counts as Healthy for the active, except that its Healthy standby is then
    /// re-duplicated (believe the active). `catchingUp` is where a catching-up standby leads
    /// (nil: stay).
    mutating func repairState(catchingUp: PairState?, healthy: PairState) {
        guard !waitingForUnknown(), !activeLost() else { return }
        switch (a.state.settled, s.state.settled) {
        case (.healthy, .healthy):
            go(healthy, .normal, "\(standby.name) is a streaming standby of \(active.name)")
        case (.otherDown, .healthy):
            goOrStay(.standbyDown, .warning, "\(active.name) reports its peer failed (\(a.reason)); \(standby.name) will be re-duplicated")
        case (_, .down):
            goOrStay(.standbyDown, .warning, "\(standby.name) is Down (\(s.reason))")
        case (_, .otherDown):
            fenceIfReachable(standby)
            goOrStay(.standbyDown, .warning, "\(standby.name) is a writable active (\(s.reason)): it is fenced and will be re-duplicated")
        case (_, .catchingUp):
            if let catchingUp { go(catchingUp, .normal, "\(standby.name) is catching up (\(s.reason))") }
        default:
            break
        }
    }

    /// Keeps the pair where it is while either pod is Unknown.
    mutating func waitingForUnknown() -> Bool {
        guard a.state == .unknown || s.state == .unknown else { return false }
        note("waiting: \(active.name) \(a), \(standby.name) \(s)")
        return true
    }

    /// What every state from Normal on does when the active is Down: Down / Healthy (or a
    /// writable standby) → ActiveDown, Down / Down → BothDown, Down / CatchingUp →
    /// ManualInterventionRequired. False when the active is not Down.
    mutating func activeLost() -> Bool {
        guard a.state.settled == .down else { return false }
        switch s.state.settled {
        case .healthy, .otherDown:
            go(.activeDown, .warning, "\(active.name) is Down (\(a.reason))")
        case .down:
            go(.bothDown, .warning, "both pods are Down: \(active.name) \(a.reason); \(standby.name) \(s.reason)")
        case .catchingUp:
            catchingUpStandbyLost()
        default:
            note("waiting: \(active.name) \(a), \(standby.name) \(s)")
        }
        return true
    }

    /// The active is Down while the standby is still catching up: the standby is not a safe
    /// copy (the reference's StandbyStarting rule, applied wherever it arises).
    mutating func catchingUpStandbyLost() {
        go(.manualInterventionRequired, .warning,
           "\(active.name) is Down (\(a.reason)) while \(standby.name) is still catching up: it is not a safe copy")
    }

    /// FAILOVER: the intended roles are swapped (on record before any action), the old active
    /// is fenced when it can be reached, and the standby is promoted once the old active cannot
    /// write.
    mutating func failover() {
        let oldActive = active, newActive = standby, oldAssessment = a
        let newActiveWritable = newActive.reachableStatus?.mayAcceptWrites ?? false
        swapRoles()
        event(.warning, PairEvent.Reason.info, "FAILOVER: \(newActive.name) becomes the active; \(oldActive.name) is \(oldAssessment)")
        go(.activeTakeover, .warning, "\(oldActive.name) is \(oldAssessment); \(newActive.name) takes over")
        if newActiveWritable {
            fenceIfReachable(oldActive)
        } else {
            promote(newActive, fencing: oldActive)
        }
    }

    /// Promotes `pod` (and makes it Ready) once `other` cannot write.
    mutating func promote(_ pod: PodObservation, fencing other: PodObservation) {
        guard neutralize(other, before: "promote \(pod.name)") else { return }
        add(.promote(pod: pod.name))
        add(.setActive(pod: pod.name))
    }

    /// Creates what the first active still lacks: the replication scheme and the epilog.
    mutating func configureReplication(_ status: AgentStatus) {
        if !status.repScheme { add(.createRepScheme(pod: active.name, twoSafe: settings.twoSafe)) }
        if settings.hasEpilog && !status.appliedFiles.contains("epilog.sql") { add(.createRepEpilog(pod: active.name)) }
    }

    /// Replaces the standby's database with a copy of the active's, fencing it first when it
    /// may be an active (the agent refuses to duplicate over an unfenced active).
    mutating func reduplicateStandby() {
        guard a.state.isActiveUp else { return }
        guard s.state != .terminal else {
            note("\(standby.name) is Terminal (\(s.reason)): it cannot be re-duplicated")
            return
        }
        if standby.duplicating {
            note("\(standby.name) is being duplicated from \(active.name)")
            return
        }
        guard let status = standby.reachableStatus else {
            note("waiting for \(standby.name)'s agent to re-duplicate it: \(s.reason)")
            return
        }
        if status.instanceExists && !status.fenced && status.repState != .standby { add(.fence(pod: standby.name)) }
        add(.duplicate(pod: standby.name, from: active.name))
        event(.normal, PairEvent.Reason.info, "re-duplicating \(standby.name) from \(active.name)")
    }

    /// Makes sure `pod` cannot write before something else becomes writable: fenced when it can
    /// be reached, else confirmed gone or past unreachableTimeout. False: wait.
    mutating func neutralize(_ pod: PodObservation, before what: String) -> Bool {
        if let status = pod.reachableStatus {
            if status.instanceExists && !pod.duplicating && !(status.repState == .standby && !status.updatable) {
                add(.fence(pod: pod.name))
            }
            return true
        }
        if PairStateMachine.cannotWrite(pod, settings: settings, now: now) { return true }
        note("waiting to \(what): \(pod.name) may still accept writes and cannot be fenced (\(PodStateClassifier.reachability(pod, settings: settings, now: now)))")
        return false
    }

    mutating func fenceIfReachable(_ pod: PodObservation) {
        if pod.reachableStatus?.instanceExists == true { add(.fence(pod: pod.name)) }
    }

    /// Only a writable intended active is Ready.
    mutating func readiness() {
        let fencedNow = actions.contains(.fence(pod: active.name))
        let activeUp = !fencedNow && (active.reachableStatus.map { $0.updatable && $0.repState == .active } ?? false)
        if activeUp && !active.ready { add(.setActive(pod: active.name)) }
        if !activeUp && active.ready && active.reachableStatus != nil { add(.clearActive(pod: active.name)) }
        if standby.ready && standby.reachableStatus != nil { add(.clearActive(pod: standby.name)) }
    }

    /// deleteDbOnNotReadyNode: deletes the pod and PVCs of a pod whose node has been NotReady
    /// too long, if that does not throw away the only copy of the data.
    mutating func deleteOnNotReadyNodes() {
        guard let limit = settings.deleteDbOnNotReadyNode else { return }
        for pod in [active, standby] {
            guard let since = pod.nodeNotReadySince, pod.exists, !pod.deleting,
                  now.timeIntervalSince(since) >= limit else { continue }
            let node = pod.nodeName ?? "its node"
            let activeIsElsewhereUp = pod.name == standby.name && a.state.isActiveUp
            guard activeIsElsewhereUp || o.state == .initializing else {
                note("not deleting \(pod.name): \(node) is NotReady, but its database may be the only good copy")
                continue
            }
            add(.deletePodAndPVCs(pod: pod.name))
            event(.warning, PairEvent.Reason.info,
                  "\(node) has been NotReady for \(Int(now.timeIntervalSince(since))) s (deleteDbOnNotReadyNode \(Int(limit)) s): deleting pod \(pod.name) and its PVCs")
        }
    }

    // MARK: Recording

    mutating func go(_ state: PairState, _ kind: PairEvent.Kind, _ why: String, eventReason: String = PairEvent.Reason.stateChange) {
        note(why)
        guard state != next else { return }
        event(kind, eventReason, "\(next.rawValue) -> \(state.rawValue): \(why)")
        next = state
    }

    /// Goes to `state` unless already there (a repair state that needs no new event).
    mutating func goOrStay(_ state: PairState, _ kind: PairEvent.Kind, _ why: String) {
        if state == next {
            if state == .standbyDown { reduplicateStandby() }
            note(why)
        } else {
            go(state, kind, why)
        }
    }

    mutating func event(_ kind: PairEvent.Kind, _ reason: String, _ message: String) {
        events.append(PairEvent(kind, reason: reason, message))
    }

    mutating func note(_ text: String) { notes.append(text) }

    mutating func add(_ action: PairAction) {
        if !actions.contains(action) { actions.append(action) }
    }

    mutating func swapRoles() {
        swap(&active, &standby)
        swap(&a, &s)
        rolesSwapped.toggle()
    }

    func finish() -> PairDecision {
        let changed = next != o.state
        let podStates = [active.name: a.state, standby.name: s.state]
        let writers = [active, standby].filter { $0.reachableStatus?.mayAcceptWrites == true }.map(\.name)
        let status = PairStatusUpdate(
            state: next, previousState: changed ? o.state : o.previousState, stateChanged: changed,
            intendedActive: active.name, intendedStandby: standby.name, rolesSwapped: rolesSwapped,
            activePods: writers, podStates: podStates)
        return PairDecision(
            status: status, actions: handsOff ? [] : actions, events: events, note: notes.joined(separator: "; "),
            recheckAt: handsOff ? nil : recheckAt())
    }

    /// The next time a timeout falls due.
    func recheckAt() -> Date? {
        var deadlines: [Date] = []
        for pod in [o.active, o.standby] {
            if pod.reachableStatus == nil, let deadline = PodStateClassifier.unreachableDeadline(pod, settings: settings) {
                deadlines.append(deadline)
            }
            deadlines += [pod.repStateSince, pod.peerStateSince].compactMap { $0?.addingTimeInterval(settings.repStateTimeout) }
            if let limit = settings.deleteDbOnNotReadyNode, let since = pod.nodeNotReadySince {
                deadlines.append(since.addingTimeInterval(limit))
            }
        }
        if o.state == .configuringActive, let since = o.stateSince { deadlines.append(since.addingTimeInterval(settings.repStateTimeout)) }
        return deadlines.filter { $0 > now }.min()
    }

    // MARK: Rules as functions

    /// Which database is ahead when both went down, or nil when that cannot be told.
    ///
    /// Oracle's rule, with one PostgreSQL difference: after Normal, TimesTen cannot tell (its
    /// TWOSAFE commits on the standby first), but PostgreSQL's synchronous replication flushes
    /// on the active before the standby acknowledges, so the active is never behind.
    static func databaseAhead(twoSafe: Bool, previous: PairState?) -> PodRole? {
        guard twoSafe else { return .active }
        switch previous {
        case .activeDown: return .standby
        case .normal, .activeTakeover, .standbyStarting, .standbyDown: return .active
        default: return nil
        }
    }

    /// An intended active that is still a standby: a failover was recorded and the promotion
    /// has not happened (or not yet been seen).
    static func awaitsPromotion(_ pod: PodObservation, _ status: AgentStatus) -> Bool {
        status.instanceExists && status.daemonUp && !status.updatable && !status.fenced && !pod.duplicating
            && (status.repState == .standby || status.repState == .recovering || status.repState == .idle)
    }
}

extension PodState {
    /// The state transitions are read with: Terminal is Down outside Initializing.
    var settled: PodState { self == .terminal ? .down : self }
}
