import Foundation
import KubeAPI

/// The rules every write follows, as pure functions: what create and update may set, how
/// generation moves, names, and validation against a CRD schema.
enum ObjectLifecycle {
    /// DNS-1123 subdomain: what most object names must be.
    static func isValidName(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 253 else { return false }
        let bytes = Array(name.utf8)
        func alnum(_ b: UInt8) -> Bool { (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) }
        guard alnum(bytes.first!), alnum(bytes.last!) else { return false }
        return bytes.allSatisfy { alnum($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") }
    }

    static let nameMessage = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"

    /// Prepares a new object. `randomSuffix` fills generateName.
    static func prepareCreate(
        _ body: JSONObject, resource: ServedResource, pathNamespace: String?, now: Date, uid: String, randomSuffix: String
    ) throws(APIError) -> (object: JSONObject, namespace: String, name: String) {
        var object = body
        try checkTypeMeta(object, resource)
        object["apiVersion"] = .string(resource.apiVersion)
        object["kind"] = .string(resource.kind)
        var metadata = object["metadata"]?.objectValue ?? [:]
        var name = metadata["name"]?.stringValue ?? ""
        if name.isEmpty, let prefix = metadata["generateName"]?.stringValue, !prefix.isEmpty {
            name = prefix + randomSuffix
        }
        guard !name.isEmpty else {
            throw APIError.invalid(kind: resource.kind, group: resource.group, name: "", causes: [.required("metadata.name")])
        }
        guard isValidName(name) else {
            throw APIError.invalid(kind: resource.kind, group: resource.group, name: name,
                                   causes: [.invalid("metadata.name", .string(name), nameMessage)])
        }
        let namespace = try resolveNamespace(metadata, resource: resource, pathNamespace: pathNamespace)
        metadata["name"] = .string(name)
        if resource.namespaced { metadata["namespace"] = .string(namespace) } else { metadata.removeValue(forKey: "namespace") }
        metadata["uid"] = .string(uid)
        metadata["creationTimestamp"] = .string(KubeTime.format(now))
        metadata["generation"] = .int(1)
        metadata.removeValue(forKey: "resourceVersion")
        metadata.removeValue(forKey: "deletionTimestamp")
        metadata.removeValue(forKey: "deletionGracePeriodSeconds")
        object["metadata"] = .object(metadata)
        if resource.crdName != nil, resource.hasStatus {
            object.removeValue(forKey: "status")  // a CRD's status is written through /status only
        }
        if resource.storageKey == "pods", object["status"]?["phase"].stringValue == nil {
            // A new pod is Pending until a node reports on it, as kube-apiserver's defaulting says.
            var status = object["status"]?.objectValue ?? [:]
            status["phase"] = "Pending"
            object["status"] = .object(status)
        }
        object = try validateAgainstSchema(object, resource: resource, name: name)
        if resource.storageKey == "secrets" { object = try mergeStringData(object, name: name) }
        return (object, namespace, name)
    }

    /// Prepares a replacement of `old` by `body` through the main resource or `/status`.
    static func prepareUpdate(_ body: JSONObject, old: JSONObject, resource: ServedResource, subresource: String?,
                              pathNamespace: String?, name: String) throws(APIError) -> JSONObject {
        try checkTypeMeta(body, resource)
        let bodyName = body["metadata"]?["name"].stringValue
        if let bodyName, bodyName != name {
            throw APIError.badRequest("the name of the object (\(bodyName)) does not match the name on the URL (\(name))")
        }
        var object: JSONObject
        if subresource == "status" {
            object = old
            object["status"] = body["status"]
            if object["status"]?.isNull == true { object.removeValue(forKey: "status") }
        } else {
            object = body
            object["apiVersion"] = .string(resource.apiVersion)
            object["kind"] = .string(resource.kind)
            if resource.hasStatus {
                object["status"] = old["status"]
                if old["status"] == nil { object.removeValue(forKey: "status") }
            }
        }
        // Fields the client may not change.
        var metadata = object["metadata"]?.objectValue ?? [:]
        let oldMetadata = old["metadata"]?.objectValue ?? [:]
        for key in ["uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "namespace", "name"] {
            metadata[key] = oldMetadata[key]
        }
        var generation = oldMetadata["generation"]?.intValue ?? 1
        if subresource != "status", specChanged(old, object) { generation += 1 }
        metadata["generation"] = .int(generation)
        metadata = metadata.filter { !$0.value.isNull }
        object["metadata"] = .object(metadata)
        // A status write is validated and pruned too, against the whole object, as
        // kube-apiserver does for custom resources.
        object = try validateAgainstSchema(object, resource: resource, name: name)
        if resource.storageKey == "secrets" { object = try mergeStringData(object, name: name) }
        return object
    }

    /// A Secret's write-only `stringData` goes into `data`, base64-encoded, and is not stored
    /// (a key in both takes the `stringData` value, as in Kubernetes).
    static func mergeStringData(_ secret: JSONObject, name: String) throws(APIError) -> JSONObject {
        guard let stringData = secret["stringData"] else { return secret }
        var object = secret
        object.removeValue(forKey: "stringData")
        if stringData.isNull { return object }
        guard let entries = stringData.objectValue else {
            throw APIError.invalid(kind: "Secret", group: "", name: name,
                                   causes: [.invalid("stringData", stringData, "must be a map of strings")])
        }
        var data = object["data"]?.objectValue ?? [:]
        for (key, value) in entries {
            guard let text = value.stringValue else {
                throw APIError.invalid(kind: "Secret", group: "", name: name,
                                       causes: [.invalid("stringData[\(key)]", value, "must be a string")])
            }
            data[key] = .string(Data(text.utf8).base64EncodedString())
        }
        object["data"] = .object(data)
        return object
    }

    /// Everything but metadata and status is "spec" for generation purposes.
    static func specChanged(_ old: JSONObject, _ new: JSONObject) -> Bool {
        let ignored: Set<String> = ["metadata", "status", "apiVersion", "kind"]
        return old.filter { !ignored.contains($0.key) } != new.filter { !ignored.contains($0.key) }
    }

    static func checkTypeMeta(_ body: JSONObject, _ resource: ServedResource) throws(APIError) {
        if let kind = body["kind"]?.stringValue, !kind.isEmpty, kind != resource.kind {
            throw APIError.badRequest("the kind \"\(kind)\" does not match the resource \"\(resource.plural)\" (\(resource.kind))")
        }
        if let apiVersion = body["apiVersion"]?.stringValue, !apiVersion.isEmpty, apiVersion != resource.apiVersion {
            throw APIError.badRequest("the API version in the data (\(apiVersion)) does not match the expected API version (\(resource.apiVersion))")
        }
    }

    static func resolveNamespace(_ metadata: JSONObject, resource: ServedResource, pathNamespace: String?) throws(APIError) -> String {
        guard resource.namespaced else { return "" }
        let bodyNamespace = metadata["namespace"]?.stringValue ?? ""
        let namespace = pathNamespace ?? (bodyNamespace.isEmpty ? "default" : bodyNamespace)
        if !bodyNamespace.isEmpty, bodyNamespace != namespace {
            throw APIError.badRequest("the namespace of the provided object does not match the namespace sent on the request")
        }
        return namespace
    }

    /// Validates and prunes a custom resource against its version's schema.
    static func validateAgainstSchema(_ object: JSONObject, resource: ServedResource, name: String) throws(APIError) -> JSONObject {
        guard let schema = resource.schema else { return object }
        var body = object
        let metadata = body.removeValue(forKey: "metadata")
        let apiVersion = body.removeValue(forKey: "apiVersion")
        let kind = body.removeValue(forKey: "kind")
        let (pruned, causes) = SchemaValidator.validate(.object(body), schema: schemaWithoutTypeMeta(schema), path: "")
        guard causes.isEmpty else {
            throw APIError.invalid(kind: resource.kind, group: resource.group, name: name, causes: causes)
        }
        var result = pruned.objectValue ?? [:]
        result["metadata"] = metadata
        result["apiVersion"] = apiVersion
        result["kind"] = kind
        return result
    }

    private static func schemaWithoutTypeMeta(_ schema: JSONObject) -> JSONObject {
        var copy = schema
        if var properties = copy["properties"]?.objectValue {
            properties["metadata"] = nil
            properties["apiVersion"] = nil
            properties["kind"] = nil
            copy["properties"] = .object(properties)
        }
        if let required = copy["required"]?.arrayValue {
            copy["required"] = .array(required.filter { !["metadata", "apiVersion", "kind"].contains($0.stringValue ?? "") })
        }
        return copy
    }

    /// The served resources a CRD defines, one per served version.
    static func servedResources(of crd: JSONObject) throws(APIError) -> [ServedResource] {
        let spec = crd["spec"]?.objectValue ?? [:]
        let name = crd["metadata"]?["name"].stringValue ?? ""
        var causes: [FieldCause] = []
        let group = spec["group"]?.stringValue ?? ""
        let names = spec["names"]?.objectValue ?? [:]
        let plural = names["plural"]?.stringValue ?? ""
        let kind = names["kind"]?.stringValue ?? ""
        if group.isEmpty { causes.append(.required("spec.group")) }
        let builtInGroups: Set<String> = ["apps", "events.k8s.io", "coordination.k8s.io", "rbac.authorization.k8s.io", "apiextensions.k8s.io",
                                          "meta.k8s.io", "authentication.k8s.io", "authorization.k8s.io"]
        if !group.isEmpty, !group.contains(".") || builtInGroups.contains(group) || group.hasSuffix(".k8s.io") && !group.hasSuffix(".x-k8s.io") {
            causes.append(.invalid("spec.group", .string(group), "should be a domain with at least one dot, outside the groups Kubernetes reserves"))
        }
        if plural.isEmpty { causes.append(.required("spec.names.plural")) }
        if kind.isEmpty { causes.append(.required("spec.names.kind")) }
        if !group.isEmpty, !plural.isEmpty, name != "\(plural).\(group)" {
            causes.append(.invalid("metadata.name", .string(name), "must be spec.names.plural+\".\"+spec.group"))
        }
        let scope = spec["scope"]?.stringValue ?? ""
        if !["Namespaced", "Cluster"].contains(scope) {
            causes.append(.notSupported("spec.scope", .string(scope), ["Cluster", "Namespaced"]))
        }
        let versions = spec["versions"]?.arrayValue ?? []
        if versions.isEmpty { causes.append(.required("spec.versions")) }
        guard causes.isEmpty else { throw APIError.invalid(kind: "CustomResourceDefinition", group: "apiextensions.k8s.io", name: name, causes: causes) }
        return versions.compactMap { version -> ServedResource? in
            guard version["served"].boolValue == true, let versionName = version["name"].stringValue else { return nil }
            var resource = ServedResource(
                group: group, version: versionName, kind: kind, plural: plural, namespaced: scope == "Namespaced",
                shortNames: names["shortNames"]?.arrayValue?.compactMap(\.stringValue) ?? [],
                categories: names["categories"]?.arrayValue?.compactMap(\.stringValue) ?? [],
                subresources: version["subresources"]["status"].isNull ? [] : ["status"])
            resource.singular = names["singular"]?.stringValue ?? kind.lowercased()
            resource.crdName = name
            resource.schema = version["schema"]["openAPIV3Schema"].objectValue
            resource.printerColumns = (version["additionalPrinterColumns"].arrayValue ?? []).compactMap { column in
                guard let name = column["name"].stringValue, let path = column["jsonPath"].stringValue else { return nil }
                return ServedResource.PrinterColumn(
                    name: name, type: column["type"].stringValue ?? "string", jsonPath: path,
                    description: column["description"].stringValue ?? "", priority: Int(column["priority"].intValue ?? 0),
                    format: column["format"].stringValue)
            }
            return resource
        }
    }
}
