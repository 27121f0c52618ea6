// Package pipeline measures a pipeline-sharded engine against the single-process engine
// on the same machine, in the same run: the same requests decoded by one engine that runs
// every layer on all its threads, and by a leader that runs the first half of the layers
// with its thread share while a stage server on a loopback gRPC socket runs the rest with
// the other, with one or more micro-batches in flight.
//
// Invariants: both sides decode the same requests with the same seeds, so they generate
// the same tokens (Run checks it: a pipeline that diverged would be measured on other
// work); the thread budget is split, never added to (a leader of 1 thread and a stage of
// 1 thread against one engine of 2); and throughput counts generated tokens over the
// wall time from the first submission to the last token.
package pipeline
