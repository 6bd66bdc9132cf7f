import Foundation
import KubeAPI

#if canImport(Glibc)
import Glibc
#endif

/// A volume that cannot be set up yet: a missing Secret, ConfigMap or claim, a claim bound to
/// another node. The pod's containers wait as `ContainerCreating` and the node tries again.
struct VolumeSetupError: Error, Sendable, Equatable, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// One file of a secret, configMap, downwardAPI or projected volume.
struct ProjectedFile: Sendable, Equatable {
    var path: String
    var data: Data
    var mode: Int
}

/// Turns a pod's volumes into directories under the node's directory:
///
/// - `persistentVolumeClaim`: `DIR/pvc/NS/CLAIM`, mode 0777, kept when the pod goes;
/// - `emptyDir`: `DIR/pods/NS_POD/volumes/NAME`, mode 0777, removed with the pod;
/// - `secret`, `configMap`, `downwardAPI` and `projected` (secret, configMap and downwardAPI
///   sources): files under `DIR/pods/NS_POD/volumes/NAME`, with `items`, `defaultMode`, `mode`
///   and `optional` as Kubernetes reads them; written when the pod starts on this node (a change
///   of the source reaches the files when the node takes the pod up again);
/// - `hostPath`: the host path itself.
///
/// Other volume types become an empty directory.
struct PodVolumes {
    let layout: NodeLayout
    let podDirectory: String
    let facts: PodFacts
    let objects: any ReferencedObjects

    /// Sets up every volume; returns volume name -> real directory.
    func prepare() async throws -> [String: String] {
        var directories: [String: String] = [:]
        for volume in facts.pod.spec.volumes {
            directories[volume.name] = try await prepare(volume)
        }
        return directories
    }

    private func prepare(_ volume: Volume) async throws -> String {
        if let claim = volume.persistentVolumeClaimName {
            guard let directory = layout.claimDirectory(namespace: facts.namespace, claim: claim) else {
                throw VolumeSetupError("volume \(volume.name): invalid claim name \(claim.debugDescription)")
            }
            try NodeLayout.makeDirectory(layout.claimsDirectory)
            try NodeLayout.makeDirectory((directory as NSString).deletingLastPathComponent)
            try NodeLayout.makeDirectory(directory, mode: 0o777)
            return directory
        }
        if let hostPath = volume.json["hostPath"]?["path"].stringValue {
            if volume.json["hostPath"]?["type"].stringValue == "DirectoryOrCreate" { try NodeLayout.makeDirectory(hostPath) }
            return hostPath
        }
        guard let directory = layout.volumeDirectory(pod: podDirectory, volume: volume.name) else {
            throw VolumeSetupError("invalid volume name \(volume.name.debugDescription)")
        }
        if let files = try await VolumeProjection.files(of: volume, facts: facts, objects: objects) {
            try NodeLayout.makeDirectory(directory)
            try VolumeProjection.write(files, into: directory)
        } else {
            try NodeLayout.makeDirectory(directory, mode: 0o777)
        }
        return directory
    }

    /// mountPath -> real directory for a container's volumeMounts (`subPath` included).
    static func mounts(of container: Container, volumes: [String: String]) throws -> [String: String] {
        var mounts: [String: String] = [:]
        for mount in container.volumeMounts {
            guard let directory = volumes[mount.name] else {
                throw VolumeSetupError("volumeMount \(mount.mountPath): no volume named \(mount.name)")
            }
            var real = directory
            if let subPath = mount.json["subPath"]?.stringValue, !subPath.isEmpty {
                guard VolumeProjection.isSafeRelativePath(subPath) else {
                    throw VolumeSetupError("volumeMount \(mount.mountPath): invalid subPath \(subPath.debugDescription)")
                }
                real += "/" + subPath
                try NodeLayout.makeDirectory(real, mode: 0o777)
            }
            mounts[mount.mountPath] = real
        }
        return mounts
    }
}

/// The files of secret, configMap, downwardAPI and projected volumes.
enum VolumeProjection {
    static let defaultMode = 0o644

