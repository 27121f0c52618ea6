package engine

import (
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kvmesh/kvmesh/blocks"
)

// Policy orders the waiting queue.
type Policy uint8

const (
	// FCFS admits requests in arrival order (the default).
	FCFS Policy = iota
	// ShortFirst admits the request with the least work first: prompt length plus
	// max_tokens, ties by arrival.
	ShortFirst
	// Priority admits the highest Request.Priority first, ties by arrival.
	Priority
)

// ParsePolicy reads "fcfs", "short" or "priority".
func ParsePolicy(s string) (Policy, error) {
	switch s {
	case "fcfs", "":
		return FCFS, nil
	case "short", "short-first":
		return ShortFirst, nil
	case "priority":
		return Priority, nil
	}
	return 0, fmt.Errorf("unknown scheduling policy %q (fcfs, short, priority)", s)
}

// Preemption says what happens to a running sequence that must give up its blocks.
type Preemption uint8

const (
	// Recompute frees the victim's blocks; it is re-admitted later and recomputes its K/V
	// (cheap when its blocks are still in the prefix cache).
	Recompute Preemption = iota
	// Swap writes the victim's blocks to the disk tier and reads them back on resume; a block
	// that fails its checksum falls back to recomputing.
	Swap
)

// Config configures an Engine. Zero values take the documented defaults.
type Config struct {
	// BlockSize is the tokens per KV block. Default 16.
	BlockSize int
	// KVDType is the storage type of K and V. Default FP32.
	KVDType blocks.DType
	// NumBlocks is the number of KV blocks in memory. Default: KVMemory / block bytes.
	NumBlocks int
	// KVMemory is the KV memory budget in bytes, used when NumBlocks is 0. Default 64 MiB.
	KVMemory int64
	// MaxBatchTokens is the token budget of one step: decode tokens plus prefill chunks.
	// Default 256.
	MaxBatchTokens int
	// MaxRunning is the most sequences in one step. Default 64.
	MaxRunning int
	// MaxWaiting is the most requests waiting for admission; Submit past it returns
	// ErrQueueFull. Default 256.
	MaxWaiting int
	// PrefillChunk is the most prompt tokens of one sequence in one step, so a long prompt
	// does not stall the decoding sequences. Default MaxBatchTokens.
	PrefillChunk int
	// Policy orders the waiting queue. Default FCFS.
	Policy Policy
	// Preemption is what happens to a sequence preempted for lack of blocks. Default
	// Recompute; Swap needs SwapPath.
	Preemption Preemption
	// NoPrefixCaching turns automatic prefix caching off. Default: on.
	NoPrefixCaching bool
	// SwapPath is the bbolt file of the disk tier; empty turns the tier off.
	SwapPath string
	// SwapMaxBytes bounds the disk tier; 0 is unlimited. A full tier degrades to
	// recomputing.
	SwapMaxBytes int64
	// SwapHigh and SwapLow are the watermarks of resident KV memory, as fractions of
	// NumBlocks: past SwapHigh, the coldest cached blocks move to disk until usage is under
	// SwapLow. Defaults 0.9 and 0.7.
	SwapHigh, SwapLow float64
	// SwapInt8 stores fp32/fp16 blocks on disk as int8 with a scale per group of 32 values:
	// about 4x (fp32) or 2x (fp16) fewer bytes, at a small cost in accuracy. Default off:
	// blocks come back bit-identical.
	SwapInt8 bool
	// Threads is the number of kernel threads. Default: one per core.
	Threads int
	// Identity names the model (weights, tokenizer) for the prefix hashes and the swap file.
	// Default: the checkpoint's identity.
	Identity string
	// KeySeed is the parent of every sequence's first block key: the prefix cache's keys
	// are kvindex.Keys(KeySeed, tokens, BlockSize), which the router computes too. Default:
	// a hash of Identity, the KV type and the block size.
	KeySeed blocks.BlockHash
	// Logger receives the engine's logs. Default slog.Default().
	Logger *slog.Logger
	// Registry receives the engine's metrics. Default: none are registered.
	Registry prometheus.Registerer
	// RecordEvents keeps the prefix cache's stored/removed events for Events. Default off.
	RecordEvents bool

	// Downstream runs the layers after this engine's own when the engine leads a
	// pipeline; nil (the default) runs the whole model in this process. A pipeline leader
	// preempts by recomputing. Its disk tier (SwapPath) holds cold cached prefixes of its
	// own layers; every stage repeats its moves in a swap file of its own, and a prefix
	// block is loaded from disk only when every stage confirms it holds it (Downstream
	// must then be a KeyHolder; see stagedisk.go). SwapInt8 is single-process only.
	Downstream Downstream
	// LeaderLayers is how many layers (0..LeaderLayers-1) the leader runs itself when
	// Downstream is set. Required then.
	LeaderLayers int
	// MicroBatches is how many steps a pipeline leader keeps in flight down the pipeline,
	// each over its own share of the running sequences, so that no stage idles while
	// another computes. Default 2 with Downstream; always 1 without.
	MicroBatches int

	// verify checks every invariant after every step and panics on a violation (tests).
	verify bool
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	c := Config{}
	c.fill()
	return c
}

