// Module OperatorEngine: runs TimesTenClassic pairs. Imports KubeAPI and PKI only.
//
// - Model/: the TimesTenClassic CRD (TimesTenClassicCRD, the text of deploy/crd.yaml), its typed
//   views (TimesTenClassic, TTSpec with Oracle's defaults, TimesTenClassicStatus), SpecValidation
//   and the edge triggers stopManaging/reexamine.
// - Builders/: the pair's StatefulSet and headless Service (PairObjects), its CA and agent
//   certificates (PairCertificates), names and labels (PairNames), and Drift, which tells
//   whether an existing object still matches what a builder wants.
// - StateMachine/: PairStateMachine, a pure function from the pair's state to the next one.
// - Agent/: AgentClient, the operator's mTLS client of the in-pod agent.
// - Reconciler/: PairReconciler, the reconcile loop: PairObserver (informers → PairSnapshot),
//   PairPlanner (pure: snapshot → KubeAction list), PairActor (performs them through KubeClient).
