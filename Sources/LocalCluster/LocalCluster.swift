// Module LocalCluster: the local control plane.
//
// APIServer/ holds the Kubernetes-compatible API server (issue #3): storage with a write-ahead
// log, the API semantics, discovery, OpenAPI v3, Table printing, and the HTTPS front end.
// Controllers and the process node arrive with issue #4.
