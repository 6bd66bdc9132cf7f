import Foundation
import Testing
@testable import OperatorEngine

private let a0 = PairFixture.activeName
private let s1 = PairFixture.standbyName
private let pairPods = [a0, s1]

/// Observations, records and steps for the manual-action planner. Times are relative to `PairFixture.now`.
enum ManualActionFixture {
    typealias Kind = PairFixture.Kind
    typealias Parsed = Result<ManualActionRequest, ManualActionRequest.Malformed>

    static let now = PairFixture.now

    /// Pod `name` with the facts of `kind` and, when given, the agent's WAL position.
    static func pod(_ name: String, _ kind: Kind, lsn: String? = nil) -> PodObservation {
        var pod = PairFixture.pod(name, kind)
        if let lsn { pod.status?.lsn = lsn }
        return pod
    }

    static func observation(_ state: PairState, _ active: PodObservation, _ standby: PodObservation, previous: PairState? = nil)
        -> PairObservation
    {
        PairObservation(state: state, previousState: previous, stateSince: PairFixture.ago(10), active: active, standby: standby, now: now)
    }

    /// `sample-0` active, `sample-1` standby.
    static func observation(_ state: PairState, _ active: Kind, _ standby: Kind) -> PairObservation {
        PairFixture.observation(state, active, standby)
    }

    /// A running action as `status.lastAction` holds it.
    static func running(_ verb: ManualActionRequest.Verb, phase: String, pod: String, id: String = "act-1", startedAgo: TimeInterval = 1)
        -> ActionRecord
    {
        var record = ActionRecord(id: id)
        record.verb = verb.rawValue
        record.pod = pod
        record.state = ActionState.running
        record.phase = phase
        record.message = "\(verb.rawValue) in \(phase)"
        record.startTime = PairFixture.ago(startedAgo)
        return record
    }

    static func ask(_ verb: ManualActionRequest.Verb, id: String = "act-1", pod: String? = nil) -> Parsed {
        .success(ManualActionRequest(id: id, verb: verb, pod: pod))
    }

    /// One planner step over the state machine's decision for `observation`.
    static func step(
        _ request: Parsed?, last: ActionRecord? = nil, _ observation: PairObservation, job: AgentJobStatus? = nil, jobError: String? = nil
    ) -> (step: ManualActionStep, machine: PairDecision) {
        let machine = PairStateMachine.decide(observation)
        let step = ManualActionPlanner.step(
            request: request, last: last, observation: observation, machine: machine, job: job, jobError: jobError)
        return (step, machine)
    }
}

/// One annotation text and what `parse` makes of it.
struct ParseRow: Sendable, CustomTestStringConvertible {
    let name: String
    let text: String
    /// The request, when the text is valid.
    var request: ManualActionRequest? = nil
    /// For a malformed text: the id it keeps (nil: the fallback made from the text), and a part of the message.
    var failureID: String? = nil
    var message: String = ""

    var testDescription: String { name }
}

