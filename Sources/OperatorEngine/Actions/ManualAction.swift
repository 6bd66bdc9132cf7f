import Foundation
import KubeAPI

/// A manual action, as the annotation `tenops.io/action` asks for it:
/// `{"id": "...", "verb": "switchover|failover|reduplicate", "pod": "..."}`.
public struct ManualActionRequest: Sendable, Equatable {
    public enum Verb: String, Sendable, CaseIterable {
        /// Move the active gracefully: fence, let the standby catch up, promote it, re-attach
        /// the old active as its standby. Nothing acknowledged is lost, whatever the replication mode.
        case switchover
        /// Promote the standby now (the old active is fenced when it can be reached).
        case failover
        /// Throw the standby's database away and copy it again from the active.
        case reduplicate
    }

    public static let annotation = "tenops.io/action"
    public static let maximumIDLength = 128

    public var id: String
    public var verb: Verb
    public var pod: String?

    public init(id: String, verb: Verb, pod: String? = nil) {
        self.id = id
        self.verb = verb
        self.pod = pod
    }

    /// The annotation's JSON for this request (what the CLI and the console write).
    public var annotationValue: String {
        var object: JSONObject = ["id": .string(id), "verb": .string(verb.rawValue)]
        if let pod { object["pod"] = .string(pod) }
        return String(decoding: JSONWriter.data(object), as: UTF8.self)
    }

    /// A request that cannot be carried out as written: its id (when it has one) and why.
    public struct Malformed: Error, Sendable, Equatable {
        public var id: String
        public var message: String
    }

    /// Reads the annotation of a pair with pods `pods`. A malformed one keeps an id made from
    /// its text, so that it is reported once, not at every reconcile.
    public static func parse(_ text: String, pods: [String]) -> Result<ManualActionRequest, Malformed> {
        let fallbackID = "invalid-" + String(UInt64(truncatingIfNeeded: text.utf8.reduce(UInt64(14_695_981_039_346_656_037)) {
            ($0 ^ UInt64($1)) &* 1_099_511_628_211
        }), radix: 16)
        guard let object = try? JSONParser.parseObject(Data(text.utf8)) else {
            return .failure(Malformed(id: fallbackID, message: "the annotation \(annotation) is not a JSON object"))
        }
        guard let id = object["id"]?.stringValue, !id.isEmpty, id.count <= maximumIDLength else {
            return .failure(Malformed(id: fallbackID, message: "the action needs an \"id\": a string of 1 to \(maximumIDLength) characters"))
        }
        let verbs = Verb.allCases.map(\.rawValue).joined(separator: ", ")
        guard let verbName = object["verb"]?.stringValue, let verb = Verb(rawValue: verbName) else {
            return .failure(Malformed(id: id, message: "the action's \"verb\" must be one of \(verbs)"))
        }
        if let raw = object["pod"], !raw.isNull, raw.stringValue == nil {
            return .failure(Malformed(id: id, message: "the action's \"pod\" must be a string"))
        }
        let pod = object["pod"]?.stringValue
        if let pod, !pods.contains(pod) {
            return .failure(Malformed(id: id, message: "\(pod) is not a pod of this pair (\(pods.joined(separator: ", ")))"))
        }
        if verb == .reduplicate && pod == nil {
            return .failure(Malformed(id: id, message: "reduplicate needs \"pod\": the standby to copy again"))
        }
        let known: Set<String> = ["id", "verb", "pod"]
        if let extra = object.keys.sorted().first(where: { !known.contains($0) }) {
            return .failure(Malformed(id: id, message: "the action has an unknown field \"\(extra)\""))
        }
        return .success(ManualActionRequest(id: id, verb: verb, pod: pod))
    }
}

/// What one reconcile does about manual actions: the decision to carry out (the state
/// machine's, or one the action drives) and the `status.lastAction` to record.
public struct ManualActionStep: Sendable, Equatable {
    public var decision: PairDecision
    /// The new `status.lastAction`; nil leaves it as it is.
    public var record: ActionRecord?
    /// Decide again this soon, while the action waits on something no stream reports (the
    /// standby's replay position, a copy's progress).
    public var pollAfter: TimeInterval?
    /// The id of a request refused because another action was running, to record in
    /// `status.rejectedActionId`: it is reported once and never started later.
    public var rejectedID: String?

