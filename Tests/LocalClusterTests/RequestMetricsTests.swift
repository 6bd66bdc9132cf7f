import Foundation
import KubeAPI
import Testing
@testable import LocalCluster

/// The API server's `/metrics`: `apiserver_request_total{code,group,resource,subresource,user,verb}`,
/// counted per request, served to administrators only.
@Suite("The local API server's request counters", .serialized, .timeLimit(.minutes(5)))
struct RequestMetricsTests {
    static let admin = AuthenticatedUser(name: "tenops-admin", groups: ["system:masters"])

    @Test("requests are sorted into kube-apiserver's verbs", arguments: [
        ("GET", "/api/v1/namespaces/default/pods", [:], "LIST", "", "pods", ""),
        ("GET", "/api/v1/namespaces/default/pods", ["watch": "true"], "WATCH", "", "pods", ""),
        ("GET", "/api/v1/pods", ["watch": "1"], "WATCH", "", "pods", ""),
        ("GET", "/api/v1/namespaces/default/pods/p", [:], "GET", "", "pods", ""),
        ("GET", "/api/v1/namespaces/default/pods/p/log", [:], "GET", "", "pods", "log"),
        ("POST", "/api/v1/namespaces/default/pods", [:], "POST", "", "pods", ""),
        ("POST", "/api/v1/namespaces/default/pods/p/binding", [:], "POST", "", "pods", "binding"),
        ("PUT", "/apis/coordination.k8s.io/v1/namespaces/default/leases/l", [:], "PUT", "coordination.k8s.io", "leases", ""),
        ("PATCH", "/apis/tenops.io/v1/namespaces/ns/timestenclassics/x/status", [:], "PATCH", "tenops.io", "timestenclassics", "status"),
        ("DELETE", "/api/v1/namespaces/default/pods/p", [:], "DELETE", "", "pods", ""),
        ("DELETE", "/api/v1/namespaces/default/pods", [:], "DELETECOLLECTION", "", "pods", ""),
        ("GET", "/api/v1/namespaces/default", [:], "GET", "", "namespaces", ""),
        ("GET", "/api/v1/namespaces", [:], "LIST", "", "namespaces", ""),
        ("GET", "/apis", [:], "GET", "", "", ""),
        ("GET", "/healthz", [:], "GET", "", "", ""),
    ] as [(String, String, [String: String], String, String, String, String)])
    func verbs(_ method: String, _ path: String, _ query: [String: String], _ verb: String, _ group: String, _ resource: String,
               _ subresource: String) {
        let request = APIRequest(method: method, path: path, query: query, accept: "application/json", contentType: "", body: Data(),
                                 user: Self.admin)
        let kind = RequestKind(request, code: 200)
        #expect(kind.verb == verb && kind.group == group && kind.resource == resource && kind.subresource == subresource,
                "\(method) \(path) \(query): \(kind)")
    }

    @Test("label values are escaped for the text format")
    func escaping() {
        #expect(RequestCounter.escape(#"a"b\c"#) == #"a\"b\\c"#)
        #expect(RequestCounter.escape("x\ny") == #"x\ny"#)
    }

    @Test("kubectl's and a component's requests are counted by user, verb and resource; only administrators may read them")
    func countsRealRequests() async throws {
        try await LocalServer.with { local in
            let user = "system:serviceaccount:bench:counter"
            let component = try local.server.componentClient(user: user, groups: [])

            let before = try await Self.metrics(local)
            let adminLists = Self.value(before, user: "tenops-admin", verb: "LIST", resource: "namespaces")

            // The real kubectl, as tenops-admin: one LIST of namespaces, one POST of a ConfigMap.
            let listed = try await local.kubectl(["get", "namespaces"])
            #expect(listed.status == 0, "\(listed.err)")
            let created = try await local.kubectl(["create", "configmap", "counted", "-n", "default", "--from-literal=a=b"])
            #expect(created.status == 0, "\(created.err)")

            // A component with its own token: three GETs, a LIST, a PATCH and a WATCH that it ends.
            for _ in 0..<3 { _ = try await component.get(Namespace.self, name: "default") }
            _ = try await component.list(ConfigMap.self, namespace: "default")
            _ = try await component.patch(ConfigMap.self, name: "counted", namespace: "default", patchType: .merge,
                                          patch: ["data": ["c": "d"]])
            let stream = try await component.watch(ConfigMap.self, namespace: "default", options: WatchOptions(timeoutSeconds: 1))
            for try await _ in stream {}

            // Not an administrator: refused, and the refusal is counted too.
            await #expect(throws: KubeAPIError.self) { _ = try await component.send(method: "GET", path: "/metrics", accept: "text/plain") }

            let after = try await Self.metrics(local)
            #expect(after.contains("# TYPE apiserver_request_total counter"))
            #expect(Self.value(after, user: "tenops-admin", verb: "LIST", resource: "namespaces") == adminLists + 1, "\(after)")
            #expect(Self.value(after, user: "tenops-admin", verb: "POST", resource: "configmaps", code: 201) == 1, "\(after)")
            #expect(Self.value(after, user: user, verb: "GET", resource: "namespaces") == 3, "\(after)")
            #expect(Self.value(after, user: user, verb: "LIST", resource: "configmaps") == 1, "\(after)")
            #expect(Self.value(after, user: user, verb: "PATCH", resource: "configmaps") == 1, "\(after)")
            #expect(Self.value(after, user: user, verb: "WATCH", resource: "configmaps") == 1, "\(after)")
            #expect(Self.value(after, user: user, verb: "GET", resource: "", code: 403) == 1, "\(after)")
            // Nothing else was counted for the component.
            let componentTotal = Self.series(after).filter { $0.labels["user"] == user }.map(\.value).reduce(0, +)
            #expect(componentTotal == 7, "\(after)")
        }
    }

    /// `kubectl get --raw /metrics`, as the administrator.
    static func metrics(_ local: LocalServer) async throws -> String {
        let output = try await local.kubectl(["get", "--raw", "/metrics"])
        try #require(output.status == 0, "\(output.err)")
        return output.out
    }

    struct Series {
        var labels: [String: String]
        var value: Int
    }

    /// The `apiserver_request_total` series of an exposition (label values here hold no commas or quotes).
    static func series(_ text: String) -> [Series] {
        text.split(separator: "\n").compactMap { line -> Series? in
            guard line.hasPrefix("apiserver_request_total{"), let open = line.firstIndex(of: "{"), let close = line.lastIndex(of: "}"),
                  let value = Int(line[line.index(after: close)...].trimmingCharacters(in: .whitespaces))
            else { return nil }
            var labels: [String: String] = [:]
            for pair in line[line.index(after: open)..<close].split(separator: ",") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard parts.count == 2 else { continue }
                labels[String(parts[0])] = String(parts[1].dropFirst().dropLast())
            }
            return Series(labels: labels, value: value)
        }
    }

    static func value(_ text: String, user: String, verb: String, resource: String, code: Int = 200) -> Int {
        series(text).filter {
            $0.labels["user"] == user && $0.labels["verb"] == verb && $0.labels["resource"] == resource && $0.labels["code"] == String(code)
        }.map(\.value).reduce(0, +)
    }
}
