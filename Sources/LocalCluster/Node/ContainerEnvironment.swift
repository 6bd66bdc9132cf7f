import Foundation
import KubeAPI

/// The environment of a container process, in order: later definitions replace earlier ones
/// and keep their place.
struct ProcessEnvironment: Sendable, Equatable {
    private(set) var names: [String] = []
    private(set) var values: [String: String] = [:]

    init(_ pairs: [(String, String)] = []) {
        for (name, value) in pairs { self[name] = value }
    }

    subscript(name: String) -> String? {
        get { values[name] }
        set {
            guard let newValue else { return }
            if values.updateValue(newValue, forKey: name) == nil { names.append(name) }
        }
    }

    var pairs: [(name: String, value: String)] { names.map { ($0, values[$0]!) } }

    /// `$(VAR)` expansion against this environment.
    func expand(_ text: String) -> String { VariableExpansion.expand(text) { values[$0] } }
}

/// A container that cannot be configured: a missing Secret, ConfigMap or key that is not
/// optional. Kubernetes reports it as waiting with reason `CreateContainerConfigError` and
/// tries again.
struct ContainerConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// What the downward API and the node's own variables can say about a pod.
struct PodFacts: Sendable {
    var pod: Pod
    var podIP: String
    var hostIP: String
    var nodeName: String

    var namespace: String { pod.metadata.namespace ?? "default" }
    var hostname: String { pod.spec.hostname ?? pod.metadata.name ?? "" }
}

/// Reads the data of the Secrets and ConfigMaps a pod refers to.
protocol ReferencedObjects: Sendable {
    /// The object's data (Secret `data`, ConfigMap `data` and `binaryData`); nil when the object
    /// does not exist.
    func data(_ kind: ReferencedKind, namespace: String, name: String) async throws -> [String: Data]?
}

enum ReferencedKind: String, Sendable {
    case secret = "Secret"
    case configMap = "ConfigMap"

    /// The field of a `valueFrom`, `envFrom` item or projected source that names this kind.
    var keyReference: String { self == .secret ? "secretKeyRef" : "configMapKeyRef" }
    var objectReference: String { self == .secret ? "secretRef" : "configMapRef" }
}

/// Secrets and ConfigMaps read through the API.
struct APIReferencedObjects: ReferencedObjects {
    let client: KubeClient

    func data(_ kind: ReferencedKind, namespace: String, name: String) async throws -> [String: Data]? {
        do {
            switch kind {
            case .secret:
                return try await client.get(Secret.self, name: name, namespace: namespace).data
            case .configMap:
                let map = try await client.get(ConfigMap.self, name: name, namespace: namespace)
                var data = map.data.mapValues { Data($0.utf8) }
                for (key, value) in map.json["binaryData"]?.objectValue ?? [:] {
                    if let bytes = value.stringValue.flatMap({ Data(base64Encoded: $0) }) { data[key] = bytes }
                }
                return data
            }
        } catch {
            if error.isNotFound { return nil }
            throw error
        }
    }
}

/// How a container's environment is put together, in this order (later wins):
///
/// 1. `base`: PATH (the tenops executable's directory first) and a few variables of the node's;
/// 2. the node's own variables: `HOSTNAME` (the pod's hostname), `POD_NAME`, `TENOPS_POD_IP`,
///    and `TENOPS_VOLUME_<MOUNT>` for every volumeMount (see `VolumeEnvironment`);
/// 3. `envFrom` (Secrets and ConfigMaps, with their prefix);
/// 4. `env`: values with `$(VAR)` expanded against what is defined so far, downward-API
///    `fieldRef`s, `secretKeyRef` and `configMapKeyRef`.
enum ContainerEnvironment {
    static func build(
        container: Container, facts: PodFacts, base: [(String, String)], mounts: [String: String], objects: any ReferencedObjects
    ) async throws -> ProcessEnvironment {
        var environment = ProcessEnvironment(base)
        environment["HOSTNAME"] = facts.hostname
        environment["POD_NAME"] = facts.pod.metadata.name ?? ""
        environment["TENOPS_POD_IP"] = facts.podIP
        for (mountPath, realPath) in mounts.sorted(by: { $0.key < $1.key }) {
            environment[VolumeEnvironment.variableName(forMountPath: mountPath)] = realPath
        }
        var reader = CachedReader(objects: objects, namespace: facts.namespace)
        for source in container.json["envFrom"]?.arrayValue ?? [] {
            try await addAll(from: source, to: &environment, reader: &reader)
        }
        for variable in container.env where !variable.name.isEmpty {
            if let from = variable.valueFrom {
                if let value = try await referencedValue(from, facts: facts, reader: &reader, variable: variable.name) {
                    environment[variable.name] = value
                }
            } else {
                environment[variable.name] = environment.expand(variable.value ?? "")
            }
        }
        return environment
    }