    public init(decision: PairDecision, record: ActionRecord? = nil, pollAfter: TimeInterval? = nil, rejectedID: String? = nil) {
        self.decision = decision
        self.record = record
        self.pollAfter = pollAfter
        self.rejectedID = rejectedID
    }
}

/// Runs manual actions on top of `PairStateMachine`. Pure.
///
/// Each id runs once: a finished `lastAction` of the same id ends it; a new id while another
/// action runs is refused with an event and leaves the running one alone. An action the state
/// forbids is refused (lastAction Failed) and changes nothing else. While an action runs, the
/// steps the state machine has no rule for are driven here; the rest is left to the machine,
/// and the action watches for its outcome:
/// - **switchover**: fence the active; wait until the standby has replayed the fenced active's
///   last position (at most repStateTimeout, else unfence and fail); then swap the intended
///   roles into ActiveTakeover, where the machine promotes the standby and re-attaches the old
///   active (the agent rewinds it with pg_rewind, or copies it again when that fails).
/// - **failover**: swap the intended roles into ActiveTakeover at once.
/// - **reduplicate**: start a copy of the standby from the active, in StandbyDown.
public enum ManualActionPlanner {
    /// How often to look again while waiting for the standby's replay or a copy's progress.
    public static let pollInterval: TimeInterval = 0.02
    public static let progressInterval: TimeInterval = 0.5

    /// - Parameters:
    ///   - request: the parsed annotation; nil when there is none.
    ///   - last: `status.lastAction`.
    ///   - machine: the state machine's decision for `observation`.
    ///   - job: the last copy job seen on the pod being copied or re-attached, and its failure.
    ///   - rejected: `status.rejectedActionId`, the last request refused because another ran.
    public static func step(
        request: Result<ManualActionRequest, ManualActionRequest.Malformed>?, last: ActionRecord?, observation: PairObservation,
        machine: PairDecision, job: AgentJobStatus? = nil, jobError: String? = nil, rejected: String? = nil
    ) -> ManualActionStep {
        var step = ManualActionStep(decision: machine)
        let handsOff = observation.state == .manualInterventionRequired || observation.state == .failed
        if let last, last.isRunning {
            var busy: PairEvent?
            if case .success(let asked) = request, asked.id != last.id, asked.id != rejected {
                busy = PairEvent(
                    .warning, reason: PairEvent.Reason.error,
                    "action \(asked.id) (\(asked.verb.rawValue)) refused: action \(last.id) (\(last.verb ?? "?")) is still running")
                step.rejectedID = asked.id
            }
            if handsOff {
                step.record = finished(last, ActionState.failed, "the pair went \(observation.state.rawValue)", now: observation.now)
            } else {
                step = proceed(last, observation: observation, machine: machine, job: job, jobError: jobError, into: step)
            }
            if let busy { step.decision.events.append(busy) }
            return step
        }
        guard let request else { return step }
        if case .success(let asked) = request, asked.id == rejected { return step }
        switch request {
        case .failure(let malformed):
            guard last?.id != malformed.id else { return step }
            var record = ActionRecord(id: malformed.id)
            record.startTime = observation.now
            step.record = finished(record, ActionState.failed, "refused: \(malformed.message)", now: observation.now)
            step.decision.events.append(PairEvent(.warning, reason: PairEvent.Reason.error, "action \(malformed.id) refused: \(malformed.message)"))
            return step
        case .success(let asked):
            guard last?.id != asked.id else { return step }
            return start(asked, observation: observation, machine: machine, into: step)
        }
    }

    // MARK: Starting

