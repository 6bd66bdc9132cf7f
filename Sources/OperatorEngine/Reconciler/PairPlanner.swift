import Foundation
import KubeAPI

/// An Event the reconciler records on the TimesTenClassic, with Oracle's reasons.
public struct PlannedEvent: Sendable, Equatable, CustomStringConvertible {
    /// Oracle's reasons, the same as the state machine's events use.
    public typealias Reason = PairEvent.Reason

    public var type: EventRecorder.EventType
    public var reason: String
    public var message: String

    public init(_ type: EventRecorder.EventType, _ reason: String, _ message: String) {
        self.type = type
        self.reason = reason
        self.message = message
    }

    public var description: String { "\(type.rawValue) \(reason): \(message)" }
}

/// The kinds of owned objects that the planner creates or patches from a builder.
public enum OwnedKind: String, Sendable, Equatable {
    case service = "Service"
    case statefulSet = "StatefulSet"
}

/// One Kubernetes-side step of a reconcile, in the order the actor performs them.
public enum KubeAction: Sendable, Equatable, CustomStringConvertible {
    /// Create `NAME-ca` with a new CA (the actor generates the key: the planner stays pure).
    case createCASecret
    /// Create `NAME-agent-tls` from the pair CA.
    case createAgentTLSSecret
    /// Replace `NAME-agent-tls` with a newly issued certificate, for the reasons given.
    case reissueAgentTLSSecret(reasons: [String])
    case create(OwnedKind, JSONObject)
    /// A JSON merge patch from `Drift`.
    case patch(OwnedKind, name: String, patch: JSONObject)
    case event(PlannedEvent)
    /// Write the whole status through the status subresource.
    case updateStatus(TimesTenClassicStatus)

    public var description: String {
        switch self {
        case .createCASecret: "createCASecret"
        case .createAgentTLSSecret: "createAgentTLSSecret"
        case .reissueAgentTLSSecret(let reasons): "reissueAgentTLSSecret(\(reasons.joined(separator: "; ")))"
        case .create(let kind, _): "create(\(kind.rawValue))"
        case .patch(let kind, let name, _): "patch(\(kind.rawValue) \(name))"
        case .event(let event): "event(\(event))"
        case .updateStatus(let status): "updateStatus(\(status.highLevelState ?? "-"))"
        }
    }
}

/// What one reconcile does.
public struct PairPlan: Sendable, Equatable {
    public var actions: [KubeAction] = []
    /// The Kubernetes side is in place (the Secrets, Service and StatefulSet exist and the spec
    /// is valid) and the pair is managed: the agents' side of the reconcile may run.
    public var agentsMayProceed = false

    public init(actions: [KubeAction] = [], agentsMayProceed: Bool = false) {
        self.actions = actions
        self.agentsMayProceed = agentsMayProceed
    }

    /// The new status, when the plan writes one.
    public var status: TimesTenClassicStatus? {
        for case .updateStatus(let status) in actions { return status }
        return nil
    }

    public var events: [PlannedEvent] {
        actions.compactMap { if case .event(let event) = $0 { event } else { nil } }
    }
}

/// The Kubernetes side of a reconcile, as a pure function of a `PairSnapshot`: Secrets, the
/// headless Service, the StatefulSet, the edge triggers and the status that Kubernetes alone
/// can tell (the agent-driven states come with the next increment).
public enum PairPlanner {
    public enum State {
        public static let initializing = "Initializing"
        public static let manualInterventionRequired = "ManualInterventionRequired"
        public static let reexamine = "Reexamine"
    }

    /// The condition that says whether the spec can be acted on.
    public static let validCondition = "Valid"

