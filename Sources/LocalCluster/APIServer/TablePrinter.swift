import Foundation
import KubeAPI

/// Server-side printing: `meta.k8s.io/v1` Table answers, which is what `kubectl get` asks for.
/// CRDs print their additionalPrinterColumns; built-in kinds print kubectl's usual columns. Pure.
enum TablePrinter {
    struct Column {
        var name: String
        var type: String
        var format: String
        var description: String
        var priority: Int
        var cell: (JSONObject, Date) -> JSONValue
    }

    /// Whether an Accept header asks for a Table.
    static func wantsTable(_ accept: String) -> Bool {
        accept.split(separator: ",").first.map { $0.contains("as=Table") } ?? false
    }

    static func table(for resource: ServedResource, objects: [JSONObject], resourceVersion: Int64, continueToken: String?,
                      includeObject: String, now: Date) -> JSONValue {
        let columns = self.columns(for: resource)
        var metadata: JSONObject = ["resourceVersion": .string(String(resourceVersion))]
        if let continueToken { metadata["continue"] = .string(continueToken) }
        return .object([
            "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": .object(metadata),
            "columnDefinitions": .array(columns.map { column in
                ["name": .string(column.name), "type": .string(column.type), "format": .string(column.format),
                 "description": .string(column.description), "priority": .int(Int64(column.priority))]
            }),
            "rows": .array(objects.map { row($0, columns: columns, includeObject: includeObject, now: now) }),
        ])
    }

    static func row(_ object: JSONObject, columns: [Column], includeObject: String, now: Date) -> JSONValue {
        var row: JSONObject = ["cells": .array(columns.map { $0.cell(object, now) })]
        switch includeObject {
        case "None": break
        case "Object": row["object"] = .object(object)
        default:
            row["object"] = ["kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": object["metadata"] ?? .object([:])]
        }
        return .object(row)
    }

    static func columns(for resource: ServedResource) -> [Column] {
        let name = Column(name: "Name", type: "string", format: "name", description: "Name must be unique within a namespace.", priority: 0) { object, _ in
            object["metadata"]?["name"] ?? .string("")
        }
        let age = Column(name: "Age", type: "string", format: "", description: "CreationTimestamp is the time the object was created.", priority: 0) {
            object, now in .string(KubeTime.parse(object["metadata"]?["creationTimestamp"].stringValue ?? "").map { humanDuration(now.timeIntervalSince($0)) } ?? "<unknown>")
        }
        if !resource.printerColumns.isEmpty {
            let custom = resource.printerColumns.map { column in
                Column(name: column.name, type: column.type == "date" ? "string" : column.type, format: column.format ?? "",
                       description: column.description, priority: column.priority) { object, now in
                    let value = evaluate(column.jsonPath, in: .object(object))
                    if column.type == "date", let text = value.stringValue, let date = KubeTime.parse(text) {
                        return .string(humanDuration(now.timeIntervalSince(date)))
                    }
                    if value.isNull { return column.type == "string" ? .string("") : .null }
                    return value
                }
            }
            let hasAge = resource.printerColumns.contains { $0.jsonPath == ".metadata.creationTimestamp" }
            return [name] + custom + (hasAge ? [] : [age])
        }
        func text(_ title: String, priority: Int = 0, _ path: [String]) -> Column {
            Column(name: title, type: "string", format: "", description: title, priority: priority) { object, _ in
                object.value(at: path).stringValue.map(JSONValue.string) ?? .string("<none>")
            }
        }
        switch (resource.group, resource.plural) {
        case ("", "pods"):
            return [
                name,
                Column(name: "Ready", type: "string", format: "", description: "The aggregate readiness state of this pod for accepting traffic.", priority: 0) { object, _ in
                    let statuses = object.value(at: ["status", "containerStatuses"]).arrayValue ?? []
                    let total = object.value(at: ["spec", "containers"]).arrayValue?.count ?? statuses.count
                    return .string("\(statuses.filter { $0["ready"].boolValue == true }.count)/\(total)")
                },
                Column(name: "Status", type: "string", format: "", description: "The aggregate status of the containers in this pod.", priority: 0) { object, _ in
                    if object.value(at: ["metadata", "deletionTimestamp"]).stringValue != nil { return "Terminating" }
                    for status in object.value(at: ["status", "containerStatuses"]).arrayValue ?? [] {
                        if let reason = status["state"]["waiting"]["reason"].stringValue { return .string(reason) }
                    }
                    return .string(object.value(at: ["status", "phase"]).stringValue ?? "Pending")
                },
                Column(name: "Restarts", type: "string", format: "", description: "The number of times the containers in this pod have been restarted.", priority: 0) { object, _ in
                    let restarts = (object.value(at: ["status", "containerStatuses"]).arrayValue ?? []).reduce(Int64(0)) { $0 &+ max(0, $1["restartCount"].intValue ?? 0) }
                    return .string(String(restarts))
                },
                age,
                text("IP", priority: 1, ["status", "podIP"]),
                text("Node", priority: 1, ["spec", "nodeName"]),
            ]
        case ("", "nodes"):
            return [
                name,
                Column(name: "Status", type: "string", format: "", description: "The status of the node", priority: 0) { object, _ in
                    let ready = (object.value(at: ["status", "conditions"]).arrayValue ?? []).first { $0["type"] == "Ready" }
                    var status = ready?["status"].stringValue == "True" ? "Ready" : (ready == nil ? "Unknown" : "NotReady")
                    if object.value(at: ["spec", "unschedulable"]).boolValue == true { status += ",SchedulingDisabled" }
                    return .string(status)
                },
                Column(name: "Roles", type: "string", format: "", description: "The roles of the node", priority: 0) { _, _ in "<none>" },
                age,
                text("Version", ["status", "nodeInfo", "kubeletVersion"]),
            ]
        case ("", "namespaces"):
            return [name, text("Status", ["status", "phase"]), age]
        case ("apps", "statefulsets"), ("apps", "deployments"):
            return [
                name,
                Column(name: "Ready", type: "string", format: "", description: "Number of the pod with ready state", priority: 0) { object, _ in
                    let ready = object.value(at: ["status", "readyReplicas"]).intValue ?? 0
                    let desired = object.value(at: ["spec", "replicas"]).intValue ?? 1
                    return .string("\(ready)/\(desired)")
                },
                age,
            ]
        case ("", "persistentvolumeclaims"):
            return [name, text("Status", ["status", "phase"]), text("Volume", ["spec", "volumeName"]),
                    text("Capacity", ["status", "capacity", "storage"]), text("StorageClass", ["spec", "storageClassName"]), age]
        case ("", "services"):
            return [name, text("Type", ["spec", "type"]), text("Cluster-IP", ["spec", "clusterIP"]), age]
        case ("", "events"):
            return [
                Column(name: "Last Seen", type: "string", format: "", description: "Time since the event was last seen", priority: 0) { object, now in
                    let stamp = object["lastTimestamp"]?.stringValue ?? object["eventTime"]?.stringValue ?? object.value(at: ["metadata", "creationTimestamp"]).stringValue
                    return .string(stamp.flatMap(KubeTime.parse).map { humanDuration(now.timeIntervalSince($0)) } ?? "<unknown>")
                },
                text("Type", ["type"]), text("Reason", ["reason"]),
                Column(name: "Object", type: "string", format: "", description: "The object this event is about", priority: 0) { object, _ in
                    let involved = object["involvedObject"] ?? object["regarding"] ?? .null
                    return .string("\((involved["kind"].stringValue ?? "").lowercased())/\(involved["name"].stringValue ?? "")")
                },
                Column(name: "Message", type: "string", format: "", description: "The message", priority: 0) { object, _ in
                    object["message"] ?? object["note"] ?? .string("")
                },
            ]
        default:
            return [name, age]
        }
    }

