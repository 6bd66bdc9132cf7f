import Foundation
import Testing
@testable import OperatorEngine

/// One transition of `reference/timesten-classic.md`, named after its line there.
struct TransitionRow: Sendable, CustomTestStringConvertible {
    typealias Kind = PairFixture.Kind
    let name: String
    let from: PairState
    let active: Kind
    let standby: Kind
    var previous: PairState? = nil
    var settings = PairSettings()
    var stateSince: Date? = nil
    let to: PairState
    /// The decision swaps the intended roles.
    var swapped = false
    /// When given, the decision's actions exactly.
    var actions: [PairAction]? = nil

    var testDescription: String { name }

    var observation: PairObservation {
        PairFixture.observation(from, active, standby, previous: previous, settings: settings, stateSince: stateSince)
    }
}

private let twoSafe = PairSettings(twoSafe: true)
private let a0 = PairFixture.activeName
private let s1 = PairFixture.standbyName

/// Every row of the reference's transitions, in its order.
let referenceRows: [TransitionRow] = [
    // Initializing
    TransitionRow(name: "Initializing: both Healthy → Normal", from: .initializing, active: .activeHealthy, standby: .standbyHealthy, to: .normal, actions: []),
    TransitionRow(name: "Initializing: any pod Terminal → Failed (active)", from: .initializing, active: .terminal, standby: .fresh, to: .failed, actions: []),
    TransitionRow(name: "Initializing: any pod Terminal → Failed (standby)", from: .initializing, active: .activeHealthy, standby: .terminal, to: .failed, actions: []),
    // Normal
    TransitionRow(name: "Normal: Healthy / Down → ActiveTakeover", from: .normal, active: .activeHealthy, standby: .gone, to: .activeTakeover, actions: []),
    TransitionRow(name: "Normal: Down / Healthy → ActiveDown", from: .normal, active: .crashed, standby: .standbyHealthy, to: .activeDown, actions: []),
    TransitionRow(name: "Normal: Healthy / OtherDown → ActiveDown", from: .normal, active: .activeHealthy, standby: .activeHealthy, to: .activeDown,
                  actions: [.fence(pod: a0), .clearActive(pod: a0), .clearActive(pod: s1)]),
    TransitionRow(name: "Normal: OtherDown / Healthy → ActiveTakeover (believe the active)", from: .normal, active: .activePeerFailed, standby: .standbyHealthy, to: .activeTakeover),
    TransitionRow(name: "Normal: OtherDown / Down → StandbyDown", from: .normal, active: .activePeerFailed, standby: .crashed, to: .standbyDown),
    TransitionRow(name: "Normal: Down / Down → BothDown", from: .normal, active: .crashed, standby: .gone, to: .bothDown, actions: []),
    TransitionRow(name: "Normal: active Unknown → stays Normal until unreachableTimeout", from: .normal, active: .unreachableRecent, standby: .standbyHealthy, to: .normal, actions: []),
    TransitionRow(name: "Normal: active Unknown → then counts as Down", from: .normal, active: .unreachableLong, standby: .standbyHealthy, to: .activeDown, actions: []),
    // ActiveDown
    TransitionRow(name: "ActiveDown: standby Healthy → FAILOVER (intended states swapped) → ActiveTakeover", from: .activeDown, active: .crashed,
                  standby: .standbyHealthy, to: .activeTakeover, swapped: true, actions: [.fence(pod: a0), .promote(pod: s1), .setActive(pod: s1)]),
    TransitionRow(name: "ActiveDown: both Down → BothDown", from: .activeDown, active: .crashed, standby: .gone, to: .bothDown),
    // ActiveTakeover
    TransitionRow(name: "ActiveTakeover: Healthy / Down → StandbyDown", from: .activeTakeover, active: .activeHealthy, standby: .crashed, to: .standbyDown),
    // StandbyDown
    TransitionRow(name: "StandbyDown: the standby is re-duplicated from the active", from: .standbyDown, active: .activeHealthy, standby: .crashed,
                  to: .standbyDown, actions: [.fence(pod: s1), .duplicate(pod: s1, from: a0)]),
    TransitionRow(name: "StandbyDown: Healthy / CatchingUp → StandbyStarting", from: .standbyDown, active: .activeHealthy, standby: .standbyCatchingUp, to: .standbyStarting, actions: []),
    TransitionRow(name: "StandbyDown: Healthy / Healthy → Normal", from: .standbyDown, active: .activeHealthy, standby: .standbyHealthy, to: .normal, actions: []),
    TransitionRow(name: "StandbyDown: Down / Healthy → ActiveDown", from: .standbyDown, active: .crashed, standby: .standbyHealthy, to: .activeDown),
    TransitionRow(name: "StandbyDown: Down / Down → BothDown", from: .standbyDown, active: .crashed, standby: .duplicating, to: .bothDown),
    // StandbyStarting
    TransitionRow(name: "StandbyStarting: Healthy / CatchingUp → StandbyCatchup", from: .standbyStarting, active: .activeHealthy, standby: .standbyCatchingUp, to: .standbyCatchup),
    TransitionRow(name: "StandbyStarting: Healthy / Healthy → Normal", from: .standbyStarting, active: .activeHealthy, standby: .standbyHealthy, to: .normal),
    TransitionRow(name: "StandbyStarting: Healthy / Down → StandbyDown", from: .standbyStarting, active: .activeHealthy, standby: .crashed, to: .standbyDown),
    TransitionRow(name: "StandbyStarting: active Down → ManualInterventionRequired", from: .standbyStarting, active: .crashed, standby: .standbyCatchingUp,
                  to: .manualInterventionRequired, actions: []),
    // StandbyCatchup
    TransitionRow(name: "StandbyCatchup: Healthy / Healthy → Normal", from: .standbyCatchup, active: .activeHealthy, standby: .standbyHealthy, to: .normal),
    TransitionRow(name: "StandbyCatchup: Healthy / Down → StandbyDown", from: .standbyCatchup, active: .activeHealthy, standby: .gone, to: .standbyDown),
    TransitionRow(name: "StandbyCatchup: Down / Healthy → ActiveDown", from: .standbyCatchup, active: .crashed, standby: .standbyHealthy, to: .activeDown),
    TransitionRow(name: "StandbyCatchup: Down / Down → BothDown", from: .standbyCatchup, active: .gone, standby: .crashed, to: .bothDown),
    // BothDown
    TransitionRow(name: "BothDown: Best without TWOSAFE chooses the former active → WaitingForActive", from: .bothDown, active: .crashed, standby: .crashed,
                  previous: .normal, to: .waitingForActive, actions: []),
    TransitionRow(name: "BothDown: Best with TWOSAFE after ActiveDown chooses the standby → WaitingForActive", from: .bothDown, active: .crashed,
                  standby: .crashed, previous: .activeDown, settings: twoSafe, to: .waitingForActive, swapped: true, actions: []),
    TransitionRow(name: "BothDown: Best with TWOSAFE after ActiveTakeover chooses the active → WaitingForActive", from: .bothDown, active: .crashed,
                  standby: .crashed, previous: .activeTakeover, settings: twoSafe, to: .waitingForActive),
    TransitionRow(name: "BothDown: Best with TWOSAFE after StandbyStarting chooses the active → WaitingForActive", from: .bothDown, active: .crashed,
                  standby: .crashed, previous: .standbyStarting, settings: twoSafe, to: .waitingForActive),
    TransitionRow(name: "BothDown: Best with TWOSAFE after StandbyDown chooses the active → WaitingForActive", from: .bothDown, active: .crashed,
                  standby: .crashed, previous: .standbyDown, settings: twoSafe, to: .waitingForActive),
    TransitionRow(name: "BothDown: Best with TWOSAFE after Normal chooses the active (PostgreSQL flushes there first) → WaitingForActive",
                  from: .bothDown, active: .crashed, standby: .crashed, previous: .normal, settings: twoSafe, to: .waitingForActive),
    TransitionRow(name: "BothDown: cannot tell which is ahead → ManualInterventionRequired", from: .bothDown, active: .crashed, standby: .crashed,
                  previous: .bothDown, settings: twoSafe, to: .manualInterventionRequired, actions: []),
    TransitionRow(name: "BothDown: Manual → ManualInterventionRequired", from: .bothDown, active: .crashed, standby: .crashed, previous: .activeTakeover,
                  settings: PairSettings(bothDownBehavior: .manual), to: .manualInterventionRequired, actions: []),
    // WaitingForActive
    TransitionRow(name: "WaitingForActive: the chosen pod is reachable → ConfiguringActive", from: .waitingForActive, active: .crashed, standby: .gone,
                  to: .configuringActive, actions: []),
    TransitionRow(name: "WaitingForActive: the chosen pod unreachable → stays", from: .waitingForActive, active: .unreachableRecent, standby: .crashed,
                  to: .waitingForActive, actions: []),
    // ConfiguringActive
    TransitionRow(name: "ConfiguringActive: Healthy / Healthy → Normal", from: .configuringActive, active: .activeHealthy, standby: .standbyHealthy, to: .normal),
    TransitionRow(name: "ConfiguringActive: Healthy / other → StandbyDown", from: .configuringActive, active: .activeHealthy, standby: .crashed, to: .standbyDown),
    TransitionRow(name: "ConfiguringActive: the chosen database is started as the active", from: .configuringActive, active: .crashed, standby: .gone,
                  to: .configuringActive, actions: [.promote(pod: a0), .setActive(pod: a0)]),
    TransitionRow(name: "ConfiguringActive: active not Healthy (gone) → ManualInterventionRequired", from: .configuringActive, active: .podDeleted,
                  standby: .crashed, to: .manualInterventionRequired, actions: []),
    TransitionRow(name: "ConfiguringActive: active not Healthy within repStateTimeout → ManualInterventionRequired", from: .configuringActive,
                  active: .crashed, standby: .gone, stateSince: PairFixture.ago(100), to: .manualInterventionRequired, actions: []),
    // Reexamine
    TransitionRow(name: "Reexamine: HealthyActive + HealthyStandby → Normal", from: .reexamine, active: .activeHealthy, standby: .standbyHealthy, to: .normal),
    TransitionRow(name: "Reexamine: HealthyStandby + HealthyActive → Normal, roles swapped", from: .reexamine, active: .standbyHealthy,
                  standby: .activeHealthy, to: .normal, swapped: true),
    TransitionRow(name: "Reexamine: HealthyIdle + Down → ConfiguringActive", from: .reexamine, active: .idleDatabase, standby: .crashed, to: .configuringActive),
    TransitionRow(name: "Reexamine: Down + HealthyIdle → ConfiguringActive, roles swapped", from: .reexamine, active: .gone, standby: .idleDatabase,
                  to: .configuringActive, swapped: true),
    TransitionRow(name: "Reexamine: otherwise → ManualInterventionRequired", from: .reexamine, active: .activeHealthy, standby: .crashed,
                  to: .manualInterventionRequired, actions: []),
    // ManualInterventionRequired and Failed
    TransitionRow(name: "ManualInterventionRequired: stays, the operator touches nothing", from: .manualInterventionRequired, active: .crashed,
                  standby: .standbyHealthy, to: .manualInterventionRequired, actions: []),
    TransitionRow(name: "Failed: stays Failed until the object is deleted", from: .failed, active: .activeHealthy, standby: .standbyHealthy, to: .failed, actions: []),
]

