// Package serving measures the serving engine (package engine) against baselines written
// here, in the same run and on the same machine, so that every figure is read as a ratio:
//
//   - Waste: KV memory waste of the paged cache (reserved but unfilled token slots over
//     reserved slots, time-averaged over the run) against contiguous reservation of each
//     sequence's maximum length, on a mixed-length workload.
//   - Static: request throughput of continuous batching against static batching (fixed
//     batches that wait for their longest member, with maximum-length reservation), under
//     the same number of KV blocks.
//   - TTFT: time to first token of requests that share a long prefix, with prefix caching
//     on and off.
//   - Swap: throughput when the disk tier carries three quarters of a working set of shared
//     prefixes, against the run whose memory holds it all, and against recomputing.
//   - Pipeline: decode throughput of a two-stage pipeline (a leader and a stage server on a
//     loopback gRPC socket, splitting the thread budget between them, with one or more
//     micro-batches in flight) against one engine that runs every layer on all the threads.
//     Both decode the same requests and must generate the same tokens; the leader takes the
//     layers that balance the weights each side reads (the last stage also reads the
//     classifier).
//
// Each benchmark is a function of a model and a Config with documented defaults; it
// returns a result with the figure, the baseline, their ratio and whether the ratio meets
// the target. The commands kvmesh servebench and kvmesh pipebench print them.
//
// # Invariants
//
//   - Workloads are pure functions of their Config (seeded): the engine and its baseline
//     run the same requests, and two runs of a benchmark run the same requests.
//   - Baselines sample exactly as the engine does (the draw for a request's k-th token is
//     a function of its seed and k), so the static baseline generates the same tokens as the
//     engine and the throughput ratio compares the same work. Static reports the number of
//     requests whose tokens differ: zero whenever the forward pass gives bit-identical
//     logits for a sequence whatever else is in its batch.
//   - Nothing here edits the engine: the paged figure is what engine.Stats reports, sampled
//     by polling (see Waste for when that is exact).
//   - Timings are wall clock and include everything the engine does (scheduling, sampling,
//     the disk); another process loading the machine lowers both sides of a ratio, but not
//     necessarily equally. So repeated runs alternate and the fastest counts, every rate
//     also comes per CPU-second of the process, and a run is read with the load average
//     it records.
package serving
