import KubeAPI

/// The three patch formats Kubernetes accepts. Pure functions.
enum Patches {
    /// RFC 7386 JSON merge patch.
    static func merge(_ target: JSONValue, _ patch: JSONValue) -> JSONValue {
        guard case .object(let patchObject) = patch else { return patch }
        var result = target.objectValue ?? [:]
        for (key, value) in patchObject {
            if value.isNull {
                result.removeValue(forKey: key)
            } else {
                result[key] = merge(result[key] ?? .null, value)
            }
        }
        return .object(result)
    }

    struct PatchError: Error { let message: String }

    /// RFC 6902 JSON patch.
    static func jsonPatch(_ document: JSONValue, _ patch: JSONValue) throws(PatchError) -> JSONValue {
        guard case .array(let operations) = patch else { throw PatchError(message: "a JSON patch must be an array of operations") }
        var document = document
        for (index, operation) in operations.enumerated() {
            guard case .object(let op) = operation, let name = op["op"]?.stringValue, let path = op["path"]?.stringValue else {
                throw PatchError(message: "operation \(index): needs \"op\" and \"path\"")
            }
            let pointer = try parsePointer(path)
            switch name {
            case "add":
                guard let value = op["value"] else { throw PatchError(message: "operation \(index): add needs a value") }
                document = try set(document, pointer, value, insert: true)
            case "remove":
                document = try remove(document, pointer)
            case "replace":
                guard let value = op["value"] else { throw PatchError(message: "operation \(index): replace needs a value") }
                _ = try get(document, pointer)
                document = try set(document, pointer, value, insert: false)
            case "move", "copy":
                guard let from = op["from"]?.stringValue else { throw PatchError(message: "operation \(index): \(name) needs from") }
                let source = try parsePointer(from)
                let value = try get(document, source)
                if name == "move" { document = try remove(document, source) }
                document = try set(document, pointer, value, insert: true)
            case "test":
                guard let value = op["value"] else { throw PatchError(message: "operation \(index): test needs a value") }
                guard try get(document, pointer) == value else { throw PatchError(message: "testing value \(path) failed") }
            default:
                throw PatchError(message: "Unexpected kind: \(name)")
            }
        }
        return document
    }

    private static func parsePointer(_ path: String) throws(PatchError) -> [String] {
        if path.isEmpty { return [] }
        guard path.hasPrefix("/") else { throw PatchError(message: "invalid JSON pointer \(path)") }
        return path.dropFirst().split(separator: "/", omittingEmptySubsequences: false).map {
            $0.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
        }
    }

    private static func get(_ value: JSONValue, _ pointer: [String]) throws(PatchError) -> JSONValue {
        var current = value
        for token in pointer {
            switch current {
            case .object(let object):
                guard let next = object[token] else { throw PatchError(message: "doc is missing path: /\(pointer.joined(separator: "/"))") }
                current = next
            case .array(let array):
                guard let index = Int(token), array.indices.contains(index) else { throw PatchError(message: "doc is missing path: /\(pointer.joined(separator: "/"))") }
                current = array[index]
            default:
                throw PatchError(message: "doc is missing path: /\(pointer.joined(separator: "/"))")
            }
        }
        return current
    }

    private static func set(_ value: JSONValue, _ pointer: [String], _ newValue: JSONValue, insert: Bool) throws(PatchError) -> JSONValue {
        guard let token = pointer.first else { return newValue }
        let rest = Array(pointer.dropFirst())
        switch value {
        case .object(var object):
            if rest.isEmpty {
                object[token] = newValue
            } else {
                guard let child = object[token] else { throw PatchError(message: "doc is missing path: /\(pointer.joined(separator: "/"))") }
                object[token] = try set(child, rest, newValue, insert: insert)
            }
            return .object(object)
        case .array(var array):
            if rest.isEmpty {
                if token == "-" { array.append(newValue); return .array(array) }
                guard let index = Int(token), index >= 0, index <= array.count, insert || index < array.count else {
                    throw PatchError(message: "index out of range: \(token)")
                }
                if insert { array.insert(newValue, at: index) } else { array[index] = newValue }
                return .array(array)
            }
            guard let index = Int(token), array.indices.contains(index) else { throw PatchError(message: "index out of range: \(token)") }
            array[index] = try set(array[index], rest, newValue, insert: insert)
            return .array(array)
        default:
            throw PatchError(message: "doc is missing path: /\(pointer.joined(separator: "/"))")
        }
    }

    private static func remove(_ value: JSONValue, _ pointer: [String]) throws(PatchError) -> JSONValue {
        guard let token = pointer.first else { throw PatchError(message: "cannot remove the whole document") }
        let rest = Array(pointer.dropFirst())
        switch value {
        case .object(var object):
            guard let child = object[token] else { throw PatchError(message: "doc is missing path: /\(pointer.joined(separator: "/"))") }
            if rest.isEmpty { object.removeValue(forKey: token) } else { object[token] = try remove(child, rest) }
            return .object(object)
        case .array(var array):
            guard let index = Int(token), array.indices.contains(index) else { throw PatchError(message: "index out of range: \(token)") }
            if rest.isEmpty { array.remove(at: index) } else { array[index] = try remove(array[index], rest) }
            return .array(array)
        default:
            throw PatchError(message: "doc is missing path: /\(pointer.joined(separator: "/"))")
        }
    }

