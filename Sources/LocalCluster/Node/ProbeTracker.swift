/// The result of one kind of probe for one container instance, with the kubelet's thresholds:
/// the result turns to passed after `successThreshold` successes in a row, and to failed after
/// `failureThreshold` failures in a row.
///
/// A readiness probe starts out failed (not ready until it passes), a liveness probe starts out
/// passed, and a startup probe starts out failed (not started until it passes).
struct ProbeTracker: Sendable, Equatable {
    let successThreshold: Int
    let failureThreshold: Int
    private(set) var passed: Bool
    private var successes = 0
    private var failures = 0

    init(kind: ProbeKind, successThreshold: Int = 1, failureThreshold: Int = 3) {
        self.successThreshold = max(1, successThreshold)
        self.failureThreshold = max(1, failureThreshold)
        passed = kind == .liveness
    }

    /// What one run means: `.passed` or `.failed` when a threshold is reached, else `.unchanged`.
    /// `.failed` comes once per run of failures, also for a probe that never passed (a startup
    /// probe that runs out of attempts).
    mutating func record(success: Bool) -> ProbeVerdict {
        if success {
            successes += 1
            failures = 0
            guard !passed, successes >= successThreshold else { return .unchanged }
            passed = true
            return .passed
        }
        failures += 1
        successes = 0
        guard failures == failureThreshold else { return .unchanged }
        passed = false
        return .failed
    }
}

enum ProbeVerdict: Sendable, Equatable {
    case unchanged, passed, failed
}

/// What a probe decides.
enum ProbeKind: String, Sendable, CaseIterable {
    case startup, liveness, readiness

    /// The container field that holds this probe.
    var field: String { "\(rawValue)Probe" }
}
