// Package router sends each generation to a pipeline leader, preferring the one that holds
// the longest cached prefix of its prompt, and carries it over to another leader when the
// first one fails, so that the client sees every token exactly once.
//
// # Routing
//
// The router computes the prompt's block keys (kvindex.Keys from the cluster's key seed)
// and asks a Picker (the kvindex subscriber's prefix index) which leader holds the longest
// prefix of them, traded against load: the requests this router has in flight on each
// leader, and the free KV blocks each leader gossips. Without a Picker, or with RoundRobin
// set (the baseline the benchmarks compare with), leaders take turns.
//
// # Failover
//
// The router keeps every request's token history. When a leader's stream ends with an
// error that says the generation, not the request, failed (a broken connection, a failed
// pipeline stage, a leader shutting down, a full queue before any token), the router
// resubmits the request to another leader with the tokens already streamed appended to
// the prompt and engine.Request.Resumed set to their number: sampling continues the same
// random draws (a pure function of seed and position), so the continuation is exactly the
// uninterrupted one, and the client's stream goes on with no token missing or repeated.
// A request with n > 1 samples is split into n requests (seeds seed, seed+1, ...), each
// resumable on its own; the leaders' prefix caches still share their prompt blocks.
//
// # Invariants
//
//   - Every token sent to the client was received exactly once from some leader, in order.
//   - A request ends with a Finish event per sample, or an error event: never silently.
//   - A failed leader is avoided for Config.Quarantine after a failure; membership removes
//     dead ones for good.
package router
