import Foundation
import KubeAPI
import Logging

/// The sample pair: the text of `deploy/sample.yaml`, carried in the binary for `tenops local`.
/// A test checks that the two are equal byte for byte; edit deploy/sample.yaml and copy it here.
public enum PairSample {
    public static let name = "sample"
    public static let namespace = "default"

    /// The manifests, in order (the Secret before the pair that names it).
    public static func objects() throws(KubeAPIError) -> [JSONObject] {
        try JSONValue.parseYAMLDocuments(yaml, source: "the embedded sample").map { document throws(KubeAPIError) in
            guard let object = document.objectValue else { throw .configuration("the embedded sample holds a document that is not a mapping") }
            return object
        }
    }

    public static let yaml = #"""
# A sample pair: TimesTenClassic "sample" in namespace default, a replicated PostgreSQL pair
# with synchronous replication (RETURN TWOSAFE). Its administrator comes from the Secret
# sample-db, projected at /ttconfig: the file adminUser holds "user/password", here
# admin/CHANGE-ME (base64 below; make your own with: printf 'user/password' | base64).
# Apply with: kubectl apply -f deploy/crd.yaml && kubectl apply -f deploy/sample.yaml
apiVersion: v1
kind: Secret
metadata:
  name: sample-db
  namespace: default
type: Opaque
data:
  adminUser: YWRtaW4vQ0hBTkdFLU1F
---
apiVersion: tenops.io/v1
kind: TimesTenClassic
metadata:
  name: sample
  namespace: default
spec:
  ttspec:
    image: tenops:latest
    storageSize: 1Gi
    dbSecret:
      - sample-db
    repReturnServiceAttribute: RETURN TWOSAFE
    deleteDbOnNotReadyNode: 60

"""#
}

/// What `tenops local` (and later `tenops operator --install`) puts in a cluster before the
/// engine starts: the CRD, and optionally the sample pair.
public enum ClusterSetup {
    /// Creates the CRD, or replaces it when it differs from this build's; then, when asked,
    /// the sample's objects that do not exist yet (existing ones are left as the user made them).
    public static func install(client: KubeClient, sample: Bool, logger: Logger) async throws {
        let crd = try TimesTenClassicCRD.object()
        do {
            _ = try await client.create(crd)
            logger.info("created CustomResourceDefinition \(TimesTenClassicCRD.name)")
        } catch {
            guard error.isAlreadyExists else { throw error }
            var existing = try await client.get(CustomResourceDefinition.self, name: TimesTenClassicCRD.name)
            if existing.json["spec"] != crd.json["spec"] {
                existing.json["spec"] = crd.json["spec"]
                _ = try await client.update(existing)
                logger.info("updated CustomResourceDefinition \(TimesTenClassicCRD.name)")
            }
        }
        guard sample else { return }
        for object in try PairSample.objects() {
            let kind = object["kind"]?.stringValue ?? "?"
            let resource: ResourceType = kind == "Secret" ? .secrets : TimesTenClassic.resourceType
            do {
                _ = try await client.create(resource, namespace: PairSample.namespace, object: object)
                logger.info("created \(kind) \(PairSample.namespace)/\(JSONValue.object(object)["metadata"]["name"].stringValue ?? "?")")
            } catch {
                guard error.isAlreadyExists else { throw error }
            }
        }
    }
}
