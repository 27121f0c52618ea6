package shard

import "errors"

// Sentinel errors. Callers branch on them with errors.Is; the returned errors wrap them
// with context (the workers, ranges and pipeline involved).
var (
	// ErrRange: a layer range that is empty, inverted, negative, outside the model's
	// layers, or does not parse.
	ErrRange = errors.New("shard: bad layer range")
	// ErrOverlap: a layer range that overlaps a live worker's range in the same pipeline.
	// The message names both workers and both ranges.
	ErrOverlap = errors.New("shard: overlapping layer ranges")
	// ErrNoFit: a worker whose memory cannot hold even one layer (with the KV for the
	// minimum tokens) where a layer is needed, or an explicit range it cannot hold.
	ErrNoFit = errors.New("shard: worker memory too small")
	// ErrBadWorker: a worker record that cannot be placed as given (no ID, a duplicate
	// ID, or a pipeline without a range).
	ErrBadWorker = errors.New("shard: bad worker")
)