    /// The files a volume holds; nil when it is not a file volume.
    static func files(of volume: Volume, facts: PodFacts, objects: any ReferencedObjects) async throws -> [ProjectedFile]? {
        let json = volume.json
        if let secret = json["secret"]?.objectValue {
            return try await objectFiles(.secret, name: secret["secretName"]?.stringValue, source: secret,
                                         defaultMode: mode(secret["defaultMode"]), facts: facts, objects: objects)
        }
        if let map = json["configMap"]?.objectValue {
            return try await objectFiles(.configMap, name: map["name"]?.stringValue, source: map,
                                         defaultMode: mode(map["defaultMode"]), facts: facts, objects: objects)
        }
        if let downward = json["downwardAPI"]?.objectValue {
            return try downwardFiles(downward, defaultMode: mode(downward["defaultMode"]), facts: facts)
        }
        if let projected = json["projected"]?.objectValue {
            let defaultMode = mode(projected["defaultMode"])
            var files: [ProjectedFile] = []
            for source in projected["sources"]?.arrayValue ?? [] {
                if let secret = source["secret"].objectValue {
                    files += try await objectFiles(.secret, name: secret["name"]?.stringValue, source: secret, defaultMode: defaultMode,
                                                   facts: facts, objects: objects)
                } else if let map = source["configMap"].objectValue {
                    files += try await objectFiles(.configMap, name: map["name"]?.stringValue, source: map, defaultMode: defaultMode,
                                                   facts: facts, objects: objects)
                } else if let downward = source["downwardAPI"].objectValue {
                    files += try downwardFiles(downward, defaultMode: defaultMode, facts: facts)
                }
            }
            return files
        }
        return nil
    }

    private static func mode(_ value: JSONValue?) -> Int {
        value?.intValue.map { Int($0) & 0o777 } ?? defaultMode
    }

    /// A Secret's or ConfigMap's keys as files: all of them, or only `items` (key, path, mode).
    static func objectFiles(
        _ kind: ReferencedKind, name: String?, source: JSONObject, defaultMode: Int, facts: PodFacts, objects: any ReferencedObjects
    ) async throws -> [ProjectedFile] {
        let optional = source["optional"]?.boolValue == true
        guard let name, !name.isEmpty else { throw VolumeSetupError("a \(kind.rawValue) volume source needs a name") }
        guard let data = try await objects.data(kind, namespace: facts.namespace, name: name) else {
            if optional { return [] }
            throw VolumeSetupError("\(kind.rawValue.lowercased()) \"\(name)\" not found")
        }
        guard let items = source["items"]?.arrayValue, !items.isEmpty else {
            return try data.keys.sorted().map { key in try file(path: key, data: data[key]!, mode: defaultMode) }
        }
        var files: [ProjectedFile] = []
        for item in items {
            let key = item["key"].stringValue ?? ""
            guard let value = data[key] else {
                if optional { continue }
                throw VolumeSetupError("couldn't find key \(key) in \(kind.rawValue) \(facts.namespace)/\(name)")
            }
            files.append(try file(path: item["path"].stringValue ?? key, data: value, mode: item["mode"].intValue.map { Int($0) & 0o777 } ?? defaultMode))
        }
        return files
    }

    static func downwardFiles(_ source: JSONObject, defaultMode: Int, facts: PodFacts) throws -> [ProjectedFile] {
        try (source["items"]?.arrayValue ?? []).map { item in
            let fieldPath = item["fieldRef"]["fieldPath"].stringValue ?? ""
            guard let value = DownwardAPI.value(fieldPath: fieldPath, facts: facts) else {
                throw VolumeSetupError("unsupported downwardAPI fieldPath \(fieldPath.debugDescription)")
            }
            return try file(path: item["path"].stringValue ?? "", data: Data(value.utf8),
                            mode: item["mode"].intValue.map { Int($0) & 0o777 } ?? defaultMode)
        }
    }

