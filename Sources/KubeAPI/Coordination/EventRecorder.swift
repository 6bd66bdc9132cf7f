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

    private struct AggregationKey: Hashable {
        var objectUID: String
        var objectKind: String
        var objectKey: ObjectKey
        var type: String
        var reason: String
        var message: String
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
    public func record(_ object: some JSONBacked, type: EventType, reason: String, message: String, now: Date = Date()) async -> CoreEvent? {
        let namespace = object.metadata.namespace ?? "default"
        let key = AggregationKey(
            objectUID: object.metadata.uid ?? "", objectKind: object.kind ?? "", objectKey: object.key, type: type.rawValue,
            reason: reason, message: message)
        if let previous = recorded[key] {
            let count = previous.count + 1
            let patch: JSONValue = ["count": .int(Int64(count)), "lastTimestamp": .string(KubeTime.format(now))]
            do {
                let updated = try await client.patch(
                    CoreEvent.self, name: previous.eventName, namespace: previous.namespace, patchType: .merge, patch: patch)
                recorded[key]?.count = count
                return updated
            } catch {
                // The Event may have expired (events have a TTL); record it afresh.
                recorded[key] = nil
            }
        }
        var event = CoreEvent(name: Self.eventName(for: object, now: now), namespace: namespace)
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
            let created = try await client.create(event)
            if recorded.count >= maxCacheEntries { recorded.removeAll(keepingCapacity: true) }
            recorded[key] = Recorded(eventName: created.metadata.name ?? event.name, namespace: namespace, count: 1)
            return created
        } catch {
            logger.warning("could not record event", metadata: ["reason": "\(reason)", "object": "\(object.key)", "error": "\(error)"])
            return nil
        }
    }

    /// `<object name>.<hex nanoseconds>`, client-go's naming.
    static func eventName(for object: some JSONBacked, now: Date) -> String {
        let nanos = UInt64(max(0, now.timeIntervalSince1970) * 1e9)
        return "\(object.metadata.name ?? "object").\(String(nanos, radix: 16))"
    }
}