    public static func plan(_ snapshot: PairSnapshot) -> PairPlan {
        let object = snapshot.object
        let names = snapshot.names
        let now = snapshot.now
        var plan = PairPlan()
        // Being deleted: garbage collection removes what it owns.
        if object.metadata.deletionTimestamp != nil { return plan }
        var status = object.status

        // An invalid spec: say so, and change nothing else (a running pair is left as it was).
        let problems = SpecValidation.problems(in: object)
        if !problems.isEmpty {
            let message = "Invalid spec: " + problems.map(\.description).joined(separator: "; ")
            if setValid(&status, valid: false, message: message, now: now) {
                plan.actions.append(.event(PlannedEvent(.warning, PlannedEvent.Reason.error, message)))
                plan.actions.append(.updateStatus(stamped(status, now: now)))
            }
            return plan
        }
        _ = setValid(&status, valid: true, message: "The spec is valid", now: now)

        // Edge triggers. stopManaging wins: the operator then touches nothing until reexamine changes.
        let edges = object.edgeTriggers
        var stateEvents: [PlannedEvent] = []
        if edges.stopManagingChanged {
            status.prevStopManaging = object.ttspec.stopManaging
            switchState(&status, to: State.manualInterventionRequired, now: now, events: &stateEvents)
            plan.actions += [.updateStatus(stamped(status, now: now))] + stateEvents.map(KubeAction.event)
            return plan
        }
        if edges.reexamineChanged {
            status.prevReexamine = object.ttspec.reexamine
            switchState(&status, to: State.reexamine, now: now, events: &stateEvents)
        } else if status.highLevelState == State.manualInterventionRequired {
            if status != object.status { plan.actions.append(.updateStatus(stamped(status, now: now))) }
            return plan
        }

        // The Secrets: the CA is reused or refused, never replaced.
        var caIsNew = false
        var certificates: PairCertificates?
        if let caSecret = snapshot.caSecret {
            if let foreign = foreignController(caSecret, object: object) {
                return failed(plan, "Secret \(names.caSecret) is controlled by \(foreign); TenOps leaves it alone", status: status, object: object, now: now)
            }
            do {
                certificates = try PairCertificates.load(caSecret: caSecret, for: names).0
            } catch {
                return failed(plan, "\(error)", status: status, object: object, now: now)
            }
        } else {
            caIsNew = true
            plan.actions.append(.createCASecret)
            plan.actions.append(.event(created("Secret", names.caSecret)))
        }
        if let agentSecret = snapshot.agentTLSSecret {
            if let foreign = foreignController(agentSecret, object: object) {
                return failed(plan, "Secret \(names.agentTLSSecret) is controlled by \(foreign); TenOps leaves it alone", status: status, object: object, now: now)
            }
            let reasons = caIsNew ? ["the pair CA is new"] : certificates.map { $0.agentTLSProblems(agentSecret, now: now) } ?? []
            if !reasons.isEmpty {
                plan.actions.append(.reissueAgentTLSSecret(reasons: reasons))
                plan.actions.append(.event(PlannedEvent(.normal, PlannedEvent.Reason.info,
                                                        "Reissued Secret \(names.agentTLSSecret): \(reasons.joined(separator: "; "))")))
            }
        } else {
            plan.actions.append(.createAgentTLSSecret)
            plan.actions.append(.event(created("Secret", names.agentTLSSecret)))
        }

        // The headless Service and the StatefulSet.
        let wantedService = PairObjects.service(for: object)
        if let existing = snapshot.service {
            ensure(.service, name: names.service, Drift.service(existing, wanted: wantedService, owner: object), into: &plan)
        } else {
            plan.actions.append(.create(.service, wantedService.json))
            plan.actions.append(.event(created("Service", names.service)))
        }
        let wantedSet = PairObjects.statefulSet(for: object)
        if let existing = snapshot.statefulSet {
            ensure(.statefulSet, name: names.statefulSet, Drift.statefulSet(existing, wanted: wantedSet, owner: object), into: &plan)
        } else {
            plan.actions.append(.create(.statefulSet, wantedSet.json))
            plan.actions.append(.event(created("StatefulSet", names.statefulSet)))
        }

        // The status Kubernetes alone can tell.
        if status.highLevelState == nil {
            status.recordEdgeTriggers(of: object.ttspec)
            switchState(&status, to: State.initializing, now: now, events: &stateEvents)
        }
        if let generation = object.metadata.generation { status.observedGeneration = generation }
        for podName in names.pods {
            status[pod: podName] = podEntry(podName, previous: status[pod: podName], snapshot: snapshot)
        }
        if status != object.status {
            plan.actions.append(.updateStatus(stamped(status, now: now)))
        }
        plan.actions += stateEvents.map(KubeAction.event)
        plan.agentsMayProceed = !plan.actions.contains { action in
            switch action {
            case .createCASecret, .createAgentTLSSecret, .create: true
            default: false
            }
        }
        return plan
    }

    // MARK: Pieces

