// Module LocalCluster: the local control plane.
//
// APIServer/ holds the Kubernetes-compatible API server: storage with a write-ahead log, the API
// semantics, discovery, OpenAPI v3, Table printing, the HTTPS front end, and pod logs fetched
// from the pod's node (KubeletLogSource).
// Controllers/ holds what kube-controller-manager and kube-scheduler do for a pair: StatefulSets,
// scheduling and node lifecycle. Garbage collection through ownerReferences is done by the API
// server itself at deletion time.
// Node/ holds the process node (`tenops node`): a kubelet that runs pods as local processes.
// LocalControlPlane wires the three together for `tenops local`.
