import Foundation
import Logging

/// Records core/v1 Events about objects, the ones `kubectl describe` shows.
///
/// As client-go's event correlator does, an event identical to an earlier one (same object,
/// type, reason, message and source) is not created again: the existing Event's `count` goes up
/// and its `lastTimestamp` moves. Recording never throws; a failure is logged.
public actor EventRecorder {
    public enum EventType: String, Sendable {
        case normal = "Normal"
        case warning = "Warning"
    }

    /// What makes two events the same: the object (uid, kind, namespace and name), type, reason
    /// and message, joined into one string, so that each of the cache's thousands of slots holds
    /// one string rather than six.
    private struct AggregationKey: Hashable {
        let text: String

        init(objectUID: String, objectKind: String, objectKey: ObjectKey, type: String, reason: String, message: String) {
            text = [objectUID, objectKind, objectKey.description, type, reason, message].joined(separator: "\u{0}")
        }
    }

    private struct Recorded {
        var eventName: String
        var namespace: String
        var count: Int
    }

    private let client: KubeClient
    private let component: String
    private let instance: String
    private let logger: Logger
    private var recorded: [AggregationKey: Recorded] = [:]
    private let maxCacheEntries = 4096

    public init(client: KubeClient, component: String, instance: String = ProcessInfo.processInfo.hostName,
                logger: Logger = Logger(label: "tenops.events")) {
        self.client = client
        self.component = component
        self.instance = instance
        self.logger = logger
    }

    /// Records an event and returns the Event as stored (nil when the API refused it).
    @discardableResult
    public func record(_ object: some APIObject, type: EventType, reason: String, message: String, now: Date = Date()) async -> CoreEvent? {
        let namespace = object.metadata.namespace ?? "default"
        let key = AggregationKey(
            objectUID: object.metadata.uid ?? "", objectKind: object.kind ?? "", objectKey: object.key, type: type.rawValue,
            reason: reason, message: message)
        // The cache is updated before any await, so that concurrent calls for the same event
        // (the actor is reentrant at awaits) count up instead of creating twice.
        if var previous = recorded[key] {
            previous.count += 1
            recorded[key] = previous
            let patch: JSONValue = ["count": .int(Int64(previous.count)), "lastTimestamp": .string(KubeTime.format(now))]
            do {
                return try await client.patch(
                    CoreEvent.self, name: previous.eventName, namespace: previous.namespace, patchType: .merge, patch: patch)
            } catch {
                // The Event may have expired (events have a TTL); record it afresh.
                recorded[key] = nil
            }
        }
        if recorded.count >= maxCacheEntries { recorded.removeAll(keepingCapacity: true) }
        let name = Self.eventName(for: object, now: now)
        recorded[key] = Recorded(eventName: name, namespace: namespace, count: 1)
        var event = CoreEvent(name: name, namespace: namespace)
        event.involvedObject = ObjectReference(object)
        event.type = type.rawValue
        event.reason = reason
        event.message = message
        event.count = 1
        event.firstTimestamp = now
        event.lastTimestamp = now
        event.sourceComponent = component
        event.reportingComponent = component
        event.reportingInstance = instance
        do {
            return try await client.create(event)
        } catch {
            recorded[key] = nil
            logger.warning("could not record event", metadata: ["reason": "\(reason)", "object": "\(object.key)", "error": "\(error)"])
            return nil
        }
    }

    /// `<object name>.<hex nanoseconds>`, client-go's naming.
    static func eventName(for object: some APIObject, now: Date) -> String {
        let nanos = UInt64(max(0, now.timeIntervalSince1970) * 1e9)
        return "\(object.metadata.name ?? "object").\(String(nanos, radix: 16))"
    }
}