    static func created(_ kind: String, _ name: String) -> PlannedEvent {
        PlannedEvent(.normal, PlannedEvent.Reason.create, "Created \(kind) \(name)")
    }

    /// `lastReconcile` is written with every status change, never on its own: a pair at rest
    /// causes no writes.
    static func stamped(_ status: TimesTenClassicStatus, now: Date) -> TimesTenClassicStatus {
        var status = status
        status.lastReconcile = now
        return status
    }

    static func switchState(_ status: inout TimesTenClassicStatus, to state: String, now: Date, events: inout [PlannedEvent]) {
        guard status.highLevelState != state else { return }
        let previous = status.highLevelState
        status.switchState(to: state, at: now)
        let message = previous.map { "TimesTenClassic was \($0), now \(state)" } ?? state
        events.append(PlannedEvent(.normal, PlannedEvent.Reason.stateChange, message))
    }

    /// Sets the Valid condition; true when it changed.
    static func setValid(_ status: inout TimesTenClassicStatus, valid: Bool, message: String, now: Date) -> Bool {
        let value = valid ? "True" : "False"
        let reason = valid ? "SpecValid" : "InvalidSpec"
        if let old = status.conditions[type: validCondition], old.status == value, old.message == message, old.reason == reason {
            return false
        }
        status.setCondition(Condition(type: validCondition, status: value, reason: reason, message: message, lastTransitionTime: now))
        return true
    }

    static func foreignController(_ object: some APIObject, object owner: TimesTenClassic) -> String? {
        guard let controller = object.metadata.controllerReference?.json else { return nil }
        if controller["uid"] == owner.json.value(at: ["metadata", "uid"]) { return nil }
        return "\(controller["kind"]?.stringValue ?? "?") \(controller["name"]?.stringValue ?? "?")"
    }

    /// An Error event; the status is written only for what already changed (the Valid condition).
    static func failed(_ plan: PairPlan, _ message: String, status: TimesTenClassicStatus, object: TimesTenClassic, now: Date) -> PairPlan {
        var plan = plan
        plan.actions.append(.event(PlannedEvent(.warning, PlannedEvent.Reason.error, message)))
        if status != object.status { plan.actions.append(.updateStatus(stamped(status, now: now))) }
        return plan
    }

    static func ensure(_ kind: OwnedKind, name: String, _ drift: DriftReport, into plan: inout PairPlan) {
        if let foreign = drift.foreignController {
            plan.actions.append(.event(PlannedEvent(.warning, PlannedEvent.Reason.error,
                                                    "\(kind.rawValue) \(name) is controlled by \(foreign); TenOps leaves it alone")))
            return
        }
        if let patch = drift.patch { plan.actions.append(.patch(kind, name: name, patch: patch)) }
        if !drift.immutable.isEmpty {
            plan.actions.append(.event(PlannedEvent(.warning, PlannedEvent.Reason.error,
                                                    "\(kind.rawValue) \(name) differs in fields that cannot change: \(drift.immutable.joined(separator: ", "))")))
        }
    }

    /// A `podStatus[]` entry with what Kubernetes says of the pod and its node. Fields the agent
    /// side writes are kept.
    static func podEntry(_ name: String, previous: PairPodStatus?, snapshot: PairSnapshot) -> PairPodStatus {
        var entry = previous ?? PairPodStatus(name: name)
        let pod = snapshot.pods[name]
        var podBlock = entry.podStatus
        podBlock.podPhase = pod?.status.phase ?? (pod == nil ? "Missing" : nil)
        podBlock.podIP = pod?.status.podIP
        entry.podStatus = podBlock

        var nodeBlock = entry.node
        let nodeName = pod?.spec.nodeName ?? ""
        if nodeName != nodeBlock.name { nodeBlock.notReadySince = nil }
        nodeBlock.name = nodeName
        if nodeName.isEmpty {
            nodeBlock.ready = nil
            nodeBlock.notReadySince = nil
        } else {
            let node = snapshot.nodes[nodeName]
            let ready = node?.readyStatus ?? "Unknown"
            nodeBlock.ready = ready
            if ready == "True" {
                nodeBlock.notReadySince = nil
            } else if nodeBlock.notReadySince == nil {
                nodeBlock.notReadySince = node?.conditions[type: "Ready"]?.lastTransitionTime ?? snapshot.now
            }
        }
        entry.node = nodeBlock
        return entry
    }
}