    /// Evaluates the simple JSONPath forms printer columns use: `.a.b`, `.a[0].b`, `.a['x.y']`.
    static func evaluate(_ path: String, in value: JSONValue) -> JSONValue {
        var current = value
        var text = Substring(path.trimmingCharacters(in: CharacterSet(charactersIn: "{}")))
        while !text.isEmpty {
            if text.hasPrefix(".") {
                text = text.dropFirst()
                let end = text.firstIndex { $0 == "." || $0 == "[" } ?? text.endIndex
                let key = String(text[..<end])
                if !key.isEmpty { current = current[key] }
                text = text[end...]
            } else if text.hasPrefix("[") {
                guard let close = text.firstIndex(of: "]") else { return .null }
                let inner = text[text.index(after: text.startIndex)..<close].trimmingCharacters(in: CharacterSet(charactersIn: "'\""))
                if let index = Int(inner) {
                    guard let array = current.arrayValue, array.indices.contains(index) else { return .null }
                    current = array[index]
                } else {
                    current = current[inner]
                }
                text = text[text.index(after: close)...]
            } else {
                return .null
            }
        }
        return current
    }

    /// kubectl's human-readable durations: 45s, 3m20s, 22m, 5h3m, 3d4h, 400d, 2y10d.
    static func humanDuration(_ interval: TimeInterval) -> String {
        let seconds = Int(interval.rounded(.down))
        if seconds < 0 { return "0s" }
        if seconds < 120 { return "\(seconds)s" }
        let minutes = seconds / 60
        if minutes < 10 { return seconds % 60 == 0 ? "\(minutes)m" : "\(minutes)m\(seconds % 60)s" }
        if minutes < 180 { return "\(minutes)m" }
        let hours = minutes / 60
        if hours < 8 { return minutes % 60 == 0 ? "\(hours)h" : "\(hours)h\(minutes % 60)m" }
        if hours < 48 { return "\(hours)h" }
        let days = hours / 24
        if days < 8 { return hours % 24 == 0 ? "\(days)d" : "\(days)d\(hours % 24)h" }
        if days < 730 { return "\(days)d" }
        let years = days / 365
        if years < 8 { return days % 365 == 0 ? "\(years)y" : "\(years)y\(days % 365)d" }
        return "\(years)y"
    }
}