    // MARK: Strategic merge patch

    /// Merge keys of the lists that merge by key in the built-in kinds TenOps and `kubectl apply`
    /// use (Pod, Service, Secret, ConfigMap, StatefulSet, Namespace), by field name. Lists not
    /// named here are replaced, as their patch strategy says.
    static let mergeKeys: [String: String] = [
        "containers": "name", "initContainers": "name", "ephemeralContainers": "name", "env": "name", "volumes": "name",
        "volumeMounts": "mountPath", "volumeDevices": "devicePath", "imagePullSecrets": "name", "hostAliases": "ip",
        "tolerations": "key", "topologySpreadConstraints": "topologyKey", "resourceClaims": "name",
        "conditions": "type", "ownerReferences": "uid", "ports": "port", "envFrom": "",
    ]

    /// Lists of primitives that merge as sets.
    static let mergedPrimitiveLists: Set<String> = ["finalizers"]

    /// A strategic merge patch: like a merge patch, but lists with a merge key merge element by
    /// element, `$patch: delete|replace|merge` directives apply, and `$setElementOrder` and
    /// `$retainKeys` are honoured.
    static func strategicMerge(_ target: JSONValue, _ patch: JSONValue) throws(PatchError) -> JSONValue {
        try strategicMerge(target, patch, field: nil)
    }

    private static func strategicMerge(_ target: JSONValue, _ patch: JSONValue, field: String?) throws(PatchError) -> JSONValue {
        guard case .object(var patchObject) = patch else { return patch }
        if let directive = patchObject["$patch"]?.stringValue {
            patchObject.removeValue(forKey: "$patch")
            switch directive {
            case "replace": return .object(patchObject)
            case "delete": return .null
            case "merge": break
            default: throw PatchError(message: "unknown patch directive \(directive)")
            }
        }
        var result = target.objectValue ?? [:]
        if let retain = patchObject.removeValue(forKey: "$retainKeys")?.arrayValue {
            let keep = Set(retain.compactMap(\.stringValue))
            result = result.filter { keep.contains($0.key) }
        }
        var orders: [String: [JSONValue]] = [:]
        for (key, value) in patchObject where key.hasPrefix("$setElementOrder/") {
            orders[String(key.dropFirst("$setElementOrder/".count))] = value.arrayValue ?? []
            patchObject.removeValue(forKey: key)
        }
        for (key, value) in patchObject where key.hasPrefix("$deleteFromPrimitiveList/") {
            let name = String(key.dropFirst("$deleteFromPrimitiveList/".count))
            let remove = Set((value.arrayValue ?? []).map(\.description))
            result[name] = .array((result[name]?.arrayValue ?? []).filter { !remove.contains($0.description) })
            patchObject.removeValue(forKey: key)
        }
        for (key, value) in patchObject {
            if value.isNull {
                result.removeValue(forKey: key)
                continue
            }
            let existing = result[key] ?? .null
            switch value {
            case .object:
                let merged = try strategicMerge(existing, value, field: key)
                if merged.isNull { result.removeValue(forKey: key) } else { result[key] = merged }
            case .array(let items):
                result[key] = .array(try mergeList(existing.arrayValue ?? [], items, field: key, order: orders[key]))
            default:
                result[key] = value
            }
        }
        for (key, order) in orders where patchObject[key] == nil {
            if let list = result[key]?.arrayValue { result[key] = .array(try mergeList(list, [], field: key, order: order)) }
        }
        return .object(result)
    }

    private static func mergeList(_ current: [JSONValue], _ patch: [JSONValue], field: String, order: [JSONValue]?) throws(PatchError) -> [JSONValue] {
        if mergedPrimitiveLists.contains(field) {
            var merged = current
            for item in patch where !merged.contains(item) { merged.append(item) }
            return merged
        }
        // Container ports merge on containerPort, Service ports on port.
        let usesContainerPort = field == "ports" && (patch + current).contains { !$0["containerPort"].isNull }
        guard let key = usesContainerPort ? "containerPort" : mergeKeys[field], !key.isEmpty, patch.allSatisfy({ $0.objectValue != nil }), current.allSatisfy({ $0.objectValue != nil }) else {
            if patch.count == 1, patch[0]["$patch"].stringValue == "replace" { return [] }
            return patch
        }
        var merged = current
        for item in patch {
            guard case .object(let object) = item else { continue }
            if object["$patch"]?.stringValue == "replace" { return patch.filter { $0["$patch"].isNull } }
            let identity = object[key] ?? .null
            if let index = merged.firstIndex(where: { $0[key] == identity && !identity.isNull }) {
                let result = try strategicMerge(merged[index], item, field: field)
                if result.isNull { merged.remove(at: index) } else { merged[index] = result }
            } else if object["$patch"]?.stringValue != "delete" {
                merged.append(try strategicMerge(.null, item, field: field))
            }
        }
        if let order {
            let positions = Dictionary(order.enumerated().map { ($0.element[key].description, $0.offset) }, uniquingKeysWith: { a, _ in a })
            merged.sort { (positions[$0[key].description] ?? Int.max) < (positions[$1[key].description] ?? Int.max) }
        }
        return merged
    }
}