func (c *Config) fill() {
	if c.BlockSize == 0 {
		c.BlockSize = 16
	}
	if c.KVMemory == 0 {
		c.KVMemory = 64 << 20
	}
	if c.MaxBatchTokens == 0 {
		c.MaxBatchTokens = 256
	}
	if c.MaxRunning == 0 {
		c.MaxRunning = 64
	}
	if c.MaxWaiting == 0 {
		c.MaxWaiting = 256
	}
	if c.PrefillChunk == 0 {
		c.PrefillChunk = c.MaxBatchTokens
	}
	if c.SwapHigh == 0 {
		c.SwapHigh = 0.9
	}
	if c.SwapLow == 0 {
		c.SwapLow = 0.7
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.MicroBatches == 0 && c.Downstream != nil {
		c.MicroBatches = 2
	}
	if c.Downstream == nil {
		c.MicroBatches = 1
	}
}

// validate fills defaults and rejects what the engine cannot run.
func (c *Config) validate() error {
	c.fill()
	switch {
	case c.BlockSize < 1:
		return fmt.Errorf("engine config: block size %d", c.BlockSize)
	case c.NumBlocks < 0 || c.KVMemory < 0:
		return fmt.Errorf("engine config: negative KV memory")
	case c.MaxBatchTokens < 1 || c.MaxRunning < 1 || c.MaxWaiting < 1 || c.PrefillChunk < 1:
		return fmt.Errorf("engine config: batch limits must be positive")
	case !(c.SwapLow > 0 && c.SwapLow < c.SwapHigh && c.SwapHigh <= 1):
		return fmt.Errorf("engine config: swap watermarks need 0 < low (%v) < high (%v) <= 1", c.SwapLow, c.SwapHigh)
	case c.Preemption == Swap && c.SwapPath == "":
		return fmt.Errorf("engine config: swap preemption needs a swap path")
	case c.Downstream != nil && c.Preemption == Swap:
		return fmt.Errorf("engine config: a pipeline leader preempts by recomputing (its disk tier holds cached prefixes only)")
	case c.Downstream != nil && c.SwapInt8:
		return fmt.Errorf("engine config: int8 disk encoding is for a single-process engine (the stages store their blocks raw)")
	case c.Downstream != nil && c.LeaderLayers < 1:
		return fmt.Errorf("engine config: a pipeline leader needs LeaderLayers")
	case c.MicroBatches < 1:
		return fmt.Errorf("engine config: %d micro-batches", c.MicroBatches)
	case c.Policy > Priority:
		return fmt.Errorf("engine config: unknown policy %d", c.Policy)
	}
	return nil
}
