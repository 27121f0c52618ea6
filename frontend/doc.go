// Package frontend runs one router of a kvmesh cluster: the OpenAI-compatible HTTP API in
// front of the pipelines that membership reports, KV-aware routing (router.Router) fed by
// the leaders' cache events over NATS, and failover. It embeds a NATS server unless it is
// given an external one. cmd/router is this package behind flags.
//
// Membership drives everything: a worker that gossips layer 0 and state "ready" is the
// leader of a serving pipeline; the frontend dials it (leader.Client), adds it to the
// router, and asks it for a snapshot of its prefix cache. A leader that is dead, left,
// restarted or no longer ready leaves the router and the prefix index at once.
package frontend