    static func start(_ asked: ManualActionRequest, observation o: PairObservation, machine: PairDecision, into step: ManualActionStep)
        -> ManualActionStep
    {
        var step = step
        var record = ActionRecord(id: asked.id)
        record.verb = asked.verb.rawValue
        record.pod = asked.pod
        record.startTime = o.now
        if let refusal = refusal(asked, o, machine) {
            step.record = finished(record, ActionState.failed, "refused: \(refusal)", now: o.now)
            step.decision.events.append(PairEvent(.warning, reason: PairEvent.Reason.error, "\(asked.verb.rawValue) \(asked.id) refused: \(refusal)"))
            return step
        }
        record.state = ActionState.running
        let active = o.active.name, standby = o.standby.name
        switch asked.verb {
        case .switchover:
            record.pod = standby
            record.phase = "fencing"
            record.message = "fencing \(active)"
            step.decision = drive(o, machine, actions: [.fenceAndStop(pod: active), .clearActive(pod: active)])
        case .failover:
            record.pod = standby
            record.phase = "promoting"
            record.message = "promoting \(standby)"
            step.decision = handOver(o, machine, why: "failover \(asked.id): \(standby) becomes the active")
        case .reduplicate:
            record.phase = "starting"
            record.message = "copying \(standby) again from \(active)"
            step.decision = drive(o, machine, actions: copyActions(o), state: .standbyDown,
                                  why: "reduplicate \(asked.id): \(standby) is copied again from \(active)")
        }
        step.decision.events.insert(PairEvent(.normal, reason: PairEvent.Reason.info, "\(asked.verb.rawValue) \(asked.id) started: \(record.message ?? "")"), at: 0)
        step.record = record
        return step
    }

    /// Why the pair's state forbids the action now, or nil.
    static func refusal(_ asked: ManualActionRequest, _ o: PairObservation, _ machine: PairDecision) -> String? {
        let active = o.active.name, standby = o.standby.name
        let activeState = machine.status.podStates[active] ?? .unknown
        let standbyState = machine.status.podStates[standby] ?? .unknown
        guard o.state != .manualInterventionRequired && o.state != .failed && o.state != .initializing else {
            return "the pair is \(o.state.rawValue)"
        }
        switch asked.verb {
        case .switchover:
            guard o.state == .normal, activeState == .healthy, standbyState == .healthy else {
                return "a switchover needs the pair Normal with both pods Healthy; it is \(o.state.rawValue) with \(active) \(activeState.rawValue) and \(standby) \(standbyState.rawValue)"
            }
            if let pod = asked.pod, pod != standby { return "\(pod) is already the active" }
        case .failover:
            guard standbyState == .healthy else {
                return "there is no healthy standby to promote: \(standby) is \(standbyState.rawValue)"
            }
            if let pod = asked.pod, pod != standby { return "\(pod) is already the active" }
        case .reduplicate:
            guard let pod = asked.pod, pod == standby else {
                return "\(asked.pod ?? "?") is the active: only the standby can be copied again"
            }
            guard activeState.isActiveUp else { return "the active \(active) is \(activeState.rawValue): there is nothing to copy from" }
            guard !o.standby.duplicating else { return "\(standby) is already being copied" }
            guard o.standby.reachableStatus != nil else { return "\(standby)'s agent cannot be reached" }
        }
        return nil
    }

    // MARK: Running

