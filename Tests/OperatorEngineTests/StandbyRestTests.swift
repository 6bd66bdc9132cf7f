import Foundation
import KubeAPI
@testable import OperatorEngine
import Testing

/// ``StandbyRest``: when the standby's status stream may rest on the active's.
@Suite struct StandbyRestTests {
    static func view(_ status: AgentStatus?, reachable: Bool = true, settled: Bool = true, job: AgentJobStatus.State? = nil) -> AgentView {
        EngineLogicFixture.view(settled: settled, reachable: reachable, status: status, restartCountAtStatus: 0, job: job)
    }

    static let active = PairFixture.activeStatus
    static let standby = PairFixture.standbyStatus

    static func with(_ status: AgentStatus, _ change: (inout AgentStatus) -> Void) -> AgentStatus {
        var changed = status
        change(&changed)
        return changed
    }

    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        var observed = PairState.normal
        var decided = PairState.normal
        var actions: [PairAction] = []
        var manualAction = false
        var active: AgentView? = StandbyRestTests.view(StandbyRestTests.active)
        var standby: AgentView? = StandbyRestTests.view(StandbyRestTests.standby)
        var standbyRestarts: Int? = 0
        let rests: Bool
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "Normal, both streaming, nothing to do: rests", rests: true),
        Case(name: "StandbyDown observed: awake", observed: .standbyDown, rests: false),
        Case(name: "Normal decided from ActiveTakeover: awake", observed: .activeTakeover, rests: false),
        Case(name: "Normal observed, Failover decided: awake", decided: .activeDown, rests: false),
        Case(name: "an agent action pending: awake", actions: [.readStatus(pod: "sample-1")], rests: false),
        Case(name: "a manual action running: awake", manualAction: true, rests: false),
        Case(name: "the active's stream lost: awake", active: view(active, reachable: false), rests: false),
        Case(name: "the active not yet settled: awake", active: view(active, settled: false), rests: false),
        Case(name: "the active's sender in catchup: awake", active: view(with(active) { $0.repPeerPState = "catchup" }), rests: false),
        Case(name: "the active read-only: awake", active: view(with(active) { $0.updatable = false }), rests: false),
        Case(name: "no view of the active: awake", active: nil, rests: false),
        Case(name: "the standby unreachable: awake", standby: view(standby, reachable: false), rests: false),
        Case(name: "the standby waking (not settled): awake", standby: view(standby, settled: false), rests: false),
        Case(name: "the standby duplicating: awake", standby: view(standby, job: .running), rests: false),
        Case(name: "a finished job on the standby: rests", standby: view(standby, job: .succeeded), rests: true),
        Case(name: "the standby's receiver not streaming: awake", standby: view(with(standby) { $0.repPeerPState = "stopped" }), rests: false),
        Case(name: "the standby in RECOVERING: awake", standby: view(with(standby) { $0.repState = .recovering }), rests: false),
        Case(name: "the standby's daemon down: awake", standby: view(with(standby) { $0.daemonUp = false }), rests: false),
        Case(name: "the standby's container restarted since its status: awake", standbyRestarts: 1, rests: false),
        Case(name: "no status from the standby: awake", standby: view(nil), rests: false),
    ]

    @Test(arguments: cases)
    func verdict(_ test: Case) {
        let inputs = StandbyRest.Inputs(
            observed: test.observed, decided: test.decided, decisionActions: test.actions, manualAction: test.manualAction,
            active: test.active, standby: test.standby, standbyRestarts: test.standbyRestarts)
        #expect(StandbyRest.mayRest(inputs) == test.rests)
    }

    @Test func onlyAWritableActiveWithAStreamingStandbyVouches() {
        #expect(StandbyRest.vouches(Self.active))
        #expect(!StandbyRest.vouches(nil))
        #expect(!StandbyRest.vouches(Self.standby))
        #expect(!StandbyRest.vouches(Self.with(Self.active) { $0.repPeerPState = "none" }))
        #expect(!StandbyRest.vouches(Self.with(Self.active) { $0.daemonUp = false }))
        #expect(!StandbyRest.vouches(Self.with(Self.active) { $0.repState = .idle }))
    }
}
