// Module OperatorEngine.
//
// TimesTenClassic types, PairStateMachine, the Reconciler, builders and the agent client. Imports KubeAPI and PKI only. Filled in by issue #6.
// The boundary exists from the start (see ../shared/DESIGN.md); it holds no code yet.
