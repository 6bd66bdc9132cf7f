import Foundation
import KubeAPI

/// One container of a pod on this node: its spec, what is reported about it, and the process
/// and probes of its current instance.
struct ContainerSlot: Sendable {
    let spec: Container
    var report: ContainerReport
    /// Bumped at every start attempt; events of an older attempt are stale.
    var generation = 0
    /// Whether an instance ever ran (here or before a node restart): the next start is a restart.
    var hasRun = false
    /// Terminated for good: the restart policy keeps it down.
    var finished = false
    var leader: GroupLeader?
    var startedAt: Date?
    var backoff: RestartBackoff
    /// Retries of a start that failed before a process ran (configuration, volumes).
    var setupRetry = RestartBackoff.setupRetry
    var trackers: [ProbeKind: ProbeTracker] = [:]
    var probeTasks: [Task<Void, Never>] = []
    /// Runs the probes of the current instance (kept for the probes that follow a startup probe).
    var probeRunner: ProbeRunner?
    var timer: Task<Void, Never>?

    var name: String { spec.name }

    /// A slot for a container that has not started on this node yet. `previous` is its last
    /// status in the API: a container that ran before (the node restarted, or was powered off)
    /// counts its next start as a restart, and one that ended for good stays ended.
    init(spec: Container, previous: ContainerStatus?, restartPolicy: String, backoff: RestartBackoff, now: Date) {
        self.spec = spec
        self.backoff = backoff
        report = ContainerReport(name: spec.name, image: spec.image ?? "", state: .waiting(reason: "ContainerCreating", message: nil),
                                 lastTermination: nil, restartCount: previous?.restartCount ?? 0, ready: false, started: false)
        guard let previous else { return }
        let last = previous.json["lastState"]?["terminated"].objectValue.map(Termination.init(json:))
        if let ended = previous.state["terminated"]?.objectValue.map(Termination.init(json:)) {
            hasRun = true
            if Self.restarts(policy: restartPolicy, exitCode: ended.exitCode) {
                report.lastTermination = ended
            } else {
                report.state = .terminated(ended)
                report.lastTermination = last
                finished = true
            }
        } else if previous.isRunning {
            hasRun = true
            report.lastTermination = .lostWithNode(at: now)
        } else if let last {
            hasRun = true
            report.lastTermination = last
        }
    }

    /// Whether the restart policy restarts a container that exited with `exitCode`.
    static func restarts(policy: String, exitCode: Int) -> Bool {
        switch policy {
        case "Never": return false
        case "OnFailure": return exitCode != 0
        default: return true
        }
    }

    func probe(_ kind: ProbeKind) -> ProbeSpec? {
        spec.json[kind.field]?.objectValue.flatMap(ProbeSpec.init(json:))
    }

    /// Ready: running, started, and passing its readiness probe if it has one.
    var isReady: Bool {
        report.isRunning && report.started && (trackers[.readiness]?.passed ?? true)
    }

    mutating func stopProbes() {
        probeTasks.forEach { $0.cancel() }
        probeTasks = []
    }

    mutating func cancelTimer() {
        timer?.cancel()
        timer = nil
    }
}

extension RestartBackoff {
    /// For starts that fail before a process runs: 1 s, then doubling to 10 s.
    static let setupRetry = RestartBackoff(initial: .seconds(1), maximum: .seconds(10), resetAfter: .seconds(86_400))
}

extension Termination {
    init(json: JSONObject) {
        let value = JSONValue.object(json)
        self.init(exitCode: value["exitCode"].intValue.map(Int.init) ?? 0, signal: value["signal"].intValue.map(Int.init),
                  reason: value["reason"].stringValue ?? "Unknown", message: value["message"].stringValue,
                  startedAt: value["startedAt"].stringValue.flatMap(KubeTime.parse),
                  finishedAt: value["finishedAt"].stringValue.flatMap(KubeTime.parse) ?? Date())
    }
}
