// Module LocalCluster.
//
// The local control plane: a Kubernetes-compatible API server, controllers and the process node. Imports KubeAPI and PKI only. Filled in by issues #3 and #4.
// The boundary exists from the start (see ../shared/DESIGN.md); it holds no code yet.
