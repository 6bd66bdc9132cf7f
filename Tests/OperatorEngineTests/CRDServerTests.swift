import Foundation
import KubeAPI
@testable import OperatorEngine
import Testing

/// The CRD, the sample and the builders' objects against a real local API server, through the
/// real kubectl.
@Suite("TimesTenClassic CRD on a local API server", .serialized, .timeLimit(.minutes(5)))
struct CRDServerTests {
    static let invalidSpecs: [(name: String, ttspec: String, field: String)] = [
        ("bad-polling", #"{"image":"tenops:latest","pollingInterval":-1}"#, "spec.ttspec.pollingInterval"),
        ("bad-image", #"{"storageSize":"1Gi"}"#, "spec.ttspec.image"),
        ("bad-storage", #"{"image":"tenops:latest","storageSize":"lots"}"#, "spec.ttspec.storageSize"),
        ("bad-bothdown", #"{"image":"tenops:latest","bothDownBehavior":"Worst"}"#, "spec.ttspec.bothDownBehavior"),
    ]

    @Test("kubectl installs the CRD, applies the sample, prints STATE and ACTIVE, refuses bad specs and accepts the builders' objects")
    func crdOnServer() async throws {
        try await withLocalServer { kubectl in
            func run(_ arguments: [String], input: String? = nil) async throws -> ProcessOutput {
                try await kubectl(arguments, input)
            }
            func json(_ arguments: [String]) async throws -> JSONObject {
                let output = try await run(arguments + ["-o", "json"])
                #expect(output.status == 0, "\(output)")
                return try JSONParser.parseObject(Data(output.out.utf8))
            }
            func rows(_ output: ProcessOutput) -> [[String]] {
                output.out.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
            }

            // The CRD, as kubectl applies it; kubectl's own reading of the YAML is ours.
            let crdFile = "\(packageRoot)/deploy/crd.yaml"
            let installed = try await run(["apply", "-f", crdFile])
            #expect(installed.status == 0 && installed.out.contains("timestenclassics.tenops.io created"), "\(installed)")
            var asKubectlReadsIt = try await json(["create", "--dry-run=client", "-f", crdFile])
            if asKubectlReadsIt.value(at: ["metadata", "creationTimestamp"]).isNull {
                asKubectlReadsIt.setValue(.null, at: ["metadata", "creationTimestamp"])
            }
            #expect(asKubectlReadsIt == (try TimesTenClassicCRD.object()).json)

            // The sample: its Secret and the pair. Nothing has a state yet.
            let sample = try await run(["apply", "-f", "\(packageRoot)/deploy/sample.yaml"])
            #expect(sample.status == 0, "\(sample)")
            #expect(sample.out.contains("secret/sample-db created") && sample.out.contains("timestenclassic.tenops.io/sample created"), "\(sample)")
            let fresh = try await run(["get", "ttc", "-n", "default"])
            #expect(rows(fresh).first == ["NAME", "STATE", "ACTIVE", "AGE"], "\(fresh)")
            #expect(rows(fresh).dropFirst().map { $0.first } == ["sample"], "\(fresh)")

            // The engine's status, written through /status, is stored whole and printed.
            let status = ModelTests.fullStatus()
            let patched = try await run(["patch", "ttc", "sample", "-n", "default", "--subresource=status", "--type=merge",
                                         "-p", JSONWriter.string(["status": .object(status.json)])])
            #expect(patched.status == 0, "\(patched)")
            let table = try await run(["get", "ttc", "-n", "default"])
            #expect(rows(table).count == 2 && Array(rows(table)[1].prefix(3)) == ["sample", "Normal", "sample-0"], "\(table)")
            let stored = TimesTenClassic(json: try await json(["get", "ttc", "sample", "-n", "default"]))
            #expect(stored.status.json == status.json)
            #expect(stored.ttspec.repReturnServiceAttribute == .returnTwosafe && stored.ttspec.deleteDbOnNotReadyNode == 60)
            #expect(stored.ttspec.dbSecret == ["sample-db"] && stored.ttspec.storageSize == "1Gi" && stored.ttspec.image == "tenops:latest")
            #expect(SpecValidation.problems(in: stored).isEmpty)
            let listed = try await run(["get", "all", "-n", "default", "-o", "name"])
            #expect(listed.out.contains("timestenclassic.tenops.io/sample"), "categories: [all]: \(listed)")

            // The Secret's data is what pods see at /ttconfig.
            let secret = Secret(json: try await json(["get", "secret", "sample-db", "-n", "default"]))
            #expect(secret.data["adminUser"] == Data("admin/CHANGE-ME".utf8), "\(secret.json)")
            // Kubernetes merges a Secret's write-only stringData into data; the local server does not yet.
            let plain = #"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"plain","namespace":"default"},"stringData":{"adminUser":"a/b"}}"#
            #expect(try await run(["apply", "-f", "-"], input: plain).status == 0)
            let plainSecret = Secret(json: try await json(["get", "secret", "plain", "-n", "default"]))
            // stringData is merged into data, base64-encoded, and not stored, as in Kubernetes.
            #expect(plainSecret.data["adminUser"] == Data("a/b".utf8) && plainSecret.stringData.isEmpty, "\(plainSecret.json)")

            // Bad specs are refused by the schema, with the field named, and nothing is stored.
            for bad in Self.invalidSpecs {
                let body = #"{"apiVersion":"tenops.io/v1","kind":"TimesTenClassic","metadata":{"name":"\#(bad.name)","namespace":"default"},"spec":{"ttspec":\#(bad.ttspec)}}"#
                let refused = try await run(["apply", "-f", "-"], input: body)
                #expect(refused.status != 0, "\(bad.name): \(refused)")
                #expect(refused.err.contains(#"The TimesTenClassic "\#(bad.name)" is invalid: \#(bad.field): "#),
                        "\(bad.name): \(refused)")
            }
            let names = try await run(["get", "ttc", "-A", "-o", "name"])
            #expect(names.out == "timestenclassic.tenops.io/sample\n", "\(names)")

            // The builders' objects pass the server's checks (dry run: nothing is created).
            let certificates = try PairCertificates.create(for: PairNames(stored))
            let objects: [any JSONBacked] = try [
                PairObjects.statefulSet(for: stored), PairObjects.service(for: stored),
                certificates.caSecret(owner: stored), certificates.agentTLSSecret(owner: stored),
            ]
            let stream = objects.map { JSONWriter.string(.object($0.json)) }.joined(separator: "\n")  // a JSON stream
            let dryRun = try await run(["apply", "--dry-run=server", "-f", "-"], input: stream)
            #expect(dryRun.status == 0, "\(dryRun)")
            for name in ["statefulset.apps/sample", "service/sample", "secret/sample-ca", "secret/sample-agent-tls"] {
                #expect(dryRun.out.contains("\(name) created (server dry run)"), "\(name): \(dryRun)")
            }
            let nothing = try await run(["get", "statefulsets,services,secrets", "-n", "default", "-o", "name"])
            #expect(!nothing.out.contains("sample-ca") && !nothing.out.contains("statefulset"), "\(nothing)")
        }
    }
}
