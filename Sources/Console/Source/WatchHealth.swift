import Foundation
import KubeAPI
import Logging
import Synchronization

/// How the API server answers the console's watches, learnt from the informers themselves: an
/// informer reports each failed list or watch (with its retry delay) through its logger, and
/// says nothing while a watch stays open. A failure therefore counts until its retry should
/// have failed too: when no new failure has come by then, the retry holds.
///
/// No request of its own: the console never polls the API server.
public final class WatchHealth: Sendable {
    /// How long after a retry was due a failure still counts: the retry's own time to fail.
    static let grace: Duration = .seconds(3)
    /// Failures in a row that make the server unreachable rather than troubled.
    static let unreachableAfter = 3

    struct Failure: Equatable {
        var message: String
        var expires: ContinuousClock.Instant
        var consecutive: Int
        /// The server could not be reached at all (no answer), rather than answered with an error.
        var transport: Bool
    }

    private let failures = Mutex<[String: Failure]>([:])

    public init() {}

    /// Records a failed list or watch of `resource`, retried after `retry`. Returns when the
    /// failure stops counting unless another comes.
    @discardableResult
    public func failed(_ resource: String, message: String, retry: Duration, now: ContinuousClock.Instant = .now) -> ContinuousClock.Instant {
        failures.withLock { failures in
            let previous = failures[resource].flatMap { $0.expires > now ? $0 : nil }
            let summary = Self.summary(message)
            let failure = Failure(message: summary.text, expires: now + retry + Self.grace,
                                  consecutive: (previous?.consecutive ?? 0) + 1, transport: summary.transport)
            failures[resource] = failure
            return failure.expires
        }
    }

    /// The health now: the worst current failure, or `.ok`.
    public func health(now: ContinuousClock.Instant = .now, synced: Bool = true) -> APIHealth {
        let current = failures.withLock { failures in
            failures.filter { $0.value.expires > now }.sorted { $0.key < $1.key }
        }
        if let worst = current.max(by: { $0.value.consecutive < $1.value.consecutive }) {
            let text = "\(worst.key): \(worst.value.message)"
            return worst.value.transport || worst.value.consecutive >= Self.unreachableAfter ? .unreachable(text) : .degraded(text)
        }
        return synced ? .ok : .degraded("syncing")
    }

    /// A logger for an informer of `resource`: it logs as `base` does, and its warnings about
    /// failed watches feed this record. `changed` is called when the health may have changed
    /// (at the failure, and when it expires).
    public func logger(for resource: String, base: Logger, changed: @escaping @Sendable () -> Void) -> Logger {
        Logger(label: base.label) { _ in
            HealthLogHandler(inner: base.handler, innerLevel: base.logLevel, resource: resource, health: self, changed: changed)
        }
    }

    /// What the header can show of an error: a transport error's last clause (curl's own words,
    /// without the request's URL), anything else as it is.
    static func summary(_ message: String) -> (text: String, transport: Bool) {
        let prefix = "transport error: "
        guard message.hasPrefix(prefix) else { return (message, false) }
        let clauses = message.dropFirst(prefix.count).components(separatedBy: ": ")
        return (clauses.last.flatMap { $0.isEmpty ? nil : $0 } ?? String(message.dropFirst(prefix.count)), true)
    }

    /// `"…retrying in 0.4 seconds"` → 0.4 s; an unknown form counts as the informer's cap.
    static func retryDelay(in message: String) -> Duration {
        guard let range = message.range(of: "retrying in ") else { return .seconds(30) }
        let number = message[range.upperBound...].prefix { $0.isNumber || $0 == "." || $0 == "e" || $0 == "-" }
        return Double(number).map { .seconds($0) } ?? .seconds(30)
    }
}

/// Passes records at the base logger's level on, and reports the informer's failures to
/// `WatchHealth` whatever that level (it sees warnings even when the base logs only errors).
struct HealthLogHandler: LogHandler {
    var inner: any LogHandler
    var innerLevel: Logger.Level
    let resource: String
    let health: WatchHealth
    let changed: @Sendable () -> Void

    var logLevel: Logger.Level {
        get { min(innerLevel, .warning) }
        set { innerLevel = newValue }
    }

    var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = newValue }
    }

    func log(event: LogEvent) {
        let text = "\(event.message)"
        if event.level >= .warning, text.contains("watch failed") {
            let error = event.metadata?["error"].map { "\($0)" } ?? text
            let expires = health.failed(resource, message: error, retry: WatchHealth.retryDelay(in: text))
            changed()
            let changed = changed
            Task {
                try? await Task.sleep(until: expires, clock: .continuous)
                changed()
            }
        }
        if event.level >= innerLevel { inner.log(event: event) }
    }
}