    private static func file(path: String, data: Data, mode: Int) throws -> ProjectedFile {
        guard isSafeRelativePath(path) else { throw VolumeSetupError("invalid file path \(path.debugDescription) in a volume") }
        return ProjectedFile(path: path, data: data, mode: mode)
    }

    /// A relative path without `..`, empty or absolute components: it stays inside its volume.
    static func isSafeRelativePath(_ path: String) -> Bool {
        guard !path.isEmpty, !path.hasPrefix("/"), path.utf8.count <= 4096, !path.contains("\0") else { return false }
        return path.split(separator: "/", omittingEmptySubsequences: false).allSatisfy { !$0.isEmpty && $0 != ".." && $0 != "." }
    }

    /// Writes `files` into `directory` (each atomically, only when it changed) and removes files
    /// that are no longer part of the volume.
    static func write(_ files: [ProjectedFile], into directory: String) throws {
        let fileManager = FileManager.default
        let wanted = Set(files.map(\.path))
        if let existing = fileManager.enumerator(atPath: directory) {
            var stale: [String] = []
            for case let path as String in existing {
                var isDirectory: ObjCBool = false
                if fileManager.fileExists(atPath: "\(directory)/\(path)", isDirectory: &isDirectory), !isDirectory.boolValue,
                   !wanted.contains(path) {
                    stale.append(path)
                }
            }
            for path in stale { try? fileManager.removeItem(atPath: "\(directory)/\(path)") }
        }
        for file in files {
            let target = "\(directory)/\(file.path)"
            let parent = (target as NSString).deletingLastPathComponent
            if parent != directory { try NodeLayout.makeDirectory(parent) }
            var info = stat()
            if fileManager.contents(atPath: target) == file.data, stat(target, &info) == 0, Int(info.st_mode) & 0o777 == file.mode {
                continue
            }
            let temporary = "\(parent)/.\(UUID().uuidString).tmp"
            guard fileManager.createFile(atPath: temporary, contents: file.data, attributes: [.posixPermissions: file.mode]) else {
                throw VolumeSetupError("cannot write \(target)")
            }
            chmod(temporary, mode_t(file.mode))
            guard rename(temporary, target) == 0 else {
                unlink(temporary)
                throw VolumeSetupError("cannot write \(target): \(String(cString: strerror(errno)))")
            }
        }
    }
}

/// Binds the claims of a pod that starts here to this node, as a local-volume provisioner and
/// the PV controller would: the annotation `volume.kubernetes.io/selected-node` (which the
/// scheduler reads to keep the pod with its data) and `status.phase: Bound`.
struct ClaimBinder {
    static let selectedNodeAnnotation = "volume.kubernetes.io/selected-node"

    let client: KubeClient
    let nodeName: String

    func bind(namespace: String, claim: String) async throws {
        let current: PersistentVolumeClaim
        do {
            current = try await client.get(PersistentVolumeClaim.self, name: claim, namespace: namespace)
        } catch {
            if error.isNotFound { throw VolumeSetupError("persistentvolumeclaim \"\(claim)\" not found") }
            throw error
        }
        switch current.metadata.annotations[Self.selectedNodeAnnotation] {
        case nodeName?:
            break
        case let other?:
            throw VolumeSetupError("persistentvolumeclaim \"\(claim)\" is bound to node \(other); its data is there")
        case nil:
            let patch: JSONValue = ["metadata": ["annotations": .object([Self.selectedNodeAnnotation: .string(nodeName)])]]
            _ = try await client.patch(PersistentVolumeClaim.self, name: claim, namespace: namespace, patchType: .merge, patch: patch)
        }
        if current.phase != "Bound" {
            var status: JSONObject = ["phase": "Bound"]
            let spec = current.json["spec"]?.objectValue ?? [:]
            if let modes = spec["accessModes"] { status["accessModes"] = modes }
            if let storage = spec["resources"]?["requests"]["storage"], !storage.isNull { status["capacity"] = ["storage": storage] }
            _ = try await client.patch(PersistentVolumeClaim.self, name: claim, namespace: namespace, patchType: .merge,
                                       patch: ["status": .object(status)], subresource: "status")
        }
    }
}
