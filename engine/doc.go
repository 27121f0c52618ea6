// Package engine schedules the generations of one model on one KV cache: waiting, running
// and swapped queues, continuous batching, chunked prefill, admission against free KV
// blocks, preemption, automatic prefix caching and the disk tier.
//
// # Shape
//
// The scheduler (scheduler.go) is the pure core: plain data, no goroutines, no clock, no IO
// of its own; the disk goes through the small spiller interface. The Engine (engine.go,
// step.go) is the one goroutine around it: it takes submitted requests, asks the scheduler
// for a plan, runs the planned batch through model.Runner, samples, and hands tokens to
// each request's channel. The disk tier (tier.go) implements spiller over a swap.Store.
//
// # One step, in order
//
//  1. intake: submitted requests join the waiting queue in policy order; their prompts'
//     block hashes are computed and blocks only the disk holds start to prefetch.
//  2. reap: requests whose context ended are removed and their blocks freed.
//  3. schedule: every running sequence gets its next tokens (one while decoding, a chunk of
//     at most PrefillChunk while prefilling) within MaxBatchTokens; when blocks run out the
//     last-admitted running sequence is preempted (Recompute: blocks freed, back to
//     waiting; Swap: blocks to disk first). A step that preempted admits nothing. Then
//     swapped sequences resume (blocks read back, checksummed), then waiting ones are
//     admitted: their longest cached prefix is taken from memory, then from disk, and only
//     the rest is computed.
//  4. run: one Forward over the whole plan.
//  5. update: newly filled blocks are hashed into the prefix cache; every sequence that has
//     run all its tokens samples one; n > 1 requests fork after their prompt; finished
//     samples free their blocks (cached ones stay, evictable, in LRU order).
//  6. offload: past the high watermark of resident KV memory, the coldest cached blocks go
//     to disk until usage is under the low watermark.
//
// # Pipelines
//
// A pipeline leader (Config.Downstream) runs steps 1-3 and 5-6 for the whole pipeline:
// every stage mirrors its block ids. Each StageStep carries the copy-on-write copies and
// the disk moves (DiskOp) made since the previous one, in the leader's order, so that
// stages repeat them before the step; a leader about to idle sends its last moves in a
// step of no sequences. The leader loads a prefix block from its disk only
// when every stage confirmed it holds it too (KeyHolder, asked while prefetching at
// intake); the rest is recomputed (stagedisk.go).
//
// # Invariants
//
//   - Outputs do not depend on batching, chunking, prefix hits, preemption or swapping: the
//     forward pass is exact per token, and sampling is a pure function of (seed, position).
//   - A request's events are buffered for all it can produce: the loop never blocks on a
//     client. The channel closes after the last event; an error event is always the last.
//   - Every admitted request finishes, fails with an error, or is cancelled; in each case
//     its blocks return to the pool (tests check the pool is whole after shutdown).
//   - A block read back from disk is bit-identical (or int8-decoded when SwapInt8 is set)
//     or fails its checksum, and then its tokens are recomputed: never served wrong.
//   - BOS (id 1) ends a sample, as in llama2.c; it is not emitted.
package engine