    static func proceed(
        _ last: ActionRecord, observation o: PairObservation, machine: PairDecision, job: AgentJobStatus?, jobError: String?,
        into step: ManualActionStep
    ) -> ManualActionStep {
        var step = step
        var record = last
        let verb = last.verb.flatMap(ManualActionRequest.Verb.init(rawValue:))
        let target = last.pod ?? ""
        switch (verb, last.phase) {
        case (.switchover, "fencing"):
            guard let status = o.active.reachableStatus, o.active.name != target else {
                step.record = finished(record, ActionState.failed, "\(o.active.name) failed during the switchover; automatic recovery takes over", now: o.now)
                return step
            }
            guard status.fenced && !status.updatable && !status.daemonUp else {
                step.decision = drive(o, machine, actions: [.fenceAndStop(pod: o.active.name), .clearActive(pod: o.active.name)])
                return step
            }
            record.phase = "catchup"
            record.message = "waiting for \(target) to replay everything \(o.active.name) wrote"
            step.record = record
            return catchup(record, o, machine, into: step)
        case (.switchover, "catchup"):
            return catchup(record, o, machine, into: step)
        case (.switchover, "promoting"), (.switchover, "reattaching"), (.failover, "promoting"), (.failover, "reattaching"):
            if machine.state == .normal && machine.status.intendedActive == target {
                record.method = job?.method ?? record.method
                step.record = finished(record, ActionState.succeeded, "\(target) is the active; \(machine.status.intendedStandby) is its standby"
                    + (job?.method.map { " (re-attached by \($0))" } ?? ""), now: o.now)
                step.decision.events.append(PairEvent(.normal, reason: PairEvent.Reason.info, "\(last.verb ?? "") \(last.id) succeeded: \(step.record?.message ?? "")"))
            } else if o.state == .bothDown || machine.state == .bothDown {
                step.record = finished(record, ActionState.failed, "both pods went down", now: o.now)
            } else if record.phase != "reattaching" && machine.status.intendedActive == target && o.active.reachableStatus?.mayAcceptWrites == true {
                record.phase = "reattaching"
                record.message = "\(target) is the active; re-attaching \(machine.status.intendedStandby)"
                step.record = record
            }
            return step
        case (.reduplicate, "starting"):
            if o.standby.duplicating {
                record.phase = "copying"
                record.message = "copying \(target) from \(o.active.name)"
                step.record = record
                step.pollAfter = progressInterval
            } else if o.standby.name != target {
                step.record = finished(record, ActionState.failed, "\(target) became the active; the copy was not started", now: o.now)
            } else {
                step.decision = drive(o, machine, actions: copyActions(o), state: .standbyDown)
            }
            return step
        case (.reduplicate, _):
            if let job, job.state == .running {
                if record.bytesDone != Int(job.bytesDone) || record.bytesTotal != Int(job.bytesTotal) {
                    record.bytesDone = Int(job.bytesDone)
                    record.bytesTotal = Int(job.bytesTotal)
                    step.record = record
                }
                step.pollAfter = progressInterval
            } else if let jobError {
                step.record = finished(record, ActionState.failed, "the copy failed: \(jobError)", now: o.now)
            } else if machine.state == .normal && machine.status.intendedStandby == target {
                if let job {
                    record.bytesDone = Int(job.bytesDone)
                    record.bytesTotal = Int(job.bytesTotal)
                    record.method = job.method ?? "basebackup"
                }
                step.record = finished(record, ActionState.succeeded, "\(target) was copied again from \(machine.status.intendedActive) and streams from it", now: o.now)
                step.decision.events.append(PairEvent(.normal, reason: PairEvent.Reason.info, "reduplicate \(last.id) succeeded: \(step.record?.message ?? "")"))
            }
            return step
        default:
            step.record = finished(record, ActionState.failed, "this engine does not know how to continue \(last.verb ?? "?") in phase \(last.phase ?? "?")", now: o.now)
            return step
        }
    }

    /// Waits until the standby has replayed the fenced active's last position, then hands over;
    /// after repStateTimeout, unfences the active and fails.
    static func catchup(_ record: ActionRecord, _ o: PairObservation, _ machine: PairDecision, into step: ManualActionStep) -> ManualActionStep {
        var step = step
        var record = record
        let activeLSN = o.active.reachableStatus.flatMap { $0.lsn.flatMap(LogPosition.init) }
        let standbyLSN = o.standby.reachableStatus.flatMap { $0.lsn.flatMap(LogPosition.init) }
        // A running active reports where it is; a stopped one where its shutdown checkpoint
        // begins, which the standby has replayed once its position is past it.
        let activeStopped = o.active.reachableStatus?.daemonUp == false
        if let activeLSN, let standbyLSN, activeStopped ? standbyLSN > activeLSN : standbyLSN >= activeLSN {
            record.phase = "promoting"
            record.message = "\(o.standby.name) has replayed up to \(activeLSN); promoting it"
            step.record = record
            step.decision = handOver(o, machine, why: "switchover \(record.id): \(o.standby.name) has everything \(o.active.name) wrote")
            return step
        }
        let waited = record.startTime.map { o.now.timeIntervalSince($0) } ?? 0
        if waited >= o.settings.repStateTimeout || o.standby.reachableStatus == nil {
            let why = o.standby.reachableStatus == nil
                ? "\(o.standby.name) cannot be reached"
                : "\(o.standby.name) did not replay \(activeLSN.map { "\($0)" } ?? "the active's position") within repStateTimeout (\(Int(o.settings.repStateTimeout)) s; it is at \(standbyLSN.map { "\($0)" } ?? "?"))"
            step.record = finished(record, ActionState.failed, "\(why); \(o.active.name) stays the active and takes writes again", now: o.now)
            // repStateSetActive unfences it.
            step.decision = drive(o, machine, actions: [.promote(pod: o.active.name), .setActive(pod: o.active.name)])
            step.decision.events.append(PairEvent(.warning, reason: PairEvent.Reason.taskFailed, "switchover \(record.id) failed: \(why)"))
            return step
        }
        // The stream reports the standby's position only at the agent's interval: read it now.
        step.decision = drive(o, machine, actions: o.standby.reachableStatus == nil ? [] : [.readStatus(pod: o.standby.name)])
        step.pollAfter = pollInterval
        return step
    }