@Suite("PairStateMachine")
struct PairStateMachineTests {
    @Test("reference transition", arguments: referenceRows)
    func referenceTransition(_ row: TransitionRow) {
        let observation = row.observation
        let decision = PairStateMachine.decide(observation)
        #expect(decision.state == row.to, "\(decision.note)")
        #expect(decision.status.rolesSwapped == row.swapped)
        let expectedActive = row.swapped ? observation.standby.name : observation.active.name
        #expect(decision.status.intendedActive == expectedActive)
        if let actions = row.actions { #expect(decision.actions == actions) }
        // A change of state is recorded with one StateChange event (or Error for Failed); no
        // change, no StateChange.
        let changes = decision.events.filter { $0.message.hasPrefix("\(row.from.rawValue) -> ") }
        #expect(changes.count == (row.to == row.from ? 0 : 1), "\(decision.events)")
        #expect(decision.status.stateChanged == (row.to != row.from))
        #expect(decision.status.previousState == (row.to != row.from ? row.from : row.previous))
    }

    @Test("every state has a row in the table")
    func everyStateCovered() {
        let covered = Set(referenceRows.map(\.from))
        #expect(covered == Set(PairState.allCases))
    }

    @Test("stopManaging changed: ManualInterventionRequired from every state but Failed, touching nothing")
    func stopManaging() {
        for state in PairState.allCases {
            let observation = PairFixture.observation(state, .crashed, .standbyHealthy, stopManaging: true, reexamine: true)
            let decision = PairStateMachine.decide(observation)
            #expect(decision.state == (state == .failed ? .failed : .manualInterventionRequired), "\(state)")
            #expect(decision.actions.isEmpty, "\(state): \(decision.actions)")
            #expect(decision.recheckAt == nil)
        }
    }

    @Test("reexamine changed: Reexamine from every state but Failed; Reexamine then decides")
    func reexamine() {
        for state in PairState.allCases {
            let decision = PairStateMachine.decide(PairFixture.observation(state, .activeHealthy, .standbyHealthy, reexamine: true))
            #expect(decision.state == (state == .failed ? .failed : .reexamine), "\(state)")
        }
        // From ManualInterventionRequired through Reexamine back to Normal.
        let resumed = PairStateMachine.decide(PairFixture.observation(.reexamine, .activeHealthy, .standbyHealthy, previous: .manualInterventionRequired))
        #expect(resumed.state == .normal)
    }

    @Test("Failed is terminal: no input leaves it and it does nothing")
    func failedIsTerminal() {
        for active in PairFixture.Kind.allCases {
            for standby in PairFixture.Kind.allCases {
                for edges in [(false, false), (true, false), (false, true)] {
                    let decision = PairStateMachine.decide(
                        PairFixture.observation(.failed, active, standby, stopManaging: edges.0, reexamine: edges.1))
                    #expect(decision.state == .failed && decision.actions.isEmpty)
                }
            }
        }
    }

    @Test("BothDown with Best: the database chosen for every previous state, with and without TWOSAFE")
    func bothDownChoice() {
        for previous in PairState.allCases.map(Optional.some) + [nil] {
            for twoSafe in [false, true] {
                let observation = PairFixture.observation(.bothDown, .crashed, .crashed, previous: previous, settings: PairSettings(twoSafe: twoSafe))
                let decision = PairStateMachine.decide(observation)
                let expected: String? = switch (twoSafe, previous) {
                case (false, _): a0
                case (true, .activeDown): s1
                case (true, .normal), (true, .activeTakeover), (true, .standbyStarting), (true, .standbyDown): a0
                default: nil
                }
                let label = "\(previous?.rawValue ?? "nil") twoSafe=\(twoSafe)"
                if let expected {
                    #expect(decision.state == .waitingForActive, "\(label)")
                    #expect(decision.status.intendedActive == expected, "\(label)")
                } else {
                    #expect(decision.state == .manualInterventionRequired, "\(label)")
                    #expect(decision.status.intendedActive == a0, "\(label)")
                }
                #expect(decision.actions.isEmpty, "\(label)")
            }
        }
    }

    @Test("a status value maps to a state; nothing yet is Initializing, an unknown one Reexamine")
    func stateFromStatus() {
        for state in PairState.allCases { #expect(PairState(statusValue: state.rawValue) == state) }
        #expect(PairState(statusValue: nil) == .initializing)
        #expect(PairState(statusValue: "Sideways") == .reexamine)
    }
}

@Suite("PairStateMachine: failover and safety")
struct PairFailoverTests {
    @Test("failover waits while the old active is Unknown, then promotes once unreachableTimeout has passed")
    func failoverWaitsForUnreachableActive() {
        // The intent is recorded at once; the promotion waits.
        let first = PairStateMachine.decide(PairFixture.observation(.activeDown, .unreachableRecent, .standbyHealthy))
        #expect(first.state == .activeTakeover && first.status.rolesSwapped)
        #expect(!first.actions.contains(.promote(pod: s1)), "\(first.actions)")
        #expect(first.note.contains("may still accept writes"), "\(first.note)")
        #expect(first.recheckAt == PairFixture.ago(5).addingTimeInterval(30))

        // The engine restarts from .status: ActiveTakeover with the roles swapped, the intended
        // active still a standby. Still waiting while the old active may write...
        var resumed = PairFixture.observation(.activeTakeover, .standbyHealthy, .unreachableRecent, previous: .activeDown)
        #expect(!PairStateMachine.decide(resumed).actions.contains(.promote(pod: a0)))
        // ...and promoting once it has been unreachable past the timeout.
        resumed.standby.lastTimeReachable = PairFixture.ago(31)
        let promoted = PairStateMachine.decide(resumed)
        #expect(promoted.state == .activeTakeover)
        #expect(promoted.actions == [.promote(pod: a0), .setActive(pod: a0)])
    }

    @Test("a restart mid-failover finishes it: a reachable old active is fenced first, a gone one is not")
    func resumeFailover() {
        let reachable = PairStateMachine.decide(PairFixture.observation(.activeTakeover, .standbyHealthy, .crashed, previous: .activeDown))
        #expect(reachable.actions == [.fence(pod: s1), .promote(pod: a0), .setActive(pod: a0)])
        #expect(reachable.state == .activeTakeover && !reachable.status.rolesSwapped)
        let gone = PairStateMachine.decide(PairFixture.observation(.activeTakeover, .standbyHealthy, .gone, previous: .activeDown))
        #expect(gone.actions == [.promote(pod: a0), .setActive(pod: a0)])
        let deleted = PairStateMachine.decide(PairFixture.observation(.activeTakeover, .standbyHealthy, .podDeleted, previous: .activeDown))
        #expect(deleted.actions == [.promote(pod: a0), .setActive(pod: a0)])
        // Once promoted, the takeover goes on to re-duplicate the old active.
        let after = PairStateMachine.decide(PairFixture.observation(.activeTakeover, .activeHealthy, .gone, previous: .activeDown))
        #expect(after.state == .standbyDown && after.actions.isEmpty)
    }

    @Test("failover from a container that terminated needs no fence")
    func failoverFromGoneActive() {
        let decision = PairStateMachine.decide(PairFixture.observation(.activeDown, .gone, .standbyHealthy))
        #expect(decision.actions == [.promote(pod: s1), .setActive(pod: s1)])
        #expect(decision.events.contains { $0.reason == PairEvent.Reason.info && $0.message.hasPrefix("FAILOVER: \(s1)") })
    }

    @Test("a whole failover, walked: Normal → ActiveDown → ActiveTakeover → StandbyDown → StandbyStarting → StandbyCatchup → Normal")
    func failoverWalk() {
        var pair = PairWalk(state: .normal)
        pair.step(active: .crashed, standby: .standbyDisconnected, expect: .activeDown)
        pair.step(active: .crashed, standby: .standbyDisconnected, expect: .activeTakeover)
        #expect(pair.roles == (s1, a0))
        #expect(pair.lastActions == [.fence(pod: a0), .promote(pod: s1), .setActive(pod: s1)])
        pair.step(active: .activeHealthy, standby: .crashed, expect: .standbyDown)
        pair.step(active: .activeHealthy, standby: .crashed, expect: .standbyDown)
        #expect(pair.lastActions == [.fence(pod: a0), .duplicate(pod: a0, from: s1)])
        pair.step(active: .activeHealthy, standby: .duplicating, expect: .standbyDown)
        #expect(pair.lastActions.isEmpty)
        pair.step(active: .activeHealthy, standby: .standbyCatchingUp, expect: .standbyStarting)
        pair.step(active: .activeHealthy, standby: .standbyCatchingUp, expect: .standbyCatchup)
        pair.step(active: .activeHealthy, standby: .standbyHealthy, expect: .normal)
        #expect(pair.roles == (s1, a0))
    }

    @Test("initialising: create the active, then duplicate the standby from it")
    func initializationSteps() {
        let settings = PairSettings(twoSafe: true, hasEpilog: true)
        let fresh = PairStateMachine.decide(PairFixture.observation(.initializing, .fresh, .fresh, settings: settings))
        #expect(fresh.state == .initializing)
        #expect(fresh.actions == [.createDb(pod: a0), .createRepScheme(pod: a0, twoSafe: true), .createRepEpilog(pod: a0)])
        // The standby's agent is not up yet: nothing may be made writable until it is known not to write.
        let waiting = PairStateMachine.decide(PairFixture.observation(.initializing, .fresh, .unreachableRecent, settings: settings))
        #expect(waiting.actions.isEmpty, "\(waiting.actions)")
        // The active exists without its scheme (a crash in between): only what is missing.
        var observation = PairFixture.observation(.initializing, .activeHealthy, .fresh, settings: settings)
        observation.active.status?.repScheme = false
        observation.active.status?.appliedFiles = ["db.ini"]
        #expect(PairStateMachine.decide(observation).actions == [.createRepScheme(pod: a0, twoSafe: true), .createRepEpilog(pod: a0)])
        // A complete active: duplicate the standby (no database there to fence).
        let duplicate = PairStateMachine.decide(PairFixture.observation(.initializing, .activeHealthy, .fresh, settings: settings))
        #expect(duplicate.actions == [.duplicate(pod: s1, from: a0)])
        let catching = PairStateMachine.decide(PairFixture.observation(.initializing, .activeHealthy, .standbyCatchingUp, settings: settings))
        #expect(catching.state == .initializing && catching.actions.isEmpty)
    }

    @Test("readiness: only the writable intended active is Ready")
    func readiness() {
        var observation = PairFixture.observation(.normal, .activeHealthy, .standbyHealthy)
        observation.active.ready = false
        observation.standby.ready = true
        #expect(PairStateMachine.decide(observation).actions == [.setActive(pod: a0), .clearActive(pod: s1)])
        var down = PairFixture.observation(.activeDown, .crashed, .crashed)
        down.active.ready = true
        #expect(PairStateMachine.decide(down).actions.contains(.clearActive(pod: a0)))
    }

    @Test("deleteDbOnNotReadyNode: the standby's pod and PVCs once the node is NotReady long enough; never the only copy")
    func deleteOnNotReadyNode() {
        let settings = PairSettings(deleteDbOnNotReadyNode: 60)
        var observation = PairFixture.observation(.activeTakeover, .activeHealthy, .unreachableLong, settings: settings)
        observation.standby.nodeNotReadySince = PairFixture.ago(59)
        let early = PairStateMachine.decide(observation)
        #expect(!early.actions.contains(.deletePodAndPVCs(pod: s1)))
        #expect(early.recheckAt == PairFixture.ago(59).addingTimeInterval(60))
        observation.standby.nodeNotReadySince = PairFixture.ago(61)
        let due = PairStateMachine.decide(observation)
        #expect(due.actions.contains(.deletePodAndPVCs(pod: s1)))
        #expect(due.events.contains { $0.message.contains("deleting pod \(s1) and its PVCs") })
        // Already being deleted: not again.
        observation.standby.deleting = true
        #expect(!PairStateMachine.decide(observation).actions.contains(.deletePodAndPVCs(pod: s1)))
        // The active's node: its database may be the only good copy.
        var onlyCopy = PairFixture.observation(.bothDown, .unreachableLong, .unreachableLong, settings: settings)
        onlyCopy.active.nodeNotReadySince = PairFixture.ago(120)
        onlyCopy.standby.nodeNotReadySince = PairFixture.ago(120)
        let kept = PairStateMachine.decide(onlyCopy)
        #expect(!kept.actions.contains { if case .deletePodAndPVCs = $0 { true } else { false } }, "\(kept.actions)")
    }

    @Test("the last line of defence drops a promotion while the other pod may write")
    func enforcement() {
        let observation = PairFixture.observation(.activeDown, .unreachableRecent, .standbyHealthy)
        var decision = PairStateMachine.rawDecision(observation)
        decision.actions = [.promote(pod: s1), .setActive(pod: s1)]
        PairStateMachine.enforceSingleWriter(&decision, observation)
        #expect(decision.actions.isEmpty)
        #expect(decision.events.last?.reason == PairEvent.Reason.error)
        // Fenced earlier in the same decision: allowed.
        var fenced = PairStateMachine.rawDecision(PairFixture.observation(.activeDown, .crashed, .standbyHealthy))
        fenced.actions = [.fence(pod: a0), .promote(pod: s1)]
        PairStateMachine.enforceSingleWriter(&fenced, PairFixture.observation(.activeDown, .crashed, .standbyHealthy))
        #expect(fenced.actions == [.fence(pod: a0), .promote(pod: s1)])
    }

    /// Every combination over a small domain of raw facts: no decision makes a database
    /// writable while the other pod may still write, unless it fences that pod first.
    @Test("one writer: exhaustively, never a promotion or createDb while the other pod may write")
    func singleWriterInvariant() {
        let pods = SafetyDomain.pods()
        var checked = 0
        var enforcementNeeded: [String] = []
        var violations: [String] = []
        for (index, state) in PairState.allCases.enumerated() {
            for (i, active) in pods.enumerated() {
                for (j, standby) in pods.enumerated() {
                    let mix = index + i + j
                    let observation = PairObservation(
                        state: state, previousState: [PairState.activeDown, .activeTakeover, .normal][mix % 3],
                        stateSince: PairFixture.ago(mix % 2 == 0 ? 5 : 100), active: active.with(name: a0), standby: standby.with(name: s1),
                        settings: PairSettings(twoSafe: mix % 2 == 0, deleteDbOnNotReadyNode: 60), now: PairFixture.now)
                    let raw = PairStateMachine.rawDecision(observation)
                    var enforced = raw
                    PairStateMachine.enforceSingleWriter(&enforced, observation)
                    if enforced != raw { enforcementNeeded.append(SafetyDomain.describe(observation, raw)) }
                    if let problem = SafetyDomain.violation(enforced, observation) { violations.append(problem) }
                    checked += 1
                }
            }
        }
        #expect(checked == PairState.allCases.count * pods.count * pods.count)
        #expect(violations.isEmpty, "\(violations.prefix(5))")
        #expect(enforcementNeeded.isEmpty, "the machine relied on its own check: \(enforcementNeeded.prefix(5))")
    }
}

@Suite("PodStateClassifier")
struct PodStateClassifierTests {
    let settings = PairSettings()
    let now = PairFixture.now

    func classify(_ pod: PodObservation, _ role: PodRole, peer: PodObservation? = nil) -> PodState {
        PodStateClassifier.classify(pod, as: role, peer: peer, settings: settings, now: now).state
    }

    @Test("Unknown while the agent is unreachable, Down once unreachableTimeout has passed")
    func unreachable() {
        var pod = PairFixture.pod(a0, .activeHealthy)
        pod.agentReachable = false
        for (age, expected) in [(0.0, PodState.unknown), (29.9, .unknown), (30, .down), (300, .down)] {
            pod.lastTimeReachable = PairFixture.ago(age)
            #expect(classify(pod, .active) == expected, "\(age) s")
            #expect(classify(pod, .standby) == expected, "\(age) s")
        }
        // Never reached: counted from the pod's creation.
        pod.lastTimeReachable = nil
        pod.createdAt = PairFixture.ago(10)
        #expect(classify(pod, .active) == .unknown)
        pod.createdAt = PairFixture.ago(40)
        #expect(classify(pod, .active) == .down)
        // Gone beats everything but Terminal.
        pod.lastTimeReachable = now
        pod.containerTerminated = true
        #expect(classify(pod, .active) == .down)
        pod.terminalReason = "broken"
        #expect(classify(pod, .active) == .terminal)
    }

    @Test("a bad repState lasting longer than repStateTimeout is Down")
    func repStateTimeout() {
        var active = PairFixture.pod(a0, .activeHealthy)
        active.status?.repState = .recovering
        active.status?.updatable = false
        active.repStateSince = PairFixture.ago(29)
        #expect(classify(active, .active) == .unknown)
        active.repStateSince = PairFixture.ago(30)
        #expect(classify(active, .active) == .down)

        var standby = PairFixture.pod(s1, .standbyCatchingUp)
        #expect(classify(standby, .standby) == .catchingUp)
        standby.repStateSince = PairFixture.ago(31)
        #expect(classify(standby, .standby) == .down)
    }

    @Test("active: Healthy, OtherDown when its peer FAILED or stayed disconnected, Down when crashed, fenced or a standby")
    func activeRole() {
        #expect(classify(PairFixture.pod(a0, .activeHealthy), .active) == .healthy)
        #expect(classify(PairFixture.pod(a0, .activePeerFailed), .active) == .otherDown)
        var recent = PairFixture.pod(a0, .activePeerFailed)
        recent.peerStateSince = PairFixture.ago(3)
        #expect(classify(recent, .active) == .healthy)
        recent.status?.repPeerPState = "FAILED"
        #expect(classify(recent, .active) == .otherDown)
        for kind in [PairFixture.Kind.crashed, .fencedActive, .standbyHealthy, .fresh, .duplicating] {
            #expect(classify(PairFixture.pod(a0, kind), .active) == .down, "\(kind)")
        }
    }

    @Test("standby: Healthy streaming, CatchingUp when the active reports catch-up, OtherDown when writable, Healthy when it lost a down active")
    func standbyRole() {
        let streaming = PairFixture.pod(s1, .standbyHealthy)
        #expect(classify(streaming, .standby, peer: PairFixture.pod(a0, .activeHealthy)) == .healthy)
        var catchingActive = PairFixture.pod(a0, .activeHealthy)
        catchingActive.status?.repPeerPState = "catchup"
        #expect(classify(streaming, .standby, peer: catchingActive) == .catchingUp)
        #expect(classify(PairFixture.pod(s1, .activeHealthy), .standby) == .otherDown)
        // A synchronised standby whose active crashed stays a good failover target...
        let lost = PairFixture.pod(s1, .standbyDisconnected)
        #expect(classify(lost, .standby, peer: PairFixture.pod(a0, .crashed)) == .healthy)
        // ...but not streaming from a healthy active for longer than repStateTimeout is Down.
        #expect(classify(lost, .standby, peer: PairFixture.pod(a0, .activeHealthy)) == .down)
        for kind in [PairFixture.Kind.crashed, .fencedActive, .fresh, .duplicating] {
            #expect(classify(PairFixture.pod(s1, kind), .standby) == .down, "\(kind)")
        }
    }

    @Test("Reexamine states")
    func reexamineStates() {
        func state(_ kind: PairFixture.Kind) -> PodState {
            PodStateClassifier.classifyForReexamine(PairFixture.pod(a0, kind), settings: settings, now: now).state
        }
        #expect(state(.activeHealthy) == .healthyActive)
        #expect(state(.standbyHealthy) == .healthyStandby)
        #expect(state(.idleDatabase) == .healthyIdle)
        #expect(state(.fencedActive) == .healthyIdle)
        #expect(state(.crashed) == .down)
        #expect(state(.unreachableRecent) == .unknown)
    }
}

/// Feeds each decision's status back as the next observation, as the reconciler does.
struct PairWalk {
    var state: PairState
    var previous: PairState?
    var roles = (a0, s1)
    var lastActions: [PairAction] = []

    init(state: PairState) {
        self.state = state
    }

    /// One reconcile with the pods (by current intended role) as given.
    mutating func step(active: PairFixture.Kind, standby: PairFixture.Kind, expect expected: PairState,
                       sourceLocation: SourceLocation = #_sourceLocation) {
        let observation = PairObservation(
            state: state, previousState: previous, stateSince: PairFixture.ago(1), active: PairFixture.pod(roles.0, active),
            standby: PairFixture.pod(roles.1, standby), now: PairFixture.now)
        let decision = PairStateMachine.decide(observation)
        #expect(decision.state == expected, "\(state) with \(active)/\(standby): \(decision.note)", sourceLocation: sourceLocation)
        state = decision.state
        previous = decision.status.previousState
        roles = (decision.status.intendedActive, decision.status.intendedStandby)
        lastActions = decision.actions
    }
}

/// The one-writer property, stated independently of the machine's own check.
enum SafetyDomain {
    /// Pods over a small domain of raw facts: presence × reachability × database × duplicating ×
    /// previous state.
    static func pods() -> [PodObservation] {
        let statuses: [AgentStatus?] = [
            nil, AgentStatus(), PairFixture.activeStatus, PairFixture.standbyStatus,
            AgentStatus(daemonUp: true, instanceExists: true, repState: .recovering),
            AgentStatus(instanceExists: true, repState: .failed),
            AgentStatus(instanceExists: true, repState: .idle),
            AgentStatus(daemonUp: true, instanceExists: true, dbLoaded: true, repState: .idle, fenced: true),
            AgentStatus(daemonUp: true, instanceExists: true, dbLoaded: true, updatable: true, repState: .active, repPeerPState: "none"),
        ]
        // (container terminated, seconds since the agent last answered): reachable, Unknown, past the timeout, gone.
        let presences: [(Bool, TimeInterval)] = [(false, 0), (false, 5), (false, 100), (true, 1)]
        var pods: [PodObservation] = []
        for (terminated, reach) in presences {
            for status in statuses {
                // The previous pod state matters only to a standby in recovery.
                let previousStates: [PodState?] = status?.daemonUp == true && status?.repState != .active ? [nil, .healthy] : [.healthy]
                for previous in previousStates {
                    for duplicating in [false, true] {
                        pods.append(PodObservation(
                            name: "", containerTerminated: terminated, ready: reach == 0, createdAt: PairFixture.ago(3600),
                            nodeNotReadySince: reach == 100 ? PairFixture.ago(100) : nil, agentReachable: reach == 0,
                            lastTimeReachable: PairFixture.ago(reach), status: status, repStateSince: PairFixture.ago(reach == 5 ? 5 : 100),
                            peerStateSince: PairFixture.ago(100), duplicating: duplicating, previousState: previous))
                    }
                }
            }
        }
        return pods
    }

    /// The other pod may accept writes: its processes may run and it may hold a database that
    /// is (or can start as) a primary.
    static func mayWrite(_ pod: PodObservation, now: Date, unreachableTimeout: TimeInterval) -> Bool {
        if !pod.exists || pod.containerTerminated { return false }
        guard pod.agentReachable, let status = pod.status else {
            let last = pod.lastTimeReachable ?? pod.createdAt ?? .distantPast
            return now.timeIntervalSince(last) < unreachableTimeout
        }
        if !status.instanceExists || pod.duplicating { return false }
        return !(status.repState == .standby && !status.updatable)
    }

    static func describe(_ observation: PairObservation, _ decision: PairDecision) -> String {
        func pod(_ pod: PodObservation) -> String {
            let status = pod.status.map { "\($0.repState.rawValue)\($0.updatable ? " writable" : "")\($0.instanceExists ? "" : " no-db")" } ?? "no status"
            return "\(pod.name)[\(pod.containerTerminated ? "terminated " : "")\(pod.agentReachable ? "" : "unreachable ")\(status)\(pod.duplicating ? " duplicating" : "")]"
        }
        return "\(observation.state.rawValue) \(pod(observation.active)) / \(pod(observation.standby)): \(decision.actions)"
    }

    /// Describes a broken decision, or nil.
    static func violation(_ decision: PairDecision, _ observation: PairObservation) -> String? {
        let writable = decision.actions.filter { if case .promote = $0 { true } else if case .createDb = $0 { true } else { false } }
        if Set(writable.map(\.pod)).count > 1 { return "both pods made writable: \(decision.actions)" }
        for (index, action) in decision.actions.enumerated() {
            switch action {
            case .promote(let pod), .createDb(let pod):
                let other = pod == observation.active.name ? observation.standby : observation.active
                let fenced = decision.actions[..<index].contains(.fence(pod: other.name))
                if !fenced && mayWrite(other, now: observation.now, unreachableTimeout: observation.settings.unreachableTimeout) {
                    return describe(observation, decision)
                }
                if decision.actions.contains(.fence(pod: pod)) { return "fences and promotes \(pod): \(decision.actions)" }
            default:
                break
            }
        }
        return nil
    }
}

extension PodObservation {
    func with(name: String) -> PodObservation {
        var copy = self
        copy.name = name
        return copy
    }
}
