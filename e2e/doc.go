// Package e2e holds the end-to-end tests of kvmesh with real processes: it builds
// cmd/router and cmd/node, starts clusters of them on loopback ports, drives them over
// HTTP as a client would, and kills processes with SIGKILL in the middle of generations.
//
// # Two clusters, one set of helpers
//
// testCluster (harness_test.go) is what the load and recovery helpers drive: Cluster, a
// router and workers as processes of the test (pause is SIGSTOP; it cannot cut a node off
// the network), and composeCluster (chaos_test.go, build tag chaos), the containers of
// deploy/compose/docker-compose.yml driven through the docker and docker-compose CLIs.
// A scenario (scenario_test.go) injects one fault while runLoad streams reference cases
// through the routers, then checks:
//
//   - every request completes, or fails with a retryable error (no connection, a cut
//     stream, 429/502/503/504, an error event of type service_unavailable) and completes
//     when the client retries on the next router;
//   - every output equals the llama2.c reference, which is the fault-free output: no
//     token missing or repeated;
//   - a fault that takes a worker away takes its pipeline out of routing while it lasts;
//   - the cluster returns to full capacity (every router routes every pipeline, every
//     leader's KV blocks all free) within recoveryLimit of the fault's end, timed.
//
// The chaos suite (go test -tags chaos ./e2e -run Chaos, or scripts/chaos.sh, which
// builds the images first and always removes the cluster) runs every scenario against
// the containers: kills of each stage position and of a router, a pause, a partition,
// and the disk tiers' warm restart, corrupt file and full volume (chaos_swap_test.go). It
// writes its figures as JSON (-chaos.out) and the report made of them, docs/reliability.md
// (-chaos.report; chaos_report_test.go renders it). The default run drives the process cluster through the same pause
// scenario (TestPauseWorker).
package e2e