    // MARK: Decisions the action drives

    /// The machine's decision with the actions replaced (and the state set, when given).
    static func drive(_ o: PairObservation, _ machine: PairDecision, actions: [PairAction], state: PairState? = nil, why: String? = nil)
        -> PairDecision
    {
        var decision = machine
        decision.actions = actions
        decision.events = []
        decision.status.state = o.state
        decision.status.previousState = o.previousState
        decision.status.stateChanged = false
        decision.status.intendedActive = o.active.name
        decision.status.intendedStandby = o.standby.name
        decision.status.rolesSwapped = false
        if let state, state != o.state {
            decision.status.state = state
            decision.status.previousState = o.state
            decision.status.stateChanged = true
            decision.events.append(PairEvent(.normal, reason: PairEvent.Reason.stateChange, "\(o.state.rawValue) -> \(state.rawValue): \(why ?? "")"))
        }
        decision.note = why ?? decision.note
        return decision
    }

    /// Swaps the intended roles into ActiveTakeover and lets the machine take it from there: it
    /// promotes the new active once the old one cannot write (fencing it when reachable).
    static func handOver(_ o: PairObservation, _ machine: PairDecision, why: String) -> PairDecision {
        var swapped = o
        swapped.active = o.standby
        swapped.standby = o.active
        swapped.state = .activeTakeover
        swapped.previousState = o.state
        var decision = PairStateMachine.decide(swapped)
        decision.status.rolesSwapped = true
        decision.status.stateChanged = decision.status.state != o.state
        decision.status.previousState = decision.status.stateChanged ? o.state : o.previousState
        decision.events.insert(PairEvent(.normal, reason: PairEvent.Reason.stateChange, "\(o.state.rawValue) -> ActiveTakeover: \(why)"), at: 0)
        if !decision.actions.contains(.clearActive(pod: o.active.name)) && o.active.ready {
            decision.actions.append(.clearActive(pod: o.active.name))
        }
        return decision
    }

    /// Fence the standby when it could write, then copy it from the active.
    static func copyActions(_ o: PairObservation) -> [PairAction] {
        var actions: [PairAction] = []
        if let status = o.standby.reachableStatus, status.mayAcceptWrites { actions.append(.fence(pod: o.standby.name)) }
        actions.append(.copyWhole(pod: o.standby.name, from: o.active.name))
        return actions
    }

    static func finished(_ record: ActionRecord, _ state: String, _ message: String, now: Date) -> ActionRecord {
        var record = record
        record.state = state
        record.message = message
        record.endTime = now
        return record
    }
}

/// A PostgreSQL WAL position (`16/B374D848`), ordered.
public struct LogPosition: Sendable, Comparable, CustomStringConvertible {
    public var value: UInt64

    public init?(_ text: String) {
        let parts = text.split(separator: "/")
        guard parts.count == 2, let high = UInt64(parts[0], radix: 16), let low = UInt64(parts[1], radix: 16),
              high <= UInt64(UInt32.max), low <= UInt64(UInt32.max) else { return nil }
        value = high << 32 | low
    }

    public static func < (lhs: LogPosition, rhs: LogPosition) -> Bool { lhs.value < rhs.value }

    public var description: String { String(value >> 32, radix: 16, uppercase: true) + "/" + String(value & 0xFFFF_FFFF, radix: 16, uppercase: true) }
}
