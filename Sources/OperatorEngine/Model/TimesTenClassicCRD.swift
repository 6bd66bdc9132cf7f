import KubeAPI

/// The TimesTenClassic CustomResourceDefinition that tenops installs: the text of
/// `deploy/crd.yaml`, carried in the binary so that nothing at run time reads the source tree.
/// A test checks that the two are equal byte for byte; edit deploy/crd.yaml and copy it here.
public enum TimesTenClassicCRD {
    public static let name = "timestenclassics.tenops.io"

    /// The CRD as JSON, ready to create or update through the API.
    public static func object() throws(KubeAPIError) -> CustomResourceDefinition {
        guard let object = try JSONValue.parseYAML(yaml, source: "the embedded CRD").objectValue else {
            throw .configuration("the embedded CRD is not a mapping")
        }
        return CustomResourceDefinition(json: object)
    }

    public static let yaml = #"""
# TenOps: the TimesTenClassic custom resource, tenops.io/v1.
#
# The fields under spec.ttspec keep the names and meanings of Oracle's TimesTen Kubernetes
# Operator: a user moving from Oracle's operator changes only apiVersion.
# tenops carries this same text (OperatorEngine's TimesTenClassicCRD.yaml); a test checks that
# the two are equal byte for byte. Apply with: kubectl apply -f deploy/crd.yaml
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: timestenclassics.tenops.io
spec:
  group: tenops.io
  scope: Namespaced
  names:
    kind: TimesTenClassic
    listKind: TimesTenClassicList
    plural: timestenclassics
    singular: timestenclassic
    shortNames: [ttc]
    categories: [all]
  versions:
    - name: v1
      served: true
      storage: true
      subresources:
        status: {}
      additionalPrinterColumns:
        - name: State
          type: string
          description: The state of the pair.
          jsonPath: .status.highLevelState
        - name: Active
          type: string
          description: The pod that holds the active database.
          jsonPath: .status.activePods
        - name: Age
          type: date
          jsonPath: .metadata.creationTimestamp
      schema:
        openAPIV3Schema:
          description: An active/standby pair of replicated databases, run by TenOps.
          type: object
          required: [spec]
          properties:
            apiVersion: {type: string}
            kind: {type: string}
            metadata: {type: object}
            spec:
              type: object
              required: [ttspec]
              properties:
                ttspec:
                  description: The pair, with the field names of Oracle's TimesTenClassic.
                  type: object
                  required: [image]
                  properties:
                    image:
                      description: Image of the tt and daemonlog containers.
                      type: string
                      minLength: 1
                    imagePullPolicy:
                      description: Pull policy of the containers. Default IfNotPresent.
                      type: string
                      enum: [Always, IfNotPresent, Never]
                    imagePullSecret:
                      description: Name of a Secret to pull the image with.
                      type: string
                      maxLength: 253
                      pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'
                    storageClassName:
                      description: Storage class of the tt-persistent claim, mounted at /tt.
                      type: string
                      maxLength: 253
                      pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'
                    storageSize:
                      description: Size of the tt-persistent claim, a quantity such as 50Gi. Default 50Gi.
                      type: string
                      pattern: '^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$'
                    logStorageSize:
                      description: Size of the optional tt-log claim, mounted at /ttlog. None when unset.
                      type: string
                      pattern: '^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$'
                    logStorageClassName:
                      description: Storage class of the tt-log claim.
                      type: string
                      maxLength: 253
                      pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'
                    pollingInterval:
                      description: Seconds between two reconciles of a pair that is not at rest, or whose agents report a change no event carries (replication lag). Events reconcile at once; a pair at rest is also reconciled every 5 minutes. Default 5.
                      type: integer
                      minimum: 1
                    unreachableTimeout:
                      description: Seconds an unreachable agent counts as Unknown before it counts as Down. Default 30.
                      type: integer
                      minimum: 1
                    repStateTimeout:
                      description: Seconds a bad replication state may last before the pod counts as Down. Default 30.
                      type: integer
                      minimum: 1
                    deleteDbOnNotReadyNode:
                      description: Seconds after which a pod on a NotReady node is deleted with its claims. Off when unset.
                      type: integer
                      minimum: 0
                    bothDownBehavior:
                      description: What to do when both databases are down. Best restarts from the one that is ahead. Default Best.
                      type: string
                      enum: [Best, Manual]
                    repReturnServiceAttribute:
                      description: RETURN TWOSAFE replicates synchronously. Default NO RETURN.
                      type: string
                      enum: ["NO RETURN", "RETURN TWOSAFE"]
                    repPort:
                      description: Replication port; for PostgreSQL the server port. Default 5432.
                      type: integer
                      minimum: 1
                      maximum: 65535
                    dbConfigMap:
                      description: ConfigMaps projected at /ttconfig (db.ini, schema.sql, epilog.sql).
                      type: array
                      items:
                        type: string
                        maxLength: 253
                        pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'
                    dbSecret:
                      description: Secrets projected at /ttconfig (adminUser, db.ini, schema.sql, epilog.sql).
                      type: array
                      items:
                        type: string
                        maxLength: 253
                        pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'
                    stopManaging:
                      description: Any change of this value makes the operator stop managing the pair (ManualInterventionRequired).
                      x-kubernetes-int-or-string: true
                    reexamine:
                      description: Any change of this value makes the operator examine the pair again and resume.
                      x-kubernetes-int-or-string: true
                    agentGetTimeout:
                      description: Seconds a GET to the agent may take. Default 60.
                      type: integer
                      minimum: 1
                    agentPostTimeout:
                      description: Seconds a POST to the agent may take. Default 600.
                      type: integer
                      minimum: 1
                    agentAsyncTimeout:
                      description: Seconds an asynchronous agent task (repDuplicate) may take. Default 600.
                      type: integer
                      minimum: 1
                    daemonLogSidecar:
                      description: Run the daemonlog container, which streams the database log. Default true.
                      type: boolean
                    replicationTopology:
                      description: Only activeStandbyPair. Default activeStandbyPair.
                      type: string
                      enum: [activeStandbyPair]
            status:
              description: Written by the operator.
              type: object
              x-kubernetes-preserve-unknown-fields: true
              properties:
                highLevelState: {type: string}
                prevHighLevelState: {type: string}
                lastHighLevelStateSwitch: {type: string}
                activePods: {type: string}
                observedGeneration: {type: integer}
                lastReconcile: {type: string}
                prevStopManaging: {type: string}
                prevReexamine: {type: string}
                rejectedActionId: {type: string}
                podStatus:
                  type: array
                  items:
                    type: object
                    x-kubernetes-preserve-unknown-fields: true
                    properties:
                      name: {type: string}
                      intendedState: {type: string}
                      highLevelState: {type: string}
                      ready: {type: boolean}
                      active: {type: boolean}
                      podStatus:
                        type: object
                        x-kubernetes-preserve-unknown-fields: true
                        properties:
                          podPhase: {type: string}
                          podIP: {type: string}
                          agent: {type: string}
                          lastTimeReachable: {type: string}
                          uid: {type: string}
                          restarts: {type: integer}
                      dbStatus:
                        type: object
                        x-kubernetes-preserve-unknown-fields: true
                        properties:
                          db: {type: string}
                          dbUpdatable: {type: boolean}
                      replicationStatus:
                        type: object
                        x-kubernetes-preserve-unknown-fields: true
                        properties:
                          repAgent: {type: string}
                          repState: {type: string}
                          repPeerPState: {type: string}
                          lastTimeRepStateChanged: {type: string}
                          lastTimeRepPeerPStateChanged: {type: string}
                          lagBytes: {type: integer}
                      node:
                        type: object
                        x-kubernetes-preserve-unknown-fields: true
                        properties:
                          name: {type: string}
                          ready: {type: string}
                          notReadySince: {type: string}
                lastAction:
                  type: object
                  x-kubernetes-preserve-unknown-fields: true
                  properties:
                    id: {type: string}
                    verb: {type: string}
                    pod: {type: string}
                    state: {type: string}
                    message: {type: string}
                    startTime: {type: string}
                    endTime: {type: string}
                    phase: {type: string}
                    method: {type: string}
                    bytesDone: {type: integer}
                    bytesTotal: {type: integer}
                conditions:
                  type: array
                  items:
                    type: object
                    x-kubernetes-preserve-unknown-fields: true
                    properties:
                      type: {type: string}
                      status: {type: string}
                      reason: {type: string}
                      message: {type: string}
                      lastTransitionTime: {type: string}
                      observedGeneration: {type: integer}

"""#
}
