import Foundation

/// A realistic Pod of about 4 KB of JSON: two containers, env, probes, volumes, conditions and
/// statuses, as a TenOps pair's pod looks when it is Running.
enum PodFixture {
    static func json(index: Int, resourceVersion: Int) -> String {
        let labels = (0..<8).map { "\"tenops.io/label-\($0)\":\"value-\($0)-\(index)\"" }.joined(separator: ",")
        let env = (0..<14).map { "{\"name\":\"TENOPS_SETTING_\($0)\",\"value\":\"setting-value-\($0)-abcdefghijkl\"}" }.joined(separator: ",")
        let conditions = ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"].map {
            "{\"type\":\"\($0)\",\"status\":\"True\",\"lastProbeTime\":null,\"lastTransitionTime\":\"2026-11-20T10:00:0\(index % 10)Z\"}"
        }.joined(separator: ",")
        return """
        {"apiVersion":"v1","kind":"Pod","metadata":{"name":"sample-\(index)","generateName":"sample-","namespace":"default","uid":"6b1f3c1e-0d2a-4e55-9b7e-\(String(format: "%012d", index))","resourceVersion":"\(resourceVersion)","creationTimestamp":"2026-11-20T10:00:00Z","labels":{\(labels),"app.kubernetes.io/name":"sample","statefulset.kubernetes.io/pod-name":"sample-\(index)"},"annotations":{"tenops.io/intended-state":"Active","tenops.io/note":"a fairly long annotation value that takes up some room in the object, as real ones do"},"ownerReferences":[{"apiVersion":"apps/v1","kind":"StatefulSet","name":"sample","uid":"0f0f0f0f-1111-2222-3333-444444444444","controller":true,"blockOwnerDeletion":true}]},"spec":{"nodeName":"node-\(index % 3)","hostname":"sample-\(index)","subdomain":"sample","restartPolicy":"Always","terminationGracePeriodSeconds":30,"serviceAccountName":"default","containers":[{"name":"tt","image":"tenops:0.1.0","imagePullPolicy":"IfNotPresent","command":["tenops","agent"],"args":["--port","8443","--tls-dir","/tls"],"env":[\(env),{"name":"POD_IP","valueFrom":{"fieldRef":{"apiVersion":"v1","fieldPath":"status.podIP"}}}],"ports":[{"containerPort":8443,"name":"agent","protocol":"TCP"},{"containerPort":4444,"name":"replication","protocol":"TCP"}],"volumeMounts":[{"name":"tt-persistent","mountPath":"/tt"},{"name":"agent-tls","mountPath":"/tls","readOnly":true},{"name":"tt-config","mountPath":"/ttconfig","readOnly":true}],"readinessProbe":{"httpGet":{"path":"/healthz","port":8443,"scheme":"HTTPS"},"periodSeconds":2,"failureThreshold":3,"timeoutSeconds":1}},{"name":"daemonlog","image":"tenops:0.1.0","command":["tenops","agent","daemonlog"],"volumeMounts":[{"name":"tt-persistent","mountPath":"/tt"}]}],"volumes":[{"name":"tt-persistent","persistentVolumeClaim":{"claimName":"tt-persistent-sample-\(index)"}},{"name":"agent-tls","secret":{"secretName":"sample-agent-tls","defaultMode":256}},{"name":"tt-config","projected":{"sources":[{"configMap":{"name":"sample-config"}},{"secret":{"name":"sample-secret"}}]}}],"affinity":{"podAntiAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":[{"labelSelector":{"matchLabels":{"app.kubernetes.io/name":"sample"}},"topologyKey":"kubernetes.io/hostname"}]}}},"status":{"phase":"Running","podIP":"127.0.1.\(index % 250)","podIPs":[{"ip":"127.0.1.\(index % 250)"}],"hostIP":"127.0.0.1","startTime":"2026-11-20T10:00:00Z","qosClass":"BestEffort","conditions":[\(conditions)],"containerStatuses":[{"name":"tt","ready":true,"restartCount":\(index % 4),"image":"tenops:0.1.0","imageID":"process://tenops","containerID":"process://\(1000 + index)","started":true,"state":{"running":{"startedAt":"2026-11-20T10:00:01Z"}}},{"name":"daemonlog","ready":true,"restartCount":0,"image":"tenops:0.1.0","imageID":"process://tenops","containerID":"process://\(2000 + index)","started":true,"state":{"running":{"startedAt":"2026-11-20T10:00:01Z"}}}]}}
        """
    }

    static func watchLine(index: Int, resourceVersion: Int) -> String {
        "{\"type\":\"MODIFIED\",\"object\":\(json(index: index, resourceVersion: resourceVersion))}\n"
    }
}
