// Module Agent.
//
// The in-pod agent: an HTTPS endpoint with mutual TLS and the DatabaseEngine protocol, with PostgresEngine first. Imports PKI only. Filled in by issue #5.
// The boundary exists from the start (see ../shared/DESIGN.md); it holds no code yet.
