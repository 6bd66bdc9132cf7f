import KubeAPI

/// OpenAPI v3 documents, one per group/version, as kube-apiserver serves them at
/// `/openapi/v3`. They carry what clients read from them:
/// - the PATCH operation of each kind, tagged with `x-kubernetes-group-version-kind` and taking
///   `dryRun` and `fieldValidation`, which is how kubectl learns that the server validates
///   fields and runs dry runs itself;
/// - a schema per kind in `components.schemas`: a CRD's own structural schema (so `kubectl
///   explain` works for it), and an open object schema for the built-in kinds, whose field
///   schemas this server does not carry. Pure.
enum OpenAPIDocuments {
    static func index(_ registry: ResourceRegistry) -> JSONValue {
        var paths: JSONObject = [:]
        for (group, versions) in registry.groups {
            for version in versions {
                let key = group.isEmpty ? "api/\(version)" : "apis/\(group)/\(version)"
                let hash = fingerprint(document(registry, group: group, version: version))
                paths[key] = ["serverRelativeURL": .string("/openapi/v3/\(key)?hash=\(hash)")]
            }
        }
        return .object(["paths": .object(paths)])
    }

    static func document(_ registry: ResourceRegistry, group: String, version: String) -> JSONValue? {
        let resources = registry.all.filter { $0.group == group && $0.version == version }
        guard !resources.isEmpty else { return nil }
        var paths: JSONObject = [:]
        var schemas: JSONObject = [:]
        for resource in resources {
            let gvk: JSONValue = ["group": .string(resource.group), "version": .string(resource.version), "kind": .string(resource.kind)]
            let schemaName = self.schemaName(resource)
            let reference: JSONValue = ["$ref": .string("#/components/schemas/\(schemaName)")]
            var schema = resource.schema ?? ["type": "object", "description": .string("\(resource.kind) (field schema not published by this server)"),
                                             "x-kubernetes-preserve-unknown-fields": true]
            schema["x-kubernetes-group-version-kind"] = [gvk]
            schemas[schemaName] = .object(schema)

            let query: [JSONValue] = ["dryRun", "fieldManager", "fieldValidation", "pretty"].map {
                ["name": .string($0), "in": "query", "schema": ["type": "string", "uniqueItems": true]]
            }
            let response: JSONValue = ["200": ["description": "OK", "content": ["application/json": ["schema": reference]]]]
            func operation(_ action: String, _ id: String) -> JSONValue {
                ["operationId": .string("\(id)\(resource.kind)"), "parameters": .array(query), "responses": response,
                 "x-kubernetes-action": .string(action), "x-kubernetes-group-version-kind": gvk]
            }
            let collection = resource.namespaced
                ? "/\(prefix(resource))/namespaces/{namespace}/\(resource.plural)" : "/\(prefix(resource))/\(resource.plural)"
            var pathParameters: [JSONValue] = [["name": "name", "in": "path", "required": true, "schema": ["type": "string", "uniqueItems": true]]]
            if resource.namespaced {
                pathParameters.append(["name": "namespace", "in": "path", "required": true, "schema": ["type": "string", "uniqueItems": true]])
            }
            paths[collection] = .object([
                "parameters": .array(Array(pathParameters.dropFirst()) + query),
                "get": operation("list", "list"), "post": operation("post", "create"),
            ])
            var item: JSONObject = [
                "parameters": .array(pathParameters + query),
                "get": operation("get", "read"), "put": operation("put", "replace"), "delete": operation("delete", "delete"),
                "patch": operation("patch", "patch"),
            ]
            item["patch"] = operation("patch", "patch")
            paths["\(collection)/{name}"] = .object(item)
            if resource.hasStatus {
                paths["\(collection)/{name}/status"] = .object([
                    "parameters": .array(pathParameters + query),
                    "get": operation("get", "read\(resource.kind)Status"), "put": operation("put", "replaceStatus"),
                    "patch": operation("patch", "patchStatus"),
                ])
            }
        }
        return .object([
            "openapi": "3.0.0",
            "info": ["title": "Kubernetes", "version": .string(Discovery.kubernetesVersion.git)],
            "paths": .object(paths),
            "components": ["schemas": .object(schemas)],
        ])
    }

    static func prefix(_ resource: ServedResource) -> String {
        resource.group.isEmpty ? "api/\(resource.version)" : "apis/\(resource.group)/\(resource.version)"
    }

    /// `io.k8s.api.core.v1.Pod` for built-ins; reversed group for CRDs, as the API server names them.
    static func schemaName(_ resource: ServedResource) -> String {
        if resource.crdName != nil {
            return resource.group.split(separator: ".").reversed().joined(separator: ".") + ".\(resource.version).\(resource.kind)"
        }
        let group = resource.group.isEmpty ? "core" : String(resource.group.split(separator: ".").first ?? "")
        return "io.k8s.api.\(group).\(resource.version).\(resource.kind)"
    }

    /// A stable fingerprint of a document, for the `hash` that lets clients cache it.
    static func fingerprint(_ document: JSONValue?) -> String {
        var hash: UInt64 = 0xcbf29ce484222325
        for byte in JSONWriter.data(document ?? .null) {
            hash ^= UInt64(byte)
            hash = hash &* 0x100000001b3
        }
        return String(hash, radix: 16, uppercase: true)
    }
}