let parseRows: [ParseRow] = [
    ParseRow(name: "switchover", text: #"{"id":"sw-1","verb":"switchover"}"#, request: ManualActionRequest(id: "sw-1", verb: .switchover)),
    ParseRow(name: "switchover naming the standby", text: #"{"id":"sw-2","verb":"switchover","pod":"sample-1"}"#,
             request: ManualActionRequest(id: "sw-2", verb: .switchover, pod: s1)),
    ParseRow(name: "failover", text: #"{"verb":"failover","id":"fo-1"}"#, request: ManualActionRequest(id: "fo-1", verb: .failover)),
    ParseRow(name: "reduplicate with its pod", text: #"{"id":"rd-1","verb":"reduplicate","pod":"sample-1"}"#,
             request: ManualActionRequest(id: "rd-1", verb: .reduplicate, pod: s1)),
    ParseRow(name: "an id of exactly 128 characters", text: #"{"id":"\#(String(repeating: "a", count: 128))","verb":"failover"}"#,
             request: ManualActionRequest(id: String(repeating: "a", count: 128), verb: .failover)),
    ParseRow(name: "missing id", text: #"{"verb":"switchover"}"#, message: "needs an \"id\""),
    ParseRow(name: "empty id", text: #"{"id":"","verb":"switchover"}"#, message: "needs an \"id\""),
    ParseRow(name: "id not a string", text: #"{"id":42,"verb":"switchover"}"#, message: "needs an \"id\""),
    ParseRow(name: "id of 129 characters", text: #"{"id":"\#(String(repeating: "a", count: 129))","verb":"switchover"}"#,
             message: "1 to 128 characters"),
    ParseRow(name: "unknown verb", text: #"{"id":"x-1","verb":"restart"}"#, failureID: "x-1",
             message: "\"verb\" must be one of switchover, failover, reduplicate"),
    ParseRow(name: "missing verb", text: #"{"id":"x-2"}"#, failureID: "x-2", message: "\"verb\" must be one of"),
    ParseRow(name: "pod not of the pair", text: #"{"id":"x-3","verb":"failover","pod":"other-7"}"#, failureID: "x-3",
             message: "other-7 is not a pod of this pair (sample-0, sample-1)"),
    ParseRow(name: "reduplicate without pod", text: #"{"id":"x-4","verb":"reduplicate"}"#, failureID: "x-4",
             message: "reduplicate needs \"pod\""),
    ParseRow(name: "unknown field", text: #"{"id":"x-5","verb":"switchover","force":true}"#, failureID: "x-5",
             message: "unknown field \"force\""),
    ParseRow(name: "not JSON", text: "switchover please", message: "is not a JSON object"),
    ParseRow(name: "a JSON array", text: #"["switchover"]"#, message: "is not a JSON object"),
    ParseRow(name: "empty text", text: "", message: "is not a JSON object"),
]

/// An action the pair's state forbids.
struct RefusalRow: Sendable, CustomTestStringConvertible {
    typealias Kind = PairFixture.Kind
    let name: String
    let state: PairState
    let active: Kind
    let standby: Kind
    let request: ManualActionRequest
    /// A part of the refusal.
    let why: String

    var testDescription: String { name }
}

let refusalRows: [RefusalRow] = [
    RefusalRow(name: "switchover when not Normal (StandbyDown)", state: .standbyDown, active: .activeHealthy, standby: .standbyHealthy,
               request: ManualActionRequest(id: "sw", verb: .switchover), why: "a switchover needs the pair Normal with both pods Healthy; it is StandbyDown"),
    RefusalRow(name: "switchover when the standby is not Healthy", state: .normal, active: .activeHealthy, standby: .crashed,
               request: ManualActionRequest(id: "sw", verb: .switchover), why: "\(s1) Down"),
    RefusalRow(name: "switchover when the standby is still catching up", state: .normal, active: .activeHealthy, standby: .standbyCatchingUp,
               request: ManualActionRequest(id: "sw", verb: .switchover), why: "needs the pair Normal with both pods Healthy"),
    RefusalRow(name: "switchover naming the active", state: .normal, active: .activeHealthy, standby: .standbyHealthy,
               request: ManualActionRequest(id: "sw", verb: .switchover, pod: a0), why: "\(a0) is already the active"),
    RefusalRow(name: "switchover while Initializing", state: .initializing, active: .activeHealthy, standby: .standbyCatchingUp,
               request: ManualActionRequest(id: "sw", verb: .switchover), why: "the pair is Initializing"),
    RefusalRow(name: "switchover in ManualInterventionRequired", state: .manualInterventionRequired, active: .activeHealthy,
               standby: .standbyHealthy, request: ManualActionRequest(id: "sw", verb: .switchover), why: "the pair is ManualInterventionRequired"),
    RefusalRow(name: "failover with no healthy standby", state: .normal, active: .activeHealthy, standby: .crashed,
               request: ManualActionRequest(id: "fo", verb: .failover), why: "there is no healthy standby to promote: \(s1) is Down"),
    RefusalRow(name: "failover naming the active", state: .normal, active: .activeHealthy, standby: .standbyHealthy,
               request: ManualActionRequest(id: "fo", verb: .failover, pod: a0), why: "\(a0) is already the active"),
    RefusalRow(name: "reduplicate of the active", state: .normal, active: .activeHealthy, standby: .standbyHealthy,
               request: ManualActionRequest(id: "rd", verb: .reduplicate, pod: a0), why: "\(a0) is the active: only the standby can be copied again"),
    RefusalRow(name: "reduplicate with the active Down", state: .standbyDown, active: .crashed, standby: .standbyHealthy,
               request: ManualActionRequest(id: "rd", verb: .reduplicate, pod: s1), why: "there is nothing to copy from"),
    RefusalRow(name: "reduplicate of a standby already being copied", state: .standbyDown, active: .activeHealthy, standby: .duplicating,
               request: ManualActionRequest(id: "rd", verb: .reduplicate, pod: s1), why: "\(s1) is already being copied"),
    RefusalRow(name: "reduplicate of an unreachable standby", state: .standbyDown, active: .activeHealthy, standby: .unreachableRecent,
               request: ManualActionRequest(id: "rd", verb: .reduplicate, pod: s1), why: "\(s1)'s agent cannot be reached"),
]

@Suite("ManualActionTests", .timeLimit(.minutes(5)))
struct ManualActionTests {
    typealias F = ManualActionFixture

    // MARK: ManualActionRequest.parse

    @Test("parse", arguments: parseRows)
    func parse(_ row: ParseRow) {
        let result = ManualActionRequest.parse(row.text, pods: pairPods)
        switch result {
        case .success(let request):
            #expect(row.request == request, "unexpectedly valid: \(request)")
        case .failure(let malformed):
            #expect(row.request == nil, "refused: \(malformed.message)")
            if let id = row.failureID {
                #expect(malformed.id == id)
            } else {
                #expect(malformed.id.hasPrefix("invalid-"), "\(malformed.id)")
                #expect(malformed.id.count > "invalid-".count)
            }
            #expect(malformed.message.contains(row.message), "\(malformed.message)")
        }
    }

    @Test("a malformed annotation keeps one fallback id per text")
    func fallbackID() throws {
        func fallback(_ text: String) -> String? {
            if case .failure(let malformed) = ManualActionRequest.parse(text, pods: pairPods) { malformed.id } else { nil }
        }
        let first = try #require(fallback("switchover please"))
        #expect(fallback("switchover please") == first)
        #expect(fallback("switchover please!") != first)
        #expect(fallback(#"{"verb":"switchover"}"#) != first)
        #expect(fallback(#"{"verb":"switchover"}"#) == fallback(#"{"verb":"switchover"}"#))

        // Reported once: the planner refuses it, then leaves the same text alone.
        let observation = F.observation(.normal, .activeHealthy, .standbyHealthy)
        let request = ManualActionRequest.parse("switchover please", pods: pairPods)
        let (refused, _) = F.step(request, observation)
        let record = try #require(refused.record)
        #expect(record.id == first)
        let (again, machine) = F.step(request, last: record, observation)
        #expect(again.record == nil)
        #expect(again.decision == machine)
        // Another malformed text is a new refusal.
        let (other, _) = F.step(ManualActionRequest.parse("failover now", pods: pairPods), last: record, observation)
        #expect(other.record?.state == ActionState.failed)
        #expect(other.record?.id != first)
    }

    @Test("annotationValue round-trips through parse")
    func annotationRoundTrip() {
        let requests = [
            ManualActionRequest(id: "a", verb: .switchover), ManualActionRequest(id: "b-2", verb: .switchover, pod: s1),
            ManualActionRequest(id: "c \"quoted\" é", verb: .failover), ManualActionRequest(id: "d", verb: .failover, pod: s1),
            ManualActionRequest(id: "e", verb: .reduplicate, pod: s1), ManualActionRequest(id: "f", verb: .reduplicate, pod: a0),
        ]
        for request in requests {
            let parsed = ManualActionRequest.parse(request.annotationValue, pods: pairPods)
            #expect(parsed == .success(request), "\(request.annotationValue)")
        }
    }

    // MARK: LogPosition

    @Test("LogPosition parses PostgreSQL's positions and orders them across the high word")
    func logPositionParsing() throws {
        #expect(LogPosition("0/3000148")?.value == 0x300_0148)
        #expect(LogPosition("16/B374D848")?.value == 0x16_B374_D848)
        #expect(LogPosition("16/b374d848")?.value == 0x16_B374_D848)
        #expect(LogPosition("FFFFFFFF/FFFFFFFF")?.value == UInt64.max)
        let low = try #require(LogPosition("0/FFFFFFFF"))
        let high = try #require(LogPosition("1/0"))
        #expect(low < high)
        #expect(try #require(LogPosition("0/3000148")) < #require(LogPosition("0/3000149")))
        #expect(try #require(LogPosition("16/B374D848")) > #require(LogPosition("15/FFFFFFFF")))
        #expect(try #require(LogPosition("A/10")) == #require(LogPosition("a/10")))
        // Comparing the text would get these wrong.
        #expect(try #require(LogPosition("9/0")) < #require(LogPosition("10/0")))
        #expect(try #require(LogPosition("0/F")) < #require(LogPosition("0/10")))
    }

    @Test("LogPosition rejects what is not hi/lo in 32-bit hex", arguments: [
        "", "1", "/", "x/1", "1/x", "1/2/3", "100000000/0", "0/100000000", "1 /2", "0x1/2", "1/", "/2",
    ])
    func logPositionInvalid(_ text: String) {
        #expect(LogPosition(text) == nil, "\(LogPosition(text).map { "\($0)" } ?? "")")
    }

    @Test("LogPosition's description round-trips", arguments: ["0/0", "0/3000148", "16/B374D848", "FFFFFFFF/FFFFFFFF", "1/0"])
    func logPositionDescription(_ text: String) throws {
        let position = try #require(LogPosition(text))
        #expect(position.description == text)
        #expect(LogPosition(position.description) == position)
    }

    // MARK: ManualActionPlanner: no action

    @Test("no request and no running action: the machine's decision, nothing recorded")
    func nothingToDo() throws {
        var succeeded = ActionRecord(id: "old")
        succeeded.state = ActionState.succeeded
        for observation in [
            F.observation(.normal, .activeHealthy, .standbyHealthy), F.observation(.activeDown, .crashed, .standbyHealthy),
            F.observation(.standbyDown, .activeHealthy, .crashed),
        ] {
            for last in [nil, succeeded] {
                let (step, machine) = F.step(nil, last: last, observation)
                #expect(step == ManualActionStep(decision: machine, record: nil, pollAfter: nil), "\(observation.state)")
            }
        }
        // The machine's decision passes through even when it does something.
        let (failing, machine) = F.step(nil, F.observation(.activeDown, .crashed, .standbyHealthy))
        #expect(!machine.actions.isEmpty)
        #expect(failing.decision.actions == machine.actions)
    }

    @Test("a finished action's id asked again: nothing new")
    func sameIDAgain() {
        var done = ActionRecord(id: "sw-1")
        done.verb = "switchover"
        done.state = ActionState.succeeded
        let (step, machine) = F.step(F.ask(.switchover, id: "sw-1"), last: done, F.observation(.normal, .activeHealthy, .standbyHealthy))
        #expect(step.decision == machine)
        #expect(step.record == nil)
        #expect(step.pollAfter == nil)
    }

    @Test("a malformed request is refused once: Failed record and a Warning event")
    func malformedRequest() throws {
        let observation = F.observation(.normal, .activeHealthy, .standbyHealthy)
        let request = ManualActionRequest.parse(#"{"id":"bad-1","verb":"explode"}"#, pods: pairPods)
        let (step, machine) = F.step(request, observation)
        let record = try #require(step.record)
        #expect(record.id == "bad-1")
        #expect(record.state == ActionState.failed)
        #expect(record.message?.hasPrefix("refused: ") == true, "\(record.message ?? "")")
        #expect(record.message?.contains("\"verb\" must be one of") == true)
        #expect(record.startTime == F.now && record.endTime == F.now)
        #expect(step.decision.actions == machine.actions)
        #expect(step.decision.status == machine.status)
        #expect(step.decision.events.count == machine.events.count + 1)
        let event = try #require(step.decision.events.last)
        #expect(event.kind == .warning && event.reason == PairEvent.Reason.error)
        #expect(event.message.hasPrefix("action bad-1 refused:"), "\(event.message)")

        let (again, _) = F.step(request, last: record, observation)
        #expect(again.record == nil)
        #expect(again.decision == machine)
    }

    // MARK: Refusals

    @Test("refused: Failed with endTime, the machine's decision kept apart from a Warning event", arguments: refusalRows)
    func refusal(_ row: RefusalRow) throws {
        let observation = F.observation(row.state, row.active, row.standby)
        let (step, machine) = F.step(.success(row.request), observation)
        let record = try #require(step.record)
        #expect(record.id == row.request.id)
        #expect(record.verb == row.request.verb.rawValue)
        #expect(record.pod == row.request.pod)
        #expect(record.state == ActionState.failed)
        #expect(record.startTime == F.now)
        #expect(record.endTime == F.now)
        #expect(record.phase == nil)
        #expect(record.message?.hasPrefix("refused: ") == true, "\(record.message ?? "")")
        #expect(record.message?.contains(row.why) == true, "\(record.message ?? "")")
        var expected = machine
        expected.events.append(PairEvent(.warning, reason: PairEvent.Reason.error,
                                         "\(row.request.verb.rawValue) \(row.request.id) refused: \(record.message?.dropFirst("refused: ".count) ?? "")"))
        #expect(step.decision == expected)
        #expect(step.pollAfter == nil)

        // The same id again: nothing new.
        let (again, _) = F.step(.success(row.request), last: record, observation)
        #expect(again.record == nil)
        #expect(again.decision == machine)
    }

    // MARK: Switchover

    @Test("switchover starts in Normal with both Healthy: fence and unready the active, nothing else")
    func switchoverStarts() throws {
        for pod in [nil, s1] {
            let (step, machine) = F.step(F.ask(.switchover, id: "sw-1", pod: pod), F.observation(.normal, .activeHealthy, .standbyHealthy))
            let record = try #require(step.record)
            #expect(record.state == ActionState.running)
            #expect(record.phase == "fencing")
            #expect(record.pod == s1)
            #expect(record.verb == "switchover")
            #expect(record.startTime == F.now && record.endTime == nil)
            #expect(step.decision.actions == [.fenceAndStop(pod: a0), .clearActive(pod: a0)])
            #expect(step.decision.state == .normal && !step.decision.status.stateChanged)
            #expect(step.decision.status.intendedActive == a0 && !step.decision.status.rolesSwapped)
            #expect(step.decision.status.podStates == machine.status.podStates)
            #expect(step.decision.events.count == 1)
            #expect(step.decision.events.first?.kind == .normal)
            #expect(step.decision.events.first?.message.hasPrefix("switchover sw-1 started: fencing \(a0)") == true)
            #expect(step.pollAfter == nil)
        }
    }

    @Test("switchover in fencing: fences again until the active is fenced, read-only and stopped")
    func switchoverStillFencing() {
        let last = F.running(.switchover, phase: "fencing", pod: s1)
        let (step, _) = F.step(nil, last: last, F.observation(.normal, .activeHealthy, .standbyHealthy))
        #expect(step.record == nil)
        #expect(step.decision.actions == [.fenceAndStop(pod: a0), .clearActive(pod: a0)])
        #expect(step.decision.state == .normal)

        // Fenced but still updatable counts as not fenced yet.
        var active = F.pod(a0, .activeHealthy)
        active.status?.fenced = true
        let (half, _) = F.step(nil, last: last, F.observation(.normal, active, F.pod(s1, .standbyHealthy)))
        #expect(half.record == nil)
        #expect(half.decision.actions == [.fenceAndStop(pod: a0), .clearActive(pod: a0)])

        // Fenced and read-only but still running: its shutdown checkpoint is still to come.
        let (running, _) = F.step(nil, last: last, F.observation(.normal, F.pod(a0, .fencedActive, lsn: "0/10"), F.pod(s1, .standbyHealthy, lsn: "0/10")))
        #expect(running.record == nil)
        #expect(running.decision.actions == [.fenceAndStop(pod: a0), .clearActive(pod: a0)])
    }

    @Test("switchover in fencing: the active lost is a failure left to automatic recovery")
    func switchoverActiveLost() throws {
        let last = F.running(.switchover, phase: "fencing", pod: s1)
        let observation = F.observation(.normal, .unreachableRecent, .standbyHealthy)
        let (step, machine) = F.step(nil, last: last, observation)
        let record = try #require(step.record)
        #expect(record.state == ActionState.failed)
        #expect(record.endTime == F.now)
        #expect(record.message?.contains("automatic recovery takes over") == true)
        #expect(step.decision == machine)
    }

    @Test("switchover in fencing, active fenced and stopped, standby behind: catchup, a fresh read of the standby, poll")
    func switchoverCatchupWaits() throws {
        let last = F.running(.switchover, phase: "fencing", pod: s1)
        let observation = F.observation(.normal, F.pod(a0, .stoppedFencedActive, lsn: "0/3000148"), F.pod(s1, .standbyHealthy, lsn: "0/3000000"))
        let (step, machine) = F.step(nil, last: last, observation)
        let record = try #require(step.record)
        #expect(record.state == ActionState.running)
        #expect(record.phase == "catchup")
        #expect(record.endTime == nil)
        #expect(step.decision.actions == [.readStatus(pod: s1)])
        #expect(step.pollAfter == ManualActionPlanner.pollInterval)
        // The machine sees a fenced active as Down; the action keeps the pair where it is.
        #expect(machine.state != .normal)
        #expect(step.decision.state == .normal && !step.decision.status.stateChanged)
        #expect(step.decision.events.isEmpty)
        #expect(step.decision.status.intendedActive == a0 && !step.decision.status.rolesSwapped)

        // Still behind in catchup: nothing recorded anew, still polling.
        let (waiting, _) = F.step(nil, last: record, observation)
        #expect(waiting.record == nil)
        #expect(waiting.decision.actions == [.readStatus(pod: s1)])
        #expect(waiting.pollAfter == ManualActionPlanner.pollInterval)
        // Unknown positions wait too.
        let unknown = F.observation(.normal, F.pod(a0, .stoppedFencedActive), F.pod(s1, .standbyHealthy))
        // A stopped active reports where its shutdown checkpoint begins: a standby exactly there
        // has not replayed it yet.
        let atCheckpoint = F.observation(.normal, F.pod(a0, .stoppedFencedActive, lsn: "0/3000148"), F.pod(s1, .standbyHealthy, lsn: "0/3000148"))
        #expect(F.step(nil, last: record, atCheckpoint).step.pollAfter == ManualActionPlanner.pollInterval)
        #expect(F.step(nil, last: record, unknown).step.pollAfter == ManualActionPlanner.pollInterval)
    }

    @Test("switchover catchup done: roles swapped into ActiveTakeover, the fenced active before the promotion",
          arguments: [("0/3000148", "0/3000149", true), ("0/3000148", "0/4000000", true), ("0/FFFFFFFF", "1/0", true),
                      ("0/3000148", "0/3000148", false), ("0/3000148", "0/4000000", false)])
    func switchoverPromotes(_ positions: (active: String, standby: String, stopped: Bool)) throws {
        let last = F.running(.switchover, phase: "catchup", pod: s1, id: "sw-9")
        let observation = F.observation(
            .normal, F.pod(a0, positions.stopped ? .stoppedFencedActive : .fencedActive, lsn: positions.active),
            F.pod(s1, .standbyHealthy, lsn: positions.standby))
        let (step, _) = F.step(nil, last: last, observation)
        let record = try #require(step.record)
        #expect(record.state == ActionState.running)
        #expect(record.phase == "promoting")
        #expect(record.pod == s1)
        #expect(record.message?.contains(positions.active) == true, "\(record.message ?? "")")
        let decision = step.decision
        #expect(decision.status.intendedActive == s1)
        #expect(decision.status.intendedStandby == a0)
        #expect(decision.status.rolesSwapped)
        #expect(decision.state == .activeTakeover)
        #expect(decision.status.stateChanged && decision.status.previousState == .normal)
        let promote = try #require(decision.actions.firstIndex(of: .promote(pod: s1)), "\(decision.actions)")
        #expect(decision.actions.contains(.setActive(pod: s1)))
        #expect(!decision.actions.contains(.promote(pod: a0)))
        if let fence = decision.actions.firstIndex(of: .fence(pod: a0)) { #expect(fence < promote) }
        #expect(decision.events.first?.reason == PairEvent.Reason.stateChange)
        #expect(decision.events.first?.message.hasPrefix("Normal -> ActiveTakeover: switchover sw-9") == true)
        #expect(step.pollAfter == nil)
    }

    @Test("switchover catchup: a standby behind at repStateTimeout fails and the old active takes writes again")
    func switchoverCatchupTimesOut() throws {
        let observation = F.observation(.normal, F.pod(a0, .fencedActive, lsn: "16/B374D848"), F.pod(s1, .standbyHealthy, lsn: "16/B3000000"))
        // Just before the timeout: waiting.
        let early = F.step(nil, last: F.running(.switchover, phase: "catchup", pod: s1, startedAgo: 29), observation).step
        #expect(early.record == nil && early.decision.actions == [.readStatus(pod: s1)])

        let last = F.running(.switchover, phase: "catchup", pod: s1, id: "sw-3", startedAgo: 30)
        let (step, _) = F.step(nil, last: last, observation)
        let record = try #require(step.record)
        #expect(record.state == ActionState.failed)
        #expect(record.endTime == F.now)
        #expect(record.message?.contains("did not replay 16/B374D848 within repStateTimeout (30 s; it is at 16/B3000000)") == true,
                "\(record.message ?? "")")
        #expect(step.decision.actions == [.promote(pod: a0), .setActive(pod: a0)])
        #expect(step.decision.status.intendedActive == a0 && !step.decision.status.rolesSwapped)
        #expect(step.decision.state == .normal)
        #expect(step.decision.events.contains { $0.kind == .warning && $0.reason == PairEvent.Reason.taskFailed
            && $0.message.hasPrefix("switchover sw-3 failed") })
    }

    @Test("switchover catchup: an unreachable standby fails at once")
    func switchoverCatchupStandbyUnreachable() throws {
        let observation = F.observation(.normal, F.pod(a0, .fencedActive, lsn: "0/10"), F.pod(s1, .unreachableRecent))
        let (step, _) = F.step(nil, last: F.running(.switchover, phase: "catchup", pod: s1), observation)
        let record = try #require(step.record)
        #expect(record.state == ActionState.failed)
        #expect(record.message?.contains("\(s1) cannot be reached") == true)
        #expect(step.decision.actions == [.promote(pod: a0), .setActive(pod: a0)])
    }

    /// After the swap: sample-1 the intended active, sample-0 its standby.
    static func swapped(_ state: PairState, active: PairFixture.Kind, standby: PairFixture.Kind) -> PairObservation {
        F.observation(state, F.pod(s1, active), F.pod(a0, standby))
    }

    @Test("promoting / reattaching: Succeeded once the machine is Normal with the target the active",
          arguments: ["promoting", "reattaching"], [ManualActionRequest.Verb.switchover, .failover])
    func handOverSucceeds(_ phase: String, _ verb: ManualActionRequest.Verb) throws {
        let last = F.running(verb, phase: phase, pod: s1, id: "h-1")
        let observation = Self.swapped(.standbyCatchup, active: .activeHealthy, standby: .standbyHealthy)
        let (plain, machine) = F.step(nil, last: last, observation)
        #expect(machine.state == .normal && machine.status.intendedActive == s1)
        let record = try #require(plain.record)
        #expect(record.state == ActionState.succeeded)
        #expect(record.endTime == F.now)
        #expect(record.method == nil)
        #expect(record.message == "\(s1) is the active; \(a0) is its standby")
        #expect(plain.decision.actions == machine.actions)
        #expect(plain.decision.events.last == PairEvent(.normal, reason: PairEvent.Reason.info, "\(verb.rawValue) h-1 succeeded: \(record.message ?? "")"))

        let job = AgentJobStatus(id: "job-7", state: .succeeded, method: "rewind")
        let rewound = try #require(F.step(nil, last: last, observation, job: job).step.record)
        #expect(rewound.state == ActionState.succeeded)
        #expect(rewound.method == "rewind")
        #expect(rewound.message?.hasSuffix("(re-attached by rewind)") == true, "\(rewound.message ?? "")")
    }

    @Test("promoting: reattaching once the target writes, then waiting; BothDown fails")
    func handOverProgress() throws {
        let last = F.running(.switchover, phase: "promoting", pod: s1)
        // The new active writes; the old one, fenced, is to be re-attached.
        let observation = Self.swapped(.activeTakeover, active: .activeHealthy, standby: .fencedActive)
        let (step, machine) = F.step(nil, last: last, observation)
        #expect(machine.state != .normal)
        let record = try #require(step.record)
        #expect(record.state == ActionState.running)
        #expect(record.phase == "reattaching")
        #expect(record.message == "\(s1) is the active; re-attaching \(a0)")
        #expect(step.decision == machine)
        // Again: nothing new.
        let (again, _) = F.step(nil, last: record, observation)
        #expect(again.record == nil)
        #expect(again.decision == machine)
        // Not yet writable: still promoting, nothing recorded.
        let (early, _) = F.step(nil, last: last, Self.swapped(.activeTakeover, active: .standbyHealthy, standby: .fencedActive))
        #expect(early.record == nil)
        // Both pods down.
        let (down, _) = F.step(nil, last: record, Self.swapped(.bothDown, active: .crashed, standby: .crashed))
        #expect(down.record?.state == ActionState.failed)
        #expect(down.record?.message == "both pods went down")
    }

    @Test("a running action refuses a new id with a Warning event and carries on", arguments: [
        (F.running(.failover, phase: "promoting", pod: s1), ManualActionTests.swapped(.activeTakeover, active: .standbyHealthy, standby: .fencedActive)),
        (F.running(.switchover, phase: "fencing", pod: s1), F.observation(.normal, .activeHealthy, .standbyHealthy)),
        (F.running(.switchover, phase: "catchup", pod: s1),
         F.observation(.normal, F.pod(a0, .fencedActive, lsn: "0/20"), F.pod(s1, .standbyHealthy, lsn: "0/10"))),
        (F.running(.reduplicate, phase: "starting", pod: s1), F.observation(.standbyDown, .activeHealthy, .standbyHealthy)),
    ])
    func runningRefusesAnother(_ last: ActionRecord, _ observation: PairObservation) throws {
        let alone = F.step(nil, last: last, observation).step
        let (step, _) = F.step(F.ask(.reduplicate, id: "other-2", pod: s1), last: last, observation)
        let warning = step.decision.events.first { $0.kind == .warning && $0.reason == PairEvent.Reason.error }
        #expect(warning?.message == "action other-2 (reduplicate) refused: action act-1 (\(last.verb ?? "")) is still running",
                "phase \(last.phase ?? ""): events \(step.decision.events)")
        // Otherwise the running action goes on as if nothing were asked.
        #expect(step.record == alone.record)
        #expect(step.decision.actions == alone.decision.actions)
        #expect(step.decision.status == alone.decision.status)
        #expect(step.pollAfter == alone.pollAfter)
        #expect(step.record?.id ?? last.id == last.id)
        // The same id as the running one is no new request: no warning.
        let (same, _) = F.step(F.ask(.switchover, id: last.id), last: last, observation)
        #expect(same.decision.events == alone.decision.events)
    }

    @Test("a running action fails when the pair goes ManualInterventionRequired or Failed", arguments: [PairState.manualInterventionRequired, .failed])
    func runningHandsOff(_ state: PairState) throws {
        for last in [F.running(.switchover, phase: "catchup", pod: s1), F.running(.reduplicate, phase: "copying", pod: s1)] {
            let (step, machine) = F.step(nil, last: last, F.observation(state, .activeHealthy, .standbyHealthy))
            let record = try #require(step.record)
            #expect(record.state == ActionState.failed)
            #expect(record.endTime == F.now)
            #expect(record.message == "the pair went \(state.rawValue)")
            #expect(step.decision == machine)
            #expect(step.decision.actions.isEmpty)
        }
    }

    @Test("a running action of a verb this engine does not know fails")
    func unknownVerb() throws {
        var last = F.running(.switchover, phase: "fencing", pod: s1)
        last.verb = "restart"
        let (step, machine) = F.step(nil, last: last, F.observation(.normal, .activeHealthy, .standbyHealthy))
        #expect(step.record?.state == ActionState.failed)
        #expect(step.record?.message == "this engine does not know how to continue restart in phase fencing")
        #expect(step.record?.endTime == F.now)
        #expect(step.decision == machine)
    }

    @Test("a running switchover or failover in a phase this engine does not know fails rather than running forever",
          arguments: [ManualActionRequest.Verb.switchover, .failover])
    func unknownPhase(_ verb: ManualActionRequest.Verb) throws {
        let (step, machine) = F.step(nil, last: F.running(verb, phase: "teleporting", pod: s1), F.observation(.normal, .activeHealthy, .standbyHealthy))
        #expect(step.record?.state == ActionState.failed, "record: \(String(describing: step.record))")
        #expect(step.record?.message?.contains("phase teleporting") == true)
        #expect(step.decision == machine)
    }

    // MARK: Failover

    @Test("failover with a healthy standby: roles swapped into ActiveTakeover, promoting")
    func failoverStarts() throws {
        let (step, _) = F.step(F.ask(.failover, id: "fo-1"), F.observation(.normal, .activeHealthy, .standbyHealthy))
        let record = try #require(step.record)
        #expect(record.state == ActionState.running)
        #expect(record.phase == "promoting")
        #expect(record.pod == s1)
        #expect(record.message == "promoting \(s1)")
        let decision = step.decision
        #expect(decision.status.rolesSwapped)
        #expect(decision.status.intendedActive == s1 && decision.status.intendedStandby == a0)
        #expect(decision.state == .activeTakeover && decision.status.stateChanged && decision.status.previousState == .normal)
        // The old active still writes: it is fenced before the promotion, and made not Ready.
        let fence = try #require(decision.actions.firstIndex(of: .fence(pod: a0)), "\(decision.actions)")
        let promote = try #require(decision.actions.firstIndex(of: .promote(pod: s1)), "\(decision.actions)")
        #expect(fence < promote)
        #expect(decision.actions.contains(.setActive(pod: s1)))
        #expect(decision.actions.contains(.clearActive(pod: a0)))
        #expect(decision.events.first?.message.hasPrefix("failover fo-1 started") == true)
        #expect(decision.events.contains { $0.reason == PairEvent.Reason.stateChange && $0.message.hasPrefix("Normal -> ActiveTakeover: failover fo-1") })
    }

    // MARK: Reduplicate

    @Test("reduplicate of the standby: StandbyDown and a copy from the active, fencing first only a standby that may write",
          arguments: [(PairFixture.Kind.standbyHealthy, false), (.activeHealthy, true)])
    func reduplicateStarts(_ standby: PairFixture.Kind, _ fences: Bool) throws {
        let (step, _) = F.step(F.ask(.reduplicate, id: "rd-1", pod: s1), F.observation(.normal, .activeHealthy, standby))
        let record = try #require(step.record)
        #expect(record.state == ActionState.running)
        #expect(record.phase == "starting")
        #expect(record.pod == s1)
        let expected: [PairAction] = (fences ? [.fence(pod: s1)] : []) + [.copyWhole(pod: s1, from: a0)]
        #expect(step.decision.actions == expected)
        #expect(step.decision.state == .standbyDown)
        #expect(step.decision.status.stateChanged && step.decision.status.previousState == .normal)
        #expect(step.decision.status.intendedActive == a0 && !step.decision.status.rolesSwapped)
        #expect(step.decision.events.first?.message.hasPrefix("reduplicate rd-1 started") == true)
        #expect(step.decision.events.contains { $0.message.hasPrefix("Normal -> StandbyDown: reduplicate rd-1") })
    }

    @Test("reduplicate starting: copying once the standby is being duplicated, else the copy is asked again")
    func reduplicateStarting() throws {
        let last = F.running(.reduplicate, phase: "starting", pod: s1)
        let (copying, machine) = F.step(nil, last: last, F.observation(.standbyDown, .activeHealthy, .duplicating))
        let record = try #require(copying.record)
        #expect(record.phase == "copying")
        #expect(record.state == ActionState.running)
        #expect(copying.pollAfter == ManualActionPlanner.progressInterval)
        #expect(copying.decision == machine)

        // Not being copied yet: the copy is asked again (a crashed standby cannot write: no fence).
        let (again, _) = F.step(nil, last: last, F.observation(.standbyDown, .activeHealthy, .crashed))
        #expect(again.record == nil)
        #expect(again.decision.actions == [.copyWhole(pod: s1, from: a0)])
        #expect(again.decision.state == .standbyDown && !again.decision.status.stateChanged)
        #expect(again.decision.events.isEmpty)
        // A standby that may write is fenced first.
        let (writable, _) = F.step(nil, last: last, F.observation(.standbyDown, .activeHealthy, .activeHealthy))
        #expect(writable.decision.actions == [.fence(pod: s1), .copyWhole(pod: s1, from: a0)])

        // The target became the active meanwhile: the copy is not started.
        let (turned, _) = F.step(nil, last: last, Self.swapped(.standbyDown, active: .activeHealthy, standby: .crashed))
        #expect(turned.record?.state == ActionState.failed)
        #expect(!(turned.decision.actions.contains(.duplicate(pod: s1, from: a0))))
    }

    @Test("reduplicate copying: progress, failure, success")
    func reduplicateCopying() throws {
        let last = F.running(.reduplicate, phase: "copying", pod: s1, id: "rd-2")
        let copying = F.observation(.standbyDown, .activeHealthy, .duplicating)

        let job = AgentJobStatus(id: "job-1", state: .running, bytesDone: 1_000, bytesTotal: 4_000)
        let (progress, machine) = F.step(nil, last: last, copying, job: job)
        let record = try #require(progress.record)
        #expect(record.bytesDone == 1_000 && record.bytesTotal == 4_000)
        #expect(record.state == ActionState.running && record.phase == "copying")
        #expect(progress.pollAfter == ManualActionPlanner.progressInterval)
        #expect(progress.decision == machine)
        // The same bytes again: no new record, still polling.
        let (same, _) = F.step(nil, last: record, copying, job: job)
        #expect(same.record == nil)
        #expect(same.pollAfter == ManualActionPlanner.progressInterval)

        let (failed, _) = F.step(nil, last: record, copying, job: AgentJobStatus(id: "job-1", state: .failed), jobError: "pg_basebackup: disk full")
        #expect(failed.record?.state == ActionState.failed)
        #expect(failed.record?.message == "the copy failed: pg_basebackup: disk full")
        #expect(failed.record?.endTime == F.now)

        // Copied and streaming: Normal with the target the standby.
        let done = F.observation(.standbyCatchup, .activeHealthy, .standbyHealthy)
        for (method, expected) in [("basebackup", "basebackup"), (nil, "basebackup"), ("rewind", "rewind")] as [(String?, String)] {
            let finished = AgentJobStatus(id: "job-1", state: .succeeded, bytesDone: 4_000, bytesTotal: 4_000, method: method)
            let (succeeded, machine) = F.step(nil, last: record, done, job: finished)
            #expect(machine.state == .normal)
            let final = try #require(succeeded.record)
            #expect(final.state == ActionState.succeeded)
            #expect(final.method == expected)
            #expect(final.bytesDone == 4_000 && final.bytesTotal == 4_000)
            #expect(final.endTime == F.now)
            #expect(final.message == "\(s1) was copied again from \(a0) and streams from it")
            #expect(succeeded.decision.events.last?.message.hasPrefix("reduplicate rd-2 succeeded") == true)
        }
        // Copied, not Normal yet: nothing recorded.
        let (catching, _) = F.step(nil, last: record, F.observation(.standbyDown, .activeHealthy, .standbyCatchingUp),
                                   job: AgentJobStatus(id: "job-1", state: .succeeded))
        #expect(catching.record == nil)
    }

    // MARK: ActionProgress

    static func record(_ verb: String, _ state: String, phase: String? = nil, message: String? = nil, done: Int? = nil, total: Int? = nil)
        -> ActionRecord
    {
        var record = ActionRecord(id: "r1")
        record.verb = verb
        record.state = state
        record.phase = phase
        record.message = message
        record.bytesDone = done
        record.bytesTotal = total
        return record
    }

    @Test("ActionProgress.line")
    func progressLine() {
        let copying = Self.record("reduplicate", ActionState.running, phase: "copying", message: "copying", done: 1_572_864, total: 3_145_728)
        #expect(ActionProgress.line(copying, width: 1000)
            == "reduplicate r1: Running (copying) [██████████░░░░░░░░░░] 50% 1.5 MiB / 3.0 MiB")
        #expect(ActionProgress.line(copying, width: 1000, unicode: false)
            == "reduplicate r1: Running (copying) [##########..........] 50% 1.5 MiB / 3.0 MiB")
        let over = Self.record("reduplicate", ActionState.running, phase: "copying", done: 5_000, total: 4_000)
        #expect(ActionProgress.line(over, width: 1000, unicode: false) == "reduplicate r1: Running (copying) [####################] 100% 4.9 KiB / 3.9 KiB")
        let unsized = Self.record("reduplicate", ActionState.running, phase: "starting", message: "copying \(s1) again from \(a0)", done: 0, total: 0)
        #expect(ActionProgress.line(unsized, width: 1000) == "reduplicate r1: Running (starting): copying \(s1) again from \(a0)")
        let fencing = Self.record("switchover", ActionState.running, phase: "fencing", message: "fencing \(a0)")
        #expect(ActionProgress.line(fencing) == "switchover r1: Running (fencing): fencing \(a0)")
        let succeeded = Self.record("reduplicate", ActionState.succeeded, phase: "copying", message: "done", done: 10, total: 10)
        #expect(ActionProgress.line(succeeded) == "reduplicate r1: Succeeded: done")
        #expect(ActionProgress.line(ActionRecord(id: "r2")) == "action r2: Pending")

        let long = ActionProgress.line(fencing, width: 20)
        #expect(long.count == 20)
        #expect(long == "switchover r1: Runn…")
        #expect(ActionProgress.line(fencing, width: 1).count > 20)
    }

    static let byteRows: [(Int64, String)] = [
        (0, "0 B"), (512, "512 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536, "1.5 KiB"), (3 << 20, "3.0 MiB"),
        (5 << 30, "5.0 GiB"), (2 << 40, "2.0 TiB"), (4096 << 40, "4096.0 TiB"),
    ]

    @Test("ActionProgress.bytes", arguments: byteRows)
    func progressBytes(_ value: Int64, _ expected: String) {
        #expect(ActionProgress.bytes(value) == expected)
    }
}