    private static func addAll(from source: JSONValue, to environment: inout ProcessEnvironment, reader: inout CachedReader) async throws {
        let prefix = source["prefix"].stringValue ?? ""
        for kind in [ReferencedKind.secret, .configMap] {
            let reference = source[kind.objectReference]
            guard let name = reference["name"].stringValue else { continue }
            guard let data = try await reader.data(kind, name) else {
                if reference["optional"].boolValue == true { continue }
                throw ContainerConfigError("\(kind.rawValue.lowercased()) \"\(name)\" not found")
            }
            for (key, value) in data.sorted(by: { $0.key < $1.key }) where !key.contains("=") && !key.isEmpty {
                environment[prefix + key] = String(decoding: value, as: UTF8.self)
            }
        }
    }

    private static func referencedValue(_ from: JSONObject, facts: PodFacts, reader: inout CachedReader, variable: String) async throws -> String? {
        if let path = from["fieldRef"]?["fieldPath"].stringValue {
            guard let value = DownwardAPI.value(fieldPath: path, facts: facts) else {
                throw ContainerConfigError("unsupported fieldRef \(path) for variable \(variable)")
            }
            return value
        }
        for kind in [ReferencedKind.secret, .configMap] {
            guard let reference = from[kind.keyReference]?.objectValue else { continue }
            let name = reference["name"]?.stringValue ?? ""
            let key = reference["key"]?.stringValue ?? ""
            let optional = reference["optional"]?.boolValue == true
            guard let data = try await reader.data(kind, name) else {
                if optional { return nil }
                throw ContainerConfigError("\(kind.rawValue.lowercased()) \"\(name)\" not found")
            }
            guard let value = data[key] else {
                if optional { return nil }
                throw ContainerConfigError("couldn't find key \(key) in \(kind.rawValue) \(facts.namespace)/\(name)")
            }
            return String(decoding: value, as: UTF8.self)
        }
        throw ContainerConfigError("variable \(variable): valueFrom has no fieldRef, secretKeyRef or configMapKeyRef this node supports")
    }

    /// Reads each referenced object once per build.
    private struct CachedReader {
        let objects: any ReferencedObjects
        let namespace: String
        var cache: [String: [String: Data]?] = [:]

        mutating func data(_ kind: ReferencedKind, _ name: String) async throws -> [String: Data]? {
            let key = "\(kind.rawValue)/\(name)"
            if let cached = cache[key] { return cached }
            let data = try await objects.data(kind, namespace: namespace, name: name)
            cache[key] = .some(data)
            return data
        }
    }
}

/// The convention by which a process finds its volumes: a container path cannot be mounted, so
/// for every volumeMount the node sets `TENOPS_VOLUME_<MOUNT>` to the real directory, where
/// MOUNT is the mountPath without its leading slashes, upper-cased, with every character other
/// than A-Z and 0-9 replaced by `_`. `/tt` gives `TENOPS_VOLUME_TT`, `/agent-tls` gives
/// `TENOPS_VOLUME_AGENT_TLS`, `/var/lib/data` gives `TENOPS_VOLUME_VAR_LIB_DATA`.
///
/// The agent reads these variables (`AgentConfiguration.environmentVariable(for:)` applies the
/// same rule; the two must stay in step).
public enum VolumeEnvironment {
    public static func variableName(forMountPath mountPath: String) -> String {
        let body = mountPath.drop(while: { $0 == "/" }).uppercased().map { character -> Character in
            (character.isASCII && (character.isLetter || character.isNumber)) ? character : "_"
        }
        return "TENOPS_VOLUME_" + String(body)
    }
}

/// Downward-API field paths, for `env[].valueFrom.fieldRef` and downwardAPI volume items.
enum DownwardAPI {
    static func value(fieldPath: String, facts: PodFacts) -> String? {
        let metadata = facts.pod.metadata
        switch fieldPath {
        case "metadata.name": return metadata.name ?? ""
        case "metadata.namespace": return facts.namespace
        case "metadata.uid": return metadata.uid ?? ""
        case "metadata.labels": return keyValueLines(metadata.labels)
        case "metadata.annotations": return keyValueLines(metadata.annotations)
        case "spec.nodeName": return facts.nodeName
        case "spec.serviceAccountName": return facts.pod.spec.serviceAccountName ?? "default"
        case "status.podIP", "status.podIPs": return facts.podIP
        case "status.hostIP", "status.hostIPs": return facts.hostIP
        default:
            if let key = subscriptKey(fieldPath, of: "metadata.labels") { return metadata.labels[key] ?? "" }
            if let key = subscriptKey(fieldPath, of: "metadata.annotations") { return metadata.annotations[key] ?? "" }
            return nil
        }
    }

    /// `KEY` from `field['KEY']`.
    private static func subscriptKey(_ path: String, of field: String) -> String? {
        guard path.hasPrefix(field + "['"), path.hasSuffix("']"), path.count > field.count + 4 else { return nil }
        return String(path.dropFirst(field.count + 2).dropLast(2))
    }

    /// `key="value"` lines, sorted, as the kubelet writes labels and annotations.
    private static func keyValueLines(_ map: [String: String]) -> String {
        map.sorted { $0.key < $1.key }.map { "\($0.key)=\(JSONWriter.string(.string($0.value)))" }.joined(separator: "\n")
    }
}
