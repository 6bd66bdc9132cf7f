import KubeAPI

/// Discovery documents: what `kubectl api-resources` and every client's RESTMapper read. Pure.
enum Discovery {
    static let kubernetesVersion = (major: "1", minor: "32", git: "v1.32.0-tenops")

    static func version() -> JSONValue {
        [
            "major": .string(kubernetesVersion.major), "minor": .string(kubernetesVersion.minor),
            "gitVersion": .string(kubernetesVersion.git), "gitCommit": "tenops", "gitTreeState": "clean",
            "buildDate": "2026-11-22T00:00:00Z", "goVersion": "swift6.3", "compiler": "swift", "platform": "linux/amd64",
        ]
    }

    static func coreVersions(serverAddress: String) -> JSONValue {
        ["kind": "APIVersions", "versions": ["v1"],
         "serverAddressByClientCIDRs": [["clientCIDR": "0.0.0.0/0", "serverAddress": .string(serverAddress)]]]
    }

    static func groupList(_ registry: ResourceRegistry) -> JSONValue {
        .object(["kind": "APIGroupList", "apiVersion": "v1",
                 "groups": .array(registry.groups.filter { !$0.name.isEmpty }.map { group($0.name, $0.versions) })])
    }

    static func group(_ name: String, _ versions: [String]) -> JSONValue {
        let entries: [JSONValue] = versions.map { ["groupVersion": .string("\(name)/\($0)"), "version": .string($0)] }
        return .object(["kind": "APIGroup", "apiVersion": "v1", "name": .string(name), "versions": .array(entries),
                        "preferredVersion": entries.first ?? .null])
    }

    static func resourceList(_ registry: ResourceRegistry, group: String, version: String) -> JSONValue? {
        let resources = registry.all.filter { $0.group == group && $0.version == version }
        guard !resources.isEmpty else { return nil }
        var entries: [JSONValue] = []
        for resource in resources {
            var entry: JSONObject = [
                "name": .string(resource.plural), "singularName": .string(resource.singular), "namespaced": .bool(resource.namespaced),
                "kind": .string(resource.kind), "verbs": .array(resource.verbs.map(JSONValue.string)),
            ]
            if !resource.shortNames.isEmpty { entry["shortNames"] = .array(resource.shortNames.map(JSONValue.string)) }
            if !resource.categories.isEmpty { entry["categories"] = .array(resource.categories.map(JSONValue.string)) }
            entries.append(.object(entry))
            for sub in resource.subresources.sorted() {
                let verbs: [JSONValue] = sub == "log" ? ["get"] : sub == "binding" ? ["create"] : ["get", "patch", "update"]
                entries.append(["name": .string("\(resource.plural)/\(sub)"), "singularName": "", "namespaced": .bool(resource.namespaced),
                                "kind": .string(sub == "binding" ? "Binding" : resource.kind), "verbs": .array(verbs)])
            }
        }
        return .object(["kind": "APIResourceList", "apiVersion": "v1", "groupVersion": .string(group.isEmpty ? version : "\(group)/\(version)"),
                        "resources": .array(entries)])
    }
}
