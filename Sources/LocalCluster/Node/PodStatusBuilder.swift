import Foundation
import KubeAPI

/// How a container instance ended, as `state.terminated` / `lastState.terminated` say it.
struct Termination: Sendable, Equatable {
    var exitCode: Int
    var signal: Int?
    /// Completed (exit 0), Error, StartError (the program could not be started) or Unknown (lost
    /// with a node that went down).
    var reason: String
    var message: String?
    var startedAt: Date?
    var finishedAt: Date

    init(exitCode: Int, signal: Int? = nil, reason: String, message: String? = nil, startedAt: Date?, finishedAt: Date) {
        self.exitCode = exitCode
        self.signal = signal
        self.reason = reason
        self.message = message
        self.startedAt = startedAt
        self.finishedAt = finishedAt
    }

    init(_ status: ExitStatus, startedAt: Date?, finishedAt: Date) {
        self.init(exitCode: status.reportedCode, signal: status.signal.map(Int.init), reason: status.succeeded ? "Completed" : "Error",
                  startedAt: startedAt, finishedAt: finishedAt)
    }

    /// The state of a container whose process was lost with the node (a node restart, a power-off).
    static func lostWithNode(at date: Date) -> Termination {
        Termination(exitCode: 255, reason: "Unknown", message: "the node stopped the container", startedAt: nil, finishedAt: date)
    }

    var json: JSONObject {
        var object: JSONObject = ["exitCode": .int(Int64(exitCode)), "reason": .string(reason),
                                  "finishedAt": .string(KubeTime.format(finishedAt))]
        if let signal { object["signal"] = .int(Int64(signal)) }
        if let message { object["message"] = .string(message) }
        if let startedAt { object["startedAt"] = .string(KubeTime.format(startedAt)) }
        return ["terminated": .object(object)]
    }
}

/// One entry of `status.containerStatuses`.
struct ContainerReport: Sendable, Equatable {
    enum State: Sendable, Equatable {
        case waiting(reason: String, message: String?)
        case running(startedAt: Date)
        case terminated(Termination)

        var json: JSONObject {
            switch self {
            case .waiting(let reason, let message):
                var waiting: JSONObject = ["reason": .string(reason)]
                if let message { waiting["message"] = .string(message) }
                return ["waiting": .object(waiting)]
            case .running(let startedAt):
                return ["running": ["startedAt": .string(KubeTime.format(startedAt))]]
            case .terminated(let termination):
                return termination.json
            }
        }
    }

    var name: String
    var image: String
    var state: State
    var lastTermination: Termination?
    var restartCount: Int
    var ready: Bool
    var started: Bool
    /// `tenops://PID` while a process runs.
    var containerID: String?

    var isRunning: Bool { if case .running = state { return true } else { return false } }

    var json: JSONObject {
        var object: JSONObject = [
            "name": .string(name), "image": .string(image), "imageID": "", "state": .object(state.json),
            "lastState": .object(lastTermination?.json ?? [:]), "restartCount": .int(Int64(restartCount)),
            "ready": .bool(ready), "started": .bool(started),
        ]
        if let containerID { object["containerID"] = .string(containerID) }
        return object
    }
}

/// A pod's status from its containers' reports: phase, conditions and container statuses, as
/// the kubelet computes them.
enum PodStatusBuilder {
    /// The kubelet's phase rules: Pending while a container waits to start for the first time;
    /// Running while one runs or will run again; once every container has stopped for good,
    /// Succeeded if all exited 0, else Failed.
    static func phase(_ containers: [ContainerReport], restartPolicy: String) -> String {
        var waiting = 0, running = 0, stopped = 0, succeeded = 0
        for container in containers {
            switch container.state {
            case .running: running += 1
            case .terminated(let termination):
                stopped += 1
                if termination.exitCode == 0 { succeeded += 1 }
            case .waiting: if container.lastTermination != nil { stopped += 1 } else { waiting += 1 }
            }
        }
        if containers.isEmpty || waiting > 0 { return "Pending" }
        if running > 0 { return "Running" }
        switch restartPolicy {
        case "Never": return stopped == succeeded ? "Succeeded" : "Failed"
        case "OnFailure": return stopped == succeeded ? "Succeeded" : "Running"
        default: return "Running"
        }
    }

    /// The condition types the node owns; other types (readiness gates, a controller's) are kept.
    static let ownConditions = ["Initialized", "Ready", "ContainersReady", "PodScheduled"]

    static func conditions(phase: String, containers: [ContainerReport], existing: [Condition], now: Date) -> [Condition] {
        let unready = containers.filter { !$0.ready }.map(\.name)
        let terminal = phase == "Succeeded" || phase == "Failed"
        let readiness: (status: String, reason: String?, message: String?)
        if terminal {
            readiness = ("False", "PodCompleted", nil)
        } else if unready.isEmpty, !containers.isEmpty {
            readiness = ("True", nil, nil)
        } else {
            readiness = ("False", "ContainersNotReady", "containers with unready status: [\(unready.joined(separator: " "))]")
        }
        let wanted: [(String, String, String?, String?)] = [
            ("Initialized", "True", nil, nil),
            ("Ready", readiness.status, readiness.reason, readiness.message),
            ("ContainersReady", readiness.status, readiness.reason, readiness.message),
            ("PodScheduled", "True", nil, nil),
        ]
        var result = wanted.map { type, status, reason, message in
            let previous = existing[type: type]
            let since = previous?.status == status ? previous?.lastTransitionTime ?? now : now
            return Condition(type: type, status: status, reason: reason, message: message, lastTransitionTime: since)
        }
        result += existing.filter { !ownConditions.contains($0.type) }
        return result
    }

    /// The `status` object the node writes.
    static func status(containers: [ContainerReport], restartPolicy: String, existingConditions: [Condition], podIP: String?,
                       hostIP: String, startTime: Date?, now: Date) -> JSONObject {
        let phase = phase(containers, restartPolicy: restartPolicy)
        var status: JSONObject = [
            "phase": .string(phase),
            "conditions": .array(conditions(phase: phase, containers: containers, existing: existingConditions, now: now).map { .object($0.json) }),
            "containerStatuses": .array(containers.map { .object($0.json) }),
            "hostIP": .string(hostIP),
            "hostIPs": [["ip": .string(hostIP)]],
        ]
        if let podIP {
            status["podIP"] = .string(podIP)
            status["podIPs"] = [["ip": .string(podIP)]]
        }
        if let startTime { status["startTime"] = .string(KubeTime.format(startTime)) }
        return status
    }
}
